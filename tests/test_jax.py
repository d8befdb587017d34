"""The JAX engine trains and predicts as the TensorFlow engine does.

Each backend is chosen once per process (``KERAS_BACKEND``), so the JAX side
runs in a subprocess, from the same initial weights and batches as the
TensorFlow engine of this process.  The whole suite also runs under
``KERAS_BACKEND=jax`` in CI (``.ci/run``).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("jax", reason="the JAX engine needs jax (in the test extra)")

from sklearn_afm import _batching  # noqa: E402
from sklearn_afm._runtime import keras_backend  # noqa: E402

if keras_backend() != "tensorflow":
    pytest.skip("compares the JAX engine with TensorFlow's", allow_module_level=True)

from sklearn_afm._engine import Engine  # noqa: E402

_WORKER = r"""
import json, sys
import numpy as np
import scipy.sparse as sp
from sklearn_afm import _batching
from sklearn_afm._runtime import keras_backend
from sklearn_afm._jax_engine import JaxEngine

for name, case in json.loads(sys.argv[1]).items():
    data = np.load(case["path"], allow_pickle=False)
    _batching.PAIR_BUDGET = case["pair_budget"]
    X = sp.csr_array((data["x_data"], data["x_indices"], data["x_indptr"]),
                     shape=tuple(data["x_shape"]))
    y = data["y"] if case["loss"] == "binary" else data["y"][:, None] * 2 - 0.5
    engine = JaxEngine(case["network"], case["loss"], case["solver"], 0.05, "/CPU:0",
                       weights=[data[f"w{i}"] for i in range(int(data["n_weights"]))])
    losses = [engine.train_epoch(X, y, data["sw"], 32, order) for order in data["orders"]]
    result = {f"w{i}": w for i, w in enumerate(engine.get_weights())}
    result["losses"] = np.array(losses)
    result["predict"] = engine.predict(X, 32)
    for j, (_, _, a) in enumerate(engine.attention(X, 64)):
        result[f"attention{j}"] = a
    result["tensorflow"] = np.array("tensorflow" in sys.modules)
    result["backend"] = np.array(keras_backend())
    np.savez(case["path"].replace("in.npz", "out.npz"), **result)
"""


def _data(n_rows=150, n_features=12, seed=0):
    rng = np.random.RandomState(seed)
    X = sp.random(n_rows, n_features, density=0.35, random_state=rng, format="csr")
    X.data = rng.uniform(0.5, 1.5, size=X.data.size)
    X = sp.csr_array(X.astype(np.float32))
    y = (rng.uniform(size=n_rows) < 0.4).astype(np.float32)
    sample_weight = rng.uniform(0.5, 1.5, size=n_rows).astype(np.float32)
    orders = np.stack([rng.permutation(n_rows) for _ in range(3)])
    return X, y, sample_weight, orders


CASES = {
    "adam": dict(solver="adam"),
    "adagrad": dict(solver="adagrad"),
    "sgd-fm": dict(solver="sgd", use_attention=False),
    "adam-squared": dict(solver="adam", loss="squared"),
    # Rows of width 10 (45 pairs x 4 values) allow 7 rows a step: each batch
    # of 32 is trained in chunks, as the TensorFlow engine cuts it.
    "adam-chunked": dict(solver="adam", pair_budget=45 * 4 * 7),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Train every case with the TensorFlow engine here and the JAX engine in a subprocess."""
    X, y, sample_weight, orders = _data()
    cases, engines = {}, {}
    for name, spec in CASES.items():
        spec = dict(spec)
        network = dict(
            n_features=12, n_outputs=1, embedding_size=4, attention_size=3, attention_l2=0.01,
            use_attention=spec.get("use_attention", True), seed=3,
        )
        budget = spec.get("pair_budget", _batching.PAIR_BUDGET)
        loss = spec.get("loss", "binary")
        targets = y if loss == "binary" else y[:, None] * 2 - 0.5
        path = tmp_path_factory.mktemp(name) / "in.npz"
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_batching, "PAIR_BUDGET", budget)
            engine = Engine(network, loss, spec["solver"], 0.05, "/CPU:0")
            initial = engine.get_weights()
            losses = [engine.train_epoch(X, targets, sample_weight, 32, order)
                      for order in orders]
            attention = [a for _, _, a in engine.attention(X, 64)]
        np.savez(
            path, **{f"w{i}": w for i, w in enumerate(initial)}, n_weights=len(initial),
            x_data=X.data, x_indices=X.indices, x_indptr=X.indptr, x_shape=np.array(X.shape),
            y=y, sw=sample_weight, orders=orders,
        )
        cases[name] = dict(path=str(path), network=network, solver=spec["solver"],
                           pair_budget=budget, loss=loss)
        engines[name] = (engine, losses, engine.predict(X, 32), attention)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    run = subprocess.run(
        [sys.executable, "-c", _WORKER, json.dumps(cases)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return {
        name: (*engines[name], np.load(case["path"].replace("in.npz", "out.npz")))
        for name, case in cases.items()
    }


@pytest.mark.parametrize("name", list(CASES))
def test_jax_engine_trains_and_predicts_as_tensorflow(trained, name):
    engine, losses, predictions, attention, out = trained[name]
    assert str(out["backend"]) == "jax"
    assert not out["tensorflow"], "the JAX engine imported TensorFlow"
    np.testing.assert_allclose(out["losses"], losses, rtol=1e-5)
    for i, weight in enumerate(engine.get_weights()):
        np.testing.assert_allclose(out[f"w{i}"], weight, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out["predict"], predictions, rtol=1e-4, atol=1e-5)
    assert len(attention) == len([key for key in out if key.startswith("attention")])
    for j, batch in enumerate(attention):
        np.testing.assert_allclose(out[f"attention{j}"], batch, atol=1e-5)


def test_a_file_saved_on_tensorflow_predicts_alike_and_trains_on_jax(run_python, tmp_path):
    import pandas as pd

    from sklearn_afm import AFMClassifier

    rng = np.random.RandomState(0)
    X = pd.DataFrame({"plan": rng.choice(["a", "b", "c"], 200), "x": rng.normal(size=200)})
    y = ((X["plan"] == "a") ^ (X["x"] > 0)).astype(int)
    clf = AFMClassifier(max_iter=3, random_state=0, device="cpu").fit(X, y)
    clf.save(tmp_path / "model.afm")
    X.to_csv(tmp_path / "X.csv", index=False)
    out = run_python(
        """
        import os, sys
        os.environ["KERAS_BACKEND"] = "jax"
        import numpy as np, pandas as pd
        import sklearn_afm

        clf = sklearn_afm.load(sys.argv[1] + "/model.afm")
        X = pd.read_csv(sys.argv[1] + "/X.csv")
        np.save(sys.argv[1] + "/proba.npy", clf.predict_proba(X))
        clf.set_params(warm_start=True, max_iter=1).fit(X, clf.predict(X))
        print("tensorflow" in sys.modules, clf.n_iter_)
        """,
        tmp_path,
        timeout=300,
    )
    assert out.split()[-2:] == ["False", "4"]  # 3 epochs on TensorFlow, 1 on JAX
    np.testing.assert_allclose(np.load(tmp_path / "proba.npy"), clf.predict_proba(X), atol=1e-6)
