"""skops.io: fitted estimators and pipelines round-trip once the documented types are trusted.

docs/persistence.rst lists the types that ``skops.io.get_untrusted_types``
reports for sklearn_afm; these tests hold the library to that list, so that
a user who trusts exactly those types can load any fitted estimator.
"""

import numpy as np
import pytest
from sklearn.compose import make_column_transformer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from sklearn_afm import AFMClassifier, AFMRegressor

sio = pytest.importorskip("skops.io", reason="skops is needed for the skops.io round trip")

# The types that docs/persistence.rst tells users to trust.
DOCUMENTED_TYPES = {
    "sklearn_afm._estimators.AFMClassifier",
    "sklearn_afm._estimators.AFMRegressor",
    "sklearn_afm._encoding.FeatureEncoder",
}

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _round_trip(estimator):
    data = sio.dumps(estimator)
    untrusted = set(sio.get_untrusted_types(data=data))
    assert untrusted <= DOCUMENTED_TYPES, untrusted - DOCUMENTED_TYPES
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException):
        sio.loads(data)
    return sio.loads(data, trusted=sorted(DOCUMENTED_TYPES))


def test_classifier_with_categorical_columns_round_trips(telco, fast_params):
    # A DataFrame with string columns (categorical), a generator as
    # random_state, class weights keyed by int and early stopping's history:
    # every kind of value the fitted state holds.
    X, y = telco
    clf = AFMClassifier(
        **fast_params,
        early_stopping=True,
        class_weight={0: 1, 1: 3},
        random_state=np.random.RandomState(0),
    ).fit(X, y)
    loaded = _round_trip(clf)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    for got, expected in zip(loaded.pair_attention(X[:5]), clf.pair_attention(X[:5])):
        np.testing.assert_array_equal(got, expected)
    # The optimizer's state and the generator came along: training continues
    # exactly as the original's would.
    np.testing.assert_array_equal(
        loaded.partial_fit(X, y).predict_proba(X), clf.partial_fit(X, y).predict_proba(X)
    )


def test_regressor_in_a_pipeline_round_trips(telco, fast_params, numeric_columns):
    X, _ = telco
    target = X["MonthlyCharges"].to_numpy()
    features = X.drop(columns="MonthlyCharges")
    numbers = [c for c in numeric_columns if c != "MonthlyCharges"]
    # Columns named explicitly: skops does not trust scikit-learn's
    # make_column_selector by default (see docs/persistence.rst).
    preprocessor = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), [c for c in features if c not in numbers]),
        (StandardScaler(), numbers),
        sparse_threshold=1.0,
    )
    pipeline = make_pipeline(preprocessor, AFMRegressor(**fast_params, random_state=0))
    pipeline.fit(features, target)
    loaded = _round_trip(pipeline)
    np.testing.assert_array_equal(loaded.predict(features), pipeline.predict(features))
