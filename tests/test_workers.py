"""Worker processes: the user's environment is left alone and workers stay quiet.

joblib's loky workers (``n_jobs=2``) and subprocesses inherit the parent's
environment, so whatever the library leaves in ``os.environ`` changes how
they start.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.tensorflow

REPO_ROOT = Path(__file__).resolve().parents[1]

# A fresh interpreter of a user who set no TensorFlow variable: fits once in
# the parent, then twice in two loky workers.
SCRIPT = """
import os
import numpy as np
from sklearn.model_selection import cross_val_score
from sklearn_afm import AFMClassifier

before = dict(os.environ)
X = np.random.RandomState(0).normal(size=(120, 4))
y = (X[:, 0] * X[:, 1] > 0).astype(int)
clf = AFMClassifier(max_iter=2, n_iter_no_change=1, tol=1e9).fit(X, y)
changed = sorted(k for k in before.keys() | os.environ.keys() if before.get(k) != os.environ.get(k))
print("changed:", changed)
cross_val_score(clf, X, y, cv=2, n_jobs=2)
"""

# The native log lines of TensorFlow's start-up: absl's "I0000 00:00:..."
# prefix, its pre-initialisation notice, and the oneDNN / CUDA probes.
TF_LOG_LINE = re.compile(r"^[IWEF]\d{4} |absl::InitializeLog|oneDNN|cuda|cuInit", re.M)


@pytest.fixture(scope="module")
def user_run():
    from sklearn_afm._runtime import import_tensorflow

    if import_tensorflow().config.list_physical_devices("GPU"):
        pytest.skip("a GPU machine may log its devices")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_fit_leaves_the_environment_as_it_was(user_run):
    assert "changed: []" in user_run.stdout


def test_loky_workers_print_no_tensorflow_logs(user_run):
    assert TF_LOG_LINE.search(user_run.stderr) is None, user_run.stderr
