"""Native categorical columns: ``categorical_features``, ``categories``, ``categories_``.

Each test checks behaviour that a stub (say, one that one-hot encodes
everything, ignores ``categorical_features`` or maps unknown categories to an
error) would fail.  Data are small and fits run a few epochs so that the file
stays fast on two CPU cores.
"""

import io
import pickle
import tracemalloc

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score, r2_score, roc_auc_score

import sklearn_afm._engine as afm_engine
from sklearn_afm import AFMClassifier, AFMRegressor
from sklearn_afm._batching import FieldMatrix

# The fits below stop at max_iter on purpose, to stay fast.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

QUICK = {"max_iter": 2, "device": "cpu", "random_state": 0}

TELCO_STRING_COLUMNS = [
    "gender",
    "Partner",
    "Dependents",
    "PhoneService",
    "MultipleLines",
    "InternetService",
    "OnlineSecurity",
    "OnlineBackup",
    "DeviceProtection",
    "TechSupport",
    "StreamingTV",
    "StreamingMovies",
    "Contract",
    "PaperlessBilling",
    "PaymentMethod",
]


def _feature_ids(estimator, X):
    """Network feature id of each (row, column) entry of ``X`` (white box)."""
    source = estimator._encode_fitted(X)
    assert isinstance(source, FieldMatrix)
    return source.ids


def _mixed_frame(n=300, seed=0):
    """Two string columns and two non-zero numeric columns, target driven by ``color``."""
    rng = np.random.RandomState(seed)
    X = pd.DataFrame(
        {
            "num": rng.uniform(0.5, 1.5, n),
            "color": rng.choice(["red", "green", "blue"], n),
            "size": rng.uniform(-1.5, -0.5, n),
            "shape": pd.Categorical(rng.choice(["circle", "square"], n)),
        }
    )
    y = (X["color"] == "red").astype(int).to_numpy()
    return X, y


@pytest.fixture(scope="module")
def abc_frame():
    """300 rows: a string column in {a, b, c} and a non-zero numeric column."""
    rng = np.random.RandomState(0)
    X = pd.DataFrame({"c": ["a", "b", "c"] * 100, "z": rng.uniform(0.5, 1.5, 300)})
    y = (X["c"] == "a").astype(int).to_numpy()
    return X, y


@pytest.fixture(scope="module")
def abc_model(abc_frame):
    X, y = abc_frame
    return AFMClassifier(max_iter=5, learning_rate_init=0.05, device="cpu", random_state=0).fit(
        X, y
    )


# -- 1. raw Telco DataFrame ----------------------------------------------------------


def test_telco_raw_dataframe_columns_and_network_size(telco):
    X, y = telco
    clf = AFMClassifier(**QUICK).fit(X, y)

    expected = np.array([c in TELCO_STRING_COLUMNS for c in X.columns])
    assert isinstance(clf.is_categorical_, np.ndarray) and clf.is_categorical_.dtype == bool
    np.testing.assert_array_equal(clf.is_categorical_, expected)
    assert clf.is_categorical_.sum() == 15
    np.testing.assert_array_equal(clf.feature_names_in_, X.columns)

    assert len(clf.categories_) == X.shape[1]
    for name, is_cat, cats in zip(X.columns, clf.is_categorical_, clf.categories_):
        if is_cat:
            assert sorted(cats) == sorted(X[name].unique()), name
        else:
            assert cats is None, name
    contract = clf.categories_[list(X.columns).index("Contract")]
    assert sorted(contract) == ["Month-to-month", "One year", "Two year"]

    # One embedding row per category plus "unknown" and "missing" per
    # categorical column, one per numeric column; nothing one-hot.
    n_expected = 4 + sum(len(c) + 2 for c in clf.categories_ if c is not None)
    assert clf._network.config["n_features"] == n_expected
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.isfinite(proba).all()


