"""Run an :class:`~sklearn_afm._model.AFMNetwork` on JAX (``KERAS_BACKEND=jax``).

The same network, optimizers and training semantics as the TensorFlow
:class:`~sklearn_afm._engine.Engine`, for machines that have JAX but no
TensorFlow (GPU servers built for JAX): every epoch runs as ``jax.jit``-
compiled loops over the fixed-shape chunks of
:func:`~sklearn_afm._steps.stage`, and prediction as compiled steps over
batches padded to a fixed number of rows, so a fit compiles once per shape
and process (:func:`~sklearn_afm._steps.cached`).

The optimizers are :func:`~sklearn_afm._steps.apply_optimizer`, so Adam and
Adagrad accumulate, for the embedding tables, the per-row sums of the
per-lookup squared gradients that TensorFlow's sparse gradients give them.
JAX differentiates a table as one dense array, so the loss is
differentiated with respect to the batch's *looked-up rows*: a second
network of the same configuration whose tables hold just those rows (one
per slot of the batch, looked up by position) gives the per-lookup
gradients, whose sums and sums of squares per feature are then the table's
gradient and squares.
"""

import numpy as np

from ._batching import (
    iter_batches,
    make_batch,
    padded_width_of,
    rows_within_budget,
)
from ._engine import Engine
from ._runtime import jax_device, require_backend
from ._steps import (
    apply_optimizer,
    cached,
    inference_function,
    optimizer_slots,
)


class JaxEngine(Engine):
    """An :class:`~sklearn_afm._engine.Engine` whose steps run on JAX, on one device.

    Parameters are those of :class:`~sklearn_afm._engine.Engine`; ``device``
    must name one device (data-parallel training is TensorFlow's).
    """

    def _placement_scope(self, device):
        import jax

        require_backend("jax")
        if not isinstance(device, str):
            raise ValueError(
                f"device={list(device)!r} asks for data-parallel training, which runs on "
                "TensorFlow only; with KERAS_BACKEND=jax name one device."
            )
        self.tf = None
        self.strategy = None
        self.device = device
        self._jax_device = jax_device(device)
        return jax.default_device(self._jax_device)

    def get_weights(self):
        """Return the network's weights as a list of numpy arrays."""
        # Keras' get_weights goes through Variable.__array__, which numpy 2
        # warns about under JAX (no ``copy`` keyword).
        return [np.asarray(variable.value) for variable in self.network.weights]

    def get_optimizer_state(self):
        """Return the optimizer's variables as numpy arrays, as TensorFlow's engine does.

        JAX counts the steps in int32 (without ``jax_enable_x64``); a model
        file holds TensorFlow's int64, whichever backend wrote it.
        """
        state = [np.asarray(variable.value) for variable in self.optimizer.variables]
        return [state[0].astype(np.int64), *state[1:]]

    def _compiled_width(self, X, planned_rows, batch_size):
        """Return the padded width of every epoch: on JAX they all run compiled.

        Batches too wide for one step are compiled too, their gradient summed
        over chunks of rows inside the step.
        """
        return padded_width_of(X)

    def _epoch_step(self, batch_size, width, steps):
        rows = min(batch_size, rows_within_budget(width, self.network.embedding_size))
        return _epoch_step(self, batch_size, width, steps, rows)

    def _device_scope(self):
        import jax

        return jax.default_device(self._jax_device)

    def _outputs(self, name, X, batch_size, rows=None):
        """As :meth:`Engine._outputs`; each batch is padded to ``batch_size`` rows."""
        import jax

        params, non_trainable, _ = self.values()
        with self._device_scope():
            for batch in iter_batches(X.shape[0] if rows is None else rows, batch_size):
                indices, values = make_batch(X, batch)
                n, width = indices.shape
                padded = [np.zeros((batch_size, width), a.dtype) for a in (indices, values)]
                padded[0][:n], padded[1][:n] = indices, values
                outputs = _inference_step(self, name, batch_size, width)(
                    params, non_trainable, *padded
                )
                outputs = jax.tree_util.tree_map(np.asarray, outputs)
                if name == "contributions":
                    # The bias has no row axis.
                    outputs = (outputs[0], *(out[:n] for out in outputs[1:]))
                else:
                    outputs = outputs[:n]
                yield indices, values, outputs


def _positions(network):
    """Return the positions of the embedding tables among the trainable variables,
    and of the feature scale among the non-trainable ones."""
    trainable = [id(v) for v in network.trainable_variables]
    tables = [trainable.index(id(t.embeddings)) for t in (network.embeddings, network.linear)]
    scale = [id(v) for v in network.non_trainable_variables].index(id(network.feature_scale))
    return tables, scale


def _lookup_network(engine, rows, width):
    """Return a network like ``engine``'s whose tables have one row per slot of a batch."""
    from ._model import AFMNetwork

    network = AFMNetwork(**{**engine.network_params, "n_features": rows * width})
    network.build(None)
    return network


