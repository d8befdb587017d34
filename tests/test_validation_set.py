"""fit(X, y, X_val=..., y_val=..., sample_weight_val=...): early stopping on a given set."""

import numpy as np
import pytest
import sklearn
from sklearn.metrics import log_loss, r2_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_afm import AFMClassifier, AFMRegressor

PARAMS = dict(max_iter=6, random_state=0, device="cpu")


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(1500, 5)) * 10 + 3
    y = (X[:, 0] * X[:, 1] > 9).astype(int)
    return X[:1200], y[:1200], X[1200:], y[1200:]


def test_classifier_monitors_the_given_set_and_keeps_its_best_epoch(data):
    X, y, X_val, y_val = data
    clf = AFMClassifier(**PARAMS).fit(X, y, X_val=X_val, y_val=y_val)
    assert len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    # The best epoch's weights are kept: their score is that of the final model.
    expected = -log_loss(y_val, clf.predict_proba(X_val))
    assert clf.best_validation_score_ == pytest.approx(expected, rel=1e-5)


def test_validation_weights_weigh_the_monitored_score(data):
    X, y, X_val, y_val = data
    weights = np.where(y_val == 1, 5.0, 1.0)
    clf = AFMClassifier(**PARAMS).fit(X, y, X_val=X_val, y_val=y_val, sample_weight_val=weights)
    expected = -log_loss(y_val, clf.predict_proba(X_val), sample_weight=weights)
    assert clf.best_validation_score_ == pytest.approx(expected, rel=1e-5)


def test_regressor_monitors_r2_of_the_given_set(data):
    X, _, X_val, _ = data
    reg = AFMRegressor(early_stopping=True, **PARAMS)
    reg.fit(X, X[:, 0] * X[:, 1], X_val=X_val, y_val=X_val[:, 0] * X_val[:, 1])
    expected = r2_score(X_val[:, 0] * X_val[:, 1], reg.predict(X_val))
    assert reg.best_validation_score_ == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"X_val": "X"}, "y_val was not provided"),
        ({"y_val": "y"}, "X_val was not provided"),
        ({"X_val": "X", "y_val": "y", "early_stopping": False}, "early_stopping is False"),
    ],
)
def test_incomplete_or_unused_validation_sets_are_errors(data, kwargs, message):
    X, y, X_val, y_val = data
    kwargs = dict(kwargs)
    early_stopping = kwargs.pop("early_stopping", "auto")
    given = {k: {"X": X_val, "y": y_val}[v] for k, v in kwargs.items()}
    clf = AFMClassifier(early_stopping=early_stopping, **PARAMS)
    with pytest.raises(ValueError, match=message):
        clf.fit(X, y, **given)
    assert not hasattr(clf, "n_iter_")


def test_validation_set_must_match_the_training_columns(data):
    X, y, X_val, y_val = data
    with pytest.raises(ValueError, match="features"):
        AFMClassifier(**PARAMS).fit(X, y, X_val=X_val[:, :4], y_val=y_val)


def test_pipeline_routes_and_transforms_the_validation_set(data):
    X, y, X_val, y_val = data
    with sklearn.config_context(enable_metadata_routing=True):
        afm = AFMClassifier(**PARAMS).set_fit_request(X_val=True, y_val=True)
        pipe = Pipeline([("scale", StandardScaler()), ("afm", afm)], transform_input=["X_val"])
        pipe.fit(X, y, X_val=X_val, y_val=y_val)
    scaler = StandardScaler().fit(X)
    direct = AFMClassifier(**PARAMS).fit(
        scaler.transform(X), y, X_val=scaler.transform(X_val), y_val=y_val
    )
    assert pipe[-1].validation_scores_ == direct.validation_scores_


def test_validation_weights_get_the_training_weights_checks(data):
    X, y, X_val, y_val = data
    with pytest.raises(ValueError, match="non-zero|all zero"):
        AFMClassifier(**PARAMS).fit(X, y, X_val=X_val, y_val=y_val,
                                    sample_weight_val=np.zeros(len(y_val)))
    with pytest.raises(ValueError, match="[Nn]egative"):
        AFMClassifier(**PARAMS).fit(X, y, X_val=X_val, y_val=y_val,
                                    sample_weight_val=-np.ones(len(y_val)))