def test_telco_dataframe_with_strings_ranks_held_out_rows(telco_split, fast_params, numeric_columns):
    # String columns go in raw; numeric columns are standardised, as the
    # user guide asks (their embeddings are scaled by the value).
    X_train, X_test, y_train, y_test = telco_split
    X_train, X_test = X_train.copy(), X_test.copy()
    mean, std = X_train[numeric_columns].mean(), X_train[numeric_columns].std()
    X_train[numeric_columns] = (X_train[numeric_columns] - mean) / std
    X_test[numeric_columns] = (X_test[numeric_columns] - mean) / std

    clf = AFMClassifier(**fast_params, device="cpu", random_state=0).fit(X_train, y_train)
    assert clf.is_categorical_.sum() == 15
    auc = roc_auc_score(y_test, clf.predict_proba(X_test)[:, 1])
    assert auc > 0.75, auc


# -- 2. the forms of categorical_features -------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        "from_dtype",
        ["color", "shape"],
        ["shape", "color"],
        pd.Index(["color", "shape"]),
        [1, 3],
        np.array([3, 1]),
        [False, True, False, True],
        np.array([False, True, False, True]),
    ],
    ids=["from_dtype", "names", "names-reversed", "index", "ints", "ints-array", "mask", "mask-array"],
)
def test_spec_forms_give_the_same_mask(spec):
    X, y = _mixed_frame(n=120)
    expected = np.array([False, True, False, True])
    clf = AFMClassifier(categorical_features=spec, **QUICK).fit(X, y)
    np.testing.assert_array_equal(clf.is_categorical_, expected)
    assert clf.categories_[0] is None and clf.categories_[2] is None
    assert list(clf.categories_[1]) == ["blue", "green", "red"]
    assert list(clf.categories_[3]) == ["circle", "square"]
    assert clf._network.config["n_features"] == 1 + (3 + 2) + 1 + (2 + 2)


@pytest.mark.parametrize(
    "spec", ["from_dtype", ["color", "shape"], [1, 3], [False, True, False, True]]
)
def test_spec_forms_agree_with_hist_gradient_boosting(spec):
    # Both columns are pandas "category", which HGB accepts too.
    X, y = _mixed_frame(n=120)
    X["color"] = X["color"].astype("category")
    hgb = HistGradientBoostingClassifier(max_iter=1, categorical_features=spec).fit(X, y)
    clf = AFMClassifier(categorical_features=spec, **QUICK).fit(X, y)
    np.testing.assert_array_equal(clf.is_categorical_, hgb.is_categorical_)


def test_integer_and_mask_specs_on_numpy_arrays():
    rng = np.random.RandomState(0)
    X = np.column_stack([rng.randint(0, 4, 100), rng.uniform(0.5, 1.5, 100)])
    y = rng.randint(0, 2, 100)
    by_index = AFMClassifier(categorical_features=[0], **QUICK).fit(X, y)
    by_mask = AFMClassifier(categorical_features=[True, False], **QUICK).fit(X, y)
    for clf in (by_index, by_mask):
        np.testing.assert_array_equal(clf.is_categorical_, [True, False])
        np.testing.assert_array_equal(clf.categories_[0], [0, 1, 2, 3])
        assert clf.categories_[1] is None
        assert clf._network.config["n_features"] == (4 + 2) + 1


def test_no_categorical_column_sets_none_attributes():
    rng = np.random.RandomState(0)
    X, y = rng.uniform(0.5, 1.5, (80, 3)), rng.randint(0, 2, 80)
    for spec in ("from_dtype", None, [], [False, False, False]):
        clf = AFMClassifier(categorical_features=spec, **QUICK).fit(X, y)
        assert clf.is_categorical_ is None
        assert clf.categories_ is None
        assert clf._network.config["n_features"] == 3


def test_none_spec_on_strings_raises():
    X, y = _mixed_frame(n=60)
    with pytest.raises(ValueError, match="categorical_features"):
        AFMClassifier(categorical_features=None, **QUICK).fit(X, y)


@pytest.mark.parametrize(
    "spec, match",
    [
        ([4], "out of range"),
        ([-1], "out of range"),
        ([True, False], r"shape \(4,\)"),
        ([True, False, True, False, True], r"shape \(4,\)"),
        (["color", "nope"], "nope"),
    ],
)
def test_bad_specs_raise(spec, match):
    X, y = _mixed_frame(n=60)
    with pytest.raises(ValueError, match=match):
        AFMClassifier(categorical_features=spec, **QUICK).fit(X, y)


