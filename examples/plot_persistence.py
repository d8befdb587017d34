"""
=========================================
Saving and reloading a fitted model
=========================================

A fitted estimator holds its weights as numpy arrays and no TensorFlow object,
so it can be written to a file and reloaded in another process, where it
predicts identically and can continue training.  Two ways:

* :meth:`~sklearn_afm.AFMClassifier.save` and :func:`sklearn_afm.load`: a
  file that holds data only, so loading it runs no code from it;
* :mod:`pickle` or :mod:`joblib`, as for any scikit-learn estimator: loading
  a pickle runs code named in the file, so only load files you trust.

See :ref:`persistence` for the details.
"""

# %%
import tempfile
from pathlib import Path

import joblib
import numpy as np
from sklearn.model_selection import train_test_split

import sklearn_afm
from sklearn_afm import AFMClassifier, load_telco_churn

X, y = load_telco_churn(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.1, random_state=10)
clf = AFMClassifier(random_state=0).fit(X_train, y_train)
proba = clf.predict_proba(X_test)

directory = Path(tempfile.mkdtemp())

# %%
# ``save`` and ``load``
# ---------------------
path = directory / "churn.afm"
clf.save(path)
reloaded = sklearn_afm.load(path)
print(f"{path.name}: {path.stat().st_size / 1024:.0f} KiB")
print("same probabilities:", np.array_equal(reloaded.predict_proba(X_test), proba))

# %%
# joblib (or pickle)
# ------------------
# The TensorFlow model is rebuilt on the first prediction after loading.
path = directory / "churn.joblib"
joblib.dump(clf, path)
reloaded = joblib.load(path)
print(f"{path.name}: {path.stat().st_size / 1024:.0f} KiB")
print("same probabilities:", np.array_equal(reloaded.predict_proba(X_test), proba))

# %%
# Continuing training
# -------------------
# The optimizer's state is saved with the weights, so ``partial_fit`` on the
# reloaded model continues where training stopped, here with one more pass
# over the training data.
reloaded.partial_fit(X_train, y_train)
print(f"epochs: {clf.n_iter_} -> {reloaded.n_iter_}")

# %%
import shutil

shutil.rmtree(directory)
