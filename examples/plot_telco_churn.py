"""
=====================================================
Telco customer churn: which feature interactions matter
=====================================================

Fit an :class:`~sklearn_afm.AFMClassifier` on the bundled Telco churn data in a
scikit-learn :class:`~sklearn.pipeline.Pipeline` (one-hot encoding of the
categorical columns, scaling of the numeric ones), report its held-out ROC AUC
and accuracy, and list the feature pairs the attention network weighs most.

This is the main demo of the project: ``python examples/plot_telco_churn.py``.
"""

import time

import numpy as np
from sklearn.compose import make_column_selector, make_column_transformer
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from sklearn_afm import AFMClassifier, load_telco_churn

X, y = load_telco_churn(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.1, random_state=10)

# %%
# Categorical columns are one-hot encoded (a sparse matrix: AFM only pairs
# the non-zero entries of each row), numeric columns standardised.
preprocess = make_column_transformer(
    (OneHotEncoder(handle_unknown="ignore"), make_column_selector(dtype_exclude="number")),
    remainder=StandardScaler(),
)
model = make_pipeline(preprocess, AFMClassifier(random_state=0))

start = time.perf_counter()
model.fit(X_train, y_train)
elapsed = time.perf_counter() - start
afm = model[-1]

proba = model.predict_proba(X_test)[:, 1]
print(f"Telco churn, {len(X_train)} training / {len(X_test)} test customers")
print(f"fit: {afm.n_iter_} epochs in {elapsed:.1f} s on {afm.device_}")
print(f"ROC AUC  = {roc_auc_score(y_test, proba):.4f}")
print(f"accuracy = {accuracy_score(y_test, model.predict(X_test)):.4f}")

# %%
# ``attention_weights_`` holds the mean attention of each pair of (one-hot)
# features over the training rows where both were present.
names = model[0].get_feature_names_out()
weights = afm.attention_weights_
first, second = np.triu_indices_from(weights, k=1)
top = np.argsort(weights[first, second])[::-1][:10]
print("\nTop attended feature pairs (mean attention):")
for rank, p in enumerate(top, 1):
    print(f"{rank:2d}. {names[first[p]]} x {names[second[p]]}: {weights[first[p], second[p]]:.4f}")