def test_names_need_a_dataframe():
    X, y = _mixed_frame(n=60)
    with pytest.raises(ValueError, match="DataFrame"):
        AFMClassifier(categorical_features=["color"], **QUICK).fit(X.to_numpy(), y)


def test_invalid_string_spec_is_rejected_by_parameter_validation():
    X, y = _mixed_frame(n=60)
    with pytest.raises(ValueError, match="categorical_features"):
        AFMClassifier(categorical_features="auto", **QUICK).fit(X, y)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_categorical_features_with_sparse_input_raises(fmt):
    rng = np.random.RandomState(0)
    X = sp.random(50, 4, density=0.5, format=fmt, random_state=0)
    y = rng.randint(0, 2, 50)
    with pytest.raises(ValueError, match="categorical_features"):
        AFMClassifier(categorical_features=[0], **QUICK).fit(X, y)
    # The default ("from_dtype") finds no categorical column in sparse data.
    clf = AFMClassifier(**QUICK).fit(X, y)
    assert clf.is_categorical_ is None and clf.categories_ is None


# -- 3. integer codes are categories, not magnitudes --------------------------------


def test_integer_codes_are_categories_not_magnitudes():
    rng = np.random.RandomState(0)
    n = 800
    code = rng.randint(0, 7, n)
    X = np.column_stack([code, rng.uniform(0.5, 1.5, n)]).astype(np.float64)
    y = np.isin(code, [1, 3, 5]).astype(int)  # not monotonic in the code
    X_train, X_test, y_train, y_test = X[:600], X[600:], y[:600], y[600:]
    params = {
        "max_iter": 8,
        "learning_rate_init": 0.05,
        "early_stopping": False,
        "device": "cpu",
        "random_state": 0,
    }

    categorical = AFMClassifier(categorical_features=[0], **params).fit(X_train, y_train)
    numeric = AFMClassifier(categorical_features=None, **params).fit(X_train, y_train)

    np.testing.assert_array_equal(categorical.categories_[0], np.arange(7))
    assert categorical._network.config["n_features"] == (7 + 2) + 1
    acc_cat = accuracy_score(y_test, categorical.predict(X_test))
    acc_num = accuracy_score(y_test, numeric.predict(X_test))
    assert acc_cat > 0.95, acc_cat
    assert acc_num < 0.85, acc_num
    # Category 0 is a category of its own, not an absent feature.
    ids = _feature_ids(categorical, np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]]))
    assert len(set(ids[:, 0])) == 3


# -- 4. unknown categories at predict -----------------------------------------------


def test_unknown_categories_share_the_unknown_slot(abc_model):
    X_new = pd.DataFrame({"c": ["never", "seen", "before", "a", "b"], "z": [1.0] * 5})
    proba = abc_model.predict_proba(X_new)[:, 1]
    assert np.isfinite(proba).all()
    # The three unseen categories share one embedding, hence one prediction.
    np.testing.assert_allclose(proba[:3], proba[0], rtol=0, atol=1e-7)
    # ... which is not the embedding of a known category.
    assert abs(proba[0] - proba[3]) > 1e-4
    assert abs(proba[0] - proba[4]) > 1e-4
    ids = _feature_ids(abc_model, X_new)
    assert len(set(ids[:3, 0])) == 1
    assert ids[0, 0] not in ids[3:, 0]


def test_unknown_category_in_category_dtype_and_numpy(abc_model):
    base = abc_model.predict_proba(pd.DataFrame({"c": ["zzz"], "z": [1.0]}))[0]
    as_category = pd.DataFrame({"c": pd.Categorical(["zzz", "qqq"]), "z": [1.0, 1.0]})
    np.testing.assert_allclose(abc_model.predict_proba(as_category), [base, base], atol=1e-7)
    # Known categories still map to their own slot whatever the dtype.
    known = abc_model.predict_proba(pd.DataFrame({"c": pd.Categorical(["a"]), "z": [1.0]}))
    expected = abc_model.predict_proba(pd.DataFrame({"c": ["a"], "z": [1.0]}))
    np.testing.assert_allclose(known, expected, atol=1e-7)


