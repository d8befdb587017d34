"""scikit-learn's callback API (``sklearn.callback``, scikit-learn 1.9 on), where it exists.

A fit is the task tree that the API's developer guide describes: the root
task is the ``fit`` (or ``partial_fit``) call, and its subtasks are the
epochs.  The epochs are the leaves, each one pass over the training data (the
guide's convention: leaves work on the full data).  Batches are not tasks:
from 300,000 rows x epochs they run inside XLA-compiled loops that no Python
hook can enter, and elsewhere a hook per batch would add its Python cost to
steps of a millisecond or two.

With scikit-learn 1.6 to 1.8, which have no callback API, the mixin is an
empty class (no ``set_callbacks``: meta-estimators then propagate no
callbacks to the estimator), ``with_callbacks`` returns the method as it is,
and :func:`start_fit_task` returns None.
"""

try:
    from sklearn.callback import CallbackSupportMixin, with_callbacks

    HAS_CALLBACK_API = True
except ImportError:  # scikit-learn < 1.9
    HAS_CALLBACK_API = False

    class CallbackSupportMixin:
        """Stand-in for scikit-learn's mixin where it has none: nothing to add."""

    def with_callbacks(method):
        """Stand-in for scikit-learn's decorator where it has none: ``method`` itself."""
        return method


def start_fit_task(estimator, task_name, n_epochs, X, y, sample_weight):
    """Open the root task of a fit call and tell the callbacks it begins.

    Parameters
    ----------
    estimator : BaseAFM
        The estimator whose method runs: the callbacks' state is keyed by it,
        and it keeps the context until ``with_callbacks`` tears it down.
    task_name : {"fit", "partial_fit"}
    n_epochs : int
        The most epochs the call runs (its subtasks).
    X, y, sample_weight
        The data as the call was given it, for callbacks that score the
        model on it (``ScoringMonitor``).

    Returns
    -------
    task : FitTask or None
        None where scikit-learn has no callback API.
    """
    if not HAS_CALLBACK_API:
        return None
    context = estimator._init_callback_context(task_name=task_name, max_subtasks=n_epochs)
    metadata = None if sample_weight is None else {"sample_weight": sample_weight}
    return FitTask(context, estimator, {"X": X, "y": y, "metadata": metadata})


class FitTask:
    """The root task of one fit call, whose subtasks are its epochs.

    Parameters
    ----------
    context : sklearn.callback.CallbackContext
        The root context.
    estimator : BaseAFM
    data : dict
        ``X``, ``y`` and ``metadata`` as the callbacks' hooks take them.
    """

    def __init__(self, context, estimator, data):
        self.context = context
        self.estimator = estimator
        self.data = data
        context.call_on_fit_task_begin(estimator=estimator, **data)

    def epochs(self, fitted_state):
        """Return the callback of :func:`~sklearn_afm._training.train` that runs each epoch's task.

        Parameters
        ----------
        fitted_state : callable
            Returns the attributes that make a copy of the estimator predict
            as the model does at that moment; called only for callbacks that
            take a ``fitted_estimator``.
        """
        return _EpochTasks(self, fitted_state)

    def end(self):
        """Tell the callbacks that the fit ended, the estimator being fitted."""
        self.context.call_on_fit_task_end(
            estimator=self.estimator, reconstruction_attributes={}, **self.data
        )


class _EpochTasks:
    """Each epoch as a subtask of the fit: the bridge from ``train``'s hooks to the contexts."""

    def __init__(self, task, fitted_state):
        self.task = task
        self.fitted_state = fitted_state
        self.current = None

    def on_epoch_begin(self, n_iter):
        self.current = self.task.context.subcontext(task_name="epoch")
        self.current.call_on_fit_task_begin(
            estimator=self.task.estimator, reconstruction_attributes=self.fitted_state,
            **self.task.data,
        )

    def on_epoch_end(self, epoch):
        # True when a callback asks to stop: train ends after this epoch.
        return self.current.call_on_fit_task_end(
            estimator=self.task.estimator, reconstruction_attributes=self.fitted_state,
            **self.task.data,
        )

    def on_stop(self, epoch):
        """The stopping rule ended the fit; the root task's end tells the callbacks."""
