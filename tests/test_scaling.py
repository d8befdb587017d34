"""Scaling out: hyperparameter search on a dask cluster, data-parallel training.

The data-parallel test splits the CPU into two logical devices, which must
happen before anything initialises TensorFlow, so it runs in a fresh process.
"""

import json

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from sklearn_afm import AFMClassifier

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.mark.parametrize(
    "device, message",
    [
        (["cpu:0", "tpu:0"], "'tpu:0' is not understood"),
        (["cpu:0", "cpu:7"], "'cpu:7' was requested but (TensorFlow|JAX) sees 1 CPU"),
        (["cpu:0", "cpu:0"], "'cpu:0' twice"),
        ([], "empty"),
        (("cpu:0", 1), "1 is not understood"),
    ],
)
def test_device_lists_are_validated(device, message):
    X, y = np.eye(4), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match=message):
        AFMClassifier(max_iter=1, device=device).fit(X, y)


@pytest.mark.tensorflow
def test_grid_search_on_dask_cluster(telco_small, monkeypatch):
    distributed = pytest.importorskip("distributed")
    import dask
    from joblib import parallel_config

    X, y = telco_small
    search = GridSearchCV(
        AFMClassifier(max_iter=3, batch_size=128, learning_rate_init=0.05, device="cpu",
                      random_state=0),
        {"embedding_size": [4, 8]},
        cv=StratifiedKFold(2),
        scoring="roc_auc",
        n_jobs=-1,
    )
    sequential = GridSearchCV(**{**search.get_params(deep=False), "n_jobs": 1}).fit(X, y)

    # dask's nannies set OMP_NUM_THREADS=1 in their workers; without it the
    # workers' TensorFlow threads are bounded by the worker's nthreads alone.
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    environ = {"MALLOC_TRIM_THRESHOLD_": 65536}
    with (
        dask.config.set({"distributed.nanny.pre-spawn-environ": environ}),
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
        parallel_config(backend="dask"),
    ):
        search.fit(X, y)

        def tensorflow_threads():
            import os
            import sys

            tf = sys.modules.get("tensorflow")  # None in a worker that got no fit
            return os.environ.get("OMP_NUM_THREADS"), tf and [
                tf.config.threading.get_intra_op_parallelism_threads(),
                tf.config.threading.get_inter_op_parallelism_threads(),
            ]

        workers = client.run(tensorflow_threads)

    assert [omp for omp, _ in workers.values()] == [None, None]
    threads = [pools for _, pools in workers.values() if pools is not None]
    # Every worker that fitted bounded TensorFlow to its one thread.
    assert threads and all(pools == [1, 1] for pools in threads), workers
    assert search.best_params_ == sequential.best_params_
    np.testing.assert_allclose(
        search.cv_results_["mean_test_score"], sequential.cv_results_["mean_test_score"],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        search.predict_proba(X), sequential.predict_proba(X), rtol=1e-5, atol=1e-6
    )


