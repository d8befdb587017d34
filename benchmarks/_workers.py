"""The throughput benchmark's workers for sklearn_afm itself, and their profiling helpers.

- ``worker_ours``: ``AFMClassifier`` on a shape and batch size: warm-started
  one-epoch ``fit()`` calls, then pure training epochs of its engine (the
  table's figure), then ``predict_proba``;
- ``worker_telco``: the Telco case study end to end after ``import tensorflow``;
- ``worker_import``: ``import sklearn_afm`` in fresh interpreters;
- ``worker_peak``: the machine's float32 GEMM throughput, the arithmetic bound.

Each runs in its own process and reports one JSON line (``_measure.emit``).
sklearn_afm is imported from the checkout (``REPO_ROOT``) inside the
workers, never at module level, so that importing this module costs nothing.
"""

import os
import subprocess
import sys
import time
import warnings

import numpy as np
from _machine import REPO_ROOT
from _measure import emit, median, prediction_timings, timed, train_auc
from _shapes import (
    ALPHA,
    ATTENTION,
    EMBEDDING,
    LEARNING_RATE,
    SEED,
    epochs_for,
    frappe_csr,
    frappe_dataframe,
    load_shape,
)

# -- ours (sklearn_afm) ----------------------------------------------------------------


def ours_input(args, X_raw):
    """Return ``(X, categorical_features, description)`` of the input form ``args`` asks for."""
    if args.shape == "telco":
        return X_raw, None, "ndarray float32, 19 numeric columns"
    if args.input == "csr":
        return frappe_csr(X_raw), None, "one-hot CSR, 5,382 columns"
    return (
        frappe_dataframe(X_raw),
        "from_dtype",
        "DataFrame of 10 category columns (categorical_features)",
    )


def engine_epochs(X, categorical_features, y, batch_size):
    """Return ``run(n_epochs)``: pure training epochs, and the seconds each took.

    The epochs are those of sklearn_afm's training loop
    (``sklearn_afm._training.train``, all of them in one call, as a fit runs
    them, so that the engine picks the path a fit of that size gets) on an
    engine and a row
    source built from the package's lower modules, the same network an
    ``AFMClassifier`` with the benchmark's parameters trains.  These modules
    are private API, but no estimator internals are touched.  An epoch here
    is batching plus the compiled train steps (and the loop's one-batch
    divergence check), without ``fit()``'s validation, encoding and
    ``attention_weights_`` pass.

    Parameters
    ----------
    X : ndarray, sparse matrix or DataFrame
        The input form under test.
    categorical_features : None or "from_dtype"
    y : ndarray of 0/1
    batch_size : int

    Returns
    -------
    run : callable
        ``run(n_epochs)`` trains that many epochs over all rows, each in a
        fresh shuffle, and returns their durations (the loop's per-epoch
        callback measures them).
    """
    from sklearn_afm._batching import as_row_source, feature_scale
    from sklearn_afm._encoding import FeatureEncoder, resolve_categorical_features
    from sklearn_afm._network import build_engine
    from sklearn_afm._targets import encode_labels, fit_classes
    from sklearn_afm._training import History, StoppingRule, make_training_set, train

    is_categorical = resolve_categorical_features(categorical_features, X)
    if is_categorical.any():
        encoder = FeatureEncoder(is_categorical).fit(X)
        source = encoder.transform(X, [str(c) for c in X.columns])
    else:
        source = as_row_source(X)
    config = {
        "n_features": source.shape[1],
        "n_outputs": 1,
        "embedding_size": EMBEDDING,
        "attention_size": ATTENTION,
        "attention_l2": ALPHA,
        "attention_dropout": 0.0,
        "dropout": 0.0,
        "use_attention": True,
        "seed": SEED,
    }
    optimizer = {"solver": "adam", "learning_rate": LEARNING_RATE}
    engine = build_engine(config, optimizer, "binary", "auto", feature_scale=feature_scale(source))
    codes = encode_labels(y, fit_classes(y), first_fit=True)
    rng = np.random.RandomState(SEED)
    data = make_training_set(source, codes, np.ones(X.shape[0]), rng)
    # The rule never stops the epochs early.
    stopping = StoppingRule(n_iter_no_change=2**31, tol=0.0)

    class EpochTimes(list):
        def on_epoch_end(self, epoch):
            self.append(epoch.seconds)

        def on_stop(self, epoch):
            pass

    def run(n_epochs):
        times = EpochTimes()
        train(engine, data, History(), n_epochs=n_epochs, batch_size=batch_size,
              random_state=rng, stopping=stopping, callbacks=[times])
        return list(times)

    return run


