"""The explanation API: ``explain(X)`` and ``attention_pairs_``."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError

import sklearn_afm._inspection as inspection
from sklearn_afm import AFMClassifier, AFMRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FAST = {"max_iter": 3, "early_stopping": False, "random_state": 0}


@pytest.fixture(scope="module")
def numeric_data():
    """Dense numeric data where a third of the entries are zero (absent features)."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(150, 5))
    X[rng.uniform(size=X.shape) < 0.3] = 0.0
    return X, rng


@pytest.fixture(scope="module")
def mixed_frame():
    rng = np.random.RandomState(1)
    X = pd.DataFrame(
        {
            "plan": rng.choice(["basic", "plus", "pro"], 120),
            "tenure": rng.exponential(20, 120),
            "region": rng.choice(["n", "s"], 120),
            "charges": rng.normal(50, 10, 120),
        }
    )
    return X, rng


def assert_adds_up(explanation, expected):
    """bias + column terms + pair terms == the estimator's output, (n_samples, n_outputs)."""
    total = (
        explanation.bias
        + explanation.linear.sum(axis=1)
        + explanation.interactions.sum(axis=1)
    )
    expected = np.asarray(expected).reshape(total.shape[0], -1)
    np.testing.assert_allclose(total, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("use_attention", [True, False])
def test_classifier_terms_add_up_to_decision_function(numeric_data, n_classes, use_attention):
    X, rng = numeric_data
    y = rng.randint(n_classes, size=X.shape[0])
    clf = AFMClassifier(use_attention=use_attention, **FAST).fit(X, y)
    explanation = clf.explain(X)
    assert_adds_up(explanation, clf.decision_function(X))
    n_outputs = 1 if n_classes == 2 else n_classes
    n_pairs = 5 * 4 // 2
    assert explanation.bias.shape == (n_outputs,)
    assert explanation.linear.shape == (X.shape[0], 5, n_outputs)
    assert explanation.interactions.shape == (X.shape[0], n_pairs, n_outputs)
    assert explanation.attention.shape == (X.shape[0], n_pairs)
    np.testing.assert_array_equal(explanation.pairs, np.column_stack(np.triu_indices(5, 1)))
    np.testing.assert_array_equal(explanation.feature_names, [f"x{j}" for j in range(5)])
    np.testing.assert_array_equal(
        explanation.output_names, clf.classes_[1:] if n_classes == 2 else clf.classes_
    )
    # Absent features contribute nothing, alone or in a pair.
    absent = X == 0
    assert np.all(explanation.linear[absent] == 0)
    i, j = explanation.pairs.T
    pair_absent = absent[:, i] | absent[:, j]
    assert np.all(explanation.interactions[pair_absent] == 0)
    assert np.all(explanation.attention[pair_absent] == 0)


def test_attention_matches_pair_attention(numeric_data):
    X, rng = numeric_data
    y = rng.randint(2, size=X.shape[0])
    clf = AFMClassifier(**FAST).fit(X, y)
    explanation = clf.explain(X)
    attention, pairs = clf.pair_attention(X)
    position = {tuple(p): n for n, p in enumerate(explanation.pairs.tolist())}
    columns = [position[tuple(p)] for p in pairs.tolist()]
    np.testing.assert_allclose(explanation.attention[:, columns], attention, rtol=1e-6)


def test_sparse_input_gives_the_dense_explanation(numeric_data):
    X, rng = numeric_data
    y = rng.randint(2, size=X.shape[0])
    clf = AFMClassifier(**FAST).fit(X, y)
    dense, sparse = clf.explain(X), clf.explain(sp.csr_array(X))
    for field in ("bias", "linear", "interactions", "attention"):
        np.testing.assert_allclose(sparse[field], dense[field], rtol=1e-6, atol=1e-7)


def test_regressor_terms_are_in_target_units(mixed_frame):
    X, rng = mixed_frame
    # Large mean and scale: forgetting to undo the standardisation shows.
    y = np.column_stack([1000 + 300 * rng.normal(size=len(X)), -5 + rng.normal(size=len(X))])
    reg = AFMRegressor(**FAST).fit(X, y)
    explanation = reg.explain(X)
    assert_adds_up(explanation, reg.predict(X))
    np.testing.assert_array_equal(explanation.output_names, ["y0", "y1"])
    np.testing.assert_array_equal(explanation.feature_names, X.columns)
    # A categorical column is one column; its term is its category's weight.
    assert explanation.linear.shape == (len(X), 4, 2)
    same_plan = (X["plan"] == "pro").to_numpy()
    terms = explanation.linear[same_plan, 0, :]
    np.testing.assert_allclose(terms, np.broadcast_to(terms[0], terms.shape), rtol=1e-6)

    single = AFMRegressor(**FAST).fit(X, y[:, 0])
    explanation = single.explain(X)
    assert_adds_up(explanation, single.predict(X))
    np.testing.assert_array_equal(explanation.output_names, ["y"])


def test_explain_refuses_arrays_too_large(numeric_data, monkeypatch):
    X, rng = numeric_data
    clf = AFMClassifier(**FAST).fit(X, rng.randint(2, size=X.shape[0]))
    monkeypatch.setattr(inspection, "MAX_EXPLAIN_VALUES", 10 * 10)
    assert clf.explain(X[:10]).interactions.shape == (10, 10, 1)
    with pytest.raises(ValueError, match="11 samples x 10 column pairs x 1 outputs"):
        clf.explain(X[:11])


def test_attention_pairs_table(mixed_frame):
    X, rng = mixed_frame
    clf = AFMClassifier(**FAST).fit(X, rng.randint(2, size=len(X)))
    table = clf.attention_pairs_
    assert list(table.columns) == ["feature_1", "feature_2", "attention"]
    assert list(table.index) == list(range(6))
    assert np.all(np.diff(table["attention"].to_numpy()) <= 0)
    names = list(X.columns)
    for row in table.itertuples():
        i, j = names.index(row.feature_1), names.index(row.feature_2)
        assert i < j
        assert row.attention == clf.attention_weights_[i, j]


def test_attention_pairs_lists_only_pairs_seen_in_training():
    X = np.array([[1.0, 2.0, 0.0], [3.0, 1.0, 0.0], [0.0, 1.0, 2.0]] * 10)
    clf = AFMClassifier(**FAST).fit(X, [0, 1, 1] * 10)
    table = clf.attention_pairs_
    assert set(zip(table.feature_1, table.feature_2)) == {("x0", "x1"), ("x1", "x2")}


def test_attention_pairs_needs_a_fit_and_a_summary(numeric_data, monkeypatch):
    with pytest.raises(NotFittedError):
        AFMClassifier().attention_pairs_
    X, rng = numeric_data
    monkeypatch.setattr(inspection, "MAX_COLUMNS_FOR_ATTENTION_SUMMARY", 3)
    clf = AFMClassifier(**FAST).fit(X, rng.randint(2, size=X.shape[0]))
    assert clf.attention_weights_ is None
    with pytest.raises(AttributeError, match="more than attention_weights_ summarises"):
        clf.attention_pairs_
