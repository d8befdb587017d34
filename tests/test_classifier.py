"""Behaviour of AFMClassifier's training options and fitted attributes."""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

import sklearn_afm._batching as batching
from sklearn_afm import AFMClassifier

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def xor_data():
    """Labels decided by a pairwise interaction only: x0 * x1 > 0."""
    rng = np.random.RandomState(1)
    X = rng.normal(size=(1200, 4))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    return X, y


def test_learns_a_pure_interaction(xor_data):
    X, y = xor_data
    clf = AFMClassifier(max_iter=30, early_stopping=False, random_state=0).fit(X[:1000], y[:1000])
    assert clf.score(X[1000:], y[1000:]) > 0.85
    # The planted pair receives the most attention on average.
    weights = clf.attention_weights_
    first, second = np.triu_indices(4, 1)
    best = np.argmax(weights[first, second])
    assert (first[best], second[best]) == (0, 1)


def test_verbose_prints_each_epoch_and_silent_by_default(xor_data, capsys):
    X, y = xor_data
    AFMClassifier(max_iter=3, random_state=0).fit(X, y)
    assert capsys.readouterr().out == ""
    AFMClassifier(max_iter=3, verbose=1, early_stopping=False, init="random",
                  random_state=0).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines] == [f"Iteration {i}" for i in (1, 2, 3)]
    assert all("loss = " in line for line in lines)


