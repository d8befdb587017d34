"""The engine's stateless steps: optimizers, compiled epochs, staging, the process cache."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from sklearn_afm._runtime import import_tensorflow

tf = import_tensorflow()  # configures TensorFlow quietly before keras is imported

import keras  # noqa: E402

import sklearn_afm._engine as afm_engine  # noqa: E402
import sklearn_afm._steps as steps  # noqa: E402
from sklearn_afm import AFMClassifier, AFMRegressor  # noqa: E402
from sklearn_afm._batching import as_row_source  # noqa: E402
from sklearn_afm._network import build_engine  # noqa: E402

CONFIG = dict(n_features=7, n_outputs=1, embedding_size=4, attention_size=3, attention_l2=1e-3,
              attention_dropout=0.0, dropout=0.0, use_attention=True, seed=0)


@pytest.mark.parametrize("solver", ["adam", "adagrad", "sgd"])
def test_apply_optimizer_is_keras_update(solver):
    engine = build_engine(CONFIG, {"solver": solver, "learning_rate": 0.05}, "binary", "cpu")
    rng = np.random.RandomState(0)
    variables = engine.network.trainable_variables
    gradients = [tf.constant(rng.normal(size=v.shape).astype(np.float32)) for v in variables]
    params, _, state = engine.values()
    slots = steps.optimizer_slots(engine.optimizer)
    for _ in range(3):  # past the first step, where Adam's moments start at 0
        dense, squares = steps.gradients_and_squares(tf, gradients)
        params, state = steps.apply_optimizer(engine.optimizer, slots, state, dense, squares,
                                              params)
        engine.optimizer.apply(gradients, variables)
    for ours, keras_value in zip(params, variables):
        np.testing.assert_allclose(ours.numpy(), keras_value.numpy(), rtol=1e-6, atol=1e-7)
    for ours, keras_value in zip(state, engine.optimizer.variables):
        np.testing.assert_allclose(np.asarray(ours), keras_value.numpy(), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("solver", ["adam", "adagrad"])
def test_second_moment_of_an_embedding_row_sums_its_samples_squared_gradients(solver):
    """As Keras' optimizers treat the embeddings' sparse gradients: a row that two samples
    of a batch use accumulates g1^2 + g2^2, not (g1 + g2)^2 (which is 0 here)."""
    config = dict(CONFIG, use_attention=False)
    engine = build_engine(config, {"solver": solver, "learning_rate": 0.01}, "binary", "cpu")
    X = as_row_source(np.array([[1.0, 0, 0, 0, 0, 0, 0], [1.0, 0, 0, 0, 0, 0, 0]]))
    before = engine.get_optimizer_state()
    engine.train_epoch(X, np.array([1.0, 0.0], np.float32), np.ones(2, np.float32), 2,
                       np.arange(2))
    linear = engine.network.linear.embeddings
    slots = steps.optimizer_slots(engine.optimizer)
    index = [id(v) for v in engine.network.trainable_variables].index(id(linear))
    slot = slots[-1][index]
    added = engine.get_optimizer_state()[slot][0, 0] - before[slot][0, 0] * (
        0.999 if solver == "adam" else 1.0
    )
    # Both rows have logit 0: per-sample gradients (0.5 - 1) / 2 and (0.5 - 0) / 2.
    expected = (0.25**2 + 0.25**2) * (0.001 if solver == "adam" else 1.0)
    assert added == pytest.approx(expected, rel=1e-5)


def _fit_both_paths(monkeypatch, make, X, y, **params):
    """Fit with per-batch steps, then with compiled epochs; return both estimators."""
    fitted = []
    for threshold in (10**9, 0):
        monkeypatch.setattr(afm_engine, "COMPILED_MIN_ROWS", threshold)
        # No dropout: the paths draw the same mask stream, but the compiled
        # epoch pads its last batch to full size, and a mask of another shape
        # holds other draws.
        fitted.append(make(max_iter=3, early_stopping=False, random_state=0, device="cpu",
                           dropout=0.0, **params).fit(X, y))
    return fitted


@pytest.mark.parametrize("case", ["dense", "categorical", "sparse-multiclass", "regressor"])
def test_compiled_epochs_train_the_same_model_as_per_batch_steps(monkeypatch, case):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(530, 5)) * (rng.rand(530, 5) < 0.7)
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    make, params = AFMClassifier, {"batch_size": 64}
    if case == "categorical":
        X = pd.DataFrame({"a": rng.choice(list("pqrs"), 530), "b": X[:, 1]})
        y = ((X["a"] == "p") ^ (X["b"] > 0)).astype(int)
    elif case == "sparse-multiclass":
        X = sp.csr_matrix(X)
        y = np.digitize(X[:, [0]].toarray().ravel(), [-0.3, 0.3])
        params["solver"] = "adagrad"
    elif case == "regressor":
        make, y = AFMRegressor, np.column_stack([X[:, 0] * X[:, 1], X[:, 2]])
    per_batch, compiled = _fit_both_paths(monkeypatch, make, X, y, **params)
    np.testing.assert_allclose(compiled.loss_curve_, per_batch.loss_curve_, rtol=1e-4)
    predict = make.predict if case == "regressor" else make.predict_proba
    np.testing.assert_allclose(predict(compiled, X), predict(per_batch, X), atol=1e-4)


def test_steps_are_traced_once_per_process_for_estimators_alike(monkeypatch):
    rng = np.random.RandomState(1)
    X, y = rng.normal(size=(300, 4)), rng.randint(2, size=300)
    monkeypatch.setattr(afm_engine, "COMPILED_MIN_ROWS", 0)
    params = dict(embedding_size=3, attention_size=2, batch_size=50, max_iter=2,
                  early_stopping=False, device="cpu")
    AFMClassifier(random_state=0, **params).fit(X, y).predict(X)
    traced = dict(steps._CACHE)
    # Another seed, other data of the same shape, another estimator object.
    other = AFMClassifier(random_state=1, **params).fit(X[::-1], y[::-1])
    other.predict(X)
    assert steps._CACHE.keys() == traced.keys()
    assert all(steps._CACHE[key] is traced[key] for key in traced)


def test_staging_is_bounded_and_pads_with_rows_of_weight_zero(monkeypatch):
    monkeypatch.setattr(steps, "STAGING_BUDGET", 4096)
    batch_size, width = 8, 3
    n_steps = steps.staging_steps(10, batch_size, width)
    assert n_steps * batch_size * (width * 8 + 12) <= 4096 and n_steps & (n_steps - 1) == 0
    X = as_row_source(np.arange(1, 61, dtype=np.float64).reshape(20, 3))
    y = np.arange(20, dtype=np.float32)
    chunks = list(steps.stage(X, y, np.ones(20, np.float32), batch_size, np.arange(20), width,
                              n_steps))
    assert all(chunk[0].shape == (n_steps, batch_size, width) for chunk in chunks)
    assert sum(chunk[5] for chunk in chunks) == 3  # batches of 8, 8 and 4 rows
    last = chunks[-1]
    real = last[5] - 1
    assert last[4][real] == 4
    np.testing.assert_array_equal(last[3][real], [1, 1, 1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(last[1][real, 4:], 0)


def test_inference_steps_hold_no_variable_of_the_engine_that_traced_them():
    """The process cache must not keep an estimator's weights alive."""
    import gc
    import weakref

    engine = build_engine(dict(CONFIG, n_features=11), {"solver": "sgd", "learning_rate": 0.1},
                          "binary", "cpu")
    X = as_row_source(np.eye(11)[:4] + np.eye(11)[1:5])
    expected = engine.predict(X, 4)
    table = weakref.ref(engine.network.embeddings.embeddings)
    del engine
    gc.collect()
    assert table() is None or keras.config.backend() != "tensorflow"
    again = build_engine(dict(CONFIG, n_features=11), {"solver": "sgd", "learning_rate": 0.1},
                         "binary", "cpu")
    np.testing.assert_allclose(again.predict(X, 4), expected, rtol=1e-6)


