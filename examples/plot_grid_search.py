"""
==============================================
Tuning an AFM with GridSearchCV
==============================================

:class:`~sklearn_afm.AFMClassifier` is a regular scikit-learn estimator, so
:class:`~sklearn.model_selection.GridSearchCV` tunes it inside a
:class:`~sklearn.pipeline.Pipeline` like any other.  Here the grid compares
embedding sizes, and the attention against the plain factorization machine
(``use_attention=False``), on a subset of the Telco churn data with few
epochs, to keep the example fast; widen both for a real search.
"""

# %%
import warnings

import pandas as pd
from sklearn.compose import make_column_selector, make_column_transformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_afm import AFMClassifier, load_telco_churn

X, y = load_telco_churn(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=2000, test_size=1000, stratify=y, random_state=0
)

preprocess = make_column_transformer(
    (StandardScaler(), make_column_selector(dtype_include="number")),
    remainder="passthrough",
    verbose_feature_names_out=False,
).set_output(transform="pandas")
model = make_pipeline(
    preprocess, AFMClassifier(max_iter=8, early_stopping=False, random_state=0)
)

# The runs stop after 8 epochs on purpose, before convergence.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

# %%
# Parameters of a pipeline step are addressed as ``<step>__<parameter>``.
param_grid = {
    "afmclassifier__embedding_size": [4, 16],
    "afmclassifier__use_attention": [True, False],
}
search = GridSearchCV(model, param_grid, scoring="roc_auc", cv=3).fit(X_train, y_train)

results = pd.DataFrame(search.cv_results_)
columns = ["param_afmclassifier__embedding_size", "param_afmclassifier__use_attention"]
print(
    results[columns + ["mean_test_score", "std_test_score", "mean_fit_time"]]
    .sort_values("mean_test_score", ascending=False)
    .to_string(index=False)
)

# %%
# The best combination, refitted on all the training data, scored on the
# held-out customers.
print("best parameters:", search.best_params_)
print(f"held-out ROC AUC: {search.score(X_test, y_test):.4f}")
