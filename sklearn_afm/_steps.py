"""The engine's steps as stateless functions, traced or compiled once per process.

Every step here is a function of the variables' *values*: Keras'
``StatelessScope`` (``stateless_call``) runs the network on tensors passed
in, and the optimizers' updates (:func:`apply_optimizer`) return new values.
So a step does not belong to one engine: it is traced once per process for a
network configuration, solver, device and shape, and serves every engine
that matches (the fits of a ``GridSearchCV`` or ``cross_val_score`` in one
worker trace once).  They are traced without autograph: their loops are
``tf.while_loop`` and nothing branches on a tensor, and autograph's source
conversion was most of the tracing time, which a process's first fit pays
(a fresh loky worker, say; see :ref:`scaling`).  Three kinds:

- :func:`train_step`: one minibatch update (traced per padded width), or
  for batches too wide for one step :func:`gradient_step` per chunk of rows
  and :func:`apply_step`;
- :func:`inference_step`: the forward pass, the attention or the
  contributions of a batch (traced per padded width);
- :func:`epoch_step`: many minibatch updates in one XLA-compiled ``while``
  loop over batches staged as fixed-shape arrays ``(steps, batch, width)``
  by :func:`stage` (the short last batch padded with rows of weight 0, the
  last chunk with steps that are not run), for large epochs.

The optimizers are written out (:func:`apply_optimizer`: Keras' formulas,
hyper-parameters and treatment of sparse gradients) because Keras'
``stateless_apply`` refuses the TensorFlow backend; they make the updates
Keras' optimizers make in the data-parallel path of
:class:`~sklearn_afm._engine.Engine`.  This module imports Keras only when
called, after TensorFlow was set up.
"""

import threading

import numpy as np

from ._batching import iter_batches, make_batch

# A chunk of staged batches holds at most this many bytes (indices, values,
# targets and weights): the staging memory is bounded whatever the data size.
STAGING_BUDGET = 64 * 2**20

# Traced steps by (kind, engine key, shape), oldest first; a step holds no
# variable, only its graph.
MAX_CACHED_STEPS = 256
_CACHE = {}
_CACHE_LOCK = threading.Lock()


def optimizer_slots(optimizer):
    """Return the positions in ``optimizer.variables`` of its per-variable slots.

    Returns
    -------
    slots : list of list of int
        Adam: momentums and velocities; Adagrad: accumulators; SGD: none.
        Entry ``[s][i]`` is slot ``s`` of trainable variable ``i``.
    """
    position = {id(variable): i for i, variable in enumerate(optimizer.variables)}
    names = {"Adam": ("_momentums", "_velocities"), "Adagrad": ("_accumulators",), "SGD": ()}
    return [
        [position[id(variable)] for variable in getattr(optimizer, name)]
        for name in names[type(optimizer).__name__]
    ]


def apply_optimizer(optimizer, slots, state, gradients, squares, params):
    """Return the parameters and optimizer state after one update (Keras' formulas).

    ``state`` holds the values of ``optimizer.variables`` (the step count and
    learning rate first).  ``squares`` is what Adam's second moment and
    Adagrad's accumulator add up: for the embedding tables, whose gradients
    Keras receives sparse, the sum of each row's squared per-sample
    gradients, as Keras' update of sparse gradients computes it (see
    :func:`gradients_and_squares`).

    Parameters
    ----------
    optimizer : keras.optimizers.Adam, Adagrad or SGD
        Its hyper-parameters; its variables are not touched.
    slots : list of list of int
        As :func:`optimizer_slots` returns.
    state : list of tensor
    gradients, squares, params : list of tensor
        One per trainable variable.

    Returns
    -------
    params, state : list of tensor
    """
    from keras import ops

    state = list(state)
    iterations, learning_rate = state[0], state[1]
    kind = type(optimizer).__name__
    if kind == "Adam":
        beta_1, beta_2 = optimizer.beta_1, optimizer.beta_2
        step = ops.cast(iterations + 1, "float32")
        alpha = learning_rate * ops.sqrt(1 - ops.power(beta_2, step)) / (
            1 - ops.power(beta_1, step)
        )
    new = []
    for i, (p, g, g2) in enumerate(zip(params, gradients, squares)):
        if g is None:
            # A variable the batch did not reach (the attention network of a
            # batch without pairs): Keras' optimizers leave it and its slots.
            new.append(p)
        elif kind == "SGD":
            new.append(p - learning_rate * g)
        elif kind == "Adagrad":
            accumulator = state[slots[0][i]] = state[slots[0][i]] + g2
            new.append(p - learning_rate * g / ops.sqrt(accumulator + optimizer.epsilon))
        else:
            m = state[slots[0][i]] = state[slots[0][i]] + (g - state[slots[0][i]]) * (1 - beta_1)
            v = state[slots[1][i]] = state[slots[1][i]] + (g2 - state[slots[1][i]]) * (1 - beta_2)
            new.append(p - m * alpha / (ops.sqrt(v) + optimizer.epsilon))
    state[0] = iterations + 1
    return new, state


