#!/usr/bin/env python
"""Throughput benchmark: sklearn_afm against DeepCTR's AFM and a naive m^2 AFM.

Measures, in one run on one machine, and prints as one table:

* training throughput (rows/s, median of several epochs after a warm-up
  epoch) and prediction throughput of ``AFMClassifier`` on two shapes, at
  batch sizes 256 and 1024:

  - *telco*: 7,043 rows x 19 dense standard-normal numeric columns (the size
    of the Telco churn data), embedding 16, attention 16;
  - *frappe*: 200,000 rows x 10 categorical fields with Frappe's field sizes
    (5,382 distinct features), embedding 16, attention 16;

* the same model in DeepCTR 0.9.4 (``deepctr.models.AFM`` on the legacy
  ``tf_keras``), and a naive "all m^2 pairs with a triangular mask" AFM
  written here in Keras 3, on the same data, shapes and batch sizes, with the
  ratios ours / DeepCTR and ours / naive;
* the wall time of the Telco case study end to end (load, Pipeline, fit with
  the default parameters, score) after TensorFlow is imported, its test
  ROC AUC, and the time of ``import sklearn_afm`` in a fresh process;
* the achieved share of the arithmetic bound on the Frappe shape.

Every implementation runs in its own subprocess (DeepCTR needs
``TF_USE_LEGACY_KERAS=1`` before TensorFlow is imported, and separate
processes keep the measurements independent); each worker prints one JSON
line.  A worker can be run alone::

    python benchmarks/throughput.py --worker ours --shape telco --batch-size 256

Full run (about 4-5 minutes on 2 cores) and a smoke run (about 2 minutes)::

    python benchmarks/throughput.py
    python benchmarks/throughput.py --quick

DeepCTR is optional: install it with
``pip install deepctr==0.9.4 "tf_keras~=2.21.0"`` (tf_keras must match the
installed TensorFlow's minor version); without it its cells read "n/a".
See benchmarks/README.md for results.
"""

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np
from _machine import machine_facts

# Benchmark the checkout this file lives in, not some installed copy.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THIS_FILE = os.path.abspath(__file__)

EMBEDDING = 16
ATTENTION = 16
ALPHA = 1e-4  # L2 on the attention network's W, as AFMClassifier's default
LEARNING_RATE = 0.01  # Adam, as AFMClassifier's default
SEED = 0
BATCH_SIZES = (256, 1024)
SHAPES = ("telco", "frappe")

TELCO_ROWS = 7_043
TELCO_COLUMNS = 19
# Frappe's ten context fields and their numbers of distinct values (5,382 in all).
FRAPPE_FIELDS = (
    ("user", 957),
    ("item", 4082),
    ("daytime", 7),
    ("weekday", 7),
    ("isweekend", 2),
    ("homework", 3),
    ("cost", 2),
    ("weather", 9),
    ("country", 80),
    ("city", 233),
)
FRAPPE_ROWS = 200_000
FRAPPE_QUICK_ROWS = 20_000

# Targets of the issue (ratios measured in the same run).
TARGET_TRAIN_VS_DEEPCTR = 5.0
TARGET_TRAIN_VS_NAIVE = 10.0
TARGET_PREDICT_VS_DEEPCTR = 3.0
TARGET_IMPORT_S = 0.5
TARGET_TELCO_S = 5.0
TARGET_TELCO_AUC = 0.847  # the article's model

DEEPCTR_INSTALL = 'pip install deepctr==0.9.4 "tf_keras~=2.21.0"'


# -- data (identical in every worker: numpy only, fixed seed) --------------------------


def make_telco(rows=TELCO_ROWS, seed=SEED):
    """Telco-shaped dense data: ``rows`` x 19 standard-normal float32 columns.

    The label follows a planted rule with two pairwise interactions and two
    main effects, ``1.5 x0 x1 - x2 x3 + 0.5 x4 - 0.5 x5``, plus logistic noise.
    No entry is 0, so every row has all 19 features and all 171 pairs.
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, TELCO_COLUMNS), dtype=np.float32)
    score = 1.5 * X[:, 0] * X[:, 1] - X[:, 2] * X[:, 3] + 0.5 * X[:, 4] - 0.5 * X[:, 5]
    y = (score + rng.logistic(size=rows) > 0).astype(np.int64)
    return X, y


def make_frappe(rows=FRAPPE_ROWS, seed=SEED):
    """Frappe-shaped data: integer codes of 10 fields with Frappe's cardinalities.

    Codes are uniform within each field (with 200,000 rows every one of the
    5,382 values occurs).  Each code of ``user``, ``item`` and ``daytime`` gets
    a random sign ``s``; the label is ``1.5 s_user s_item + s_daytime +
    logistic noise > 0``.

    Returns
    -------
    codes : ndarray of int32, shape (rows, 10)
        Code of each field, in ``range(cardinality)``.
    y : ndarray of int64
    """
    rng = np.random.default_rng(seed)
    sizes = np.array([size for _, size in FRAPPE_FIELDS])
    codes = (rng.random((rows, len(sizes))) * sizes).astype(np.int32)
    signs = [rng.choice(np.array([-1.0, 1.0]), size=size) for size in sizes[:3]]
    score = 1.5 * signs[0][codes[:, 0]] * signs[1][codes[:, 1]] + signs[2][codes[:, 2]]
    y = (score + rng.logistic(size=rows) > 0).astype(np.int64)
    return codes, y


def frappe_offsets():
    sizes = [size for _, size in FRAPPE_FIELDS]
    return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int32)


def frappe_dataframe(codes):
    """The codes as a DataFrame of ``category`` columns (ours' native categorical path)."""
    import pandas as pd

    return pd.DataFrame(
        {
            name: pd.Categorical.from_codes(codes[:, j], categories=np.arange(size))
            for j, (name, size) in enumerate(FRAPPE_FIELDS)
        }
    )


def frappe_csr(codes):
    """The codes as a one-hot CSR matrix of shape (rows, 5382), 10 non-zeros per row."""
    import scipy.sparse as sp

    rows, fields = codes.shape
    n_features = sum(size for _, size in FRAPPE_FIELDS)
    indices = (codes + frappe_offsets()).reshape(-1)
    indptr = np.arange(0, rows * fields + 1, fields)
    data = np.ones(rows * fields, dtype=np.float32)
    return sp.csr_array((data, indices, indptr), shape=(rows, n_features))


def load_shape(shape, quick):
    if shape == "telco":
        return make_telco()
    return make_frappe(FRAPPE_QUICK_ROWS if quick else FRAPPE_ROWS)


def epochs_for(shape, quick):
    """(warm-up epochs, timed epochs): small epochs are noisier, so they get more."""
    if quick:
        return 1, 2
    return (1, 10) if shape == "telco" else (1, 3)


def predict_repeats(quick, shape="frappe"):
    """Timed prediction calls (after one warm-up call); the 7,043-row calls get more."""
    if quick:
        return 1
    return 10 if shape == "telco" else 3


# -- measuring helpers -----------------------------------------------------------------


def median(values):
    return float(statistics.median(values)) if values else float("nan")


def timed(function):
    start = time.perf_counter()
    out = function()
    return time.perf_counter() - start, out


def train_auc(y, proba):
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, np.asarray(proba).ravel()))