def test_steps_traced_by_another_estimator_read_only_this_ones_weights():
    """Shared steps must take every weight as an input: explain's bias once came from the
    estimator that traced the step."""
    rng = np.random.RandomState(3)
    X, y = rng.normal(size=(200, 4)), rng.randint(3, size=200)
    params = dict(max_iter=2, alpha=0.5, dropout=0.2, early_stopping=False, device="cpu")
    first = AFMClassifier(random_state=0, **params).fit(X, y)
    first.explain(X[:3]), first.pair_attention(X[:3])
    second = AFMClassifier(random_state=1, **params).fit(X * 3, y)
    shared = (second.loss_curve_, second.decision_function(X), second.explain(X[:3]),
              second.pair_attention(X[:3])[0])
    steps._CACHE.clear()
    alone = AFMClassifier(random_state=1, **params).fit(X * 3, y)
    assert shared[0] == alone.loss_curve_
    np.testing.assert_array_equal(shared[1], alone.decision_function(X))
    explained = alone.explain(X[:3])
    for field in ("bias", "linear", "interactions", "attention"):
        np.testing.assert_array_equal(shared[2][field], explained[field])
    np.testing.assert_array_equal(shared[3], alone.pair_attention(X[:3])[0])


def test_the_process_cache_keeps_a_bounded_number_of_steps(monkeypatch):
    monkeypatch.setattr(steps, "MAX_CACHED_STEPS", 2)
    monkeypatch.setattr(steps, "_CACHE", {})
    for key in "abc":
        assert steps.cached(key, lambda: key.upper()) == key.upper()
    assert list(steps._CACHE) == ["b", "c"]
