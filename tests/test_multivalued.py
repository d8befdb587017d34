"""Multi-valued categorical columns: cells that are lists, tuples, sets or arrays of categories.

Such a column (genres of a film, tags of an item) is one field: each of its
values has an embedding of its own and enters the row as a present feature,
and every per-column summary (attention, explanations, displays) keeps the
column as one.  Data are small and fits short so that the file stays fast on
two CPU cores.
"""

import io
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import (
    check_estimators_overwrite_params,
    check_estimators_pickle,
    check_get_params_invariance,
    check_set_params,
)

import sklearn_afm
from sklearn_afm import AFMClassifier, AFMRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

QUICK = {"max_iter": 2, "device": "cpu", "random_state": 0}
GENRES = ["Action", "Comedy", "Drama", "Horror", "Romance"]


def _films(n=400, seed=0):
    """Users, a multi-valued genres column (0-3 genres a row) and a number; y: Action, flipped for u0."""
    rng = np.random.RandomState(seed)
    genres = [
        list(rng.choice(GENRES, rng.randint(0, 4), replace=False)) for _ in range(n)
    ]
    users = rng.choice(["u0", "u1", "u2"], n)
    X = pd.DataFrame(
        {"user": users, "genres": pd.Series(genres, dtype=object), "x": rng.uniform(0.5, 1.5, n)}
    )
    y = np.array([("Action" in g) != (u == "u0") for g, u in zip(genres, users)], dtype=int)
    return X, y


@pytest.fixture(scope="module")
def films():
    return _films()


@pytest.fixture(scope="module")
def film_model(films):
    X, y = films
    return AFMClassifier(max_iter=40, batch_size=64, learning_rate_init=0.02, device="cpu",
                         random_state=0).fit(X, y)


def _entries(model, X):
    """Feature ids of each row's present entries, per row, as sets (white box)."""
    source = model._encode_fitted(X)
    return [set(ids[values != 0].tolist()) for ids, values in zip(source.ids, source.values)]


def _id(model, column, value):
    """Feature id of ``value`` in categorical ``column`` (an index)."""
    encoder = model._encoder
    return int(encoder.offsets_[column] + list(model.categories_[column]).index(value))


# -- one field, one embedding per value ---------------------------------------------------


@pytest.mark.parametrize("kind", [list, tuple, set, frozenset, np.array])
def test_each_value_of_a_cell_is_a_present_feature_of_one_field(kind):
    X = pd.DataFrame({"genres": pd.Series([kind(["Drama", "Action"]), kind(["Comedy"])] * 10,
                                          dtype=object),
                      "x": np.linspace(1, 2, 20)})
    model = AFMRegressor(**QUICK).fit(X, np.arange(20.0))
    assert model.is_categorical_.tolist() == [True, False]
    assert model.categories_[0].tolist() == ["Action", "Comedy", "Drama"]
    # Three categories, "unknown" and "missing", then the numeric column.
    assert model._network.config["n_features"] == 6
    first, second = _entries(model, X[:2])
    assert first == {_id(model, 0, "Action"), _id(model, 0, "Drama"), 5}
    assert second == {_id(model, 0, "Comedy"), 5}


def test_unseen_combinations_of_seen_values_are_predicted_from_the_values(films, film_model):
    # A category per distinct cell would make every unseen combination unknown.
    X, y = films
    seen = {frozenset(g) for g in X["genres"]}
    assert frozenset({"Action", "Comedy", "Drama", "Horror"}) not in seen
    test = pd.DataFrame({"user": ["u1", "u0"], "x": [1.0, 1.0],
                         "genres": [["Action", "Comedy", "Drama", "Horror"]] * 2})
    test = test[X.columns]
    assert film_model.predict(test).tolist() == [1, 0]
    assert film_model.score(X, y) > 0.95


def test_unknown_values_missing_cells_and_repeated_values(film_model, films):
    X, _ = films
    unknown = int(film_model._encoder.unknown_ids_[1])
    action = _id(film_model, 1, "Action")
    cells = [["Western"], ["Western", "Noir"], [], None, np.nan, ["Action", "Action"],
             ["Action", "Western"]]
    test = pd.DataFrame({"user": ["u1"] * 7, "genres": pd.Series(cells, dtype=object),
                         "x": [1.0] * 7})
    others = {_id(film_model, 0, "u1"), int(film_model._encoder.offsets_[2])}
    genre_ids = [row - others for row in _entries(film_model, test)]
    # Unseen values are the field's "unknown" feature (once), empty and
    # missing cells its "missing" one, a repeated value one feature.
    assert genre_ids == [{unknown}, {unknown}, {unknown + 1}, {unknown + 1}, {unknown + 1},
                         {action}, {action, unknown}]


