"""Correctness tests of the AFM model core: the network, batching, engine and inspection.

The central check is a pure-numpy reference of the AFM formula (Xiao et al. 2017),
written as a plain double loop over the pairs of non-zero features of each row and
evaluated with the network's own weights::

    out = w0 + sum_i w_i x_i + P^T sum_{i<j in X} a_ij (v_i * v_j) x_i x_j
    a'_ij = h^T ReLU(W (v_i * v_j) x_i x_j + b),  a = softmax of a' over the pairs of X
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from sklearn_afm._runtime import import_tensorflow

tf = import_tensorflow()  # configures TensorFlow quietly before keras is imported

import keras  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from sklearn_afm import AFMClassifier  # noqa: E402
from sklearn_afm._batching import as_row_source, iter_batches, make_batch  # noqa: E402
from sklearn_afm._inspection import (  # noqa: E402
    add_pair_attention,
    mean_pair_attention,
    per_sample_pair_attention,
)
from sklearn_afm._model import AFMNetwork  # noqa: E402
from sklearn_afm._network import engine_class  # noqa: E402

# The engine of the backend this run of the suite is on (TensorFlow or JAX).
Engine = engine_class()

N_FEATURES = 9
EMBEDDING_SIZE = 4
ATTENTION_SIZE = 5


# -- helpers -------------------------------------------------------------------------


def named_weights(network):
    """The network's weights as float64 arrays, by role in the formula."""
    V = network.embeddings.get_weights()[0]
    w = network.linear.get_weights()[0]
    W, b = network.attention_hidden.get_weights()
    h = network.attention_score.get_weights()[0][:, 0]
    P, w0 = network.projection.get_weights()
    s = np.asarray(network.feature_scale)
    return {
        k: np.asarray(a, dtype=np.float64)
        for k, a in dict(V=V, w=w, W=W, b=b, h=h, P=P, w0=w0, s=s).items()
    }


def reference_row(weights, x, dilute_with=0):
    """AFM output of one dense row ``x``, by a plain loop over pairs i < j of non-zeros.

    ``dilute_with`` adds that many phantom zero-product pairs to the softmax: it
    reproduces the classic masking bug, to show that the tests can tell it apart.
    """
    V, w, W, b, h, P, w0 = (weights[k] for k in "V w W b h P w0".split())
    present = np.flatnonzero(x)
    # Each value enters multiplied by its feature's fixed scale.
    x = x * weights["s"]
    out = w0.copy()
    for i in present:
        out += w[i] * x[i]
    products, scores = [], []
    for a in range(len(present)):
        for c in range(a + 1, len(present)):
            i, j = present[a], present[c]
            p = V[i] * V[j] * x[i] * x[j]
            products.append(p)
            scores.append(h @ np.maximum(W.T @ p + b, 0.0))
    if products and dilute_with:
        phantom = h @ np.maximum(b, 0.0)
        products += [np.zeros_like(products[0])] * dilute_with
        scores += [phantom] * dilute_with
    if products:
        scores = np.array(scores)
        e = np.exp(scores - scores.max())
        attention = e / e.sum()
        pooled = sum(a_ij * p for a_ij, p in zip(attention, products))
        out += P.T @ pooled
    return out


def reference(weights, X):
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    return np.array([reference_row(weights, x) for x in X.astype(np.float64)])


def reference_pair_attention(weights, x):
    """{(i, j): a_ij} of one dense row, by the plain loop."""
    V, W, b, h = (weights[k] for k in "V W b h".split())
    present = np.flatnonzero(x)
    x = x * weights["s"]
    keys, scores = [], []
    for a in range(len(present)):
        for c in range(a + 1, len(present)):
            i, j = present[a], present[c]
            p = V[i] * V[j] * x[i] * x[j]
            keys.append((int(i), int(j)))
            scores.append(h @ np.maximum(W.T @ p + b, 0.0))
    if not keys:
        return {}
    e = np.exp(np.array(scores) - max(scores))
    return dict(zip(keys, e / e.sum()))


def make_network(n_outputs=1, n_features=N_FEATURES, scale=1.0, feature_scale=None, **kwargs):
    """A built network whose weights are all random (bias and linear part included).

    Larger-than-default weights make the attention far from uniform, so that any
    error in the softmax shows in the outputs.  The fixed per-feature value
    multipliers are 1 unless ``feature_scale`` gives them.
    """
    network = AFMNetwork(
        n_features,
        n_outputs,
        embedding_size=EMBEDDING_SIZE,
        attention_size=ATTENTION_SIZE,
        seed=0,
        **kwargs,
    )
    network.build(None)
    rng = np.random.RandomState(42)
    network.set_weights(
        [(rng.normal(size=a.shape) * scale).astype(np.float32) for a in network.get_weights()]
    )
    network.feature_scale.assign(
        np.ones(n_features, np.float32) if feature_scale is None else feature_scale
    )
    return network