def _version(package):
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def emit(result):
    """Print the worker's result as the last line of stdout."""
    result.setdefault("loadavg_end", list(os.getloadavg()))
    print(json.dumps(result), flush=True)


def epoch_timer_callback(keras_module, times):
    """A Keras callback that appends each epoch's wall time to ``times``."""

    class EpochTimer(keras_module.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self._start)

    return EpochTimer()


# -- worker: ours (sklearn_afm) --------------------------------------------------------


def worker_ours(args):
    sys.path.insert(0, REPO_ROOT)
    from sklearn.exceptions import ConvergenceWarning

    import sklearn_afm
    from sklearn_afm import AFMClassifier
    from sklearn_afm._engine import import_tensorflow

    tf = import_tensorflow()
    warnings.simplefilter("ignore", ConvergenceWarning)
    X_raw, y = load_shape(args.shape, args.quick)
    n = X_raw.shape[0]
    if args.shape == "telco":
        X, categorical, path = X_raw, None, "ndarray float32, 19 numeric columns"
    elif args.input == "csr":
        X, categorical, path = frappe_csr(X_raw), None, "one-hot CSR, 5,382 columns"
    else:
        X, categorical = frappe_dataframe(X_raw), "from_dtype"
        path = "DataFrame of 10 category columns (categorical_features)"
    warm, timed_epochs = epochs_for(args.shape, args.quick)
    estimator = AFMClassifier(
        embedding_size=EMBEDDING,
        attention_size=ATTENTION,
        alpha=ALPHA,
        learning_rate_init=LEARNING_RATE,
        batch_size=args.batch_size,
        max_iter=1,
        early_stopping=False,
        warm_start=True,
        categorical_features=categorical,
        random_state=SEED,
    )
    # Public API: each warm-started fit() call is one epoch, plus its fixed
    # costs (validating and encoding X, and the forward pass over all rows
    # that computes attention_weights_).
    fit_times = [timed(lambda: estimator.fit(X, y))[0] for _ in range(warm + timed_epochs)]
    result = {
        "impl": "ours",
        "shape": args.shape,
        "batch_size": args.batch_size,
        "rows": n,
        "input": path,
        "sklearn_afm": sklearn_afm.__version__,
        "tensorflow": tf.__version__,
        "first_fit_s": fit_times[0],
        "fit_epoch_s": fit_times[warm:],
        "fit_rows_per_s": n / median(fit_times[warm:]),
    }
    # Engine level: the pure training epoch (batching + compiled train steps),
    # which is what the table reports.  This reaches into private API; if it
    # changed, the fit() figure above stands in.
    try:
        from sklearn_afm._batching import FieldMatrix

        engine = estimator._engine
        source = estimator._row_source(X, reset=False)
        if isinstance(source, FieldMatrix):
            from sklearn_afm._encoding import STAND_IN_RATE

            source = source.with_stand_ins(STAND_IN_RATE, np.random.RandomState(SEED))
        codes = estimator._encode_targets(y, reset=False)
        weight = np.ones(n, dtype=np.float32)
        rng = np.random.RandomState(SEED)
        epoch_times = []
        for _ in range(warm + timed_epochs):
            order = rng.permutation(n)
            epoch_times.append(
                timed(lambda: engine.train_epoch(source, codes, weight, args.batch_size, order))[0]
            )
        result["epoch_s"] = epoch_times[warm:]
        result["train_rows_per_s"] = n / median(epoch_times[warm:])
        result["train_level"] = "Engine.train_epoch"
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            order = rng.permutation(n)
            profiler.enable()
            engine.train_epoch(source, codes, weight, args.batch_size, order)
            profiler.disable()
            print("cProfile of one Engine.train_epoch (top 20 by internal time):", file=sys.stderr)
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(20)
            order = rng.permutation(n)
            tf_op_profile(
                tf,
                lambda: engine.train_epoch(source, codes, weight, args.batch_size, order),
                steps=-(-n // args.batch_size),
            )
    except Exception as error:  # noqa: BLE001 - report, fall back to fit()
        result["engine_error"] = f"{type(error).__name__}: {error}"
        result["train_rows_per_s"] = result["fit_rows_per_s"]
        result["train_level"] = "fit() (engine level failed)"
    predict_times = [
        timed(lambda: estimator.predict_proba(X))[0]
        for _ in range(1 + predict_repeats(args.quick, args.shape))
    ]
    result["predict_s"] = predict_times[1:]
    result["predict_rows_per_s"] = n / median(predict_times[1:])
    result["train_auc"] = train_auc(y, estimator.predict_proba(X)[:, 1])
    emit(result)


def tf_op_profile(tf, run, steps, top=15):
    """Run ``run()`` under TensorFlow's profiler; print kernel time per op type to stderr.

    Reads the profiler's XSpace protobuf with the parser TensorFlow ships
    (no TensorBoard needed).  Kernel events on the ``tf_Compute`` threads are
    named ``op_name:OpType``; ``ExecutorState::Process`` events enclose them,
    so their difference is the executor's own overhead.
    """
    import collections
    import glob
    import re
    import tempfile

    try:
        from tensorflow.tsl.profiler.protobuf import xplane_pb2
    except ImportError as error:
        print(f"TensorFlow profile unavailable: {error}", file=sys.stderr)
        return
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        seconds, _ = timed(run)
        tf.profiler.experimental.stop()
        files = sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))
        if not files:
            print("TensorFlow profile: no trace was written", file=sys.stderr)
            return
        space = xplane_pb2.XSpace()
        with open(files[-1], "rb") as trace:
            space.ParseFromString(trace.read())
    kernel = re.compile(r"^[^:]+:(\w+)$")
    by_type, kernels, executor = collections.Counter(), 0, 0.0
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                match = kernel.match(name)
                if match:
                    by_type[match.group(1)] += event.duration_ps / 1e12
                    kernels += 1
                elif name == "ExecutorState::Process":
                    executor += event.duration_ps / 1e12
    busy = sum(by_type.values())
    print(
        f"\nTensorFlow profile of one epoch ({seconds:.2f} s wall, {steps} steps): "
        f"{kernels / steps:.0f} kernel events per step on the intra-op threads (an op "
        f"split across threads counts more than once; small ops run inline and are not "
        f"counted), kernel time {busy:.2f} s summed over those threads, "
        f"executor time around them {executor:.2f} s "
        f"({max(executor - busy, 0) / max(executor, 1e-12):.0%} of it outside kernels)",
        file=sys.stderr,
    )
    for op_type, op_seconds in by_type.most_common(top):
        print(f"  {op_seconds:7.3f} s {op_seconds / busy:6.1%}  {op_type}", file=sys.stderr)