def _batch_gradients(engine, lookup, rows, width):
    """Return ``gradients(params, non_trainable, indices, values, y, weights, count, share)``.

    For a chunk of ``rows`` rows, it returns the gradients of the chunk's part
    of the batch loss (see :meth:`Engine.batch_loss`) for every trainable
    variable, the per-feature sums of squared per-lookup gradients of the
    two tables (None for the other variables), the new non-trainable values
    and the loss.
    """
    import jax
    import jax.numpy as jnp

    tables, scale = _positions(engine.network)
    local = jnp.arange(rows * width, dtype=jnp.int32).reshape(rows, width)

    def gradients(params, non_trainable, indices, values, y, weights, count, share):
        flat = indices.reshape(-1)
        looked_up = [params[i][flat] for i in tables]
        local_state = list(non_trainable)
        local_state[scale] = non_trainable[scale][flat]

        def loss_of(looked_up, params):
            params = list(params)
            for i, table in zip(tables, looked_up):
                params[i] = table
            loss, state = engine.batch_loss(
                params, local_state, local, values, y, weights, count, share, network=lookup
            )
            return loss, state

        (loss, state), (table_grads, grads) = jax.value_and_grad(
            loss_of, argnums=(0, 1), has_aux=True
        )(looked_up, list(params))
        state = list(state)
        state[scale] = non_trainable[scale]
        squares = [None] * len(params)
        for i, g in zip(tables, table_grads):
            zeros = jnp.zeros_like(params[i])
            grads[i] = zeros.at[flat].add(g)
            squares[i] = zeros.at[flat].add(jnp.square(g))
        return grads, squares, state, loss

    return gradients


def _update(engine, batch_size, width, rows):
    """Return the stateless minibatch update of a batch of ``batch_size`` rows.

    Its gradient is summed over chunks of ``rows`` rows (see
    :func:`~sklearn_afm._batching.rows_within_budget`); the dense
    parameters' squares are those of the summed gradients, as in
    :func:`~sklearn_afm._steps.apply_step`.
    """
    import jax
    import jax.numpy as jnp

    optimizer = engine.optimizer
    slots = optimizer_slots(optimizer)
    tables = _positions(engine.network)[0]
    gradients = _batch_gradients(engine, _lookup_network(engine, rows, width), rows, width)
    chunks = -(-batch_size // rows)
    # Pairs exist from width 2: below, the attention network is not reached
    # and, as TensorFlow's unconnected gradients, keeps its values and slots.
    unreached = set()
    if width < 2 and engine.network.use_attention:
        network = engine.network
        attention = {id(v) for layer in (network.attention_hidden, network.attention_score)
                     for v in layer.trainable_variables}
        unreached = {i for i, v in enumerate(network.trainable_variables) if id(v) in attention}

    def update(params, non_trainable, state, indices, values, y, weights, count):
        if chunks == 1:
            grads, squares, non_trainable, loss = gradients(
                params, non_trainable, indices, values, y, weights, count, 1.0
            )
        else:
            pad = chunks * rows - batch_size

            def split(a):
                a = jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1))
                return a.reshape(chunks, rows, *a.shape[1:])

            def body(carry, part):
                non_trainable, grads, squares, loss = carry
                g, q, non_trainable, chunk_loss = gradients(
                    params, non_trainable, *part, count, 1.0 / chunks
                )
                grads = [a + b for a, b in zip(grads, g)]
                squares = [a if b is None else a + b for a, b in zip(squares, q)]
                return (non_trainable, grads, squares, loss + chunk_loss), None

            zeros = [jnp.zeros_like(p) for p in params]
            start = (non_trainable, zeros, list(zeros), jnp.float32(0.0))
            parts = tuple(split(a) for a in (indices, values, y, weights))
            (non_trainable, grads, squares, loss), _ = jax.lax.scan(body, start, parts)
        squares = [q if i in tables else jnp.square(g)
                   for i, (g, q) in enumerate(zip(grads, squares))]
        grads = [None if i in unreached else g for i, g in enumerate(grads)]
        params, state = apply_optimizer(optimizer, slots, state, grads, squares, params)
        return params, non_trainable, state, loss

    return update


def _epoch_step(engine, batch_size, width, steps, rows):
    """Return the compiled loop over a chunk of staged batches (see :func:`~sklearn_afm._steps.epoch_step`)."""

    def build():
        import jax
        import jax.numpy as jnp

        update = _update(engine, batch_size, width, rows)

        def loop(params, non_trainable, state, indices, values, y, weights, counts, n_steps):
            def body(i, carry):
                params, non_trainable, state, total = carry
                params, non_trainable, state, loss = update(
                    params, non_trainable, state, indices[i], values[i], y[i], weights[i],
                    counts[i],
                )
                return params, non_trainable, state, total + loss * counts[i]

            start = (params, non_trainable, state, jnp.float32(0.0))
            return jax.lax.fori_loop(0, n_steps, body, start)

        return jax.jit(loop)

    return cached(("jax-epoch", engine.key, batch_size, width, steps, rows), build)


def _inference_step(engine, name, rows, width):
    """Return :func:`~sklearn_afm._steps.inference_function` compiled for one batch shape."""

    def build():
        import jax

        return jax.jit(inference_function(engine, name))

    return cached(("jax-" + name, engine.key, rows, width), build)
__all__ = ["JaxEngine", "prediction_batch_size"]
