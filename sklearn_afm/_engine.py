"""Run an :class:`~sklearn_afm._model.AFMNetwork` on TensorFlow.

An :class:`Engine` owns one network, its optimizer and the compiled train and
predict steps (one trace per padded width ``k``, see
:mod:`sklearn_afm._batching`), on the devices :mod:`sklearn_afm._runtime`
resolved.  It is a cache: a fitted estimator's persistent state is plain
arrays (:class:`~sklearn_afm._network.TrainedNetwork`), from which an engine
can always be rebuilt.  The training loop (:mod:`sklearn_afm._training`)
drives it through :meth:`Engine.train_epoch`, :meth:`Engine.predict`,
:meth:`Engine.get_weights` and :meth:`Engine.set_weights` only.
"""

import threading

import numpy as np

from ._batching import iter_batches, make_batch, prediction_batch_size
from ._runtime import import_tensorflow, mirrored_strategy


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
        :func:`~sklearn_afm._runtime.resolve_device`.
    weights : list of ndarray, default=None
        Weights to start from; a fresh initialisation when None.
    optimizer_state : list of ndarray, default=None
        The optimizer's variables (step count, moments) to continue from, as
        returned by :meth:`get_optimizer_state`; a fresh optimizer when None.
    feature_scale : ndarray of float32, shape (n_features,), default=None
        The fixed multiplier of each feature's value (see
        :func:`~sklearn_afm._batching.feature_scale`) for a fresh network;
        ``weights`` already hold it.
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
        feature_scale=None,
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
            self.strategy = mirrored_strategy(device)
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
            elif feature_scale is not None:
                self.network.feature_scale.assign(feature_scale)
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

    def set_weights(self, weights):
        """Replace the network's weights by a list of numpy arrays (as :meth:`get_weights`)."""
        self.network.set_weights(weights)

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
