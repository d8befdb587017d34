"""Files and pickles written by sklearn_afm 0.1.0 (tests/data/legacy) still load.

They were written before the fitted state had a schema of its own; loading
them must predict exactly as the estimator that wrote them did, and continue
its training from the restored optimizer state: file and pickle alike, and
as 0.1.0 continued it up to the change to textbook Adam/Adagrad updates of
the embedding rows (0.1.0 squared each occurrence of a row in a batch).
"""

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


@pytest.mark.parametrize("name", ["categorical", "regressor", "multiclass"])
def test_legacy_file_predicts_exactly_and_continues(legacy_inputs, name):
    expected = np.load(LEGACY / "expected.npz")
    X, y = legacy_inputs[name]
    continued = []
    for kind in ("afm", "pkl"):
        model = _read(name, kind)
        predict = model.predict if name == "regressor" else model.predict_proba
        np.testing.assert_array_equal(predict(X), expected[name])
        model.partial_fit(X, y)
        continued.append(predict(X))
    np.testing.assert_array_equal(continued[0], continued[1])
    moved = np.abs(expected[f"{name}_continued"] - expected[name]).max()
    np.testing.assert_allclose(continued[0], expected[f"{name}_continued"], atol=moved / 2)
