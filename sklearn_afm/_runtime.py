"""Process-wide set-up: the Keras backend, TensorFlow's import, logging, threads, devices.

Importing TensorFlow is slow and configures the process for good, so it
happens here, once, and only when an estimator first fits or predicts
(``import sklearn_afm`` never imports TensorFlow).  What this module decides
is shared by every :class:`~sklearn_afm._engine.Engine` of the process: how
many threads TensorFlow may use, which devices a ``device`` parameter names,
and the one :class:`tf.distribute.MirroredStrategy` of each device set.
Under ``KERAS_BACKEND=jax`` (:func:`keras_backend`) TensorFlow is not
imported at all, and device names map to JAX's devices.
"""

import contextlib
import os
import re
import sys
import threading

_CONFIGURE_LOCK = threading.Lock()
_CONFIGURED = False
_STRATEGIES_LOCK = threading.Lock()
_STRATEGIES = {}
# True in a process forked from one that had started TensorFlow (set by the
# at-fork hook that import_tensorflow registers).
_FORKED = False


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence writes to file descriptor 2 made by native code in the block.

    TensorFlow's C++ runtime logs CUDA probing and build notes straight to the
    process's stderr while it loads, through a logger that ignores
    ``TF_CPP_MIN_LOG_LEVEL``; on a CPU-only machine none of it is actionable.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _mark_forked():
    global _FORKED
    _FORKED = True


def check_not_forked():
    """Refuse to run TensorFlow in a fork child of a process that had started it.

    TensorFlow's runtime does not survive ``fork``: its thread pools stay in
    the parent, and the child's first operation would wait for them forever.
    Every path of the estimators to TensorFlow calls this first.

    Raises
    ------
    RuntimeError
        In such a child, naming the start methods that work.
    """
    if _FORKED:
        raise RuntimeError(
            "This process was forked from one that had started TensorFlow, which cannot "
            "run after fork (it would hang). Start worker processes with the 'spawn' or "
            "'forkserver' method instead: multiprocessing.get_context('spawn'), "
            "ProcessPoolExecutor(mp_context=...), or joblib's default 'loky' backend."
        )


def import_tensorflow():
    """Import TensorFlow, configuring the process once on first use.

    GPU memory growth is enabled so that several estimators (or processes) can
    share a GPU, and TensorFlow's thread pools are bounded by
    :func:`thread_budget` so that parallel workers do not oversubscribe the
    cores.  TensorFlow's start-up logs are silenced unless the user set
    ``TF_CPP_MIN_LOG_LEVEL`` to choose them, without leaving that variable
    in ``os.environ``.  In a fork child of a process that had started
    TensorFlow it raises RuntimeError (see :func:`check_not_forked`).
    """
    global _CONFIGURED
    check_not_forked()
    if _CONFIGURED:
        import tensorflow as tf

        return tf
    with _CONFIGURE_LOCK:
        quiet = "TF_CPP_MIN_LOG_LEVEL" not in os.environ
        with _quiet_native_stderr() if quiet else contextlib.nullcontext():
            if quiet:
                # TensorFlow reads the level once, at its first log line during
                # the import, so it keeps silencing this process's later logs
                # after the variable is removed again below.
                os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
            try:
                import tensorflow as tf

                if not _CONFIGURED:
                    _configure(tf)
                    _CONFIGURED = True
            finally:
                if quiet:
                    # Child processes (joblib workers, subprocesses) inherit the
                    # environment: left set, it would pass for the user's choice
                    # there and their own start-up logs would go unsilenced.
                    os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return tf


def _configure(tf):
    """Configure the freshly imported TensorFlow for this process (GPU memory, threads)."""
    os.register_at_fork(after_in_child=_mark_forked)
    try:
        for gpu in tf.config.list_physical_devices("GPU"):
            # A GPU the user split into logical devices keeps
            # their memory limits (TensorFlow refuses both).
            if tf.config.get_logical_device_configuration(gpu) is None:
                tf.config.experimental.set_memory_growth(gpu, True)
        threads = thread_budget()
        # A bound the user gave TensorFlow before its first op prevails.
        if threads and not tf.config.threading.get_intra_op_parallelism_threads():
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        # The runtime was already initialised by the user's own
        # TensorFlow code, whose settings then prevail.
        pass


def thread_budget():
    """Return how many threads this process may use, or None when unbounded.

    Inside a ``dask.distributed`` worker this is the worker's number of task
    threads (``nthreads``): TensorFlow's thread pools are shared by the whole
    process, so their bound is the cores the worker was given, not the
    ``OMP_NUM_THREADS=1`` that dask sets for per-thread OpenMP pools.
    Elsewhere it is ``OMP_NUM_THREADS`` when set, which joblib's process
    workers (``cpu_count() // n_jobs``, or ``inner_max_num_threads``) and Ray's
    workers (the task's ``num_cpus``) set.
    """
    distributed = sys.modules.get("distributed")
    if distributed is not None:
        try:
            return int(distributed.get_worker().state.nthreads)
        except ValueError:
            pass  # not in a dask worker
    threads = os.environ.get("OMP_NUM_THREADS", "")
    return int(threads) if threads.isdigit() and int(threads) > 0 else None