# -- worker: DeepCTR 0.9.4 -------------------------------------------------------------


def deepctr_inputs(shape, X_raw, variant):
    """Build DeepCTR's feature columns and input dict for the same data.

    DeepCTR's AFM forms pairs only between embedded (sparse) features;
    ``DenseFeat`` is refused in its interaction part.  For the telco shape the
    ``weighted`` variant gives each numeric column ``j`` a one-entry
    ``VarLenSparseFeat`` (vocabulary {1}, ``combiner="sum"``) whose embedding
    is multiplied by the column's value (``weight_name``): exactly the
    ``v_j x_j`` of the FM/AFM definition and of sklearn_afm; the linear part
    is one ``DenseFeat`` of the 19 values.  The ``bucketized`` variant is the
    usual DeepCTR recipe instead: each column cut into 10 quantile bins, a
    ``SparseFeat`` each (a different model, kept as a speed reference).
    """
    from deepctr.feature_column import DenseFeat, SparseFeat, VarLenSparseFeat

    n = X_raw.shape[0]
    if shape == "frappe":
        columns = [
            SparseFeat(name, vocabulary_size=size, embedding_dim=EMBEDDING)
            for name, size in FRAPPE_FIELDS
        ]
        inputs = {name: X_raw[:, j] for j, (name, _) in enumerate(FRAPPE_FIELDS)}
        return columns, columns, inputs
    names = [f"x{j}" for j in range(X_raw.shape[1])]
    if variant == "bucketized":
        bins = 10
        edges = np.quantile(X_raw, np.linspace(0, 1, bins + 1)[1:-1], axis=0)
        columns = [
            SparseFeat(name, vocabulary_size=bins, embedding_dim=EMBEDDING) for name in names
        ]
        inputs = {
            name: np.searchsorted(edges[:, j], X_raw[:, j]).astype(np.int32)
            for j, name in enumerate(names)
        }
        return columns, columns, inputs
    interaction = [
        VarLenSparseFeat(
            SparseFeat(name, vocabulary_size=2, embedding_dim=EMBEDDING),
            maxlen=1,
            combiner="sum",
            weight_name=name + "_value",
            weight_norm=False,
        )
        for name in names
    ]
    linear = [DenseFeat("values", X_raw.shape[1])]
    # Index 0 is DeepCTR's sequence padding (masked), so each column's one
    # feature is index 1.
    inputs = {"values": X_raw}
    for j, name in enumerate(names):
        inputs[name] = np.ones((n, 1), dtype=np.int32)
        inputs[name + "_value"] = X_raw[:, j].reshape(n, 1, 1)
    return linear, interaction, inputs


