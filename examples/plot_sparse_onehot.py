"""
============================================
Sparse one-hot input
============================================

An AFM forms only the pairs of a sample's *non-zero* features, so a wide,
sparse one-hot matrix costs per row what its non-zeros cost, whatever its
number of columns, and the matrix is never densified.  Here every Telco
column is one-hot encoded (the numeric ones after binning) by a
:class:`~sklearn.compose.ColumnTransformer` with sparse output, and the
attention is read back with the one-hot column names.

With string columns, giving the DataFrame directly (see
:ref:`sphx_glr_auto_examples_plot_telco_churn.py`) is usually better: each
column is then one field with one embedding per category.  One-hot input is
the way for data that arrives as a sparse matrix.
"""

# %%
from sklearn.compose import make_column_transformer
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import KBinsDiscretizer, OneHotEncoder

from sklearn_afm import AFMClassifier, load_telco_churn

X, y = load_telco_churn(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.1, random_state=10)

amounts = ["tenure", "MonthlyCharges", "TotalCharges"]
one_hot = make_column_transformer(
    (
        KBinsDiscretizer(n_bins=8, encode="onehot", strategy="uniform"),
        amounts,
    ),
    remainder=OneHotEncoder(handle_unknown="ignore"),
    # Keep the output sparse whatever its density.
    sparse_threshold=1.0,
    verbose_feature_names_out=False,
)
Xs_train = one_hot.fit_transform(X_train)
Xs_test = one_hot.transform(X_test)
print(
    f"{type(Xs_train).__name__} of shape {Xs_train.shape}, "
    f"{Xs_train.nnz / Xs_train.shape[0]:.0f} non-zeros per row"
)

# %%
# The classifier takes the sparse matrix as it is.
clf = AFMClassifier(random_state=0).fit(Xs_train, y_train)
print(f"{clf.n_iter_} epochs")
print(f"ROC AUC: {roc_auc_score(y_test, clf.predict_proba(Xs_test)[:, 1]):.4f}")

# %%
# A sparse matrix has no column names: the estimator calls its columns "x0",
# "x1", ...; the transformer knows their real names.
names = one_hot.get_feature_names_out()
pairs = clf.attention_pairs_.head(10)
for column in ["feature_1", "feature_2"]:
    pairs[column] = names[pairs[column].str[1:].astype(int)]
print(pairs.to_string(index=False))