def engine_figures(tf, X, categorical, y, args, fit_rows_per_s):
    """The table's training figure for ours: the median of pure engine epochs.

    The engine level uses private modules (``engine_epochs``); if it
    fails, the ``fit()`` figure stands in and the error is kept for the note
    under the table.  With ``args.profile``, one more epoch each runs under
    cProfile and TensorFlow's profiler (reports to stderr).
    """
    warm, timed_epochs = epochs_for(args.shape, args.quick)
    n = X.shape[0]
    figures = {}
    try:
        run = engine_epochs(X, categorical, y, args.batch_size)
        epoch_times = run(warm + timed_epochs)
        figures["epoch_s"] = epoch_times[warm:]
        figures["train_rows_per_s"] = n / median(epoch_times[warm:])
        figures["train_level"] = "_training.train"
        if args.profile:
            cprofile(lambda: run(1), "one epoch of _training.train")
            if tf is not None:  # TensorFlow's op profile; none on JAX
                tf_op_profile(tf, lambda: run(1), steps=-(-n // args.batch_size))
    except Exception as error:  # noqa: BLE001 - report, fall back to fit()
        figures["engine_error"] = f"{type(error).__name__}: {error}"
        figures["train_rows_per_s"] = fit_rows_per_s
        figures["train_level"] = "fit() (engine level failed)"
    return figures


def worker_ours(args):
    """Time ``AFMClassifier`` on ``args.shape`` at ``args.batch_size`` (and ``args.input``)."""
    sys.path.insert(0, REPO_ROOT)
    from sklearn.exceptions import ConvergenceWarning

    import sklearn_afm
    from sklearn_afm import AFMClassifier
    from sklearn_afm._runtime import import_tensorflow, keras_backend

    backend = keras_backend()
    if backend == "jax":
        import jax

        tf, version = None, jax.__version__
    else:
        tf = import_tensorflow()
        version = tf.__version__
    warnings.simplefilter("ignore", ConvergenceWarning)
    X_raw, y = load_shape(args.shape, args.quick)
    n = X_raw.shape[0]
    X, categorical, path = ours_input(args, X_raw)
    warm, timed_epochs = epochs_for(args.shape, args.quick)
    estimator = AFMClassifier(
        embedding_size=EMBEDDING,
        attention_size=ATTENTION,
        alpha=ALPHA,
        learning_rate_init=LEARNING_RATE,
        batch_size=args.batch_size,
        max_iter=timed_epochs,
        early_stopping=False,
        warm_start=True,
        categorical_features=categorical,
        random_state=SEED,
    )
    # Public API: warm-started fit() calls of the timed epochs each, with
    # their fixed costs (validating and encoding X, and the forward pass
    # over all rows that computes attention_weights_); a fit of that many
    # rows x epochs takes the engine path it takes for a user.  The first
    # call also builds the network and traces (or compiles) its steps.
    fit_times = [timed(lambda: estimator.fit(X, y))[0] / timed_epochs for _ in range(warm + 2)]
    result = {
        "impl": "ours",
        "shape": args.shape,
        "batch_size": args.batch_size,
        "rows": n,
        "input": path,
        "sklearn_afm": sklearn_afm.__version__,
        "backend": backend,
        backend: version,
        "first_fit_s": fit_times[0],
        "fit_epoch_s": fit_times[warm:],
        "fit_rows_per_s": n / median(fit_times[warm:]),
    }
    result.update(engine_figures(tf, X, categorical, y, args, result["fit_rows_per_s"]))
    result.update(prediction_timings(lambda: estimator.predict_proba(X), n, args))
    result["train_auc"] = train_auc(y, estimator.predict_proba(X)[:, 1])
    emit(result)


# -- profiling (--profile) -------------------------------------------------------------


def cprofile(run, what, top=20):
    """Run ``run()`` under cProfile; print its ``top`` functions by internal time to stderr."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    print(f"cProfile of {what} (top {top} by internal time):", file=sys.stderr)
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(top)


def tf_trace(tf, run):
    """Run ``run()`` under TensorFlow's profiler.

    Returns
    -------
    (seconds, xspace) or None
        The wall time of ``run()`` and the parsed XSpace protobuf; None
        (with the reason on stderr) when no trace could be read.
    """
    import glob
    import tempfile

    try:
        from tensorflow.tsl.profiler.protobuf import xplane_pb2
    except ImportError as error:
        print(f"TensorFlow profile unavailable: {error}", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        seconds, _ = timed(run)
        tf.profiler.experimental.stop()
        files = sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))
        if not files:
            print("TensorFlow profile: no trace was written", file=sys.stderr)
            return None
        space = xplane_pb2.XSpace()
        with open(files[-1], "rb") as trace:
            space.ParseFromString(trace.read())
    return seconds, space


def kernel_times(space):
    """Sum the kernel time per op type on the intra-op (``tf_Compute``) threads of a trace.

    Kernel events there are named ``op_name:OpType``; ``ExecutorState::Process``
    events enclose them, so their difference is the executor's own overhead.

    Returns
    -------
    by_type : collections.Counter
        Seconds per op type.
    kernels : int
        Number of kernel events.
    executor : float
        Seconds inside ``ExecutorState::Process``.
    """
    import collections
    import re

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
    return by_type, kernels, executor


def tf_op_profile(tf, run, steps, top=15):
    """Run ``run()`` under TensorFlow's profiler; print kernel time per op type to stderr.

    Reads the profiler's XSpace protobuf with the parser TensorFlow ships, so
    no TensorBoard is needed.
    """
    traced = tf_trace(tf, run)
    if traced is None:
        return
    seconds, space = traced
    by_type, kernels, executor = kernel_times(space)
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


# -- the Telco case study end to end ---------------------------------------------------


def telco_pipeline(sklearn_afm, **params):
    """Return the Pipeline of ``examples/plot_telco_churn.py`` with ``AFMClassifier(**params)``.

    The numeric columns are scaled, the 15 string columns passed through as
    categorical.
    """
    from sklearn.compose import make_column_selector, make_column_transformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    preprocess = make_column_transformer(
        (StandardScaler(), make_column_selector(dtype_include="number")),
        remainder="passthrough",
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    return make_pipeline(preprocess, sklearn_afm.AFMClassifier(**params))


def telco_split(sklearn_afm, split):
    """Run the case study once on ``split``; return its phase times, AUC and epochs.

    Loads the data, builds the Pipeline of ``examples/plot_telco_churn.py``,
    fits ``AFMClassifier(random_state=0)`` and scores the held-out tenth.
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    phase = {}
    t = time.perf_counter()
    X, y = sklearn_afm.load_telco_churn(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.1, random_state=split)
    phase["load_s"] = time.perf_counter() - t
    t = time.perf_counter()
    model = telco_pipeline(sklearn_afm, random_state=0)
    phase["build_s"] = time.perf_counter() - t
    t = time.perf_counter()
    model.fit(X_train, y_train)
    phase["fit_s"] = time.perf_counter() - t
    t = time.perf_counter()
    proba = model.predict_proba(X_test)[:, 1]
    accuracy = model.score(X_test, y_test)
    phase["score_s"] = time.perf_counter() - t
    return {
        "split": split,
        **phase,
        "total_s": sum(phase.values()),
        "auc": float(roc_auc_score(y_test, proba)),
        "accuracy": float(accuracy),
        "n_iter": int(model[-1].n_iter_),
    }


def worker_telco(args):
    """Time the Telco case study end to end after ``import tensorflow`` (split 10, then 11-14)."""
    sys.path.insert(0, REPO_ROOT)
    start = time.perf_counter()
    import tensorflow as tf  # noqa: F401 - imported first, not part of the timing

    tf_import_s = time.perf_counter() - start
    # The clock starts here: everything after "import tensorflow" counts.
    clock = time.perf_counter()
    import sklearn_afm

    # The case study's scikit-learn imports belong to its time: import them
    # inside the clock; telco_split then finds them already loaded.
    import sklearn.compose  # noqa: F401
    import sklearn.metrics  # noqa: F401
    import sklearn.model_selection  # noqa: F401
    import sklearn.pipeline  # noqa: F401
    import sklearn.preprocessing  # noqa: F401

    imports_s = time.perf_counter() - clock
    splits = [10] if args.quick else [10, 11, 12, 13, 14]
    runs = []
    for split in splits:
        runs.append(telco_split(sklearn_afm, split))
        if split == splits[0]:
            # The first case study in the process: sklearn_afm's and
            # scikit-learn's imports, load, Pipeline, fit (incl. building and
            # tracing the model), score.
            end_to_end_s = time.perf_counter() - clock
    emit(
        {
            "impl": "telco",
            "tf_import_s": tf_import_s,
            "imports_s": imports_s,
            "end_to_end_s": end_to_end_s,
            "auc": runs[0]["auc"],
            "runs": runs,
            "mean_auc": float(np.mean([r["auc"] for r in runs])),
            "mean_total_s": float(np.mean([r["total_s"] for r in runs])),
        }
    )


# -- search overhead ------------------------------------------------------------------

# The search of worker_search: 8 candidates, two network configurations.
SEARCH_GRID = {
    "afmclassifier__learning_rate_init": [0.003, 0.01, 0.03, 0.1],
    "afmclassifier__alpha": [1e-4, 1e-3],
}
SEARCH_FOLDS = 3
SEARCH_EPOCHS = 10


def worker_search(args):
    """Time a ``GridSearchCV`` on the Telco pipeline against the same epochs in a built model.

    The search has 8 candidates x 3 folds of ``SEARCH_EPOCHS`` epochs each
    (``refit=False``); the reference is one warm-started fit of a fold's
    size, timed ``8 x 3`` times.  Their ratio is what building, tracing and
    scoring add per fit (1 would be none).
    """
    sys.path.insert(0, REPO_ROOT)
    import tensorflow  # noqa: F401 - imported first, not part of the timing
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV

    import sklearn_afm

    warnings.simplefilter("ignore", ConvergenceWarning)
    X, y = sklearn_afm.load_telco_churn(return_X_y=True)
    params = dict(max_iter=SEARCH_EPOCHS, early_stopping=False, random_state=0)
    search = GridSearchCV(telco_pipeline(sklearn_afm, **params), SEARCH_GRID, cv=SEARCH_FOLDS,
                          refit=False)
    search_s = timed(lambda: search.fit(X, y))[0]
    fold = X.shape[0] * (SEARCH_FOLDS - 1) // SEARCH_FOLDS
    built = telco_pipeline(sklearn_afm, **params).fit(X[:fold], y[:fold])
    built.set_params(afmclassifier__warm_start=True)
    warm_s = median([timed(lambda: built.fit(X[:fold], y[:fold]))[0] for _ in range(3)])
    fits = SEARCH_FOLDS * int(np.prod([len(v) for v in SEARCH_GRID.values()]))
    emit({"impl": "search", "search_s": search_s, "warm_fit_s": warm_s, "fits": fits,
          "overhead_ratio": search_s / (fits * warm_s)})


# -- import time -----------------------------------------------------------------------


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


# -- the machine's arithmetic peak -----------------------------------------------------


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