def worker_deepctr(args):
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        # DeepCTR 0.9.4 needs Keras 2 (tf_keras) behind tf.keras.
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
    try:
        import deepctr
        import tensorflow as tf
        from deepctr.models import AFM
    except Exception as error:  # noqa: BLE001
        emit(
            {
                "impl": "deepctr",
                "shape": args.shape,
                "batch_size": args.batch_size,
                "error": f"{type(error).__name__}: {error} (install: {DEEPCTR_INSTALL})",
            }
        )
        return
    keras = tf.keras
    X_raw, y = load_shape(args.shape, args.quick)
    n = X_raw.shape[0]
    linear, interaction, inputs = deepctr_inputs(args.shape, X_raw, args.variant)
    tf.keras.utils.set_random_seed(SEED)
    model = AFM(
        linear,
        interaction,
        attention_factor=ATTENTION,
        l2_reg_linear=0.0,
        l2_reg_embedding=0.0,
        l2_reg_att=ALPHA,
        afm_dropout=0.0,
        seed=SEED,
        task="binary",
    )
    model.compile(keras.optimizers.Adam(LEARNING_RATE), "binary_crossentropy")
    warm, timed_epochs = epochs_for(args.shape, args.quick)
    epoch_times = []
    model.fit(
        inputs,
        y.astype(np.float32),
        batch_size=args.batch_size,
        epochs=warm + timed_epochs,
        shuffle=True,
        verbose=0,
        callbacks=[epoch_timer_callback(keras, epoch_times)],
    )
    predict = lambda: model.predict(inputs, batch_size=args.batch_size, verbose=0)  # noqa: E731
    predict_times = [timed(predict)[0] for _ in range(1 + predict_repeats(args.quick, args.shape))]
    emit(
        {
            "impl": "deepctr",
            "variant": args.variant if args.shape == "telco" else "sparse",
            "shape": args.shape,
            "batch_size": args.batch_size,
            "rows": n,
            "deepctr": deepctr.__version__,
            "tensorflow": tf.__version__,
            "tf_keras": _version("tf_keras"),
            "legacy_keras": os.environ.get("TF_USE_LEGACY_KERAS"),
            "first_epoch_s": epoch_times[0],
            "epoch_s": epoch_times[warm:],
            "train_rows_per_s": n / median(epoch_times[warm:]),
            "predict_s": predict_times[1:],
            "predict_rows_per_s": n / median(predict_times[1:]),
            "train_auc": train_auc(y, predict()),
        }
    )


# -- worker: naive "all m^2 pairs with a triangular mask" AFM --------------------------


def build_naive(keras, n_fields, n_features=None):
    """The article's formulation: all ``m x m`` products, upper triangle kept by a mask.

    The ``(batch, m, m, d)`` tensor of every product ``e_i * e_j`` is formed,
    the diagonal and lower triangle are multiplied by 0, and the attention
    softmax runs over all ``m^2`` entries: the masked zero vectors still get a
    score (``h^T ReLU(b)``) and a share of the softmax.  The embedding ``e_i``
    is ``v_i x_i`` for dense columns (``n_features=None``), or the looked-up
    embedding of each field's code for categorical fields.
    """
    from keras import ops

    class NaiveAFM(keras.Model):
        def __init__(self):
            super().__init__()
            init = keras.initializers
            if n_features is None:
                self.v = self.add_weight(
                    shape=(n_fields, EMBEDDING),
                    initializer=init.RandomNormal(stddev=0.1, seed=SEED),
                    name="v",
                )
                self.w = self.add_weight(shape=(n_fields, 1), initializer="zeros", name="w")
            else:
                self.embedding = keras.layers.Embedding(
                    n_features,
                    EMBEDDING,
                    embeddings_initializer=init.RandomNormal(stddev=0.1, seed=SEED),
                )
                self.linear = keras.layers.Embedding(n_features, 1, embeddings_initializer="zeros")
            self.hidden = keras.layers.Dense(
                ATTENTION, activation="relu", kernel_regularizer=keras.regularizers.L2(ALPHA)
            )
            self.score = keras.layers.Dense(1, use_bias=False)
            self.projection = keras.layers.Dense(1)
            mask = np.triu(np.ones((n_fields, n_fields), dtype=np.float32), 1)
            self.mask = mask.reshape(1, n_fields, n_fields, 1)

        def call(self, x):
            if n_features is None:
                e = ops.expand_dims(x, -1) * self.v  # (b, m, d)
                linear = ops.matmul(x, self.w)
            else:
                e = self.embedding(x)
                linear = ops.sum(self.linear(x), axis=1)
            pairs = ops.expand_dims(e, 2) * ops.expand_dims(e, 1) * self.mask  # (b, m, m, d)
            pairs = ops.reshape(pairs, (-1, n_fields * n_fields, EMBEDDING))
            attention = ops.softmax(self.score(self.hidden(pairs)), axis=1)  # (b, m^2, 1)
            pooled = ops.sum(attention * pairs, axis=1)
            return self.projection(pooled) + linear

    return NaiveAFM()


def worker_naive(args):
    os.environ.pop("TF_USE_LEGACY_KERAS", None)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(SEED)
    X_raw, y = load_shape(args.shape, args.quick)
    n = X_raw.shape[0]
    if args.shape == "telco":
        X, model = X_raw, build_naive(keras, X_raw.shape[1])
    else:
        X = X_raw + frappe_offsets()
        model = build_naive(keras, X.shape[1], sum(size for _, size in FRAPPE_FIELDS))
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
    )
    warm, timed_epochs = epochs_for(args.shape, args.quick)
    epoch_times = []
    model.fit(
        X,
        y.astype(np.float32),
        batch_size=args.batch_size,
        epochs=warm + timed_epochs,
        shuffle=True,
        verbose=0,
        callbacks=[epoch_timer_callback(keras, epoch_times)],
    )
    predict = lambda: model.predict(X, batch_size=args.batch_size, verbose=0)  # noqa: E731
    predict_times = [timed(predict)[0] for _ in range(1 + predict_repeats(args.quick, args.shape))]
    emit(
        {
            "impl": "naive",
            "shape": args.shape,
            "batch_size": args.batch_size,
            "rows": n,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "first_epoch_s": epoch_times[0],
            "epoch_s": epoch_times[warm:],
            "train_rows_per_s": n / median(epoch_times[warm:]),
            "predict_s": predict_times[1:],
            "predict_rows_per_s": n / median(predict_times[1:]),
            "train_auc": train_auc(y, predict()),
        }
    )


# -- worker: the Telco case study end to end -------------------------------------------