def test_known_categories_are_learned(abc_model):
    # y == (c == "a"): the model separates the categories.
    X_new = pd.DataFrame({"c": ["a", "b", "c"], "z": [1.0, 1.0, 1.0]})
    proba = abc_model.predict_proba(X_new)[:, 1]
    assert proba[0] > 0.7 and proba[1] < 0.3 and proba[2] < 0.3, proba


def _embeddings(clf):
    """The fitted embedding table, one row per feature id."""
    return clf._get_engine().network.embeddings.get_weights()[0]


def test_unknown_slot_is_learned(abc_frame):
    X, y = abc_frame
    params = {"early_stopping": False, "learning_rate_init": 0.05, "device": "cpu", "random_state": 0}
    short = AFMClassifier(max_iter=1, **params).fit(X, y)
    long = AFMClassifier(max_iter=3, **params).fit(X, y)
    unknown = _feature_ids(long, pd.DataFrame({"c": ["unseen"], "z": [1.0]}))[0, 0]
    known = _feature_ids(long, pd.DataFrame({"c": ["a"], "z": [1.0]}))[0, 0]
    embeddings_short, embeddings_long = _embeddings(short), _embeddings(long)
    # Sanity: the same initialisation, and known categories do move.
    assert not np.array_equal(embeddings_short[known], embeddings_long[known])
    assert not np.array_equal(embeddings_short[unknown], embeddings_long[unknown])


# -- 5. missing values ---------------------------------------------------------------