def test_polars_list_column_is_multi_valued(films):
    pl = pytest.importorskip("polars", reason="the polars tests need polars (test extra)")
    X, y = films
    frame = pl.DataFrame({"user": X["user"].tolist(), "genres": X["genres"].tolist(),
                          "x": X["x"].to_numpy()})
    from_polars = AFMClassifier(**QUICK).fit(frame, y)
    from_pandas = AFMClassifier(**QUICK).fit(X, y)
    assert from_polars.categories_[1].tolist() == GENRES
    np.testing.assert_allclose(from_polars.predict_proba(frame), from_pandas.predict_proba(X),
                               rtol=1e-6)


def test_object_array_with_list_cells_is_multi_valued_under_from_dtype(films):
    X, y = films
    model = AFMClassifier(**QUICK).fit(X.to_numpy(dtype=object), y)
    assert model.is_categorical_.tolist() == [True, True, False]
    assert model.categories_[1].tolist() == GENRES


# -- strings split on a separator ---------------------------------------------------------


def test_separator_splits_strings_like_lists(films):
    X, y = films
    joined = X.assign(genres=["|".join(g) for g in X["genres"]])
    as_lists = AFMClassifier(**QUICK).fit(X, y)
    split = AFMClassifier(multi_value_separator="|", **QUICK).fit(joined, y)
    assert split.categories_[1].tolist() == GENRES
    assert _entries(split, joined) == _entries(as_lists, X)
    np.testing.assert_allclose(split.predict_proba(joined), as_lists.predict_proba(X), rtol=1e-6)


@pytest.mark.parametrize("key", ["genres", 1])
def test_separator_per_column_leaves_the_other_columns_whole(films, key):
    X, y = films
    X = X.assign(genres=[" ".join(g) for g in X["genres"]],
                 user=X["user"].map({"u0": "new user", "u1": "old user", "u2": "u2"}))
    model = AFMClassifier(multi_value_separator={key: " "}, **QUICK).fit(X, y)
    assert model.categories_[0].tolist() == ["new user", "old user", "u2"]
    assert model.categories_[1].tolist() == GENRES


@pytest.mark.parametrize(
    "separator, message",
    [
        ({"nope": "|"}, "names a column that X lacks: 'nope'"),
        ({"x": "|"}, "names column 'x', which is not categorical"),
        ({"genres": ""}, "non-empty strings"),
    ],
)
def test_bad_separators_are_refused(films, separator, message):
    X, y = films
    with pytest.raises(ValueError, match=message):
        AFMClassifier(multi_value_separator=separator, **QUICK).fit(X, y)


# -- per-column summaries -----------------------------------------------------------------


