"""Run an :class:`~sklearn_afm._model.AFMNetwork` on TensorFlow.

Everything that touches TensorFlow lives here and is imported only when an
estimator fits or predicts, so that ``import sklearn_afm`` stays light.  An
:class:`Engine` owns one network, its optimizer and the compiled train and
predict steps (one trace per padded width ``k``, see
:mod:`sklearn_afm._batching`).  It is a cache: the estimator's persistent state
is the list of weight arrays, from which an engine can always be rebuilt.
"""

import contextlib
import os
import re
import sys
import threading

import numpy as np

from ._batching import iter_batches, make_batch, prediction_batch_size

_CONFIGURE_LOCK = threading.Lock()
_CONFIGURED = False
_STRATEGIES_LOCK = threading.Lock()
_STRATEGIES = {}


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


def import_tensorflow():
    """Import TensorFlow, configuring the process once on first use.

    GPU memory growth is enabled so that several estimators (or processes) can
    share a GPU, and TensorFlow's thread pools are bounded by
    :func:`thread_budget` so that parallel workers do not oversubscribe the
    cores.  TensorFlow's start-up logs are silenced unless the user set
    ``TF_CPP_MIN_LOG_LEVEL`` to choose them.
    """
    global _CONFIGURED
    if _CONFIGURED:
        import tensorflow as tf

        return tf
    with _CONFIGURE_LOCK:
        quiet = "TF_CPP_MIN_LOG_LEVEL" not in os.environ
        with _quiet_native_stderr() if quiet else contextlib.nullcontext():
            if quiet:
                os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
            import tensorflow as tf

            if not _CONFIGURED:
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
                _CONFIGURED = True
    return tf


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


def resolve_device(device):
    """Translate the ``device`` parameter into TensorFlow device names.

    Parameters
    ----------
    device : str or list of str
        "auto", "cpu", "gpu", "cpu:N", "gpu:N", or a list of "cpu:N" / "gpu:N"
        names for data-parallel training.  "gpu" means every GPU.

    Returns
    -------
    placement : str or tuple of str
        One device name such as ``"/CPU:0"`` or ``"/GPU:1"``, or a tuple of
        several (each a replica of :class:`Engine`).
    """
    tf = import_tensorflow()
    if device == "auto":
        return "/GPU:0" if tf.config.list_physical_devices("GPU") else "/CPU:0"
    if device == "cpu":
        return "/CPU:0"
    if device == "gpu":
        count = len(tf.config.list_physical_devices("GPU"))
        if count == 0:
            raise ValueError("device='gpu' was requested but TensorFlow sees no GPU.")
        return "/GPU:0" if count == 1 else tuple(f"/GPU:{i}" for i in range(count))
    names = [device] if isinstance(device, str) else list(device)
    if not names:
        raise ValueError("device is an empty list; name at least one device.")
    placement = tuple(_device_name(tf, name) for name in names)
    for i, name in enumerate(placement):
        if name in placement[:i]:
            raise ValueError(f"device lists {names[i]!r} twice.")
    return placement[0] if len(placement) == 1 else placement


def _device_name(tf, name):
    """Return the TensorFlow name of one device "cpu:N" or "gpu:N", checking it exists."""
    match = re.fullmatch(r"(cpu|gpu)(?::(\d+))?", name) if isinstance(name, str) else None
    if match is None:
        raise ValueError(
            f"device {name!r} is not understood; use 'auto', 'cpu', 'gpu', 'cpu:N', "
            "'gpu:N' or a list of 'cpu:N' / 'gpu:N' names."
        )
    kind, number = match.group(1).upper(), int(match.group(2) or 0)
    # Logical devices: the CPU or a GPU may be split into several (see
    # tf.config.set_logical_device_configuration).
    count = len(tf.config.list_logical_devices(kind))
    if number >= count:
        raise ValueError(
            f"device {name!r} was requested but TensorFlow sees {count} {kind} device(s)."
        )
    return f"/{kind}:{number}"


def _mirrored_strategy(devices):
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


def _per_sample_loss(kind, y, out):
    from keras import ops

    if kind == "binary":
        return ops.binary_crossentropy(y, ops.squeeze(out, -1), from_logits=True)
    if kind == "multiclass":
        return ops.sparse_categorical_crossentropy(y, out, from_logits=True)
    return 0.5 * ops.mean(ops.square(y - out), axis=-1)