def sparse_gradients(network):
    """Return, per trainable variable, whether its gradient is sparse (an embedding table)."""
    tables = {id(network.embeddings.embeddings), id(network.linear.embeddings)}
    return [id(variable) in tables for variable in network.trainable_variables]


def gradients_and_squares(tf, gradients):
    """Return dense gradients and the squares the optimizers accumulate.

    A sparse gradient (an embedding table's, one slice per sample that used
    a row) is summed per row; its squares are the per-row sums of the
    slices' squares, not the square of the sum: the second moment Keras'
    Adam and Adagrad give such rows.  (Textbook Adam, the square of the
    summed gradient, was measured too: same ROC AUC on Telco and the planted
    pairs, but the attention of a planted interaction stayed uniform where
    this one singles it out.)
    """
    dense, squares = [], []
    for g in gradients:
        if g is None:
            dense.append(None)
            squares.append(None)
        elif isinstance(g, tf.IndexedSlices):
            rows = g.dense_shape[0]
            dense.append(tf.math.unsorted_segment_sum(g.values, g.indices, rows))
            squares.append(tf.math.unsorted_segment_sum(tf.square(g.values), g.indices, rows))
        else:
            dense.append(g)
            squares.append(tf.square(g))
    return dense, squares


def staging_steps(n_steps, batch_size, width):
    """Return the steps per staged chunk: a power of two, within :data:`STAGING_BUDGET`.

    Powers of two keep the number of distinct compiled shapes small: fits of
    similar sizes share one.
    """
    per_step = batch_size * (width * 8 + 12)
    budget = max(1, STAGING_BUDGET // per_step)
    steps = 1 << max(int(n_steps) - 1, 0).bit_length()
    return int(min(steps, 1 << (budget.bit_length() - 1)))


def stage(X, y, sample_weight, batch_size, order, width, steps):
    """Yield the epoch's batches as chunks of fixed-shape arrays.

    Each chunk is ``(indices, values, y, weights, counts, n_steps)``: arrays
    of shape ``(steps, batch_size, width)`` (``y`` and ``weights``: ``(steps,
    batch_size, ...)``), the number of real rows of each step, and how many
    steps of the chunk are real.  Padding rows have value 0 and weight 0;
    padding steps are not run.  Batches are cut in the order of ``order``, as
    the per-batch path cuts them (so categorical stand-ins are drawn alike).
    """
    batches = list(iter_batches(order, batch_size))
    for start in range(0, len(batches), steps):
        chunk = batches[start : start + steps]
        indices = np.zeros((steps, batch_size, width), dtype=np.int32)
        values = np.zeros((steps, batch_size, width), dtype=np.float32)
        targets = np.zeros((steps, batch_size, *y.shape[1:]), dtype=y.dtype)
        weights = np.zeros((steps, batch_size), dtype=np.float32)
        counts = np.ones(steps, dtype=np.float32)
        for s, rows in enumerate(chunk):
            batch_indices, batch_values = make_batch(X, rows)
            n, k = batch_indices.shape
            indices[s, :n, :k] = batch_indices
            values[s, :n, :k] = batch_values
            targets[s, :n] = y[rows]
            weights[s, :n] = sample_weight[rows]
            counts[s] = n
        yield indices, values, targets, weights, counts, len(chunk)


def cached(key, build):
    """Return the step cached under ``key``, building it once.

    Beyond :data:`MAX_CACHED_STEPS` steps the oldest is dropped, so that a
    long search over many configurations keeps a bounded number of graphs.
    """
    with _CACHE_LOCK:
        step = _CACHE.get(key)
        if step is None:
            if len(_CACHE) >= MAX_CACHED_STEPS:
                del _CACHE[next(iter(_CACHE))]
            step = _CACHE[key] = build()
        return step


def _specs(tf, tensors):
    return [tf.TensorSpec(t.shape, t.dtype) for t in tensors]


def _state_specs(tf, engine):
    return [_specs(tf, values) for values in engine.values()]


def batch_specs(tf, engine, width, rows=None):
    """Specs of ``(indices, values, y, sample_weight)`` of batches of ``rows`` rows."""
    squared = engine.loss == "squared"
    return [
        tf.TensorSpec([rows, width], tf.int32),
        tf.TensorSpec([rows, width], tf.float32),
        tf.TensorSpec(
            [rows, engine.network.n_outputs] if squared else [rows],
            tf.int32 if engine.loss == "multiclass" else tf.float32,
        ),
        tf.TensorSpec([rows], tf.float32),
    ]


def _gradients(engine, params, non_trainable, batch, count, share=1.0, unconnected="none"):
    """Return the gradients and squares of a batch's loss, the new non-trainable values, the loss.

    ``batch`` is ``(indices, values, y, sample_weight)``; ``count``, ``share``:
    see :meth:`~sklearn_afm._engine.Engine.batch_loss`; ``unconnected`` as
    ``GradientTape.gradient``'s ``unconnected_gradients``.
    """
    tf = engine.tf
    with tf.GradientTape() as tape:
        tape.watch(params)
        loss, non_trainable = engine.batch_loss(params, non_trainable, *batch, count, share)
    gradients = tape.gradient(loss, params, unconnected_gradients=unconnected)
    return (*gradients_and_squares(tf, gradients), non_trainable, loss)


def _update(engine):
    """Return the stateless minibatch update of ``engine``'s network and optimizer."""
    optimizer = engine.optimizer
    slots = optimizer_slots(optimizer)

    def update(params, non_trainable, state, indices, values, y, sample_weight, count):
        gradients, squares, non_trainable, loss = _gradients(
            engine, params, non_trainable, (indices, values, y, sample_weight), count
        )
        params, state = apply_optimizer(optimizer, slots, state, gradients, squares, params)
        return params, non_trainable, state, loss

    return update


def gradient_step(engine, width):
    """Return ``step(params, non_trainable, indices, values, y, sample_weight, count, share)``.

    It returns the gradients and squares (see :func:`gradients_and_squares`)
    of a chunk of a batch's rows (see
    :meth:`~sklearn_afm._engine.Engine.batch_loss` for ``count`` and
    ``share``), the new non-trainable values and the chunk's loss; summed
    over the chunks, they are the batch's, for :func:`apply_step`.
    """
    tf = engine.tf

    def gradients(params, non_trainable, indices, values, y, sample_weight, count, share):
        # Zeros for variables the chunk did not reach: the chunks' sums need
        # one structure (such variables have a gradient in some chunk of any
        # batch wide enough to be cut).
        batch = (indices, values, y, sample_weight)
        return _gradients(engine, params, non_trainable, batch, count, share, "zero")

    def build():
        params, non_trainable, _ = _state_specs(tf, engine)
        scalar = tf.TensorSpec([], tf.float32)
        specs = (params, non_trainable, *batch_specs(tf, engine, width), scalar, scalar)
        return tf.function(gradients, autograph=False).get_concrete_function(*specs)

    return cached(("gradient", engine.key, width), build)


def apply_step(engine):
    """Return ``step(params, state, gradients, squares)``: :func:`apply_optimizer`, traced.

    ``gradients`` and ``squares`` are sums over a batch's chunks; the squares
    of the dense parameters are then taken anew, of the summed gradients.
    """
    tf = engine.tf
    optimizer = engine.optimizer
    slots = optimizer_slots(optimizer)
    sparse = sparse_gradients(engine.network)

    def build():
        params, _, state = _state_specs(tf, engine)

        def update(params, state, gradients, squares):
            squares = [q if s else tf.square(g) for q, g, s in zip(squares, gradients, sparse)]
            return apply_optimizer(optimizer, slots, state, gradients, squares, params)

        function = tf.function(update, autograph=False)
        return function.get_concrete_function(params, state, params, params)

    return cached(("apply", engine.key), build)


def train_step(engine, width):
    """Return ``step(params, non_trainable, state, indices, values, y, sample_weight, count)``.

    It returns the new ``(params, non_trainable, state)`` and the batch's loss.
    """
    tf = engine.tf

    def build():
        specs = (*_state_specs(tf, engine), *batch_specs(tf, engine, width),
                 tf.TensorSpec([], tf.float32))
        return tf.function(_update(engine), autograph=False).get_concrete_function(*specs)

    return cached(("train", engine.key, width), build)


def inference_function(engine, name):
    """Return ``step(params, non_trainable, indices, values)`` of the network method ``name``.

    ``name`` is "predict" (the outputs), "attention" or "contributions"
    (see :class:`~sklearn_afm._model.AFMNetwork`).  The function is plain
    Keras code, for a backend to trace or compile.
    """
    import keras

    network = engine.network
    variables = [*network.trainable_variables, *network.non_trainable_variables]
    method = {
        "predict": network.call,
        "attention": network.attention,
        "contributions": network.contributions,
    }[name]

    def step(params, non_trainable, indices, values):
        mapping = list(zip(variables, [*params, *non_trainable]))
        with keras.StatelessScope(state_mapping=mapping):
            return method((indices, values))

    return step


def inference_step(engine, name, width):
    """Return :func:`inference_function` traced for batches of padded width ``width``."""
    tf = engine.tf

    def build():
        params, non_trainable, _ = _state_specs(tf, engine)
        specs = (params, non_trainable, *batch_specs(tf, engine, width)[:2])
        function = tf.function(inference_function(engine, name), autograph=False)
        return function.get_concrete_function(*specs)

    return cached((name, engine.key, width), build)


def epoch_step(engine, batch_size, width, steps):
    """Return the XLA-compiled loop over a chunk of :func:`stage`'s staged batches.

    ``step(params, non_trainable, state, indices, values, y, weights, counts,
    n_steps)`` runs the first ``n_steps`` batches of the chunk and returns the
    new ``(params, non_trainable, state)`` and the summed loss of their rows.
    """
    tf = engine.tf

    def build():
        update = _update(engine)

        def loop(params, non_trainable, state, indices, values, y, weights, counts, n_steps):
            def body(i, params, non_trainable, state, total):
                batch = (indices[i], values[i], y[i], weights[i], counts[i])
                params, non_trainable, state, loss = update(params, non_trainable, state, *batch)
                return i + 1, params, non_trainable, state, total + loss * counts[i]

            start = (tf.constant(0), params, non_trainable, state, tf.constant(0.0))
            _, params, non_trainable, state, total = tf.while_loop(
                lambda i, *_: i < n_steps, body, start
            )
            return params, non_trainable, state, total

        staged = [
            tf.TensorSpec([steps, *spec.shape], spec.dtype)
            for spec in batch_specs(tf, engine, width, rows=batch_size)
        ]
        specs = (*_state_specs(tf, engine), *staged, tf.TensorSpec([steps], tf.float32),
                 tf.TensorSpec([], tf.int32))
        return tf.function(loop, jit_compile=True, autograph=False).get_concrete_function(*specs)

    return cached(("epoch", engine.key, batch_size, width, steps), build)
