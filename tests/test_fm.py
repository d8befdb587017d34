"""The factorization machine baseline (``use_attention=False``) and what attention adds."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from sklearn_afm import AFMClassifier

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def fm_reference(network, X):
    """FM output of dense rows, by a loop: w0 + sum w_i x_i + P^T sum_{i<j} v_i*v_j x_i x_j."""
    V = network.embeddings.get_weights()[0].astype(np.float64)
    w = network.linear.get_weights()[0].astype(np.float64)
    P, w0 = (a.astype(np.float64) for a in network.projection.get_weights())
    scale = np.asarray(network.feature_scale, dtype=np.float64)
    out = []
    for x in X * scale:
        present = np.flatnonzero(x)
        pooled = sum(
            (V[i] * V[j] * x[i] * x[j] for n, i in enumerate(present) for j in present[n + 1 :]),
            np.zeros(V.shape[1]),
        )
        out.append(w0 + w[present].T @ x[present] + P.T @ pooled)
    return np.array(out)


def test_fm_is_the_unweighted_sum_over_present_pairs():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 6))
    X[rng.uniform(size=X.shape) < 0.4] = 0.0
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    fm = AFMClassifier(use_attention=False, max_iter=3, random_state=0).fit(X, y)
    network = fm._get_engine().network
    # No attention network is built, so no unused weight is trained or saved.
    assert not hasattr(network, "attention_hidden")
    np.testing.assert_allclose(
        fm.decision_function(X), fm_reference(network, X)[:, 0], rtol=1e-4, atol=1e-5
    )
    # Every present pair has weight 1.
    attention, pairs = fm.pair_attention(X)
    both = (X[:, pairs[:, 0]] != 0) & (X[:, pairs[:, 1]] != 0)
    np.testing.assert_array_equal(attention, both.astype(float))
    assert np.all(fm.attention_pairs_["attention"] == 1.0)


def test_use_attention_is_a_parameter():
    fm = AFMClassifier(use_attention=False)
    assert fm.get_params()["use_attention"] is False
    assert clone(fm).use_attention is False
    with pytest.raises(ValueError, match="use_attention"):
        AFMClassifier(use_attention="no").fit([[1.0, 2.0], [2.0, 1.0]], [0, 1])


def planted_pairs(n_samples, seed):
    """Six categorical fields; the label depends on the products of fields (0, 1) and (2, 3)."""
    rng = np.random.RandomState(seed)
    codes = rng.randint(8, size=(n_samples, 6))
    signs = rng.choice([-1.0, 1.0], size=(6, 8))
    s = signs[np.arange(6), codes]
    logit = 3.0 * s[:, 0] * s[:, 1] + 3.0 * s[:, 2] * s[:, 3]
    y = (rng.uniform(size=n_samples) < 1 / (1 + np.exp(-logit))).astype(int)
    X = pd.DataFrame({f"f{j}": pd.Series(codes[:, j]).map("c{}".format) for j in range(6)})
    return X, y


def test_attention_ranks_planted_pairs_first():
    X, y = planted_pairs(3000, seed=0)
    afm = AFMClassifier(max_iter=20, random_state=0).fit(X, y)
    top = afm.attention_pairs_.head(2)
    assert set(zip(top.feature_1, top.feature_2)) == {("f0", "f1"), ("f2", "f3")}
    # The explanation agrees: the planted pairs carry the largest terms.
    explanation = afm.explain(X[:500])
    magnitude = np.abs(explanation.interactions[:, :, 0]).mean(axis=0)
    names = explanation.feature_names[explanation.pairs]
    top = {tuple(names[p]) for p in np.argsort(magnitude)[::-1][:2]}
    assert top == {("f0", "f1"), ("f2", "f3")}