def test_attention_and_explanations_stay_per_column(film_model, films):
    X, _ = films
    weights = film_model.attention_weights_
    assert weights.shape == (3, 3)
    np.testing.assert_array_equal(weights, weights.T)
    # Genres pair with each other: the column's pair with itself.
    assert weights[1, 1] > 0 and weights[0, 0] == weights[2, 2] == 0
    table = film_model.attention_pairs_
    assert set(zip(table.feature_1, table.feature_2)) == {
        ("user", "genres"), ("user", "x"), ("genres", "genres"), ("genres", "x")
    }
    rows = X[:20]
    explanation = film_model.explain(rows)
    assert explanation.pairs.tolist() == [[0, 1], [0, 2], [1, 1], [1, 2]]
    assert explanation.linear.shape == (20, 3, 1)
    total = explanation.bias + explanation.linear.sum(axis=1) + explanation.interactions.sum(axis=1)
    np.testing.assert_allclose(total[:, 0], film_model.decision_function(rows), atol=1e-4)
    n_genres = rows["genres"].map(len).to_numpy()
    # Only rows with two genres or more have a genres x genres term.
    assert ((explanation.interactions[:, 2, 0] != 0) == (n_genres >= 2)).all()
    attention, pairs = film_model.pair_attention(rows)
    assert pairs.tolist() == [[0, 1], [0, 2], [1, 1], [1, 2]]
    np.testing.assert_allclose(attention.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(attention, explanation.attention, atol=1e-6)


def test_displays_label_the_columns(film_model, films):
    matplotlib = pytest.importorskip("matplotlib", reason="the displays need matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sklearn_afm.inspection import AttentionHeatmapDisplay, PairContributionDisplay

    X, _ = films
    row = X[X["genres"].map(len) == 3].iloc[[0]]
    bars = PairContributionDisplay.from_estimator(film_model, row)
    assert "genres x genres" in list(bars.pair_names)
    assert all(name.count(" x ") == 1 for name in bars.pair_names)
    heatmap = AttentionHeatmapDisplay.from_estimator(film_model)
    assert [t.get_text() for t in heatmap.ax_.get_xticklabels()] == ["user", "genres", "x"]
    # The diagonal is blank but for genres x genres.
    image = heatmap.im_.get_array()
    assert np.ma.getmaskarray(image).diagonal().tolist() == [True, False, True]
    assert image[1, 1] == pytest.approx(film_model.attention_weights_[1, 1])
    plt.close("all")


# -- partial_fit, categories=, persistence ------------------------------------------------


def test_partial_fit_maps_later_values_to_unknown_unless_listed(films):
    X, y = films
    first = X[X["genres"].map(lambda g: "Romance" not in g)]
    later = pd.DataFrame({"user": ["u1"], "genres": [["Romance"]], "x": [1.0]})
    learned = AFMClassifier(**QUICK).partial_fit(first, y[first.index], classes=[0, 1])
    assert "Romance" not in learned.categories_[1]
    assert _entries(learned, later)[0] >= {int(learned._encoder.unknown_ids_[1])}
    listed = AFMClassifier(categories=[["u0", "u1", "u2"], GENRES], **QUICK)
    listed.partial_fit(first, y[first.index], classes=[0, 1])
    listed.partial_fit(later, [1])
    assert _id(listed, 1, "Romance") in _entries(listed, later)[0]


def test_pickle_and_model_file_keep_multi_valued_predictions(film_model, films):
    X, _ = films
    expected = film_model.predict_proba(X)
    unpickled = pickle.loads(pickle.dumps(film_model))
    buffer = io.BytesIO()
    film_model.save(buffer)
    buffer.seek(0)
    loaded = sklearn_afm.load(buffer)
    for model in (unpickled, loaded):
        np.testing.assert_array_equal(model.predict_proba(X), expected)
        assert model._encoder.multi_valued_.tolist() == [False, True, False]
        # And it keeps learning, with the same fields.
        model.partial_fit(X[:50], _films()[1][:50])


def test_separator_survives_clone_and_the_model_file(films):
    X, y = films
    joined = X.assign(genres=[";".join(g) for g in X["genres"]])
    model = AFMClassifier(multi_value_separator={"genres": ";"}, **QUICK).fit(joined, y)
    assert clone(model).multi_value_separator == {"genres": ";"}
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    loaded = sklearn_afm.load(buffer)
    np.testing.assert_array_equal(loaded.predict_proba(joined), model.predict_proba(joined))


@pytest.mark.parametrize(
    "check",
    [check_get_params_invariance, check_set_params, check_estimators_overwrite_params,
     check_estimators_pickle],
)
def test_estimator_checks_with_a_separator(check):
    check("AFMClassifier", AFMClassifier(multi_value_separator="|", **QUICK))


# -- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cell, error, message",
    [
        ("Action", ValueError, r"column 'genres' has, in row 3, a single value \('Action'\)"),
        (7, ValueError, r"column 'genres' has, in row 3, a single value \(7\)"),
        ([["Action"], "Drama"], ValueError,
         r"column 'genres' has, in row 3, a value that holds several values itself"),
        (np.array([["Action", "Drama"]]), ValueError,
         r"column 'genres' has, in row 3, an array of shape \(1, 2\).*not nested"),
        ([{"k": 1}], TypeError, r"column 'genres' has, in row 3, a dict.*not a category"),
    ],
    ids=["list-and-string", "list-and-number", "nested-list", "2-d-array", "dict-value"],
)
def test_bad_cells_get_a_clear_error_in_fit_and_predict(film_model, films, cell, error, message):
    X, y = films
    X = X.copy()
    X.at[3, "genres"] = cell
    with pytest.raises(error, match=message):
        AFMClassifier(**QUICK).fit(X, y)
    with pytest.raises(error, match=message):
        film_model.predict(X)