def random_sparse_rows(rng, n_rows=24, n_features=N_FEATURES):
    """Dense float32 data with varying numbers of non-zeros: 0, 1, 2, ... all columns."""
    X = np.zeros((n_rows, n_features), dtype=np.float32)
    for r in range(n_rows):
        nnz = [0, 1, 2, 3, n_features, r % (n_features + 1)][r % 6]
        cols = rng.choice(n_features, size=nnz, replace=False)
        X[r, cols] = rng.uniform(0.3, 1.5, size=nnz) * rng.choice([-1, 1], size=nnz)
    return X


def run(network, X):
    indices, values = make_batch(as_row_source(X), slice(0, X.shape[0]))
    return np.asarray(network((indices, values)))


def to_sparse(X, fmt):
    return {"csr": sp.csr_array, "csc": sp.csc_array, "coo": sp.coo_array,
            "csr_matrix": sp.csr_matrix}[fmt](X)


# -- 1. the network computes the AFM formula -----------------------------------------


@pytest.mark.parametrize("n_outputs", [1, 3])
@pytest.mark.parametrize("sparse", [False, True])
def test_network_matches_numpy_reference(n_outputs, sparse):
    rng = np.random.RandomState(0)
    X = random_sparse_rows(rng)
    # Value multipliers far from 1 show that they apply to both the linear
    # and the pairwise terms.
    network = make_network(n_outputs, feature_scale=rng.uniform(0.2, 3.0, N_FEATURES))
    weights = named_weights(network)
    Xin = sp.csr_array(X) if sparse else X
    indices, values = make_batch(as_row_source(Xin), slice(0, X.shape[0]))
    assert indices.dtype == np.int32 and values.dtype == np.float32
    out = np.asarray(network((indices, values)))
    expected = reference(weights, X)
    assert out.shape == (X.shape[0], n_outputs)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)

    # The test has the power to see the classic bug: letting the pairs that touch
    # padding take part in the softmax changes the outputs of short rows a lot.
    k = indices.shape[1]
    diluted = []
    for x in X.astype(np.float64):
        nnz = np.count_nonzero(x)
        phantom_pairs = k * (k - 1) // 2 - nnz * (nnz - 1) // 2
        diluted.append(reference_row(weights, x, dilute_with=phantom_pairs))
    short = [r for r in range(X.shape[0]) if 2 <= np.count_nonzero(X[r]) < k]
    assert short
    assert np.abs(np.array(diluted)[short] - expected[short]).max() > 1e-2


def test_network_matches_reference_with_default_initialisation():
    # Default init: zero linear weights and bias, small embeddings.
    rng = np.random.RandomState(1)
    X = random_sparse_rows(rng, n_rows=12)
    network = AFMNetwork(N_FEATURES, 2, embedding_size=3, attention_size=2, seed=0)
    network.build(None)
    np.testing.assert_allclose(
        run(network, X), reference(named_weights(network), X), rtol=1e-5, atol=1e-7
    )


def test_weights_are_seeded():
    a = AFMNetwork(N_FEATURES, 2, embedding_size=3, seed=0)
    b = AFMNetwork(N_FEATURES, 2, embedding_size=3, seed=0)
    c = AFMNetwork(N_FEATURES, 2, embedding_size=3, seed=1)
    for net in (a, b, c):
        net.build(None)
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.embeddings.get_weights()[0], c.embeddings.get_weights()[0])


def test_hand_computed_two_feature_row():
    # One pair: its attention is 1 whatever the score, so the output is
    # w0 + w_i x_i + w_j x_j + P^T (v_i * v_j) x_i x_j.
    network = make_network(1)
    wt = named_weights(network)
    x = np.zeros((1, N_FEATURES), dtype=np.float32)
    x[0, 2], x[0, 7] = 1.5, -0.5
    expected = (
        wt["w0"] + wt["w"][2] * 1.5 + wt["w"][7] * -0.5
        + wt["P"].T @ (wt["V"][2] * wt["V"][7] * 1.5 * -0.5)
    )
    np.testing.assert_allclose(run(network, x)[0], expected, rtol=1e-5, atol=1e-6)


# -- 2. attention is a softmax over the present pairs only -----------------------------