# The Keras backends the engines run on (sklearn_afm._engine, sklearn_afm._jax_engine).
BACKENDS = ("tensorflow", "jax")


def keras_backend():
    """Return the name of the Keras backend the estimators run on.

    Imports Keras, after setting TensorFlow up (:func:`import_tensorflow`)
    when that is the backend ``KERAS_BACKEND`` chooses: the estimators run
    on TensorFlow (the default) or on JAX (``KERAS_BACKEND=jax``, for
    machines without TensorFlow), see :func:`require_backend`.
    """
    if "keras" not in sys.modules and os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        import_tensorflow()
    import keras

    return keras.config.backend()


def require_backend(name=None):
    """Return Keras' backend, checking that the estimators can run on it (and is ``name``).

    Raises
    ------
    RuntimeError
        When Keras runs on another backend, saying how to choose one.
    """
    backend = keras_backend()
    if backend not in BACKENDS or name not in (None, backend):
        wanted = " or ".join(BACKENDS if name is None else (name,))
        raise RuntimeError(
            f"sklearn_afm's estimators train and predict on Keras' {wanted} backend, but "
            f"Keras runs on {backend!r}; set KERAS_BACKEND={'|'.join(BACKENDS)} before Keras "
            "is imported."
        )
    return backend


def _device_counter():
    """Return ``count(kind, logical)``: how many "CPU" or "GPU" devices the backend sees.

    TensorFlow's logical devices may split a physical one (see
    ``tf.config.set_logical_device_configuration``); JAX has only one kind.
    """
    if require_backend() == "jax":
        import jax

        def count(kind, logical=True):
            try:
                return len(jax.devices(kind.lower()))
            except RuntimeError:  # JAX has no such platform here
                return 0

        return count, "JAX"
    tf = import_tensorflow()

    def count(kind, logical=True):
        listing = tf.config.list_logical_devices if logical else tf.config.list_physical_devices
        return len(listing(kind))

    return count, "TensorFlow"


def resolve_device(device):
    """Translate the ``device`` parameter into device names.

    Parameters
    ----------
    device : str or list of str
        "auto", "cpu", "gpu", "cpu:N", "gpu:N", or a list of "cpu:N" / "gpu:N"
        names for data-parallel training.  "gpu" means every GPU.

    Returns
    -------
    placement : str or tuple of str
        One device name such as ``"/CPU:0"`` or ``"/GPU:1"`` (TensorFlow's
        names, also on JAX: see :func:`jax_device`), or a tuple of several
        (each a replica of :class:`Engine`).
    """
    count, seer = _device_counter()
    if device == "auto":
        return "/GPU:0" if count("GPU", logical=False) else "/CPU:0"
    if device == "cpu":
        return "/CPU:0"
    if device == "gpu":
        gpus = count("GPU", logical=False)
        if gpus == 0:
            raise ValueError(f"device='gpu' was requested but {seer} sees no GPU.")
        return "/GPU:0" if gpus == 1 else tuple(f"/GPU:{i}" for i in range(gpus))
    names = [device] if isinstance(device, str) else list(device)
    if not names:
        raise ValueError("device is an empty list; name at least one device.")
    placement = tuple(_device_name(count, seer, name) for name in names)
    for i, name in enumerate(placement):
        if name in placement[:i]:
            raise ValueError(f"device lists {names[i]!r} twice.")
    return placement[0] if len(placement) == 1 else placement


def _device_name(count, seer, name):
    """Return the name of one device "cpu:N" or "gpu:N", checking it exists."""
    match = re.fullmatch(r"(cpu|gpu)(?::(\d+))?", name) if isinstance(name, str) else None
    if match is None:
        raise ValueError(
            f"device {name!r} is not understood; use 'auto', 'cpu', 'gpu', 'cpu:N', "
            "'gpu:N' or a list of 'cpu:N' / 'gpu:N' names."
        )
    kind, number = match.group(1).upper(), int(match.group(2) or 0)
    available = count(kind)
    if number >= available:
        raise ValueError(
            f"device {name!r} was requested but {seer} sees {available} {kind} device(s)."
        )
    return f"/{kind}:{number}"


def jax_device(name):
    """Return the JAX device of a name that :func:`resolve_device` returned, "/GPU:1" say."""
    import jax

    kind, number = name.strip("/").split(":")
    return jax.devices(kind.lower())[int(number)]


def mirrored_strategy(devices):
    """Return this process's one MirroredStrategy over ``devices``.

    Every MirroredStrategy numbers its collective operations from the same
    keys, so two of them on the same devices mix up each other's all-reduces
    (shape mismatch errors); engines share one instead.
    """
    tf = import_tensorflow()
    with _STRATEGIES_LOCK:
        if devices not in _STRATEGIES:
            _STRATEGIES[devices] = tf.distribute.MirroredStrategy(list(devices))
        return _STRATEGIES[devices]
