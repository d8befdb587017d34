"""Shared fixtures of the usage tests: small Telco subsets and a sparse preprocessor.

Everything is kept small (a 1500-row subset, a few epochs) so that the whole
suite runs in well under a few minutes on two CPU cores.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sklearn.compose import make_column_selector, make_column_transformer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from sklearn_afm import load_telco_churn

REPO_ROOT = Path(__file__).resolve().parents[1]

NUMERIC_COLUMNS = ["SeniorCitizen", "tenure", "MonthlyCharges", "TotalCharges"]

# The Keras backend this run of the suite trains on (CI runs it twice:
# TensorFlow, then KERAS_BACKEND=jax).
BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "tensorflow: tests of TensorFlow itself (its logs, threads, fork safety, bitwise "
        "reproducibility, data-parallel devices), skipped under KERAS_BACKEND=jax",
    )


def pytest_collection_modifyitems(config, items):
    if BACKEND == "tensorflow":
        return
    skip = pytest.mark.skip(reason=f"a test of TensorFlow; Keras runs on {BACKEND}")
    for item in items:
        if "tensorflow" in item.keywords:
            item.add_marker(skip)


# Few epochs, big batches: enough to learn the Telco signal, fast to fit.
FAST = {"max_iter": 5, "batch_size": 256, "learning_rate_init": 0.05}


@pytest.fixture(scope="session")
def run_python():
    """Function running code in a fresh interpreter from the repository root.

    ``run_python(code, *args, timeout=180)`` dedents ``code``, runs it with
    ``args`` as ``sys.argv[1:]``, asserts a zero exit status and returns stdout.
    """

    def run(code, *args, timeout=180):
        result = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, f"subprocess failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    return run


@pytest.fixture(scope="session")
def fast_params():
    """Keyword arguments of AFMClassifier that keep a fit short."""
    return dict(FAST)


@pytest.fixture(scope="session")
def telco():
    """A stratified 1500-row subset of Telco churn: (X DataFrame, y Series of 0/1)."""
    X, y = load_telco_churn(return_X_y=True)
    X, _, y, _ = train_test_split(X, y, train_size=1500, stratify=y, random_state=0)
    return X.reset_index(drop=True), y.reset_index(drop=True)


@pytest.fixture(scope="session")
def telco_split(telco):
    """(X_train, X_test, y_train, y_test) of the subset, 70/30, stratified."""
    X, y = telco
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)


@pytest.fixture(scope="session")
def telco_small(telco):
    """A 600-row subset for tests that fit many models (grid search)."""
    X, y = telco
    X, _, y, _ = train_test_split(X, y, train_size=600, stratify=y, random_state=1)
    return X.reset_index(drop=True), y.reset_index(drop=True)


@pytest.fixture(scope="session")
def numeric_columns():
    """The four numeric columns of Telco churn."""
    return list(NUMERIC_COLUMNS)


def _make_preprocessor():
    # One-hot output is ~40 % dense here, above the default sparse_threshold
    # of 0.3, so without sparse_threshold=1.0 the output would be dense.
    return make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), make_column_selector(dtype_exclude="number")),
        remainder=StandardScaler(),
        sparse_threshold=1.0,
    )


@pytest.fixture(scope="session")
def make_preprocessor():
    """Factory of a fresh ColumnTransformer (one-hot strings, scaled numbers) with sparse output."""
    return _make_preprocessor