def test_attention_sums_to_one_over_present_pairs_only():
    rng = np.random.RandomState(2)
    X = random_sparse_rows(rng)
    network = make_network(1)
    weights = named_weights(network)
    indices, values = make_batch(as_row_source(X), slice(0, X.shape[0]))
    products, attention, first, second = network.interactions((indices, values))
    products, attention = np.asarray(products), np.asarray(attention)
    k = indices.shape[1]
    np.testing.assert_array_equal(first, np.triu_indices(k, 1)[0])
    np.testing.assert_array_equal(second, np.triu_indices(k, 1)[1])
    assert products.shape == (X.shape[0], k * (k - 1) // 2, EMBEDDING_SIZE)
    assert attention.shape == (X.shape[0], k * (k - 1) // 2)

    present = (values[:, first] != 0) & (values[:, second] != 0)
    assert np.all(attention[~present] == 0.0)
    assert np.all(attention >= 0)
    for r in range(X.shape[0]):
        nnz = np.count_nonzero(X[r])
        assert present[r].sum() == nnz * (nnz - 1) // 2
        if nnz >= 2:
            np.testing.assert_allclose(attention[r].sum(), 1.0, rtol=1e-6)
        else:
            assert np.all(attention[r] == 0.0)
        # Each present slot pair has the reference attention of its columns.
        expected = reference_pair_attention(weights, X[r].astype(np.float64))
        got = {
            (int(indices[r, s]), int(indices[r, t])): attention[r, p]
            for p, (s, t) in enumerate(zip(first, second))
            if present[r, p]
        }
        assert got.keys() == expected.keys()
        for key in expected:
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, atol=1e-7)
        # Products are (v_i * v_j) x_i x_j for present pairs and 0 otherwise.
        for p, (s, t) in enumerate(zip(first, second)):
            i, j = indices[r, s], indices[r, t]
            want = weights["V"][i] * weights["V"][j] * values[r, s] * values[r, t]
            np.testing.assert_allclose(products[r, p], want, rtol=1e-5, atol=1e-7)


def test_zero_value_in_a_slot_is_absent_wherever_it_sits():
    # Hand-built batch: a zero value in the middle of a row, a non-zero feature
    # index on a zero-value slot, and rows with one and no feature.
    network = make_network(2)
    weights = named_weights(network)
    indices = np.array(
        [[3, 1, 5, 8], [2, 6, 4, 0], [7, 0, 0, 0], [5, 3, 0, 0], [0, 0, 0, 0]], dtype=np.int32
    )
    values = np.array(
        [[0.5, 0.0, -2.0, 1.0], [1.0, 0.7, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0],
         [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]],
        dtype=np.float32,
    )
    dense = np.zeros((5, N_FEATURES), dtype=np.float32)
    for r in range(5):
        for s in range(4):
            dense[r, indices[r, s]] += values[r, s]
    _, attention, first, second = network.interactions((indices, values))
    attention = np.asarray(attention)
    # Row 0: present slots 0, 2, 3 -> pairs (0,2), (0,3), (2,3) only.
    pairs = list(zip(first.tolist(), second.tolist()))
    for p, (s, t) in enumerate(pairs):
        if 1 in (s, t):
            assert attention[0, p] == 0.0
    np.testing.assert_allclose(attention[0].sum(), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(attention[1] > 0, [(s, t) == (0, 1) for s, t in pairs])
    np.testing.assert_allclose(attention[1, pairs.index((0, 1))], 1.0, rtol=1e-6)
    assert np.all(attention[2:] == 0.0)

    out = np.asarray(network((indices, values)))
    np.testing.assert_allclose(out, reference(weights, dense), rtol=1e-5, atol=1e-5)
    # Rows with fewer than two features: w0 + linear part exactly.
    np.testing.assert_allclose(out[2], weights["w0"] + weights["w"][7] * 2.0, rtol=1e-6)
    np.testing.assert_allclose(out[3], weights["w0"], rtol=1e-6)
    np.testing.assert_allclose(out[4], weights["w0"], rtol=1e-6)


def make_engine(network, loss="multiclass"):
    """An engine (compiled tf.function steps) holding a copy of ``network``'s weights."""
    params = {k: v for k, v in network.get_config().items()
              if k not in ("name", "trainable", "dtype")}
    return Engine(params, loss=loss, solver="adam", learning_rate=0.01, device="/CPU:0",
                  weights=network.get_weights())


@pytest.mark.parametrize("nnz", [0, 1])
def test_rows_without_pairs_alone_in_a_batch(nnz):
    # A batch whose rows all have < 2 features has width 1 and no pair at all:
    # output = w0 + linear part, and no attention.
    network = make_network(3)
    weights = named_weights(network)
    engine = make_engine(network)
    X = np.zeros((3, N_FEATURES), dtype=np.float32)
    if nnz:
        X[[0, 1, 2], [4, 0, 8]] = [1.0, -2.0, 0.5]
    expected = weights["w0"] + X.astype(np.float64) @ weights["w"]
    for Xin in (X, sp.csr_array(X)):
        Xs = as_row_source(Xin)
        indices, values = make_batch(Xs, slice(0, 3))
        assert indices.shape == (3, 1)
        np.testing.assert_allclose(engine.predict(Xs, 3), expected, rtol=1e-5, atol=1e-6)
        [(_, _, attention)] = list(engine.attention(Xs, 3))
        assert attention.shape == (3, 0)


def test_eager_call_on_batch_without_pairs():
    network = make_network(1)
    weights = named_weights(network)
    indices = np.array([[4], [0]], dtype=np.int32)
    values = np.array([[1.5], [0.0]], dtype=np.float32)
    out = np.asarray(network((indices, values)))
    np.testing.assert_allclose(
        out[:, 0], weights["w0"][0] + np.array([weights["w"][4, 0] * 1.5, 0.0]), rtol=1e-5
    )


def test_softmax_is_stable_for_large_scores():
    # Very large weights: scores in the hundreds must not overflow to nan/inf,
    # and the attention must still be exactly 0 off the present pairs.
    network = make_network(1, scale=6.0)
    rng = np.random.RandomState(3)
    X = random_sparse_rows(rng, n_rows=12) * 3
    indices, values = make_batch(as_row_source(X), slice(0, 12))
    _, attention, first, second = network.interactions((indices, values))
    attention = np.asarray(attention)
    assert np.isfinite(attention).all()
    present = (values[:, first] != 0) & (values[:, second] != 0)
    assert np.all(attention[~present] == 0)
    sums = attention.sum(axis=1)
    has_pairs = present.any(axis=1)
    np.testing.assert_allclose(sums[has_pairs], 1.0, rtol=1e-5)
    assert np.isfinite(np.asarray(network((indices, values)))).all()


# -- 3. padding and input-format invariance ------------------------------------------


def test_output_does_not_depend_on_padding_width():
    rng = np.random.RandomState(4)
    network = make_network(3)
    engine = make_engine(network)
    X = random_sparse_rows(rng, n_rows=12)
    full = np.zeros((1, N_FEATURES), dtype=np.float32)
    full[0] = rng.uniform(0.5, 1.5, size=N_FEATURES)  # nnz = n_features: widest batch
    for r in range(X.shape[0]):
        row = X[r : r + 1]
        both = np.vstack([row, full])
        wide_batch = make_batch(as_row_source(both), slice(0, 2))
        assert wide_batch[0].shape[1] == N_FEATURES
        wide = np.asarray(network(wide_batch))[0]
        # Compiled path: the row alone (narrow width) vs next to the full row.
        alone = engine.predict(as_row_source(row), 1)[0]
        np.testing.assert_allclose(alone, wide, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            engine.predict(as_row_source(sp.csr_array(both)), 2)[0], wide, rtol=1e-5, atol=1e-6
        )
        if np.count_nonzero(row) >= 2:  # eager path (see test_eager_call_on_batch_without_pairs)
            alone_batch = make_batch(as_row_source(row), slice(0, 1))
            assert alone_batch[0].shape[1] < N_FEATURES or np.count_nonzero(row) == N_FEATURES
            np.testing.assert_allclose(
                np.asarray(network(alone_batch))[0], wide, rtol=1e-5, atol=1e-6
            )


def test_trailing_padding_slots_do_not_change_anything():
    # Explicitly pad a batch with extra (0, 0.0) slots.
    network = make_network(1)
    rng = np.random.RandomState(5)
    X = random_sparse_rows(rng, n_rows=12)
    indices, values = make_batch(as_row_source(sp.csr_array(X)), slice(0, 12))
    out = np.asarray(network((indices, values)))
    pad = np.zeros((12, 5))
    padded = (
        np.hstack([indices, pad]).astype(np.int32),
        np.hstack([values, pad]).astype(np.float32),
    )
    np.testing.assert_allclose(np.asarray(network(padded)), out, rtol=1e-5, atol=1e-6)
    # Slot order does not matter either (reversing the slots of every row).
    reversed_ = (indices[:, ::-1].copy(), values[:, ::-1].copy())
    np.testing.assert_allclose(np.asarray(network(reversed_)), out, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "csr_matrix"])
def test_dense_and_sparse_batches_agree(fmt):
    rng = np.random.RandomState(6)
    X = random_sparse_rows(rng, n_rows=18).astype(np.float64)
    network = make_network(3)
    Xs = as_row_source(to_sparse(X, fmt))
    Xd = as_row_source(X)
    assert sp.issparse(Xs) and Xs.format == "csr"
    for rows in (slice(0, 18), slice(3, 9), np.array([5, 0, 17, 2])):
        i_s, v_s = make_batch(Xs, rows)
        i_d, v_d = make_batch(Xd, rows)
        np.testing.assert_array_equal(i_s, i_d)
        np.testing.assert_array_equal(v_s, v_d)
        # Rebuild the rows from the batch: nothing lost, nothing invented.
        rebuilt = np.zeros((i_s.shape[0], N_FEATURES))
        np.add.at(rebuilt, (np.arange(i_s.shape[0])[:, None], i_s), v_s)
        np.testing.assert_allclose(rebuilt, X[rows], rtol=1e-6)
    np.testing.assert_allclose(run(network, to_sparse(X, fmt)), run(network, X), rtol=1e-6)


def test_as_row_source_drops_explicit_zeros_and_sorts():
    rng = np.random.RandomState(7)
    X = random_sparse_rows(rng, n_rows=10)
    network = make_network(1)
    M = sp.csr_array(X)
    # Unsorted indices and explicit zeros.
    M.data[::3] = 0.0
    dense = M.toarray()
    for r in range(M.shape[0]):
        a, b = M.indptr[r], M.indptr[r + 1]
        M.indices[a:b] = M.indices[a:b][::-1].copy()
        M.data[a:b] = M.data[a:b][::-1].copy()
    M.has_sorted_indices = False
    Xs = as_row_source(M)
    assert not (Xs.data == 0).any()
    indices, values = make_batch(Xs, slice(0, 10))
    dense_indices, dense_values = make_batch(as_row_source(dense), slice(0, 10))
    np.testing.assert_array_equal(indices, dense_indices)
    np.testing.assert_array_equal(values, dense_values)
    np.testing.assert_allclose(
        run(network, M), reference(named_weights(network), dense), rtol=1e-5, atol=1e-5
    )


def test_duplicate_csr_entries_are_summed():
    network = make_network(1)
    # Row 0 stores feature 0 twice (0.5 + 0.5) and feature 1 once.
    M = sp.csr_array(
        (np.array([0.5, 0.5, 1.0, 2.0]), np.array([0, 0, 1, 3]), np.array([0, 3, 4])),
        shape=(2, N_FEATURES),
    )
    dense = M.toarray()
    assert dense[0, 0] == 1.0
    np.testing.assert_allclose(
        run(network, M), reference(named_weights(network), dense), rtol=1e-5, atol=1e-5
    )


def test_iter_batches_covers_rows_in_order():
    assert [(s.start, s.stop) for s in iter_batches(10, 4)] == [(0, 4), (4, 8), (8, 10)]
    order = np.array([3, 1, 4, 0, 2])
    got = list(iter_batches(order, 2))
    np.testing.assert_array_equal(np.concatenate(got), order)
    assert [len(g) for g in got] == [2, 2, 1]


def test_engine_predict_matches_reference_for_any_batch_size():
    rng = np.random.RandomState(8)
    X = random_sparse_rows(rng, n_rows=20)
    network = make_network(3)
    engine = Engine(
        dict(n_features=N_FEATURES, n_outputs=3, embedding_size=EMBEDDING_SIZE,
             attention_size=ATTENTION_SIZE, seed=0),
        loss="multiclass", solver="adam", learning_rate=0.01, device="/CPU:0",
        weights=network.get_weights(),
    )
    expected = reference(named_weights(network), X)
    for Xin in (X, sp.csr_array(X)):
        for batch_size in (1, 7, 20):
            got = engine.predict(as_row_source(Xin), batch_size)
            assert got.shape == (20, 3)
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    rows = np.array([19, 0, 4])
    np.testing.assert_allclose(
        engine.predict(as_row_source(X), 2, rows=rows), expected[rows], rtol=1e-5, atol=1e-5
    )


# -- 4. the cost grows with the number of non-zeros, not of columns ----------------


def test_pairs_grow_with_nnz_not_with_n_features():
    n_features, nnz, n_rows = 5000, 10, 6
    rng = np.random.RandomState(9)
    rows = np.repeat(np.arange(n_rows), nnz)
    cols = np.concatenate([rng.choice(n_features, nnz, replace=False) for _ in range(n_rows)])
    X = sp.csr_array(
        (rng.uniform(0.5, 1.5, size=rows.size), (rows, cols)), shape=(n_rows, n_features)
    )
    indices, values = make_batch(as_row_source(X), slice(0, n_rows))
    k = indices.shape[1]
    assert nnz <= k <= 16
    assert (values != 0).sum(axis=1).tolist() == [nnz] * n_rows
    network = AFMNetwork(n_features, 1, embedding_size=4, attention_size=3, seed=0)
    network.build(None)
    products, attention, first, _ = network.interactions((indices, values))
    assert products.shape[1] == attention.shape[1] == first.shape[0] == k * (k - 1) // 2
    assert products.shape[1] < 200
    np.testing.assert_allclose(np.asarray(attention).sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(
        np.asarray(network((indices, values))),
        reference(named_weights(network), X),
        rtol=1e-5, atol=1e-6,
    )


def test_padded_width_is_small_and_capped():
    rng = np.random.RandomState(10)
    for nnz in [0, 1, 2, 5, 9, 10, 13, 17, 33]:
        X = np.zeros((2, 40), dtype=np.float32)
        X[0, rng.choice(40, nnz, replace=False)] = 1.0
        k = make_batch(as_row_source(sp.csr_array(X)), slice(0, 2))[0].shape[1]
        assert max(nnz, 1) <= k <= max(int(np.ceil(1.25 * nnz)), 1), (nnz, k)
        assert make_batch(X, slice(0, 2))[0].shape[1] == k
    # Capped at n_features.
    X = np.ones((2, 9), dtype=np.float32)
    X[1, 0] = 0
    assert make_batch(as_row_source(sp.csr_array(X)), slice(0, 2))[0].shape[1] == 9



def test_prediction_batches_grow_for_narrow_rows_only():
    from sklearn_afm._batching import MAX_PREDICTION_ROWS, prediction_batch_size

    narrow = np.ones((10, 10), dtype=np.float32)
    assert prediction_batch_size(narrow, 256, 16) == MAX_PREDICTION_ROWS
    # 200 columns make 19,900 pairs: a 4096-row batch would hold 1.3 G values,
    # and even the training batch size would exceed the budget (26 rows do not).
    assert prediction_batch_size(np.ones((10, 200), dtype=np.float32), 256, 16) == 26
    # Sparse rows count by their non-zeros, not by the columns.
    columns = np.random.RandomState(0).choice(10_000, size=(50, 5))
    wide_sparse = as_row_source(
        sp.csr_array((np.ones(250), columns.ravel(), np.arange(0, 251, 5)), shape=(50, 10_000))
    )
    assert prediction_batch_size(wide_sparse, 256, 16) == MAX_PREDICTION_ROWS
    # Categorical data: one entry per column, however many categories.
    from sklearn_afm._batching import FieldMatrix

    fields = FieldMatrix(np.zeros((10, 10), dtype=np.int32), narrow, n_features=5000)
    assert prediction_batch_size(fields, 256, 16) == MAX_PREDICTION_ROWS
    # Never below the training batch size while it fits the budget.
    assert prediction_batch_size(narrow, 10_000, 16) == 10_000


def test_predictions_do_not_depend_on_the_batch_size():
    rng = np.random.RandomState(3)
    X = rng.normal(size=(5000, 6)).astype(np.float32)
    engine = Engine(
        dict(n_features=6, n_outputs=1, embedding_size=8, attention_size=4, seed=0),
        loss="binary", solver="adam", learning_rate=0.05, device="/CPU:0",
    )
    large = engine.predict(X, 256)
    small = np.concatenate([engine.predict(X[i : i + 100], 100) for i in range(0, 5000, 100)])
    np.testing.assert_allclose(large, small, rtol=1e-5, atol=1e-6)


# -- 5. training learns a pairwise interaction -----------------------------------------


def xor_data(n, rng, n_noise=2):
    """y = sign(x0 * x1): invisible to a linear model, one product for an FM."""
    X = rng.uniform(-1, 1, size=(n, 2 + n_noise))
    X[:, :2] = np.sign(X[:, :2]) * rng.uniform(0.3, 1.0, size=(n, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    return X.astype(np.float32), y


def test_engine_training_lowers_the_loss():
    rng = np.random.RandomState(11)
    X, y = xor_data(256, rng)
    engine = Engine(
        dict(n_features=X.shape[1], n_outputs=1, embedding_size=8, attention_size=4, seed=0),
        loss="binary", solver="adam", learning_rate=0.05, device="/CPU:0",
    )
    Xs = as_row_source(X)
    weight = np.ones(len(y), dtype=np.float32)
    target = y.astype(np.float32)
    shuffle = np.random.RandomState(0)
    losses = [
        engine.train_epoch(Xs, target, weight, 64, shuffle.permutation(len(y)))
        for _ in range(25)
    ]
    assert np.isfinite(losses).all()
    assert losses[0] > 0.6  # starts near log(2)
    assert losses[-1] < 0.5 * losses[0]
    # The reported loss is the real mean cross-entropy of the network.
    from scipy.special import expit

    p = expit(engine.predict(Xs, 64)[:, 0])
    eps = 1e-7
    ce = -np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))
    assert ce < 0.5 * losses[0]
    assert ((p > 0.5) == y).mean() > 0.9


@pytest.fixture(scope="module")
def xor_classifier():
    rng = np.random.RandomState(12)
    X, y = xor_data(400, rng)
    clf = AFMClassifier(
        embedding_size=8, attention_size=4, learning_rate_init=0.05, batch_size=64,
        max_iter=40, early_stopping=False, random_state=0, device="cpu",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    return clf, X, y


def test_classifier_learns_interaction_that_linear_model_cannot(xor_classifier):
    clf, _, _ = xor_classifier
    X_test, y_test = xor_data(300, np.random.RandomState(13))
    X_train, y_train = xor_data(400, np.random.RandomState(12))
    linear = LogisticRegression().fit(X_train, y_train).score(X_test, y_test)
    afm = clf.score(X_test, y_test)
    assert linear < 0.65
    assert afm > 0.85
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    # The attention concentrates on the informative pair (0, 1).
    A = clf.attention_weights_
    assert A[0, 1] == A.max()


def test_classifier_decision_function_matches_reference(xor_classifier):
    clf, X, _ = xor_classifier
    network = AFMNetwork(**clf._network.config)
    network.build(None)
    network.set_weights(clf._network.weights)
    weights = named_weights(network)
    X = X[:20].copy()
    X[::3, 2:] = 0  # some rows with fewer features
    X[::5, 1] = 0
    expected = reference(weights, X)[:, 0]
    np.testing.assert_allclose(clf.decision_function(X), expected, rtol=1e-5, atol=1e-5)
    for fmt in ("csr", "csc", "coo"):
        np.testing.assert_allclose(
            clf.decision_function(to_sparse(X, fmt)), expected, rtol=1e-5, atol=1e-5
        )
    from scipy.special import expit

    np.testing.assert_allclose(clf.predict_proba(X)[:, 1], expit(expected), rtol=1e-4, atol=1e-6)


def test_multiclass_classifier_matches_reference():
    rng = np.random.RandomState(14)
    X = random_sparse_rows(rng, n_rows=30).astype(np.float64)
    y = np.arange(30) % 3
    clf = AFMClassifier(
        embedding_size=4, attention_size=3, max_iter=2, batch_size=16,
        early_stopping=False, random_state=0, device="cpu",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(sp.csr_array(X), y)
    network = AFMNetwork(**clf._network.config)
    network.build(None)
    network.set_weights(clf._network.weights)
    expected = reference(named_weights(network), X)
    got = clf.decision_function(X)
    assert got.shape == (30, 3)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    for fmt in ("csr", "csc", "coo"):
        np.testing.assert_allclose(
            clf.decision_function(to_sparse(X, fmt)), expected, rtol=1e-5, atol=1e-5
        )


# -- 6. attention summaries ----------------------------------------------------------


def hand_batches():
    # Slots are (first, second) = triu_indices(3, 1): (0,1), (0,2), (1,2).
    b1 = (
        np.array([[0, 1, 2], [0, 1, 0]], dtype=np.int32),
        np.array([[1.0, 1.0, 1.0], [2.0, 3.0, 0.0]], dtype=np.float32),
        np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]], dtype=np.float32),
    )
    b2 = (  # second batch, width 2: one row with features 1, 3; one with feature 3 only
        np.array([[1, 3], [3, 0]], dtype=np.int32),
        np.array([[1.0, 1.0], [1.0, 0.0]], dtype=np.float32),
        np.array([[1.0], [0.0]], dtype=np.float32),
    )
    return [b1, b2]


def test_mean_pair_attention_averages_over_rows_where_pair_is_present():
    M = mean_pair_attention(add_pair_attention(None, iter(hand_batches()), 5))
    assert isinstance(M, np.ndarray) and M.shape == (5, 5)
    expected = np.zeros((5, 5))
    expected[0, 1] = (0.2 + 1.0) / 2  # present in 2 of the 4 rows
    expected[0, 2] = 0.3
    expected[1, 2] = 0.5
    expected[1, 3] = 1.0
    expected = expected + expected.T
    np.testing.assert_allclose(M, expected, rtol=1e-6, atol=0)
    np.testing.assert_array_equal(np.diag(M), 0)


def test_running_totals_equal_one_pass_over_all_batches():
    """partial_fit's running summary: two chunks give the mean over both."""
    first, second = hand_batches()
    running = add_pair_attention(add_pair_attention(None, [first], 5), [second], 5)
    at_once = add_pair_attention(None, [first, second], 5)
    np.testing.assert_array_equal(running[0], at_once[0])
    np.testing.assert_array_equal(running[1], at_once[1])


def test_feature_columns_map_categories_to_their_column():
    # Features 0-1 are two categories of column 0, 2 is column 1, 3-4 column 2.
    feature_columns = np.array([0, 0, 1, 2, 2])
    batch = (
        np.array([[0, 2, 3], [1, 4, 0]], dtype=np.int32),
        np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]], dtype=np.float32),
        np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]], dtype=np.float32),
    )
    M = mean_pair_attention(add_pair_attention(None, [batch], 3, feature_columns))
    expected = np.array([[0.0, 0.2, 0.65], [0.0, 0.0, 0.5], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(M, expected + expected.T, rtol=1e-6)
    A, pairs = per_sample_pair_attention([batch], 2, False, feature_columns)
    np.testing.assert_array_equal(pairs, [[0, 1], [0, 2], [1, 2]])
    np.testing.assert_allclose(A, [[0.2, 0.3, 0.5], [0.0, 1.0, 0.0]], rtol=1e-6)


def test_per_sample_pair_attention_hand_built():
    for sparse_output in (False, True):
        A, pairs = per_sample_pair_attention(iter(hand_batches()), 4, sparse_output)
        assert sp.issparse(A) == sparse_output
        np.testing.assert_array_equal(pairs, [[0, 1], [0, 2], [1, 2], [1, 3]])
        A = A.toarray() if sparse_output else A
        np.testing.assert_allclose(
            A,
            [[0.2, 0.3, 0.5, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0], [0, 0, 0, 0]],
            rtol=1e-6,
        )


def test_classifier_attention_summaries_match_network(xor_classifier):
    clf, X, _ = xor_classifier
    X = X[:40].copy()
    X[::4, 3] = 0
    X[1::4, 0] = 0
    X[2::7, :] = 0
    network = AFMNetwork(**clf._network.config)
    network.build(None)
    network.set_weights(clf._network.weights)
    weights = named_weights(network)
    per_row = [reference_pair_attention(weights, x.astype(np.float64)) for x in X]

    dense_A, pairs = clf.pair_attention(X)
    sparse_A, sparse_pairs = clf.pair_attention(sp.csr_array(X))
    assert isinstance(dense_A, np.ndarray)
    assert sp.issparse(sparse_A)
    np.testing.assert_array_equal(pairs, sparse_pairs)
    np.testing.assert_allclose(sparse_A.toarray(), dense_A, rtol=1e-6, atol=1e-7)
    all_pairs = sorted({key for d in per_row for key in d})
    np.testing.assert_array_equal(pairs, all_pairs)
    for r, d in enumerate(per_row):
        want = np.array([d.get(tuple(p), 0.0) for p in all_pairs])
        np.testing.assert_allclose(dense_A[r], want, rtol=1e-5, atol=1e-6)
        assert dense_A[r].sum() == pytest.approx(1.0 if len(d) else 0.0, rel=1e-5, abs=1e-7)

    # The fitted summary is the mean over the training rows containing each pair.
    _, X_train, _ = xor_classifier
    per_row = [reference_pair_attention(weights, x.astype(np.float64)) for x in X_train]
    A = clf.attention_weights_
    np.testing.assert_allclose(A, A.T)
    np.testing.assert_array_equal(np.diag(A), 0)
    for i, j in all_pairs:
        vals = [d[(i, j)] for d in per_row if (i, j) in d]
        assert A[i, j] == pytest.approx(np.mean(vals), rel=1e-4)


# -- 7. Keras serialization ------------------------------------------------------------


def test_keras_serialization_round_trip():
    network = make_network(3, attention_l2=0.01, attention_dropout=0.1, dropout=0.2)
    config = keras.saving.serialize_keras_object(network)
    assert config["registered_name"] == "sklearn_afm>AFMNetwork"
    clone = keras.saving.deserialize_keras_object(config)
    assert type(clone) is AFMNetwork
    if not clone.built:
        clone.build(None)
    for name in ("n_features", "n_outputs", "embedding_size", "attention_size",
                 "attention_l2", "attention_dropout", "dropout", "seed"):
        assert getattr(clone, name) == getattr(network, name)
    # Same seed: same initialisation before any weights are copied.
    fresh = AFMNetwork(**network.get_config())
    fresh.build(None)
    for a, b in zip(fresh.get_weights(), clone.get_weights()):
        np.testing.assert_array_equal(a, b)
    clone.set_weights(network.get_weights())
    rng = np.random.RandomState(15)
    X = random_sparse_rows(rng, n_rows=12)
    np.testing.assert_array_equal(run(clone, X), run(network, X))

    again = AFMNetwork.from_config(network.get_config())
    again.build(None)
    again.set_weights(network.get_weights())
    np.testing.assert_array_equal(run(again, X), run(network, X))
    # The L2 penalty on W survives the round trip.
    assert len(clone.losses) == 1
    np.testing.assert_allclose(
        float(clone.losses[0]),
        0.01 * np.sum(network.attention_hidden.get_weights()[0].astype(np.float64) ** 2),
        rtol=1e-5,
    )


def test_keras_save_and_load_file(tmp_path):
    network = make_network(1)
    rng = np.random.RandomState(16)
    X = random_sparse_rows(rng, n_rows=8)
    path = tmp_path / "afm.keras"
    network.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, AFMNetwork)
    np.testing.assert_array_equal(run(loaded, X), run(network, X))


# -- dropout only acts in training ---------------------------------------------------


def test_dropout_is_inactive_at_inference_and_active_in_training():
    rng = np.random.RandomState(17)
    X = random_sparse_rows(rng, n_rows=12)
    plain = make_network(1)
    dropped = make_network(1, attention_dropout=0.5, dropout=0.5)
    batch = make_batch(as_row_source(X), slice(0, 12))
    np.testing.assert_allclose(
        np.asarray(dropped(batch)), np.asarray(plain(batch)), rtol=1e-6, atol=1e-6
    )
    trained = np.asarray(dropped(batch, training=True))
    assert not np.allclose(trained, np.asarray(plain(batch)), atol=1e-4)