def worker_telco(args):
    sys.path.insert(0, REPO_ROOT)
    start = time.perf_counter()
    import tensorflow as tf  # noqa: F401 - imported first, not part of the timing

    tf_import_s = time.perf_counter() - start
    # The clock starts here: everything after "import tensorflow" counts.
    clock = time.perf_counter()
    import sklearn_afm
    from sklearn.compose import make_column_selector, make_column_transformer
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    imports_s = time.perf_counter() - clock
    splits = [10] if args.quick else [10, 11, 12, 13, 14]
    runs = []
    for split in splits:
        phase = {}
        t = time.perf_counter()
        X, y = sklearn_afm.load_telco_churn(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.1, random_state=split)
        phase["load_s"] = time.perf_counter() - t
        t = time.perf_counter()
        # As examples/plot_telco_churn.py: scale the numeric columns, pass the
        # 15 string columns through as categorical.
        preprocess = make_column_transformer(
            (StandardScaler(), make_column_selector(dtype_include="number")),
            remainder="passthrough",
            verbose_feature_names_out=False,
        ).set_output(transform="pandas")
        model = make_pipeline(preprocess, sklearn_afm.AFMClassifier(random_state=0))
        phase["build_s"] = time.perf_counter() - t
        t = time.perf_counter()
        model.fit(X_train, y_train)
        phase["fit_s"] = time.perf_counter() - t
        t = time.perf_counter()
        proba = model.predict_proba(X_test)[:, 1]
        accuracy = model.score(X_test, y_test)
        phase["score_s"] = time.perf_counter() - t
        afm = model[-1]
        runs.append(
            {
                "split": split,
                **phase,
                "total_s": sum(phase.values()),
                "auc": float(roc_auc_score(y_test, proba)),
                "accuracy": float(accuracy),
                "n_iter": int(afm.n_iter_),
            }
        )
        if split == splits[0]:
            # The first case study in the process: sklearn_afm's and
            # scikit-learn's imports, load, Pipeline, fit (incl. building and
            # tracing the model), score.
            end_to_end_s = time.perf_counter() - clock
    first = runs[0]
    emit(
        {
            "impl": "telco",
            "tf_import_s": tf_import_s,
            "imports_s": imports_s,
            "end_to_end_s": end_to_end_s,
            "auc": first["auc"],
            "runs": runs,
            "mean_auc": float(np.mean([r["auc"] for r in runs])),
            "mean_total_s": float(np.mean([r["total_s"] for r in runs])),
        }
    )


# -- worker: import time ---------------------------------------------------------------


def worker_import(args):
    """Time ``import sklearn_afm`` (and, for reference, importing the estimator) in fresh
    processes, and check that neither imports TensorFlow or Keras."""
    template = (
        "import sys, time; sys.path.insert(0, {root!r}); t = time.perf_counter(); "
        "{statement}; t = time.perf_counter() - t; "
        "print(t, 'tensorflow' in sys.modules or 'keras' in sys.modules)"
    )
    result = {"impl": "import"}
    for key, statement in (
        ("import", "import sklearn_afm"),
        ("estimator", "from sklearn_afm import AFMClassifier"),
    ):
        code = template.format(root=REPO_ROOT, statement=statement)
        times, heavy = [], []
        for _ in range(2 if args.quick else 5):
            out = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
            ).stdout.split()
            times.append(float(out[0]))
            heavy.append(out[1] == "True")
        result[f"{key}_s"] = times
        result[f"median_{key}_s"] = median(times)
        result[f"{key}_loads_tensorflow_or_keras"] = any(heavy)
    emit(result)


# -- worker: the machine's arithmetic peak ---------------------------------------------


def flops_per_row(fields, d=EMBEDDING, t=ATTENTION):
    """Floating-point operations of one row in one training step (forward + backward).

    Forward, per row with ``m`` fields and ``P = m (m - 1) / 2`` pairs: value
    scaling ``m d``, products ``P d``, attention hidden layer ``P (2 d t + 2 t)``
    (matmul, bias, ReLU), scores ``2 P t``, softmax ``~5 P``, pooling ``2 P d``,
    projection ``2 d``, linear part ``2 m``.  Backward costs about twice the
    forward pass (a gradient for each operand of every product and matmul),
    so a training step is about 3 x forward.
    """
    pairs = fields * (fields - 1) // 2
    forward = (
        fields * d
        + pairs * d
        + pairs * (2 * d * t + 2 * t)
        + 2 * pairs * t
        + 5 * pairs
        + 2 * pairs * d
        + 2 * d
        + 2 * fields
    )
    return 3 * forward, forward