def test_missing_values_are_their_own_category():
    rng = np.random.RandomState(0)
    n = 300
    values = np.array(["a", "b", None, np.nan, "a", "b"] * (n // 6), dtype=object)
    X = pd.DataFrame({"c": list(values), "z": rng.uniform(0.5, 1.5, n)})
    y = pd.isna(values).astype(int)
    clf = AFMClassifier(
        max_iter=6, learning_rate_init=0.05, early_stopping=False, device="cpu", random_state=0
    ).fit(X, y)

    # Missing values have a feature of their own, not a place among the categories.
    assert clf.categories_[0].tolist() == ["a", "b"]

    proba = clf.predict_proba(X)[:, 1]
    missing = pd.isna(values)
    # Every missing row (whatever z) gets a high score, every other a low one.
    assert proba[missing].min() > 0.7 and proba[~missing].max() < 0.3
    # Same z, missing written as None or NaN: one prediction.
    X_new = pd.DataFrame({"c": [None, np.nan, "a"], "z": [1.0] * 3})
    p = clf.predict_proba(X_new)[:, 1]
    np.testing.assert_allclose(p[0], p[1], atol=1e-7)
    assert p[0] > 0.7 and p[2] < 0.3


def test_none_and_nan_are_one_missing_category_in_object_column():
    rng = np.random.RandomState(0)
    n = 300
    column = pd.Series(["a", "b", None, np.nan, "a", "b"] * (n // 6), dtype=object)
    X = pd.DataFrame({"c": column, "z": rng.uniform(0.5, 1.5, n)})
    y = rng.randint(0, 2, n)
    clf = AFMClassifier(**QUICK).fit(X, y)
    X_new = pd.DataFrame({"c": pd.Series([None, np.nan], dtype=object), "z": [1.0, 1.0]})
    proba = clf.predict_proba(X_new)
    np.testing.assert_allclose(proba[0], proba[1], atol=1e-7)


def test_pandas_na_in_string_dtype_column_is_missing():
    rng = np.random.RandomState(0)
    n = 120
    X = pd.DataFrame(
        {
            "c": pd.array(["a", "b", None] * (n // 3), dtype="string"),
            "z": rng.uniform(0.5, 1.5, n),
        }
    )
    y = rng.randint(0, 2, n)
    clf = AFMClassifier(**QUICK).fit(X, y)
    assert clf.is_categorical_.tolist() == [True, False]
    assert np.isfinite(clf.predict_proba(X)).all()


@pytest.mark.parametrize("missing", [None, np.nan, pd.NA])
@pytest.mark.parametrize("dtype", [object, "str", "string", "category"])
def test_missing_value_unseen_in_training_does_not_crash(abc_model, missing, dtype):
    X_new = pd.DataFrame({"c": pd.Series([missing, "a"], dtype=dtype), "z": [1.0, 1.0]})
    proba = abc_model.predict_proba(X_new)
    assert proba.shape == (2, 2) and np.isfinite(proba).all()
    expected = abc_model.predict_proba(pd.DataFrame({"c": ["a"], "z": [1.0]}))
    np.testing.assert_allclose(proba[1], expected[0], atol=1e-7)



@pytest.mark.parametrize("fit_as_category", [False, True])
def test_category_dtype_columns_encode_like_the_same_values_as_objects(fit_as_category):
    """The codes of pandas' category columns are mapped straight to feature
    ids; unknown categories, missing values, integer and string categories
    and a mix with object columns must give exactly OrdinalEncoder's ids."""
    from sklearn_afm._encoding import FeatureEncoder

    def frame(seed, more):
        rng = np.random.RandomState(seed)
        a = rng.choice(["x", "y", "z", *more], 400).astype(object)
        a[rng.rand(400) < 0.1] = None
        return pd.DataFrame(
            {
                "a": a,
                "b": rng.choice([1, 2, 40, *(99 for _ in more)], 400),
                "num": rng.normal(size=400),
                "c": rng.choice(["p", "q"], 400),
            }
        )

    as_category = {"a": "category", "b": "category", "c": "category"}
    train, test = frame(0, []), frame(1, ["w"])
    encoder = FeatureEncoder(np.array([True, True, False, True]))
    encoder.fit(train.astype(as_category) if fit_as_category else train)
    names = list(test.columns)
    expected = encoder.transform(test, names).ids
    for variant in (test.astype(as_category), test.astype({"a": "category"})):
        np.testing.assert_array_equal(encoder.transform(variant, names).ids, expected)
    # The test frame really holds unknown and missing values.
    assert (expected[:, 0] == encoder.unknown_ids_[0]).any()
    assert (expected[:, 0] == encoder.unknown_ids_[0] + 1).any()
    assert (expected[:, 1] == encoder.unknown_ids_[1]).any()


def test_nan_in_numeric_column_is_an_error_naming_the_column(abc_frame, abc_model):
    X, y = abc_frame
    bad = X.copy()
    bad.loc[5, "z"] = np.nan
    with pytest.raises(ValueError, match=r"'z'"):
        AFMClassifier(**QUICK).fit(bad, y)
    with pytest.raises(ValueError, match=r"'z'"):
        abc_model.predict(bad)
    with pytest.raises(ValueError, match=r"'z'"):
        abc_model.predict_proba(X.assign(z=np.where(X.index == 3, np.inf, X["z"])))
    # The error does not blame the categorical column.
    with pytest.raises(ValueError) as info:
        abc_model.predict(bad)
    assert "'c'" not in str(info.value)


def test_nan_in_numeric_column_of_numpy_array_names_the_column():
    rng = np.random.RandomState(0)
    X = np.column_stack([rng.randint(0, 3, 60), rng.uniform(0.5, 1.5, 60)])
    y = rng.randint(0, 2, 60)
    X[7, 1] = np.nan
    with pytest.raises(ValueError, match=r"x1"):
        AFMClassifier(categorical_features=[0], **QUICK).fit(X, y)


# -- 6. high cardinality, no one-hot -------------------------------------------------


def test_100k_categories_one_embedding_row_each_no_one_hot(monkeypatch):
    n = 100_000
    rng = np.random.RandomState(0)
    X = pd.DataFrame(
        {
            "user": [f"id{i}" for i in range(n)],
            "group": rng.choice(["x", "y", "z"], n),
            "v": rng.uniform(0.5, 1.5, n),
        }
    )
    y = rng.randint(0, 2, n)

    seen = []
    make_batch = afm_engine.make_batch

    def spy(source, rows):
        indices, values = make_batch(source, rows)
        seen.append((type(source), getattr(source, "ids", None), indices.shape, values.shape))
        return indices, values

    # Batches are cut where the engines (TensorFlow's, JAX's) and the staging
    # of compiled epochs cut them.
    for module in ("_engine", "_jax_engine", "_steps"):
        monkeypatch.setattr(f"sklearn_afm.{module}.make_batch", spy)
    clf = AFMClassifier(
        max_iter=1, batch_size=8192, early_stopping=False, device="cpu", random_state=0
    ).fit(X, y)

    assert len(clf.categories_[0]) == n
    assert clf._network.config["n_features"] == (n + 2) + (3 + 2) + 1
    assert seen
    for kind, ids, index_shape, value_shape in seen:
        assert kind is FieldMatrix
        assert ids.shape[1] == 3  # one entry per column, never one per category
        assert index_shape[1] == 3 and value_shape[1] == 3
    assert seen[0][1].shape == (n, 3)

    proba = clf.predict_proba(X.iloc[:5])
    assert np.isfinite(proba).all()


def test_100k_categories_given_up_front_without_dense_allocation():
    n_categories = 100_000
    vocabulary = np.array([f"id{i}" for i in range(n_categories)], dtype=object)
    rng = np.random.RandomState(0)
    n = 2000
    X = pd.DataFrame({"user": vocabulary[rng.randint(0, n_categories, n)], "v": rng.uniform(0.5, 1.5, n)})
    y = rng.randint(0, 2, n)

    tracemalloc.start()
    try:
        clf = AFMClassifier(categories=[vocabulary], **QUICK).fit(X, y)
        proba = clf.predict_proba(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert len(clf.categories_[0]) == n_categories
    assert clf._network.config["n_features"] == (n_categories + 2) + 1
    assert np.isfinite(proba).all()
    # A (2000, 100000) one-hot would weigh at least 200 MB even as bool.
    assert peak < 150e6, peak


# -- 7. attention per column ---------------------------------------------------------


def test_attention_is_per_column():
    X, y = _mixed_frame(n=200)
    clf = AFMClassifier(early_stopping=False, **QUICK).fit(X, y)
    n = X.shape[1]

    np.testing.assert_array_equal(clf.feature_names_in_, X.columns)
    A = clf.attention_weights_
    assert A.shape == (n, n)
    np.testing.assert_allclose(A, A.T)
    np.testing.assert_array_equal(np.diag(A), 0)
    assert (A[~np.eye(n, dtype=bool)] > 0).all()

    attention, pairs = clf.pair_attention(X)
    expected_pairs = np.column_stack(np.triu_indices(n, 1))
    np.testing.assert_array_equal(pairs, expected_pairs)
    assert attention.shape == (len(X), n * (n - 1) // 2)
    np.testing.assert_allclose(attention.sum(axis=1), 1, rtol=1e-5)
    # Every pair is present in every row, so the fitted summary is the mean
    # per-sample attention of the training rows.
    np.testing.assert_allclose(attention.mean(axis=0), A[pairs[:, 0], pairs[:, 1]], rtol=1e-4)
    # Names of the pairs come from feature_names_in_.
    assert clf.feature_names_in_[pairs].tolist()[0] == ["num", "color"]


def test_pair_attention_with_unknown_categories_is_per_column(abc_model):
    X_new = pd.DataFrame({"c": ["unseen", "a"], "z": [1.0, 1.0]})
    attention, pairs = abc_model.pair_attention(X_new)
    np.testing.assert_array_equal(pairs, [[0, 1]])
    np.testing.assert_allclose(attention, [[1.0], [1.0]], rtol=1e-6)


# -- 8. categories given up front ----------------------------------------------------


def test_categories_given_up_front(abc_frame):
    X, y = abc_frame
    given = [np.array(["a", "b", "c", "d"], dtype=object)]
    clf = AFMClassifier(categories=given, **QUICK).fit(X, y)
    assert clf.categories_[1] is None
    np.testing.assert_array_equal(clf.categories_[0], given[0])
    assert clf._network.config["n_features"] == (4 + 2) + 1

    X_new = pd.DataFrame({"c": ["d", "e", "f", "a"], "z": [1.0] * 4})
    ids = _feature_ids(clf, X_new)
    # "d" is listed: a slot of its own; "e" and "f" are not: the unknown slot.
    assert ids[1, 0] == ids[2, 0]
    assert len({ids[0, 0], ids[1, 0], ids[3, 0]}) == 3
    proba = clf.predict_proba(X_new)[:, 1]
    np.testing.assert_allclose(proba[1], proba[2], atol=1e-7)
    assert abs(proba[0] - proba[1]) > 1e-5


def test_categories_listed_for_later_chunks_are_learned_by_partial_fit():
    rng = np.random.RandomState(0)
    given = [np.array(["a", "b", "c", "d"], dtype=object)]
    first = pd.DataFrame({"c": ["a", "b"] * 50, "z": rng.uniform(0.5, 1.5, 100)})
    second = pd.DataFrame({"c": ["c", "d"] * 50, "z": rng.uniform(0.5, 1.5, 100)})
    clf = AFMClassifier(categories=given, device="cpu", random_state=0)
    clf.partial_fit(first, rng.randint(0, 2, 100), classes=[0, 1])
    d_id = _feature_ids(clf, pd.DataFrame({"c": ["d"], "z": [1.0]}))[0, 0]
    before = _embeddings(clf)[d_id].copy()
    clf.partial_fit(second, rng.randint(0, 2, 100))
    np.testing.assert_array_equal(clf.categories_[0], given[0])
    assert not np.array_equal(_embeddings(clf)[d_id], before)


def test_categories_of_wrong_length_raise(abc_frame):
    X, y = abc_frame
    with pytest.raises(ValueError):
        AFMClassifier(categories=[np.array(["a"]), np.array(["b"])], **QUICK).fit(X, y)


# -- 9. persistence ------------------------------------------------------------------


def test_pickle_round_trip_keeps_categorical_predictions(abc_frame):
    X, y = abc_frame
    given = [np.array(["a", "b", "c", "d"], dtype=object)]
    clf = AFMClassifier(categories=given, **QUICK).fit(X, y)
    X_new = pd.DataFrame(
        {"c": ["a", "b", "c", "d", "unseen", None, np.nan], "z": np.linspace(0.5, 1.5, 7)}
    )
    expected = clf.predict_proba(X_new)

    buffer = io.BytesIO()
    joblib.dump(clf, buffer)
    buffer.seek(0)
    for restored in (joblib.load(buffer), pickle.loads(pickle.dumps(clf))):
        assert restored._network._engine is None  # no TensorFlow object travelled
        np.testing.assert_array_equal(restored.is_categorical_, clf.is_categorical_)
        np.testing.assert_array_equal(restored.categories_[0], given[0])
        np.testing.assert_array_equal(restored.predict_proba(X_new), expected)
        np.testing.assert_array_equal(restored.attention_weights_, clf.attention_weights_)


# -- 10. regression ------------------------------------------------------------------


def test_regressor_with_categorical_column():
    rng = np.random.RandomState(0)
    n = 300
    X = pd.DataFrame({"c": rng.choice(["lo", "mid", "hi"], n), "z": rng.uniform(0.5, 1.5, n)})
    level = X["c"].map({"lo": -2.0, "mid": 1.0, "hi": 0.0}).to_numpy()  # not sorted by name
    y = 10 * level + 0.1 * rng.normal(size=n)
    reg = AFMRegressor(
        max_iter=10, learning_rate_init=0.05, early_stopping=False, device="cpu", random_state=0
    ).fit(X, y)

    np.testing.assert_array_equal(reg.is_categorical_, [True, False])
    assert sorted(reg.categories_[0]) == ["hi", "lo", "mid"]
    assert reg.categories_[1] is None
    assert reg._network.config["n_features"] == (3 + 2) + 1
    assert r2_score(y, reg.predict(X)) > 0.8
    prediction = reg.predict(pd.DataFrame({"c": ["unseen", "other"], "z": [1.0, 1.0]}))
    assert np.isfinite(prediction).all()
    np.testing.assert_allclose(prediction[0], prediction[1], rtol=1e-6)