class Engine:
    """A network with its optimizer and compiled steps, on one device or several.

    On several devices training is data-parallel: a
    :class:`tf.distribute.MirroredStrategy` keeps a copy of every variable on
    each device, each train step splits its batch between them and the
    optimizer applies the sum of their gradients everywhere.  Prediction needs
    no synchronisation and runs on the first device.

    Parameters
    ----------
    network_params : dict
        Keyword arguments of :class:`~sklearn_afm._model.AFMNetwork`.
    loss : {"binary", "multiclass", "squared"}
        ``binary`` expects one logit and 0/1 targets, ``multiclass`` one logit
        per class and integer targets, ``squared`` real targets per output.
    solver : {"adam", "adagrad", "sgd"}
    learning_rate : float
    device : str or tuple of str
        A TensorFlow device name, or several for data-parallel training; see
        :func:`resolve_device`.
    weights : list of ndarray, default=None
        Weights to start from; a fresh initialisation when None.
    optimizer_state : list of ndarray, default=None
        The optimizer's variables (step count, moments) to continue from, as
        returned by :meth:`get_optimizer_state`; a fresh optimizer when None.
    """

    def __init__(
        self,
        network_params,
        loss,
        solver,
        learning_rate,
        device,
        weights=None,
        optimizer_state=None,
    ):
        self.tf = tf = import_tensorflow()
        import keras

        from ._model import AFMNetwork

        if keras.config.backend() != "tensorflow":
            # The steps below are TensorFlow code; on another backend the
            # layers hold arrays they cannot trace, and fail deep inside.
            raise RuntimeError(
                "sklearn_afm's estimators train and predict with TensorFlow, but Keras "
                f"runs on {keras.config.backend()!r}; set KERAS_BACKEND=tensorflow before "
                "Keras is imported."
            )
        self.loss = loss
        self.placement = device
        if isinstance(device, str):
            self.strategy = None
            self.device = device
            scope = tf.device(device)
        else:
            self.strategy = _mirrored_strategy(device)
            self.device = device[0]
            scope = self.strategy.scope()
        optimizers = {
            "adam": keras.optimizers.Adam,
            "adagrad": keras.optimizers.Adagrad,
            "sgd": keras.optimizers.SGD,
        }
        with scope:
            self.network = AFMNetwork(**network_params)
            self.network.build(None)
            if weights is not None:
                self.network.set_weights(weights)
            self.optimizer = optimizers[solver](learning_rate=learning_rate)
            self.optimizer.build(self.network.trainable_variables)
            if optimizer_state is not None:
                for variable, value in zip(self.optimizer.variables, optimizer_state):
                    variable.assign(value)
        self._lock = threading.Lock()
        self._compiled = {}

    def get_weights(self):
        """Return the network's weights as a list of numpy arrays."""
        return self.network.get_weights()

    def get_optimizer_state(self):
        """Return the optimizer's variables as a list of numpy arrays."""
        return [variable.numpy() for variable in self.optimizer.variables]

    def _step(self, name, k):
        """Return the compiled step ``name`` for padded width ``k``, tracing it once."""
        with self._lock:
            step = self._compiled.get((name, k))
            if step is None:
                tf = self.tf
                batch = [tf.TensorSpec([None, k], tf.int32), tf.TensorSpec([None, k], tf.float32)]
                if name == "train":
                    y_spec = {
                        "binary": tf.TensorSpec([None], tf.float32),
                        "multiclass": tf.TensorSpec([None], tf.int32),
                        "squared": tf.TensorSpec([None, None], tf.float32),
                    }[self.loss]
                    batch += [y_spec, tf.TensorSpec([None], tf.float32)]
                # Tracing once per width up front, and calling the concrete
                # function, keeps TensorFlow from mistaking the widths for
                # accidental retracing (and warning about it).
                function = tf.function(getattr(self, f"_{name}_step"))
                step = self._compiled[(name, k)] = function.get_concrete_function(*batch)
            return step

    def _train_step(self, indices, values, y, sample_weight):
        if self.strategy is None:
            return self._replica_train_step(indices, values, y, sample_weight)
        losses = self.strategy.run(
            self._replica_train_step, args=(indices, values, y, sample_weight)
        )
        return self.strategy.reduce("SUM", losses, axis=None)

    def _replica_train_step(self, indices, values, y, sample_weight):
        """Update the weights from this replica's share of the batch; return its share of the loss."""
        from keras import ops

        tf = self.tf
        network = self.network
        replicas = 1 if self.strategy is None else self.strategy.num_replicas_in_sync
        if replicas > 1:
            size = tf.shape(indices)[0]
            replica = tf.distribute.get_replica_context().replica_id_in_sync_group
            start, stop = size * replica // replicas, size * (replica + 1) // replicas
            indices, values, y, sample_weight = (
                tensor[start:stop] for tensor in (indices, values, y, sample_weight)
            )
        with tf.GradientTape() as tape:
            out = network((indices, values), training=True)
            losses = _per_sample_loss(self.loss, y, out) * sample_weight
            if replicas == 1:
                loss = ops.mean(losses)
            else:
                # The optimizer sums the replicas' gradients: each replica's
                # loss is its rows' part of the batch mean (a sum, as a
                # replica may get no row of a short last batch).
                loss = ops.sum(losses) / ops.cast(size, losses.dtype)
            if network.losses:
                loss = loss + ops.sum(network.losses) / replicas
        gradients = tape.gradient(loss, network.trainable_variables)
        self.optimizer.apply(gradients, network.trainable_variables)
        return loss

    def _predict_step(self, indices, values):
        return self.network((indices, values), training=False)

    def _attention_step(self, indices, values):
        return self.network.attention((indices, values))

    def _contributions_step(self, indices, values):
        return self.network.contributions((indices, values))

    def train_epoch(self, X, y, sample_weight, batch_size, order):
        """Run one pass of minibatch updates and return the mean training loss.

        Parameters
        ----------
        X : ndarray, csr_array or FieldMatrix
            A row source of :mod:`sklearn_afm._batching`.
        y : ndarray
            Encoded targets (float32 0/1, int32 class codes, or float32 2-D).
        sample_weight : ndarray of float32
            Per-row weights, scaled by the caller to mean 1.
        batch_size : int
        order : ndarray of int
            The order in which rows are visited.
        """
        total = 0.0
        with self.tf.device(self.device):
            for rows in iter_batches(order, batch_size):
                indices, values = make_batch(X, rows)
                step = self._step("train", indices.shape[1])
                loss = step(indices, values, y[rows], sample_weight[rows])
                total += float(loss) * indices.shape[0]
        return total / len(order)

    def _outputs(self, name, X, batch_size, rows=None):
        """Yield ``(indices, values, outputs)`` of the step ``name`` for consecutive batches.

        ``rows`` selects (and orders) the rows; all rows when None.  The
        outputs are numpy arrays, in the step's structure.
        """
        tf = self.tf
        with tf.device(self.device):
            for batch in iter_batches(X.shape[0] if rows is None else rows, batch_size):
                indices, values = make_batch(X, batch)
                outputs = self._step(name, indices.shape[1])(indices, values)
                yield indices, values, tf.nest.map_structure(lambda t: t.numpy(), outputs)

    def predict(self, X, batch_size, rows=None):
        """Return the network's raw outputs, shape (n_rows, n_outputs).

        ``rows`` selects (and orders) the rows to predict; all rows when None.
        ``batch_size`` is the training batch size: narrow rows are predicted
        in larger batches (see :func:`~sklearn_afm._batching.prediction_batch_size`).
        """
        batch_size = prediction_batch_size(X, batch_size, self.network.embedding_size)
        outputs = [out for _, _, out in self._outputs("predict", X, batch_size, rows)]
        return np.concatenate(outputs).astype(np.float64, copy=False)

    def attention(self, X, batch_size):
        """Yield ``(indices, values, attention)`` for consecutive batches of ``X``.

        ``attention[r, p]`` is the weight row ``r`` gives to its pair of slots
        ``(first[p], second[p]) = numpy.triu_indices(k, 1)``; the feature ids in
        those slots are in ``indices``.
        """
        return self._outputs("attention", X, batch_size)

    def contributions(self, X, batch_size):
        """Yield ``(indices, values, bias, linear, interactions, attention)`` per batch of ``X``.

        The terms are those of :meth:`sklearn_afm._model.AFMNetwork.contributions`,
        as numpy arrays, for consecutive batches of rows.
        """
        for indices, values, terms in self._outputs("contributions", X, batch_size):
            yield (indices, values, *terms)
