"""
=========================================================
Telco customer churn: which feature interactions matter
=========================================================

The case study of the library: predict which customers of a telecom operator
leave, with an :class:`~sklearn_afm.AFMClassifier`, and read which pairs of
customer attributes the model relies on.

The 15 string columns are given to the model as they are: with
``categorical_features="from_dtype"`` (the default) each category gets an
embedding of its own and each column is one *field*, so the attention is over
pairs of columns (``Contract x tenure``), not over pairs of one-hot
indicators.  Only the four numeric columns are standardised.

Run it from the repository root with ``python examples/plot_telco_churn.py``:
it prints the test metrics and the most attended pairs, and writes the
attention heatmap to ``telco_churn_attention.png`` in the current directory.
"""

# %%
# Data
# ----
# 7043 customers, 19 columns, about a quarter of them churned.  One tenth is
# held out for testing.
from pathlib import Path

from sklearn.model_selection import train_test_split

from sklearn_afm import load_telco_churn

X, y = load_telco_churn(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.1, random_state=10)
print(f"{len(X_train)} training / {len(X_test)} test customers, churn rate {y.mean():.1%}")
X.head()

# %%
# Model
# -----
# Scale the numeric columns and pass the categorical ones through, keeping a
# DataFrame so that the classifier sees their dtypes and names.  The
# classifier's parameters are the defaults: early stopping on a tenth of the
# training data keeps the best epoch.
from sklearn.compose import make_column_selector, make_column_transformer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_afm import AFMClassifier

preprocess = make_column_transformer(
    (StandardScaler(), make_column_selector(dtype_include="number")),
    remainder="passthrough",
    verbose_feature_names_out=False,
).set_output(transform="pandas")
model = make_pipeline(preprocess, AFMClassifier(random_state=0)).fit(X_train, y_train)
afm = model[-1]
print(f"{afm.n_iter_} epochs, {int(afm.is_categorical_.sum())} categorical columns")

# %%
# Metrics
# -------
# ROC AUC and accuracy on the held-out customers, next to two baselines: the
# same model without the attention (``use_attention=False``: a plain
# factorization machine, every pair weighted 1), and a logistic regression on
# one-hot encoded columns, the usual baseline for this data.
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.preprocessing import OneHotEncoder

baseline = make_pipeline(
    make_column_transformer(
        (StandardScaler(), make_column_selector(dtype_include="number")),
        (OneHotEncoder(handle_unknown="ignore"), make_column_selector(dtype_exclude="number")),
    ),
    LogisticRegression(max_iter=1000),
).fit(X_train, y_train)

fm = clone(model).set_params(afmclassifier__use_attention=False).fit(X_train, y_train)

for name, estimator in [("AFM", model), ("FM", fm), ("logistic regression", baseline)]:
    auc = roc_auc_score(y_test, estimator.predict_proba(X_test)[:, 1])
    accuracy = accuracy_score(y_test, estimator.predict(X_test))
    print(f"{name:>20}: ROC AUC {auc:.4f}, accuracy {accuracy:.4f}")

# %%
# Which interactions matter
# -------------------------
# ``attention_pairs_`` lists the pairs of columns by the mean attention they
# received over the training customers where both were present.
print(afm.attention_pairs_.head(10).to_string(index=False))

# %%
# The same attention as a heatmap, with the column names on both axes.  The
# figure is written to a PNG file.
from sklearn_afm.inspection import AttentionHeatmapDisplay

display = AttentionHeatmapDisplay.from_estimator(model)
display.figure_.set_size_inches(9, 7.5)
display.figure_.tight_layout()
path = Path("telco_churn_attention.png").resolve()
display.figure_.savefig(path, dpi=120)
print(f"attention heatmap written to {path}")

# %%
# Attention is how the model shares the weight of a customer's pairs, not
# what each pair does to the prediction: a pair can be attended to and still
# move the churn probability little, or lower it.
# :ref:`sphx_glr_auto_examples_plot_explain_prediction.py` splits one
# prediction into the contribution of each pair.