def worker_peak(args):
    """Measure float32 GEMM throughput with TensorFlow: a large square matmul, and
    the attention layer's own shape ((batch x pairs) x 16 by 16 x 16)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    def gflops(a, b, repeats):
        matmul = tf.function(lambda a, b: tf.matmul(a, b))
        matmul(a, b).numpy()
        start = time.perf_counter()
        for _ in range(repeats):
            out = matmul(a, b)
        out.numpy()
        seconds = (time.perf_counter() - start) / repeats
        return 2.0 * a.shape[0] * a.shape[1] * b.shape[1] / seconds / 1e9

    rng = np.random.default_rng(SEED)
    big = tf.constant(rng.standard_normal((2048, 2048), dtype=np.float32))
    pairs = 45
    skinny = tf.constant(rng.standard_normal((1024 * pairs, EMBEDDING), dtype=np.float32))
    small = tf.constant(rng.standard_normal((EMBEDDING, ATTENTION), dtype=np.float32))
    emit(
        {
            "impl": "peak",
            "gemm_2048_gflops": gflops(big, big, 5 if args.quick else 20),
            "gemm_attention_shape_gflops": gflops(skinny, small, 50 if args.quick else 200),
        }
    )


WORKERS = {
    "ours": worker_ours,
    "deepctr": worker_deepctr,
    "naive": worker_naive,
    "telco": worker_telco,
    "import": worker_import,
    "peak": worker_peak,
}


# -- driver ----------------------------------------------------------------------------


def run_worker(worker, args, shape=None, batch_size=None, extra=(), timeout=600):
    """Run one worker in a fresh process; return its JSON result (or an error)."""
    command = [sys.executable, THIS_FILE, "--worker", worker]
    if shape is not None:
        command += ["--shape", shape, "--batch-size", str(batch_size)]
    if args.quick:
        command.append("--quick")
    command += list(extra)
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if worker == "deepctr":
        env["TF_USE_LEGACY_KERAS"] = "1"
    else:
        env.pop("TF_USE_LEGACY_KERAS", None)
    label = " ".join(command[2:])
    print(f"  running {label} ...", end="", flush=True)
    start = time.perf_counter()
    load = list(os.getloadavg())
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        print(f" timed out after {timeout} s")
        return {"error": f"timed out after {timeout} s"}
    seconds = time.perf_counter() - start
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        print(f" failed ({seconds:.0f} s)")
        return {"error": f"exit {done.returncode}: {' | '.join(tail)}"}
    result = json.loads(lines[-1])
    result["worker_s"] = seconds
    result["loadavg_start"] = load
    if args.verbose and done.stderr.strip():
        print("\n" + done.stderr)
    print(f" {seconds:.0f} s" + (f" ({result['error']})" if "error" in result else ""))
    return result


def fmt_rate(result, key):
    if not result or "error" in result or key not in result:
        return "n/a"
    return f"{result[key]:,.0f}"


def fmt_ratio(ours, other, key):
    try:
        return f"{ours[key] / other[key]:.2f}x"
    except (KeyError, TypeError, ZeroDivisionError):
        return "n/a"


def fmt_fit_ratio(ours, deep):
    """ours' fit()-level epochs against DeepCTR's epochs."""
    try:
        return f"{ours['fit_rows_per_s'] / deep['train_rows_per_s']:.2f}x"
    except (KeyError, TypeError, ZeroDivisionError):
        return "n/a"


def step_cost(result_small, result_large):
    """Split ours' time per training step into a fixed part and a part per row.

    From the epochs at two batch sizes: ``seconds per step = fixed + per_row x batch``.
    """
    try:
        points = []
        for result in (result_small, result_large):
            steps = -(-result["rows"] // result["batch_size"])
            points.append(
                (result["batch_size"], result["rows"] / result["train_rows_per_s"] / steps)
            )
        (b1, t1), (b2, t2) = points
        per_row = (t2 - t1) / (b2 - b1)
        return t1 - per_row * b1, per_row
    except (KeyError, TypeError, ZeroDivisionError, ValueError):
        return None


def verdict(value, target, higher_is_better=True):
    if value is None or value != value:
        return "n/a"
    return "yes" if (value >= target if higher_is_better else value < target) else "NO"


def ratio(ours, other, key):
    try:
        return ours[key] / other[key]
    except (KeyError, TypeError, ZeroDivisionError):
        return None


def versions():
    from importlib.metadata import PackageNotFoundError, version

    parts = [f"Python {platform.python_version()}"]
    for name in ("tensorflow", "keras", "tf_keras", "deepctr", "scikit-learn", "numpy"):
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} not installed")
    return ", ".join(parts)


def checkout_state():
    """The commit of the checkout being benchmarked, and whether sklearn_afm/ has local edits."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "sklearn_afm"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return f"commit {commit}" + (" + uncommitted changes in sklearn_afm/" if dirty else "")


def driver(args):
    command = shlex.join(getattr(sys, "orig_argv", [sys.executable] + sys.argv))
    start = time.perf_counter()
    print(f"command: {command}")
    print(f"machine: {machine_facts()}")
    print(f"versions: {versions()}")
    args.checkout_at_start = checkout_state()
    print(f"sklearn_afm: {args.checkout_at_start}")
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    impls = args.impls.split(",")
    results = {}
    print("workers (each in its own process):")
    results["import"] = run_worker("import", args)
    for shape in args.shapes.split(","):
        for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
            for impl in impls:
                extra = ()
                if impl == "deepctr" and shape == "telco":
                    extra = ("--variant", "weighted")
                results[(impl, shape, batch_size)] = run_worker(
                    impl, args, shape, batch_size, extra
                )
            if "deepctr" in impls and shape == "telco" and args.deepctr_bucketized:
                results[("deepctr-bucketized", shape, batch_size)] = run_worker(
                    "deepctr", args, shape, batch_size, ("--variant", "bucketized")
                )
            if "ours" in impls and shape == "frappe" and args.csr:
                results[("ours-csr", shape, batch_size)] = run_worker(
                    "ours", args, shape, batch_size, ("--input", "csr")
                )
    results["telco"] = run_worker("telco", args)
    results["peak"] = run_worker("peak", args)
    elapsed = time.perf_counter() - start
    print_table(args, results, command, elapsed)
    if args.json:
        serialisable = {
            (k if isinstance(k, str) else "/".join(map(str, k))): v for k, v in results.items()
        }
        with open(args.json, "w") as out:
            json.dump(serialisable, out, indent=1)
        print(f"raw results written to {args.json}")


