"""Bad input gets a clear scikit-learn style error, and a failed fit loses nothing."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_afm import AFMClassifier
from sklearn_afm._engine import Engine

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 5))
    y = np.where(X[:, 0] * X[:, 1] > 0, "yes", "no")
    return X, y


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return AFMClassifier(max_iter=3, random_state=0).fit(*data)


def _with(X, row, col, value):
    X = X.copy()
    X[row, col] = value
    return X


@pytest.mark.parametrize(
    "value, message", [(np.nan, "NaN"), (np.inf, "infinity"), (-np.inf, "infinity")]
)
def test_non_finite_input_is_rejected_in_fit_and_predict(data, fitted, value, message):
    X, y = data
    with pytest.raises(ValueError, match=message):
        AFMClassifier(max_iter=1).fit(_with(X, 3, 2, value), y)
    for method in ("predict", "predict_proba", "decision_function", "pair_attention"):
        with pytest.raises(ValueError, match=message):
            getattr(fitted, method)(_with(X, 0, 0, value))


@pytest.mark.parametrize("method", ["predict", "predict_proba", "decision_function", "score"])
def test_wrong_number_of_features_at_predict(data, fitted, method):
    X, y = data
    args = (X[:, :4], y) if method == "score" else (X[:, :4],)
    with pytest.raises(ValueError, match="X has 4 features, but AFMClassifier is expecting 5"):
        getattr(fitted, method)(*args)


def test_single_class_target(data):
    X, _ = data
    with pytest.raises(ValueError, match="only one class"):
        AFMClassifier(max_iter=1).fit(X, np.ones(len(X)))


def test_non_numeric_columns_not_declared_categorical_point_to_the_fix(data):
    X, y = data
    frame = pd.DataFrame(X, columns=list("abcde")).assign(city=["Paris", "Rome"] * 60)
    with pytest.raises(
        ValueError, match=r"\['city'\] are not numeric.*categorical_features.*OneHotEncoder"
    ):
        AFMClassifier(max_iter=1, categorical_features=None).fit(frame, y)
    # With the default categorical_features="from_dtype" the column is a field.
    clf = AFMClassifier(max_iter=1).fit(frame, y)
    assert clf.is_categorical_.tolist() == [False] * 5 + [True]


def test_string_array_points_to_one_hot_encoding(data):
    X, y = data
    strings = np.column_stack([X[:, :2], np.array(["a", "b"] * 60)]).astype(object)
    # (The default "from_dtype" takes the string column of an object array as
    # categorical: see tests/test_dataframes.py.)
    with pytest.raises(ValueError, match="not numbers.*OneHotEncoder"):
        AFMClassifier(max_iter=1, categorical_features=None).fit(strings, y)


def test_empty_input(data, fitted):
    X, y = data
    with pytest.raises(ValueError, match="0 sample"):
        AFMClassifier(max_iter=1).fit(X[:0], y[:0])
    with pytest.raises(ValueError, match="0 sample"):
        fitted.predict(X[:0])


def test_mismatched_lengths(data):
    X, y = data
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        AFMClassifier(max_iter=1).fit(X, y[:-1])
    with pytest.raises(ValueError, match="sample_weight.shape"):
        AFMClassifier(max_iter=1).fit(X, y, sample_weight=np.ones(len(y) - 1))


def test_negative_or_zero_sample_weights(data):
    X, y = data
    weights = np.ones(len(y))
    weights[4] = -1
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        AFMClassifier(max_iter=1).fit(X, y, sample_weight=weights)
    with pytest.raises(ValueError, match=r"(?i)sample.weight.*(all zero|non-zero)"):
        AFMClassifier(max_iter=1).fit(X, y, sample_weight=np.zeros(len(y)))


@pytest.mark.parametrize(
    "method", ["predict", "predict_proba", "decision_function", "pair_attention"]
)
def test_predict_before_fit(data, method):
    with pytest.raises(NotFittedError):
        getattr(AFMClassifier(), method)(data[0])


@pytest.mark.parametrize(
    "params",
    [
        {"embedding_size": 0},
        {"learning_rate_init": 0.0},
        {"dropout": 1.0},
        {"solver": "lbfgs"},
        {"early_stopping": "sometimes"},
        {"validation_fraction": 1.0},
        {"class_weight": "uniform"},
    ],
)
def test_invalid_parameters(data, params):
    with pytest.raises(InvalidParameterError, match=next(iter(params))):
        AFMClassifier(**params).fit(*data)


@pytest.mark.parametrize("device", ["tpu", "gpu:x", "gpu:7"])
def test_unknown_or_missing_device(data, device):
    with pytest.raises(ValueError, match="device"):
        AFMClassifier(max_iter=1, device=device).fit(*data)


def test_failed_refit_keeps_previous_model(data):
    X, y = data
    clf = AFMClassifier(max_iter=3, random_state=0).fit(X, y)
    before = clf.predict_proba(X)
    with pytest.raises(ValueError, match="NaN"):
        clf.fit(_with(X, 0, 0, np.nan), y)
    with pytest.raises(ValueError, match="only one class"):
        clf.fit(X[:, :3], np.zeros(len(y)))
    assert clf.n_features_in_ == 5
    np.testing.assert_array_equal(clf.predict_proba(X), before)


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_interrupted_warm_start_keeps_previous_model(data, monkeypatch, error):
    X, y = data
    clf = AFMClassifier(max_iter=3, warm_start=True, random_state=0).fit(X, y)
    before = clf.predict_proba(X)
    n_iter, curve = clf.n_iter_, list(clf.loss_curve_)
    real_epoch = Engine.train_epoch
    calls = []

    def interrupted_epoch(self, *args, **kwargs):
        # Train for real first so that the live weights have moved.
        calls.append(1)
        loss = real_epoch(self, *args, **kwargs)
        if len(calls) == 2:
            raise error("interrupted")
        return loss

    monkeypatch.setattr(Engine, "train_epoch", interrupted_epoch)
    with pytest.raises(error):
        clf.fit(X, y)
    assert len(calls) == 2
    assert clf.n_iter_ == n_iter and clf.loss_curve_ == curve
    np.testing.assert_array_equal(clf.predict_proba(X), before)


def test_interrupted_first_fit_leaves_estimator_unfitted(data, monkeypatch):
    def interrupted_epoch(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Engine, "train_epoch", interrupted_epoch)
    clf = AFMClassifier(max_iter=2)
    with pytest.raises(KeyboardInterrupt):
        clf.fit(*data)
    assert not hasattr(clf, "n_features_in_") and not hasattr(clf, "classes_")
    with pytest.raises(NotFittedError):
        clf.predict(data[0])


def test_diverging_fit_raises_and_names_the_cause(data, monkeypatch):
    monkeypatch.setattr(Engine, "train_epoch", lambda self, *a, **k: float("nan"))
    with pytest.raises(FloatingPointError, match="diverged.*learning_rate_init"):
        AFMClassifier(max_iter=2).fit(*data)


def test_warm_start_with_other_classes_or_network(data):
    X, y = data
    clf = AFMClassifier(max_iter=1, warm_start=True, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="classes of the previous fit"):
        clf.fit(X, np.where(y == "yes", "yes", "maybe"))
    clf.set_params(embedding_size=4)
    with pytest.raises(ValueError, match="embedding_size"):
        clf.fit(X, y)


def test_sparse_input_with_wrong_shape(data, fitted):
    with pytest.raises(ValueError, match="expecting 5 features"):
        fitted.predict(sp.random(4, 7, density=0.5, format="csr", random_state=0))