def test_early_stopping_attributes(xor_data):
    X, y = xor_data
    clf = AFMClassifier(
        max_iter=200, early_stopping=True, n_iter_no_change=3, random_state=0
    ).fit(X, y)
    assert clf.n_iter_ < 200
    assert len(clf.validation_scores_) == len(clf.loss_curve_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.best_loss_ is None
    no_es = AFMClassifier(max_iter=2, early_stopping=False, random_state=0).fit(X, y)
    assert no_es.validation_scores_ is None and no_es.best_validation_score_ is None
    assert no_es.best_loss_ == min(no_es.loss_curve_)


def test_early_stopping_auto_depends_on_size(xor_data):
    X, y = xor_data
    big = AFMClassifier(max_iter=2, random_state=0).fit(X, y)
    small = AFMClassifier(max_iter=2, random_state=0).fit(X[:200], y[:200])
    assert big.validation_scores_ is not None
    assert small.validation_scores_ is None


def test_convergence_warning_only_when_max_iter_is_reached(xor_data):
    X, y = xor_data
    with pytest.warns(ConvergenceWarning, match="Maximum iterations \\(2\\)"):
        AFMClassifier(max_iter=2, early_stopping=False).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AFMClassifier(max_iter=50, n_iter_no_change=1, tol=10.0, early_stopping=False).fit(X, y)


def test_warm_start_continues_training(xor_data):
    X, y = xor_data
    clf = AFMClassifier(max_iter=2, warm_start=True, early_stopping=False, random_state=0)
    clf.fit(X, y)
    first_curve = list(clf.loss_curve_)
    clf.fit(X, y)
    assert clf.n_iter_ == 4
    assert clf.loss_curve_[:2] == first_curve
    # Continuing means starting from the trained weights: the third epoch
    # starts far below the first one.
    assert clf.loss_curve_[2] < first_curve[0]
    cold = clone(clf).set_params(warm_start=False).fit(X, y)
    assert cold.n_iter_ == 2


def test_class_weight_shifts_predictions(xor_data):
    X, y = xor_data
    plain = AFMClassifier(max_iter=5, early_stopping=False, random_state=0).fit(X, y)
    heavy = clone(plain).set_params(class_weight={0: 1.0, 1: 20.0}).fit(X, y)
    assert (heavy.predict(X) == 1).mean() > (plain.predict(X) == 1).mean() + 0.1


def test_sample_weight_zero_rows_are_ignored(xor_data):
    X, y = xor_data
    flipped = 1 - y
    weights = np.r_[np.ones(len(y)), np.zeros(len(y))]
    clf = AFMClassifier(max_iter=30, early_stopping=False, random_state=0)
    clf.fit(np.r_[X, X], np.r_[y, flipped], sample_weight=weights)
    assert clf.score(X, y) > 0.85


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
@pytest.mark.parametrize("container", [sp.csr_matrix, sp.csr_array])
def test_sparse_formats_are_never_densified(xor_data, monkeypatch, fmt, container):
    X, y = xor_data
    X = np.where(np.abs(X) > 0.5, X, 0.0)
    dense = AFMClassifier(max_iter=2, random_state=0).fit(X, y)
    Xs = container(X).asformat(fmt)

    def guard(cls, name):
        real = getattr(cls, name)

        def densify(self, *args, **kwargs):
            # Small summaries may be densified; the data matrix itself never.
            assert self.shape[0] < X.shape[0], "sparse input was densified"
            return real(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, densify)

    for cls in {type(Xs), sp.csr_array, sp.csr_matrix, sp.csc_array, sp.coo_array}:
        guard(cls, "toarray")
        guard(cls, "todense")
    sparse = AFMClassifier(max_iter=2, random_state=0).fit(Xs, y)
    np.testing.assert_allclose(sparse.predict_proba(Xs), dense.predict_proba(X), rtol=1e-5)


def test_fit_and_predict_stream_batches(xor_data, monkeypatch):
    X, y = xor_data
    sizes = []
    real = batching.make_batch

    def spy(X, rows):
        indices, values = real(X, rows)
        sizes.append(indices.shape[0])
        return indices, values

    for module in ("_engine", "_jax_engine", "_steps"):
        monkeypatch.setattr(f"sklearn_afm.{module}.make_batch", spy)
    clf = AFMClassifier(max_iter=2, batch_size=100, early_stopping=False, random_state=0)
    clf.fit(X, y)
    # Training batches of batch_size rows (the attention summary after them
    # is inference, in larger batches).
    assert sizes[:20] == [100] * 20
    # Prediction takes larger batches of these narrow rows, but still streams.
    sizes.clear()
    clf.predict(np.tile(X, (10, 1)))
    assert max(sizes) == batching.MAX_PREDICTION_ROWS and len(sizes) > 1


def test_device_is_recorded_and_cpu_fit_is_silent(xor_data):
    X, y = xor_data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = AFMClassifier(max_iter=2, n_iter_no_change=1, tol=1e9, device="cpu").fit(X, y)
    assert clf.device_ == "/CPU:0"
    auto = AFMClassifier(max_iter=2, n_iter_no_change=1, tol=1e9).fit(X, y)
    assert auto.device_ in ("/CPU:0", "/GPU:0")
    # The choice is the estimator's own: nothing is left set for the next one.
    assert AFMClassifier().get_params()["device"] == "auto"


def test_pair_attention_matches_attention_weights(xor_data):
    X, y = xor_data
    clf = AFMClassifier(max_iter=2, random_state=0).fit(X, y)
    attention, pairs = clf.pair_attention(X)
    assert attention.shape == (len(X), 6)
    np.testing.assert_array_equal(pairs, np.column_stack(np.triu_indices(4, 1)))
    np.testing.assert_allclose(attention.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(
        clf.attention_weights_[pairs[:, 0], pairs[:, 1]], attention.mean(axis=0), rtol=1e-5
    )


@pytest.mark.tensorflow
def test_same_seed_gives_identical_model_in_a_new_process(xor_data, tmp_path):
    """Bitwise reproducibility across processes, and bounded threads in workers."""

    X, y = xor_data
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    params = dict(max_iter=3, dropout=0.2, device="cpu", random_state=7)
    here = AFMClassifier(**params).fit(X, y).predict_proba(X)
    script = f"""
import numpy as np, tensorflow as tf
from sklearn_afm import AFMClassifier
X, y = np.load({str(tmp_path / "X.npy")!r}), np.load({str(tmp_path / "y.npy")!r})
proba = AFMClassifier(**{params!r}).fit(X, y).predict_proba(X)
np.save({str(tmp_path / "proba.npy")!r}, proba)
print(tf.config.threading.get_intra_op_parallelism_threads())
"""
    # joblib's worker processes set OMP_NUM_THREADS; TensorFlow must follow it.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "1"
    np.testing.assert_array_equal(np.load(tmp_path / "proba.npy"), here)


def test_pickled_estimator_continues_training_exactly(xor_data):
    """The optimizer's state travels with the pickle: continuing after loading
    gives the same model as continuing without the round trip."""
    import pickle

    X, y = xor_data
    params = dict(max_iter=2, warm_start=True, early_stopping=False, device="cpu", random_state=0)
    clf = AFMClassifier(**params).fit(X, y)
    copy = pickle.loads(pickle.dumps(clf))
    clf.fit(X, y)
    copy.fit(X, y)
    np.testing.assert_array_equal(copy.predict_proba(X), clf.predict_proba(X))
    assert copy.n_iter_ == clf.n_iter_ == 4



def test_pickling_leaves_the_estimator_untouched(xor_data):
    import pickle

    X, y = xor_data
    clf = AFMClassifier(max_iter=1, early_stopping=False, random_state=0).fit(X, y)
    before = dict(clf.__dict__)
    engine = clf._get_engine()
    pickle.dumps(clf)
    assert clf.__dict__.keys() == before.keys()
    assert clf._get_engine() is engine


@pytest.mark.parametrize("change", [{"solver": "sgd"}, {"learning_rate_init": 1e-9}])
@pytest.mark.parametrize("round_trip", [False, True])
def test_warm_start_with_another_optimizer_starts_it_afresh(xor_data, change, round_trip):
    """A changed solver or learning rate applies to the continued fit (as in
    MLPClassifier), before and after a pickle round trip, instead of meeting
    the previous optimizer's state."""
    import pickle

    X, y = xor_data
    clf = AFMClassifier(max_iter=2, warm_start=True, early_stopping=False, random_state=0)
    clf.fit(X, y)
    if round_trip:
        clf = pickle.loads(pickle.dumps(clf))
    before = clf.predict_proba(X)
    clf.set_params(**change).fit(X, y)
    assert clf.n_iter_ == 4
    after = clf.predict_proba(X)
    if "learning_rate_init" in change:
        # A learning rate of 1e-9 barely moves the weights: the new rate is used.
        np.testing.assert_allclose(after, before, atol=1e-5)
    else:
        assert not np.allclose(after, before)
        assert type(clf._get_engine().optimizer).__name__ == "SGD"



def test_pickle_without_the_optimizer_settings_still_loads_and_continues(xor_data):
    """Pickles of earlier 0.1.0 builds lack _optimizer_config: they load, and
    continue with the optimizer their parameters name."""
    import pickle

    X, y = xor_data
    clf = AFMClassifier(max_iter=2, warm_start=True, early_stopping=False, random_state=0)
    clf.fit(X, y)
    state = clf.__getstate__()
    del state["_optimizer_config"]
    old = AFMClassifier.__new__(AFMClassifier)
    old.__setstate__(pickle.loads(pickle.dumps(state)))
    np.testing.assert_array_equal(old.predict_proba(X), clf.predict_proba(X))
    old.fit(X, y)
    clf.fit(X, y)
    np.testing.assert_array_equal(old.predict_proba(X), clf.predict_proba(X))


def test_fit_and_predict_print_nothing_on_a_cpu_machine():
    """TensorFlow's native start-up and runtime logs do not reach the user."""
    from sklearn_afm._runtime import import_tensorflow

    if import_tensorflow().config.list_physical_devices("GPU"):
        pytest.skip("a GPU machine may log its devices")
    script = """
import numpy as np
from sklearn_afm import AFMClassifier
X = np.random.RandomState(0).normal(size=(200, 4))
y = (X[:, 0] * X[:, 1] > 0).astype(int)
clf = AFMClassifier(max_iter=2, n_iter_no_change=1, tol=1e9).fit(X, y)
clf.predict_proba(X)
clf.pair_attention(X)
"""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout == "" and result.stderr == ""