DATA_PARALLEL = """
import json, pickle

from sklearn_afm._engine import Engine
from sklearn_afm._runtime import import_tensorflow

tf = import_tensorflow()
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from sklearn_afm import AFMClassifier, load_telco_churn
from sklearn_afm._batching import as_row_source

# Where each replica's step was traced: it must run once on each device.
placed = set()
replica_step = Engine._replica_train_step
def spy(self, *batch):
    loss = replica_step(self, *batch)
    if self.strategy is not None:
        placed.add(loss.device.rsplit("/", 1)[-1])
    return loss
Engine._replica_train_step = spy

# One epoch of plain SGD from the same weights: two replicas must make the
# same updates as one device (the batch split and the loss shares are exact).
rng = np.random.RandomState(0)
X = as_row_source((rng.rand(300, 12) < 0.3) * rng.rand(300, 12).astype(np.float32))
y = rng.randint(0, 2, 300).astype(np.float32)
network = dict(n_features=12, embedding_size=4, attention_size=4, attention_l2=0.01, seed=0)
updated = []
for device in ["/CPU:0", ("/CPU:0", "/CPU:1")]:
    engine = Engine(network, "binary", "sgd", 0.5, device)
    loss = engine.train_epoch(X, y, np.ones(300, np.float32), 64, np.arange(300))
    updated.append((loss, engine.get_weights()))
(loss_one, weights_one), (loss_two, weights_two) = updated
same_updates = bool(np.isclose(loss_one, loss_two, rtol=1e-5)) and all(
    np.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(weights_one, weights_two)
)
moved = any(not np.allclose(a, b) for a, b in zip(weights_one, Engine(network, "binary", "sgd", 0.5, "/CPU:0").get_weights()))

X, y = load_telco_churn(return_X_y=True)
X, _, y, _ = train_test_split(X, y, train_size=1500, stratify=y, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
params = dict(max_iter=5, batch_size=256, learning_rate_init=0.05, dropout=0.1, random_state=0)
auc = {}
for name, device in [("one", "cpu:0"), ("two", ["cpu:0", "cpu:1"])]:
    clf = AFMClassifier(device=device, **params).fit(X_train, y_train)
    auc[name] = roc_auc_score(y_test, clf.predict_proba(X_test)[:, 1])
replicas = clf._get_engine().strategy.num_replicas_in_sync

# Moving a fitted model onto the two devices between fits.
moving = AFMClassifier(device="cpu", warm_start=True, **params).fit(X_train, y_train)
moved_to = moving.set_params(device=["cpu:0", "cpu:1"], max_iter=1).fit(X_train, y_train).device_
copies = clf._get_engine().network.embeddings.embeddings.value.values
restored = pickle.loads(pickle.dumps(clf))
print(json.dumps({
    "placed": sorted(placed),
    "same_updates": same_updates,
    "moved": moved,
    "auc": auc,
    "device_": clf.device_,
    "moved_to": moved_to,
    "replicas": replicas,
    "copies": [c.device.rsplit("/", 1)[-1] for c in copies],
    "copies_equal": bool(np.array_equal(copies[0].numpy(), copies[1].numpy())),
    "pickle_equal": bool(np.array_equal(restored.predict_proba(X_test), clf.predict_proba(X_test))),
}))
"""


@pytest.mark.tensorflow
def test_data_parallel_training_on_two_logical_cpus(run_python):
    result = json.loads(run_python(DATA_PARALLEL).strip().splitlines()[-1])
    assert result["placed"] == ["device:CPU:0", "device:CPU:1"]
    assert result["replicas"] == 2
    assert result["device_"] == result["moved_to"] == ["/CPU:0", "/CPU:1"]
    # Every weight has a synchronised copy on each device.
    assert result["copies"] == ["device:CPU:0", "device:CPU:1"] and result["copies_equal"]
    assert result["moved"] and result["same_updates"], result
    assert abs(result["auc"]["two"] - result["auc"]["one"]) < 0.02, result["auc"]
    assert result["auc"]["two"] > 0.75, result["auc"]
    assert result["pickle_equal"]


FORWARD = """
import json, os, sys

os.environ["KERAS_BACKEND"] = sys.argv[1]

import keras
import numpy as np

from sklearn_afm._model import AFMNetwork

rng = np.random.RandomState(0)
indices = rng.randint(0, 20, size=(16, 6)).astype("int32")
values = (rng.rand(16, 6) * (rng.rand(16, 6) < 0.7)).astype("float32")
# Backend tensors, as the engine passes: only a layer's __call__ converts arrays.
indices, values = keras.ops.convert_to_tensor(indices), keras.ops.convert_to_tensor(values)
network = AFMNetwork(n_features=20, n_outputs=2, embedding_size=4, attention_size=3, seed=0)
network.build(None)
network.set_weights([rng.normal(size=w.shape).astype("float32") for w in network.get_weights()])
print(json.dumps({
    "backend": keras.backend.backend(),
    "out": keras.ops.convert_to_numpy(network((indices, values))).tolist(),
    "attention": keras.ops.convert_to_numpy(network.attention((indices, values))).tolist(),
}))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_network_forward_pass_matches_tensorflow_on_other_backends(run_python, backend):
    pytest.importorskip(backend)
    results = {}
    for name in ("tensorflow", backend):
        results[name] = json.loads(run_python(FORWARD, name).strip().splitlines()[-1])
        assert results[name]["backend"] == name
    for key in ("out", "attention"):
        np.testing.assert_allclose(
            results[backend][key], results["tensorflow"][key], rtol=1e-5, atol=1e-6
        )


def test_estimators_refuse_another_keras_backend_clearly(run_python):
    pytest.importorskip("torch")
    out = run_python(
        """
        import os

        os.environ["KERAS_BACKEND"] = "torch"
        import numpy as np

        from sklearn_afm import AFMClassifier

        try:
            AFMClassifier(max_iter=1).fit(np.eye(4), [0, 1, 0, 1])
        except RuntimeError as error:
            print(error)
        """
    )
    assert "but Keras runs on 'torch'; set KERAS_BACKEND=tensorflow|jax" in out
