"""
=====================================================
Telco customer churn: which feature interactions matter
=====================================================

Fit an :class:`~sklearn_afm.AFMClassifier` on the bundled Telco churn data in a
scikit-learn :class:`~sklearn.pipeline.Pipeline`, report its held-out ROC AUC
and accuracy, and list the pairs of columns the attention network weighs most.

The 15 string columns are used as they are: ``categorical_features="from_dtype"``
(the default) gives each category its own embedding, and each column is one
field of the model, so the attention is over pairs of columns.  Only the
numeric columns are standardised.

This is the main demo of the project: ``python examples/plot_telco_churn.py``.
"""

import time

import numpy as np
from sklearn.compose import make_column_selector, make_column_transformer
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_afm import AFMClassifier, load_telco_churn

X, y = load_telco_churn(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.1, random_state=10)

# %%
# Scale the numeric columns and pass the categorical ones through, keeping a
# DataFrame so that the classifier sees their dtypes and names.
preprocess = make_column_transformer(
    (StandardScaler(), make_column_selector(dtype_include="number")),
    remainder="passthrough",
    verbose_feature_names_out=False,
).set_output(transform="pandas")
model = make_pipeline(preprocess, AFMClassifier(random_state=0))

start = time.perf_counter()
model.fit(X_train, y_train)
elapsed = time.perf_counter() - start
afm = model[-1]

proba = model.predict_proba(X_test)[:, 1]
print(f"Telco churn, {len(X_train)} training / {len(X_test)} test customers")
print(
    f"fit: {afm.n_iter_} epochs in {elapsed:.1f} s on {afm.device_}, "
    f"{int(afm.is_categorical_.sum())} categorical columns"
)
print(f"ROC AUC  = {roc_auc_score(y_test, proba):.4f}")
print(f"accuracy = {accuracy_score(y_test, model.predict(X_test)):.4f}")

# %%
# ``attention_weights_`` holds the mean attention of each pair of columns over
# the training rows where both were present.
names = afm.feature_names_in_
weights = afm.attention_weights_
first, second = np.triu_indices_from(weights, k=1)
top = np.argsort(weights[first, second])[::-1][:10]
print("\nTop attended column pairs (mean attention):")
for rank, p in enumerate(top, 1):
    i, j = first[p], second[p]
    print(f"{rank:2d}. {names[i]} x {names[j]}: {weights[i, j]:.4f}")
