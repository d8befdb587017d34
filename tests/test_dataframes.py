"""DataFrames of other libraries than pandas, and object arrays, under ``categorical_features="from_dtype"``.

polars frames go through scikit-learn's own DataFrame layer (narwhals) as
HistGradientBoosting's do; object arrays are what scikit-learn's
meta-estimators make of a DataFrame.  Fits are a few epochs on small data.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import BaggingClassifier
from sklearn.metrics import roc_auc_score

from sklearn_afm import AFMClassifier, AFMRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

QUICK = {"max_iter": 2, "device": "cpu", "random_state": 0}


def _polars():
    return pytest.importorskip("polars", reason="the polars tests need polars (test extra)")


def _frames(n=200, seed=0):
    """The same data as a pandas and a polars DataFrame: a String, a Categorical, an Enum column."""
    pl = _polars()
    rng = np.random.RandomState(seed)
    color = rng.choice(["red", "green", "blue"], n).tolist()
    size = rng.choice(["S", "M", "L"], n).tolist()
    shape = rng.choice(["circle", "square"], n).tolist()
    num = rng.uniform(0.5, 1.5, n)
    y = (np.array(color) == "red").astype(int)
    polars_frame = pl.DataFrame(
        {
            "color": color,
            "size": pl.Series(size, dtype=pl.Categorical),
            "num": num,
            "shape": pl.Series(shape, dtype=pl.Enum(["square", "circle", "triangle"])),
        }
    )
    pandas_frame = pd.DataFrame(
        {
            "color": pd.Series(color, dtype=object),
            "size": pd.Categorical(size),
            "num": num,
            "shape": pd.Categorical(shape, categories=["square", "circle", "triangle"]),
        }
    )
    return polars_frame, pandas_frame, y


def test_polars_string_categorical_and_enum_columns_are_categorical():
    polars_frame, _, y = _frames()
    clf = AFMClassifier(**QUICK).fit(polars_frame, y)
    assert clf.is_categorical_.tolist() == [True, True, False, True]
    assert clf.feature_names_in_.tolist() == ["color", "size", "num", "shape"]
    assert clf.categories_[0].tolist() == ["blue", "green", "red"]
    assert clf.categories_[2] is None
    assert clf.predict_proba(polars_frame).shape == (200, 2)


def test_polars_frame_fits_and_predicts_as_the_same_pandas_frame():
    polars_frame, pandas_frame, y = _frames()
    from_polars = AFMClassifier(**QUICK).fit(polars_frame, y)
    from_pandas = AFMClassifier(**QUICK).fit(pandas_frame, y)
    expected = from_pandas.predict_proba(pandas_frame)
    np.testing.assert_allclose(from_polars.predict_proba(polars_frame), expected, rtol=1e-6)
    # Either kind of frame predicts with a model fitted on the other.
    np.testing.assert_allclose(from_polars.predict_proba(pandas_frame), expected, rtol=1e-6)
    np.testing.assert_allclose(from_pandas.predict_proba(polars_frame), expected, rtol=1e-6)


def test_polars_nulls_and_unseen_values_are_missing_and_unknown():
    pl = _polars()
    polars_frame, _, y = _frames()
    clf = AFMClassifier(**QUICK).fit(polars_frame, y)
    test = pl.DataFrame(
        {
            "color": ["purple", None],
            "size": pl.Series(["XL", None], dtype=pl.Categorical),
            "num": [1.0, 1.0],
            "shape": pl.Series([None, "triangle"], dtype=pl.Enum(["square", "circle", "triangle"])),
        }
    )
    ids = clf._encode_fitted(test).ids
    unknown = clf._encoder.unknown_ids_
    # Unseen values (triangle is declared by the Enum, but never seen) are
    # the column's "unknown" feature, nulls its "missing" one.
    assert ids[0].tolist() == [unknown[0], unknown[1], ids[0, 2], unknown[3] + 1]
    assert ids[1].tolist() == [unknown[0] + 1, unknown[1] + 1, ids[1, 2], unknown[3]]


def test_polars_integer_column_with_nulls_is_an_error_naming_it():
    pl = _polars()
    X = pl.DataFrame({"city": ["a", "b", "a", "b"], "count": [1, None, 3, 4]})
    with pytest.raises(ValueError, match=r"NaN or infinity in the numeric column\(s\) \['count'\]"):
        AFMRegressor(**QUICK).fit(X, [1.0, 2.0, 3.0, 4.0])


def test_object_array_string_columns_are_categorical_under_from_dtype(telco):
    X, y = telco
    X, y = X.iloc[:400], y.iloc[:400]
    from_array = AFMClassifier(**QUICK).fit(X.to_numpy(dtype=object), y)
    from_frame = AFMClassifier(**QUICK).fit(X, y)
    string_columns = [not pd.api.types.is_numeric_dtype(d) for d in X.dtypes]
    assert from_array.is_categorical_.tolist() == string_columns
    assert sum(string_columns) == 15
    # The same categories, so the same network and the same predictions.
    np.testing.assert_allclose(
        from_array.predict_proba(X.to_numpy(dtype=object)), from_frame.predict_proba(X), rtol=1e-6
    )


def test_object_array_rule_string_or_missing_cells_and_numbers():
    rng = np.random.RandomState(0)
    n = 120
    X = np.empty((n, 3), dtype=object)
    X[:, 0] = rng.choice(["a", "b"], n)
    X[:5, 0] = None  # missing cells do not make a column numeric
    X[:, 1] = rng.randint(1, 5, n)  # Python ints in an object array: numeric
    X[:, 2] = rng.uniform(0.5, 1.5, n)
    clf = AFMRegressor(**QUICK).fit(X, rng.normal(size=n))
    assert clf.is_categorical_.tolist() == [True, False, False]
    assert clf.categories_[0].tolist() == ["a", "b"]


def test_bagging_on_the_telco_frame_with_a_share_of_the_columns(telco_split):
    X_train, X_test, y_train, y_test = telco_split
    bagging = BaggingClassifier(
        AFMClassifier(max_iter=5, learning_rate_init=0.05, device="cpu"),
        n_estimators=3,
        max_features=0.5,
        random_state=0,
    ).fit(X_train, y_train)
    for estimator, features in zip(bagging.estimators_, bagging.estimators_features_):
        expected = [not pd.api.types.is_numeric_dtype(X_train.dtypes.iloc[f]) for f in features]
        assert estimator.is_categorical_.tolist() == expected
    assert roc_auc_score(y_test, bagging.predict_proba(X_test)[:, 1]) > 0.75