def print_table(args, results, command, elapsed):
    frappe_rows = FRAPPE_QUICK_ROWS if args.quick else FRAPPE_ROWS
    shape_names = {
        "telco": f"Telco {TELCO_ROWS:,} x 19 dense",
        "frappe": f"Frappe {frappe_rows:,} x 10 fields",
    }
    lines = [
        "| figure | ours | DeepCTR 0.9.4 | naive m² | ours / DeepCTR | ours / naive "
        "| target | met |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    shapes = args.shapes.split(",")
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    for phase, key in (("train", "train_rows_per_s"), ("predict", "predict_rows_per_s")):
        for shape in shapes:
            for batch_size in batch_sizes:
                ours = results.get(("ours", shape, batch_size))
                deep = results.get(("deepctr", shape, batch_size))
                naive = results.get(("naive", shape, batch_size))
                vs_deep, vs_naive = ratio(ours, deep, key), ratio(ours, naive, key)
                if phase == "train":
                    target = f"≥ {TARGET_TRAIN_VS_DEEPCTR:g}x DeepCTR"
                    met = [verdict(vs_deep, TARGET_TRAIN_VS_DEEPCTR)]
                    if shape == "telco":
                        target += f", ≥ {TARGET_TRAIN_VS_NAIVE:g}x naive"
                        met.append(verdict(vs_naive, TARGET_TRAIN_VS_NAIVE))
                else:
                    target = f"≥ {TARGET_PREDICT_VS_DEEPCTR:g}x DeepCTR"
                    met = [verdict(vs_deep, TARGET_PREDICT_VS_DEEPCTR)]
                lines.append(
                    f"| {phase} rows/s, {shape_names[shape]}, batch {batch_size} "
                    f"| {fmt_rate(ours, key)} | {fmt_rate(deep, key)} | {fmt_rate(naive, key)} "
                    f"| {fmt_ratio(ours, deep, key)} | {fmt_ratio(ours, naive, key)} "
                    f"| {target} | {', '.join(met)} |"
                )
    # Secondary figures of the same run.
    for shape in shapes:
        for batch_size in batch_sizes:
            ours = results.get(("ours", shape, batch_size))
            deep = results.get(("deepctr", shape, batch_size))
            lines.append(
                f"| train rows/s via `fit()` (warm-started 1-epoch calls), {shape}, "
                f"batch {batch_size} | {fmt_rate(ours, 'fit_rows_per_s')} "
                f"| {fmt_rate(deep, 'train_rows_per_s')} | | "
                f"{fmt_fit_ratio(ours, deep)} | | | |"
            )
    for batch_size in batch_sizes:
        bucket = results.get(("deepctr-bucketized", "telco", batch_size))
        ours = results.get(("ours", "telco", batch_size))
        if bucket is not None:
            lines.append(
                f"| train / predict rows/s, telco, batch {batch_size}, DeepCTR with 10-bin "
                f"SparseFeat per column | {fmt_rate(ours, 'train_rows_per_s')} / "
                f"{fmt_rate(ours, 'predict_rows_per_s')} "
                f"| {fmt_rate(bucket, 'train_rows_per_s')} / "
                f"{fmt_rate(bucket, 'predict_rows_per_s')} | | "
                f"{fmt_ratio(ours, bucket, 'train_rows_per_s')} / "
                f"{fmt_ratio(ours, bucket, 'predict_rows_per_s')} | | | |"
            )
    for batch_size in batch_sizes:
        csr = results.get(("ours-csr", "frappe", batch_size))
        if csr is not None:
            lines.append(
                f"| train / predict rows/s, frappe as one-hot CSR (5,382 columns), batch "
                f"{batch_size} | {fmt_rate(csr, 'train_rows_per_s')} / "
                f"{fmt_rate(csr, 'predict_rows_per_s')} | | | | | | |"
            )
    imp = results.get("import") or {}
    if "median_import_s" in imp:
        heavy = " (loads TensorFlow!)" if imp["import_loads_tensorflow_or_keras"] else ""
        lines.append(
            f"| `import sklearn_afm`, fresh process (median of {len(imp['import_s'])}){heavy} "
            f"| {imp['median_import_s']:.4f} s | | | | | < {TARGET_IMPORT_S:g} s "
            f"| {verdict(imp['median_import_s'], TARGET_IMPORT_S, higher_is_better=False)} |"
        )
        heavy = " (loads TensorFlow!)" if imp["estimator_loads_tensorflow_or_keras"] else ""
        lines.append(
            f"| `from sklearn_afm import AFMClassifier` (imports scikit-learn), fresh process"
            f"{heavy} | {imp['median_estimator_s']:.2f} s | | | | | (none) | |"
        )
    else:
        lines.append(f"| `import sklearn_afm` | n/a ({imp.get('error', 'not run')}) | | | | | | |")
    telco = results.get("telco") or {}
    if "end_to_end_s" in telco:
        first = telco["runs"][0]
        lines.append(
            f"| Telco case study end to end after `import tensorflow` (split 10: imports "
            f"{telco['imports_s']:.2f} + load {first['load_s']:.2f} + Pipeline "
            f"{first['build_s']:.2f} + fit {first['fit_s']:.1f} ({first['n_iter']} epochs) "
            f"+ score {first['score_s']:.2f} s) "
            f"| {telco['end_to_end_s']:.1f} s | | | | | < {TARGET_TELCO_S:g} s "
            f"| {verdict(telco['end_to_end_s'], TARGET_TELCO_S, higher_is_better=False)} |"
        )
        lines.append(
            f"| Telco test ROC AUC, split 10 | {telco['auc']:.4f} | | | | | "
            f"≥ {TARGET_TELCO_AUC} | {verdict(telco['auc'], TARGET_TELCO_AUC)} |"
        )
        if len(telco["runs"]) > 1:
            per_split = ", ".join(f"{r['total_s']:.1f}" for r in telco["runs"])
            aucs = ", ".join(f"{r['auc']:.3f}" for r in telco["runs"])
            lines.append(
                f"| Telco splits 10-14: mean ROC AUC ({aucs}); seconds per split ({per_split}) "
                f"| {telco['mean_auc']:.4f}; {telco['mean_total_s']:.1f} s | | | | | "
                f"≥ {TARGET_TELCO_AUC} | {verdict(telco['mean_auc'], TARGET_TELCO_AUC)} |"
            )
    else:
        lines.append(f"| Telco case study | n/a ({telco.get('error', 'not run')}) | | | | | | |")
    peak = results.get("peak") or {}
    ours_1024 = results.get(("ours", "frappe", 1024)) or {}
    step_flops, _ = flops_per_row(len(FRAPPE_FIELDS))
    if "gemm_2048_gflops" in peak and "train_rows_per_s" in ours_1024:
        achieved = ours_1024["train_rows_per_s"] * step_flops / 1e9
        lines.append(
            f"| arithmetic, frappe batch 1024: {step_flops / 1e3:.0f} kFLOP/row/step x ours' "
            f"rows/s = achieved GFLOP/s; bound = measured 2048² GEMM "
            f"{peak['gemm_2048_gflops']:.0f} GFLOP/s (attention-shaped GEMM "
            f"{peak['gemm_attention_shape_gflops']:.0f}) → rows/s bound "
            f"{peak['gemm_2048_gflops'] * 1e9 / step_flops:,.0f} "
            f"| {achieved:.2f} GFLOP/s = {achieved / peak['gemm_2048_gflops']:.1%} of GEMM peak "
            f"| | | | | | |"
        )
    batch_sizes_sorted = sorted(batch_sizes)
    if len(batch_sizes_sorted) >= 2:
        for shape in shapes:
            split = step_cost(
                results.get(("ours", shape, batch_sizes_sorted[0])),
                results.get(("ours", shape, batch_sizes_sorted[-1])),
            )
            if split is not None:
                fixed, per_row = split
                _, forward = flops_per_row(
                    TELCO_COLUMNS if shape == "telco" else len(FRAPPE_FIELDS)
                )
                marginal = 3 * forward / per_row / 1e9 if per_row > 0 else float("nan")
                lines.append(
                    f"| ours' training step, {shape}: fixed cost per step + cost per row (fit "
                    f"of batch {batch_sizes_sorted[0]} vs {batch_sizes_sorted[-1]}); "
                    f"marginal GFLOP/s | {fixed * 1e3:.2f} ms + {per_row * 1e6:.2f} µs/row; "
                    f"{marginal:.1f} GFLOP/s | | | | | | |"
                )
    notes = []
    for key, result in results.items():
        if isinstance(result, dict) and "error" in result:
            notes.append(
                f"{key if isinstance(key, str) else '/'.join(map(str, key))}: {result['error']}"
            )
        if isinstance(result, dict) and "engine_error" in result:
            notes.append(
                f"{'/'.join(map(str, key))}: engine-level timing failed "
                f"({result['engine_error']}); its train figure is fit()'s"
            )
    aucs = []
    for key, result in results.items():
        if isinstance(key, tuple) and isinstance(result, dict) and "train_auc" in result:
            aucs.append(f"{key[0]}/{key[1]}/{key[2]} {result['train_auc']:.3f}")
    print("\n== results (all figures measured in this run)")
    print(f"command: {command}")
    print(f"machine: {machine_facts()}")
    print(f"versions: {versions()}")
    checkout = checkout_state()
    if checkout == args.checkout_at_start:
        print(f"sklearn_afm: {checkout}")
    else:
        print(
            f"sklearn_afm: {args.checkout_at_start} at the start, {checkout} at the end: "
            "THE CODE CHANGED DURING THE RUN, the workers did not all measure the same code"
        )
    loads = [
        r["loadavg_start"][0]
        for r in results.values()
        if isinstance(r, dict) and "loadavg_start" in r
    ]
    if loads:
        print(
            f"1-minute load average when the workers started: {min(loads):.2f}-{max(loads):.2f} "
            "(it includes the previous worker of this benchmark)"
        )
    print(
        f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; "
        f"total run {elapsed:.0f} s"
    )
    print()
    print("\n".join(lines))
    print()
    print(
        "train rows/s: median of the timed epochs after 1 warm-up epoch "
        f"({'quick mode, ' if args.quick else ''}"
        f"telco {epochs_for('telco', args.quick)[1]} epochs, frappe "
        f"{epochs_for('frappe', args.quick)[1]} epochs); ours = Engine.train_epoch (batching + "
        "compiled steps), DeepCTR and naive = Keras fit() epochs timed by a callback.  predict "
        f"rows/s: median of {predict_repeats(args.quick, 'telco')} (telco) or "
        f"{predict_repeats(args.quick, 'frappe')} (frappe) calls on all rows after a warm-up "
        "call (ours predict_proba, others model.predict)."
    )
    if aucs:
        print(
            "sanity, train ROC AUC after the timed epochs (ours trained twice as many epochs: "
            "the fit() ones, then the Engine ones; not a quality comparison): " + "; ".join(aucs)
        )
    for note in notes:
        print(f"note: {note}")


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke mode: fewer rows, epochs, repeats"
    )
    parser.add_argument("--impls", default="ours,deepctr,naive", help="implementations to compare")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="telco and/or frappe")
    parser.add_argument("--batch-sizes", default=",".join(map(str, BATCH_SIZES)))
    parser.add_argument(
        "--no-csr",
        dest="csr",
        action="store_false",
        help="skip ours on the one-hot CSR form of frappe",
    )
    parser.add_argument(
        "--no-deepctr-bucketized",
        dest="deepctr_bucketized",
        action="store_false",
        help="skip DeepCTR's bucketized telco variant",
    )
    parser.add_argument("--json", help="also write the raw per-worker results to this file")
    parser.add_argument("--verbose", action="store_true", help="show the workers' stderr")
    # Worker mode.
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--shape", choices=SHAPES, default="telco", help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=256, help=argparse.SUPPRESS)
    parser.add_argument(
        "--variant", choices=["weighted", "bucketized"], default="weighted", help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--input", choices=["dataframe", "csr"], default="dataframe", help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="with --worker ours: cProfile one training epoch (to stderr)",
    )
    args = parser.parse_args(argv)
    if args.worker:
        WORKERS[args.worker](args)
    else:
        driver(args)


if __name__ == "__main__":
    main()
