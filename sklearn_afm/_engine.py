"""Run an :class:`~sklearn_afm._model.AFMNetwork` on TensorFlow.

An :class:`Engine` owns one network and its optimizer (their variables) on
the devices :mod:`sklearn_afm._runtime` resolved, and runs them with the
stateless steps of :mod:`sklearn_afm._steps` (traced once per process and
padded width ``k``, see :mod:`sklearn_afm._batching`).  It is a cache: a fitted estimator's persistent state is plain
arrays (:class:`~sklearn_afm._network.TrainedNetwork`), from which an engine
can always be rebuilt.  The training loop (:mod:`sklearn_afm._training`)
drives it through :meth:`Engine.train_epoch`, :meth:`Engine.predict`,
:meth:`Engine.get_weights` and :meth:`Engine.set_weights` only.
"""

import threading

import numpy as np

from ._batching import (
    iter_batches,
    make_batch,
    padded_width_of,
    prediction_batch_size,
    rows_within_budget,
)
from ._runtime import import_tensorflow, mirrored_strategy, require_backend
from ._steps import (
    apply_step,
    batch_specs,
    epoch_step,
    gradient_step,
    inference_step,
    stage,
    staging_steps,
    train_step,
)

# A fit that trains on at least this many rows (rows per epoch times epochs)
# runs its epochs as compiled whole-epoch calls: compiling a shape costs one
# to two seconds, once per process, which such a fit wins back (measured:
# the Telco case study, 6,338 rows x up to 100 epochs, fits in 0.75x the
# time, its first fit in a process included).
COMPILED_MIN_ROWS = 300_000


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
        scope = self._placement_scope(device)
        import keras

        from ._model import AFMNetwork

        self.loss = loss
        self.placement = device
        self.network_params = network_params
        # What a compiled epoch function depends on: not the seed, nor the
        # weights, which it takes as arguments.
        config = {k: v for k, v in network_params.items() if k != "seed"}
        self.key = (tuple(sorted(config.items())), loss, solver, device)
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
            # A fixed name, as the network's (see AFMNetwork).
            self.optimizer = optimizers[solver](learning_rate=learning_rate, name=solver)
            self.optimizer.build(self.network.trainable_variables)
            if optimizer_state is not None:
                for variable, value in zip(self.optimizer.variables, optimizer_state):
                    variable.assign(value)
        self._lock = threading.Lock()
        self._replicated = {}

    def _placement_scope(self, device):
        """Set up TensorFlow and return the scope in which the variables are created.

        Sets ``tf``, ``strategy`` (None on one device) and ``device`` (where
        prediction runs).
        """
        self.tf = tf = import_tensorflow()
        require_backend("tensorflow")
        if isinstance(device, str):
            self.strategy = None
            self.device = device
            return tf.device(device)
        self.strategy = mirrored_strategy(device)
        self.device = device[0]
        return self.strategy.scope()

    def get_weights(self):
        """Return the network's weights as a list of numpy arrays."""
        return self.network.get_weights()

    def set_weights(self, weights):
        """Replace the network's weights by a list of numpy arrays (as :meth:`get_weights`)."""
        self.network.set_weights(weights)

    def reseed_dropout(self, seed):
        """Restart the dropout layers' random streams from ``seed``.

        A fitted estimator keeps the network's weights and its optimizer's
        state, not the position of these streams: a continued fit restarts
        them from a seed of the estimator's random state, so that the live
        engine and one rebuilt from a pickle or a model file go on alike.
        """
        from ._model import seeds

        for layer, value in zip(self.network.dropout_layers, seeds(seed, 2)):
            # Keras gives a Dropout layer of rate 0 no generator.
            generator = getattr(layer, "seed_generator", None)
            if generator is not None:
                generator.state.assign(np.array([value, 0], dtype=generator.state.dtype))

    def start_from_fm(self, fm):
        """Take the weights of ``AFMNetwork.FM_START_WEIGHTS`` from ``fm``, a trained FM's engine.

        The paper's pre-training: the AFM starts from the FM's embeddings,
        linear weights and bias; its other weights keep their initialisation.
        """
        trained = dict(zip((v.path for v in fm.network.weights), fm.get_weights()))
        shared = self.network.FM_START_WEIGHTS
        self.set_weights([
            trained[variable.path] if variable.path in shared else value
            for variable, value in zip(self.network.weights, self.get_weights())
        ])

    def get_optimizer_state(self):
        """Return the optimizer's variables as a list of numpy arrays."""
        return [variable.numpy() for variable in self.optimizer.variables]

    def values(self):
        """Return the values of the variables: ``(params, non_trainable, optimizer_state)``.

        The stateless steps of :mod:`sklearn_afm._steps` take and return them.
        """
        network = self.network
        return (
            [v.value for v in network.trainable_variables],
            [v.value for v in network.non_trainable_variables],
            [v.value for v in self.optimizer.variables],
        )

    def assign(self, params, non_trainable, state):
        """Set the variables to values returned by a stateless step."""
        network = self.network
        for variables, values in (
            (network.trainable_variables, params),
            (network.non_trainable_variables, non_trainable),
            (self.optimizer.variables, state),
        ):
            for variable, value in zip(variables, values):
                variable.assign(value)

    def _replicated_step(self, k):
        """Return the data-parallel train step for padded width ``k``, tracing it once."""
        with self._lock:
            step = self._replicated.get(k)
            if step is None:
                specs = batch_specs(self.tf, self, k)
                # Tracing once per width up front, and calling the concrete
                # function, keeps TensorFlow from mistaking the widths for
                # accidental retracing (and warning about it).
                function = self.tf.function(self._train_step, autograph=False)
                step = self._replicated[k] = function.get_concrete_function(*specs)
            return step

    def _train_step(self, indices, values, y, sample_weight):
        losses = self.strategy.run(
            self._replica_train_step, args=(indices, values, y, sample_weight)
        )
        return self.strategy.reduce("SUM", losses, axis=None)

    def _replica_train_step(self, indices, values, y, sample_weight):
        """Update the weights from this replica's share of the batch; return its share of the loss."""
        from keras import ops

        tf = self.tf
        network = self.network
        replicas = self.strategy.num_replicas_in_sync
        size = tf.shape(indices)[0]
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        start, stop = size * replica // replicas, size * (replica + 1) // replicas
        indices, values, y, sample_weight = (
            tensor[start:stop] for tensor in (indices, values, y, sample_weight)
        )
        with tf.GradientTape() as tape:
            out = network((indices, values), training=True)
            losses = _per_sample_loss(self.loss, y, out) * sample_weight
            # The optimizer sums the replicas' gradients: each replica's loss
            # is its rows' part of the batch mean (a sum, as a replica may get
            # no row of a short last batch).
            loss = ops.sum(losses) / ops.cast(size, losses.dtype)
            if network.losses:
                loss = loss + ops.sum(network.losses) / replicas
        gradients = tape.gradient(loss, network.trainable_variables)
        self.optimizer.apply(gradients, network.trainable_variables)
        return loss

    def train_epoch(self, X, y, sample_weight, batch_size, order, planned_rows=None):
        """Run one pass of minibatch updates and return the mean training loss.

        On one device the steps are the stateless ones of
        :mod:`sklearn_afm._steps`, shared by every engine of the process: the
        epochs of a fit of at least :data:`COMPILED_MIN_ROWS` rows run as
        XLA-compiled loops over staged batches, others batch by batch; both
        train the same model.  Data-parallel epochs run a replicated step
        batch by batch.

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
        planned_rows : int, default=None
            How many rows the whole fit trains on (this epoch's when None):
            what decides whether compiling pays.
        """
        if self.strategy is not None:
            return self._replicated_epoch(X, y, sample_weight, batch_size, order)
        planned = len(order) if planned_rows is None else planned_rows
        width = self._compiled_width(X, planned, batch_size)
        if width is not None:
            return self._compiled_epoch(X, y, sample_weight, batch_size, order, width)
        tf = self.tf
        params, non_trainable, state = self.values()
        losses = []
        with tf.device(self.device):
            for rows in iter_batches(order, batch_size):
                indices, values = make_batch(X, rows)
                batch = (indices, values, y[rows], sample_weight[rows])
                count = tf.constant(indices.shape[0], tf.float32)
                chunk = rows_within_budget(indices.shape[1], self.network.embedding_size)
                if chunk >= indices.shape[0]:
                    step = train_step(self, indices.shape[1])
                    params, non_trainable, state, loss = step(
                        params, non_trainable, state, *batch, count
                    )
                else:
                    params, non_trainable, state, loss = self._chunked_step(
                        params, non_trainable, state, batch, count, chunk
                    )
                losses.append(loss * count)
        self.assign(params, non_trainable, state)
        return float(tf.add_n(losses)) / len(order)

    def _chunked_step(self, params, non_trainable, state, batch, count, chunk):
        """One minibatch update of a batch too wide for one step: its gradient in row chunks.

        Each chunk's loss is its rows' part of the batch mean, and its share
        of the penalties, so the summed gradients are the batch's.
        """
        tf = self.tf
        n_rows, width = batch[0].shape
        totals, loss = None, 0.0
        for start in range(0, n_rows, chunk):
            part = [array[start : start + chunk] for array in batch]
            share = tf.constant(part[0].shape[0] / n_rows, tf.float32)
            gradients, squares, non_trainable, chunk_loss = gradient_step(self, width)(
                params, non_trainable, *part, count, share
            )
            loss += chunk_loss
            sums = [*gradients, *squares]
            totals = sums if totals is None else [a + b for a, b in zip(totals, sums)]
        half = len(totals) // 2
        params, state = apply_step(self)(params, state, totals[:half], totals[half:])
        return params, non_trainable, state, loss

    def _replicated_epoch(self, X, y, sample_weight, batch_size, order):
        total = 0.0
        with self.tf.device(self.device):
            for rows in iter_batches(order, batch_size):
                indices, values = make_batch(X, rows)
                # Refuses rows too wide for any step; batches are not cut in chunks here.
                rows_within_budget(indices.shape[1], self.network.embedding_size)
                loss = self._replicated_step(indices.shape[1])(
                    indices, values, y[rows], sample_weight[rows]
                )
                total += float(loss) * indices.shape[0]
        return total / len(order)

    def _compiled_width(self, X, planned_rows, batch_size):
        """Return the padded width of a compiled epoch over ``X``; None to train batch by batch.

        Compiling costs a second or two per shape, once per process: it pays
        from :data:`COMPILED_MIN_ROWS` rows a fit.  Every batch is padded to
        the widest row, and must fit in one step (see
        :func:`~sklearn_afm._batching.rows_within_budget`).
        """
        if planned_rows < COMPILED_MIN_ROWS:
            return None
        width = padded_width_of(X)
        if rows_within_budget(width, self.network.embedding_size) < batch_size:
            return None
        return width

    def _compiled_epoch(self, X, y, sample_weight, batch_size, order, width):
        steps = staging_steps(-(-len(order) // batch_size), batch_size, width)
        step = self._epoch_step(batch_size, width, steps)
        params, non_trainable, state = self.values()
        total = 0.0
        with self._device_scope():
            for *arrays, n_steps in stage(X, y, sample_weight, batch_size, order, width, steps):
                params, non_trainable, state, loss = step(
                    params, non_trainable, state, *arrays, np.int32(n_steps)
                )
                total += float(loss)
        self.assign(params, non_trainable, state)
        return total / len(order)

    def _epoch_step(self, batch_size, width, steps):
        """Return the compiled loop over chunks of ``steps`` staged batches."""
        return epoch_step(self, batch_size, width, steps)

    def _device_scope(self):
        """Return the context in which this engine's steps run."""
        return self.tf.device(self.device)

    def batch_loss(self, params, non_trainable, indices, values, y, sample_weight, count,
                   share=1.0, network=None):
        """Return the loss of one padded batch for the given variable values (stateless).

        ``count`` is the number of real rows of the batch (padding rows have
        weight 0); ``share`` the part of the penalties this call adds (that of
        its rows, when a batch is cut into chunks).  ``network`` is the
        network to run, this engine's when None (another of the same
        configuration whose tables hold only the batch's rows, see
        :mod:`sklearn_afm._jax_engine`).

        Returns
        -------
        loss : tensor
            The rows' mean weighted loss plus the network's penalties.
        non_trainable : list of tensor
            The new values of the non-trainable variables (dropout seeds).
        """
        from keras import ops

        network = self.network if network is None else network
        out, non_trainable, penalties = network.stateless_call(
            params, non_trainable, (indices, values), training=True, return_losses=True
        )
        loss = ops.sum(_per_sample_loss(self.loss, y, out) * sample_weight) / count
        if penalties:
            loss = loss + share * ops.sum(penalties)
        return loss, non_trainable

    def _outputs(self, name, X, batch_size, rows=None):
        """Yield ``(indices, values, outputs)`` of the step ``name`` for consecutive batches.

        ``rows`` selects (and orders) the rows; all rows when None.  The
        outputs are numpy arrays, in the step's structure.
        """
        tf = self.tf
        params, non_trainable, _ = self.values()
        with tf.device(self.device):
            for batch in iter_batches(X.shape[0] if rows is None else rows, batch_size):
                indices, values = make_batch(X, batch)
                step = inference_step(self, name, indices.shape[1])
                outputs = step(params, non_trainable, indices, values)
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
        batch_size = prediction_batch_size(X, batch_size, self.network.embedding_size)
        return self._outputs("attention", X, batch_size)

    def contributions(self, X, batch_size):
        """Yield ``(indices, values, bias, linear, interactions, attention)`` per batch of ``X``.

        The terms are those of :meth:`sklearn_afm._model.AFMNetwork.contributions`,
        as numpy arrays, for consecutive batches of rows.
        """
        batch_size = prediction_batch_size(X, batch_size, self.network.embedding_size)
        for indices, values, terms in self._outputs("contributions", X, batch_size):
            yield (indices, values, *terms)
