"""The trained network of a fitted estimator: plain arrays, and the engine built from them.

A :class:`TrainedNetwork` is what a fit leaves behind: the network's
configuration, its weights, its optimizer's settings and state, and the
devices it was trained on, all plain data (so a pickle or a model file holds
no TensorFlow object).  The live :class:`~sklearn_afm._engine.Engine` is a
cache rebuilt from them on first use, in any process, ready to predict or to
continue training.
"""

import threading

# Guards the lazy rebuild of an engine when several threads predict at once;
# a TrainedNetwork cannot own a lock, since it must pickle.
_ENGINE_LOCK = threading.Lock()


def engine_class():
    """Return the engine class of Keras' backend: ``Engine`` (TensorFlow) or ``JaxEngine``."""
    from ._runtime import require_backend

    if require_backend() == "jax":
        from ._jax_engine import JaxEngine

        return JaxEngine
    from ._engine import Engine

    return Engine


def build_engine(config, optimizer, loss, device, weights=None, optimizer_state=None,
                 feature_scale=None):
    """Return a new engine for Keras' backend (imports TensorFlow, or JAX).

    A :class:`~sklearn_afm._engine.Engine` on TensorFlow, a
    :class:`~sklearn_afm._jax_engine.JaxEngine` under ``KERAS_BACKEND=jax``.

    Parameters
    ----------
    config : dict
        Keyword arguments of :class:`~sklearn_afm._model.AFMNetwork`.
    optimizer : dict
        ``solver`` and ``learning_rate``.
    loss : {"binary", "multiclass", "squared"}
    device : str or list of str
        The estimator's ``device`` parameter (see
        :func:`~sklearn_afm._runtime.resolve_device`).
    weights, optimizer_state, feature_scale
        See :class:`~sklearn_afm._engine.Engine`.
    """
    from ._runtime import resolve_device

    return engine_class()(
        config,
        loss=loss,
        **optimizer,
        device=resolve_device(device),
        weights=weights,
        optimizer_state=optimizer_state,
        feature_scale=feature_scale,
    )


class TrainedNetwork:
    """A trained network as plain data, with its live engine as a cache.

    Parameters
    ----------
    config : dict
        Keyword arguments of :class:`~sklearn_afm._model.AFMNetwork` (``seed``
        included).
    optimizer : dict
        ``solver`` and ``learning_rate`` of the optimizer whose state
        ``optimizer_state`` is: a continued fit with other settings starts a
        fresh optimizer.
    weights : list of ndarray
    optimizer_state : list of ndarray
    placement : str or tuple of str
        TensorFlow device(s) it was trained on (the estimator's ``device_``).
    engine : Engine, default=None
        The live engine these arrays were taken from, if any.
    """

    def __init__(self, config, optimizer, weights, optimizer_state, placement, engine=None):
        self.config = config
        self.optimizer = optimizer
        self.weights = weights
        self.optimizer_state = optimizer_state
        self.placement = placement
        self._engine = engine

    @classmethod
    def from_engine(cls, engine, config, optimizer):
        """Take the trained state of ``engine``, keeping the engine as the cache."""
        return cls(
            config,
            optimizer,
            engine.get_weights(),
            engine.get_optimizer_state(),
            engine.placement,
            engine,
        )

    def engine(self, loss, device):
        """Return the live engine, rebuilding it from the arrays on ``device`` if needed."""
        engine = self._engine
        if engine is None:
            with _ENGINE_LOCK:
                engine = self._engine
                if engine is None:
                    # The optimizer the saved state belongs to, whatever the
                    # estimator's parameters say now.
                    engine = self._engine = build_engine(
                        self.config, self.optimizer, loss, device, self.weights,
                        self.optimizer_state,
                    )
        return engine

    def continued_engine(self, loss, device, optimizer):
        """Return an engine that continues training this network with ``optimizer``.

        The live engine when its device and optimizer are those asked for;
        else a new one from the arrays, with the saved optimizer state only if
        the optimizer settings are unchanged (as MLPClassifier's warm start,
        other settings start a fresh optimizer on the kept weights).
        """
        from ._runtime import resolve_device

        same_optimizer = optimizer == self.optimizer
        live = self._engine
        if same_optimizer and live is not None and live.placement == resolve_device(device):
            return live
        # Built from the arrays directly: rebuilding the live engine first
        # would be thrown away whenever the device or the optimizer changed.
        optimizer_state = self.optimizer_state if same_optimizer else None
        return build_engine(
            self.config, optimizer, loss, device, self.weights, optimizer_state
        )

    def discard_engine(self):
        """Forget the live engine (for example one that a failed fit trained in place)."""
        self._engine = None
