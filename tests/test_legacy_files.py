"""Files and pickles written by sklearn_afm 0.1.0 (tests/data/legacy) still load.

They were written before the fitted state had a schema of its own; loading
them must predict exactly as the estimator that wrote them did and continue
its training as it did (the optimizer state is restored too): exactly, up
to the float rounding of the stateless steps that replaced 0.1.0's
variable-bound ones (1e-9 on the sparse Adagrad model).
"""

import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import sklearn_afm

LEGACY = Path(__file__).parent / "data" / "legacy"


@pytest.fixture(scope="module")
def legacy_inputs():
    data = np.load(LEGACY / "data.npz")
    return {
        "categorical": (pd.read_csv(LEGACY / "frame.csv"), data["labels"]),
        "regressor": (data["dense"], data["targets"]),
        "multiclass": (sp.csr_matrix(data["onehot"]), data["classes"]),
    }


def _read(name, kind):
    with warnings.catch_warnings():
        # The files say 0.1.0; a later version warns, which is not under test here.
        warnings.simplefilter("ignore", sklearn_afm.InconsistentVersionWarning)
        if kind == "afm":
            return sklearn_afm.load(LEGACY / f"{name}.afm")
        with open(LEGACY / f"{name}.pkl", "rb") as file:
            return pickle.load(file)


@pytest.mark.parametrize("kind", ["afm", "pkl"])
@pytest.mark.parametrize("name", ["categorical", "regressor", "multiclass"])
def test_legacy_file_predicts_exactly_and_continues(legacy_inputs, name, kind):
    expected = np.load(LEGACY / "expected.npz")
    X, y = legacy_inputs[name]
    model = _read(name, kind)
    predict = model.predict if name == "regressor" else model.predict_proba
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        np.testing.assert_array_equal(predict(X), expected[name])
    else:
        # The files hold TensorFlow's predictions; JAX's kernels round
        # differently.
        np.testing.assert_allclose(predict(X), expected[name], rtol=1e-5, atol=1e-7)
    model.partial_fit(X, y)
    np.testing.assert_allclose(predict(X), expected[f"{name}_continued"], rtol=1e-5, atol=1e-7)
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        np.testing.assert_allclose(
            predict(X), expected[f"{name}_continued"], rtol=1e-7, atol=1e-9
        )
