"""The training loop: minibatch epochs, early stopping, history, best weights.

:func:`train` runs epochs of an :class:`~sklearn_afm._engine.Engine` over a
:class:`TrainingSet` with MLPClassifier's stopping rule (:class:`StoppingRule`),
keeps the best epoch's weights when a validation set is monitored, checks for
divergence, and reports each epoch to callbacks (objects with
``on_epoch_end(epoch)`` and ``on_stop(epoch)``, and optionally
``on_epoch_begin(n_iter)``; see :class:`VerboseReporter`, and
:mod:`sklearn_afm._callbacks` for scikit-learn's callbacks).
It knows nothing of scikit-learn's estimators: the facade
(:mod:`sklearn_afm._base`) prepares the data and reads the :class:`History`;
benchmarks call it directly.  The engine is used through ``train_epoch``,
``predict``, ``get_weights`` and ``set_weights`` only.
"""

import time
from dataclasses import dataclass, field, replace

import numpy as np
from sklearn.model_selection import train_test_split

from ._batching import training_source


@dataclass
class ValidationSet:
    """The rows whose score early stopping monitors.

    Attributes
    ----------
    X : ndarray, csr_array or FieldMatrix
        A row source holding them.
    rows : ndarray of int or None
        Which rows of ``X`` (all when None).
    y : ndarray
        Their encoded targets.
    sample_weight : ndarray of float64
        Their weights.
    """

    X: object
    rows: object
    y: np.ndarray
    sample_weight: np.ndarray


@dataclass
class TrainingSet:
    """The rows one fit trains on, with their targets and weights.

    Attributes
    ----------
    X : ndarray, csr_array or FieldMatrix
        Every row, as a row source of :mod:`sklearn_afm._batching`.
    source : ndarray, csr_array or FieldMatrix
        The same rows as training batches are cut from them (categorical data
        with its unknown/missing stand-ins, see
        :func:`~sklearn_afm._batching.training_source`).
    y : ndarray
        Encoded targets of every row.
    train_weight : ndarray of float32
        The weights training uses: scaled to mean 1 over the training rows,
        so that the step size does not depend on the weights' overall scale.
    train_rows : ndarray of int
    validation : ValidationSet or None
        What early stopping monitors: held-out rows of ``X``, or a set the
        user gave; None without early stopping.
    """

    X: object
    source: object
    y: np.ndarray
    train_weight: np.ndarray
    train_rows: np.ndarray
    validation: ValidationSet = None


def make_training_set(X, y, sample_weight, random_state, *, validation_fraction=None,
                      stratify=None, validation=None):
    """Split the rows of ``X`` into training and validation rows, and weigh them.

    Parameters
    ----------
    X : ndarray, csr_array or FieldMatrix
    y : ndarray
        Encoded targets.
    sample_weight : ndarray of float64
    random_state : RandomState
        Draws the split, then the stand-ins of categorical training batches.
    validation_fraction : float or None
        Share of rows held out for early stopping; None holds out nothing.
    stratify : ndarray or None
        Labels to stratify the split by (classification).
    validation : ValidationSet or None
        A validation set of other rows, given instead of a held-out share.

    Returns
    -------
    data : TrainingSet
    """
    rows = np.arange(X.shape[0])
    if validation_fraction is None:
        train_rows = rows
    else:
        train_rows, validation_rows = train_test_split(
            rows, test_size=validation_fraction, random_state=random_state, stratify=stratify
        )
        validation = ValidationSet(
            X, validation_rows, y[validation_rows], sample_weight[validation_rows]
        )
    weight_sum = sample_weight[train_rows].sum()
    if not weight_sum > 0:
        raise ValueError("The sample weights of the training rows sum to zero.")
    train_weight = (sample_weight * (train_rows.shape[0] / weight_sum)).astype(np.float32)
    return TrainingSet(
        X=X,
        source=training_source(X, random_state),
        y=y,
        train_weight=train_weight,
        train_rows=train_rows,
        validation=validation,
    )


def drawing_from(data, random_state):
    """Return ``data`` with its training batches' stand-ins drawn from ``random_state``.

    Runs that train on the same :class:`TrainingSet`, each with a copy of one
    generator, then draw the same stand-ins and shuffles.
    """
    return replace(data, source=training_source(data.X, random_state))


@dataclass
class History:
    """What the epochs of a model have measured so far.

    ``validation_scores`` holds the monitored score of each epoch run with a
    validation set (higher is better).
    """

    n_iter: int = 0
    loss_curve: list = field(default_factory=list)
    validation_scores: list = field(default_factory=list)
    converged: bool = False
    # Whether a callback ended training (its on_epoch_end returned True).
    interrupted: bool = False

    @property
    def best_loss(self):
        return min(self.loss_curve, default=np.inf)

    @property
    def best_score(self):
        return max(self.validation_scores, default=-np.inf)


@dataclass
class StoppingRule:
    """MLPClassifier's rule: stop after ``n_iter_no_change`` epochs without progress.

    An epoch makes progress when its value beats the best one before it by
    more than ``tol``.
    """

    n_iter_no_change: int
    tol: float
    stale_epochs: int = 0

    def update(self, value, best, higher_is_better):
        """Count the epoch that measured ``value``; return whether training should stop."""
        if higher_is_better:
            improved = value > best + self.tol
        else:
            improved = value < best - self.tol
        self.stale_epochs = 0 if improved else self.stale_epochs + 1
        return self.stale_epochs >= self.n_iter_no_change


@dataclass
class Epoch:
    """What callbacks learn of an epoch.

    Attributes
    ----------
    n_iter : int
        Its number, counted over the model's whole history.
    loss : float
        Mean training loss.
    score : float or None
        The monitored validation score (higher is better); None without a
        validation set.
    seconds : float
        Its duration, validation included.
    train_seconds : float
        The duration of its minibatch updates alone.
    n_rows, n_batches : int
        Training rows it visited, and the minibatch updates it made.
    """

    n_iter: int
    loss: float
    score: float = None
    seconds: float = 0.0
    train_seconds: float = 0.0
    n_rows: int = 0
    n_batches: int = 0


class VerboseReporter:
    """Print MLPClassifier-style progress lines: the callback that ``verbose`` adds.

    Parameters
    ----------
    stopping : StoppingRule
        The rule whose settings the stopping message names.
    score_name : str, default="score"
        What the validation score is, as the lines name it ("log-loss").
    score_sign : {1, -1}, default=1
        The sign that turns the score (higher is better) into the named
        quantity: -1 prints the log-loss of a negative log-loss score.
    detailed : bool, default=False
        Whether each line adds where the epoch's time went: the updates'
        share, their throughput in rows and batches per second, and the
        validation pass (``verbose=2``).
    """

    def __init__(self, stopping, score_name="score", score_sign=1, detailed=False):
        self.stopping = stopping
        self.score_name = score_name
        self.score_sign = score_sign
        self.detailed = detailed

    def on_epoch_end(self, epoch):
        message = f"Iteration {epoch.n_iter}, loss = {epoch.loss:.8f}"
        if epoch.score is not None:
            message += f", validation {self.score_name} = {self.score_sign * epoch.score:.6f}"
        timing = f"{epoch.seconds:.2f} s"
        if self.detailed:
            # max(): a timer's resolution can round a tiny epoch down to 0 s.
            seconds = max(epoch.train_seconds, 1e-9)
            timing += (
                f": updates {epoch.train_seconds:.2f} s, {epoch.n_rows / seconds:,.0f} rows/s, "
                f"{epoch.n_batches / seconds:,.1f} batches/s"
            )
            if epoch.score is not None:
                timing += f"; validation {epoch.seconds - epoch.train_seconds:.2f} s"
        print(f"{message} ({timing})")

    def on_stop(self, epoch):
        rule = self.stopping
        monitored = "Training loss" if epoch.score is None else f"Validation {self.score_name}"
        print(
            f"{monitored} did not improve more than tol={rule.tol} for "
            f"{rule.n_iter_no_change} consecutive epochs. Stopping."
        )


def train(engine, data, history, *, n_epochs, batch_size, random_state, stopping, score=None,
          callbacks=()):
    """Train up to ``n_epochs`` epochs, extending ``history`` in place.

    With ``data.validation`` progress is ``score`` on those rows and the
    best epoch's weights are kept; otherwise it is the training loss.

    Parameters
    ----------
    engine : Engine
    data : TrainingSet
    history : History
        The history to extend: empty for a fresh model, the previous one for
        a continued fit.
    n_epochs, batch_size : int
    random_state : RandomState
        Shuffles the training rows of each epoch.
    stopping : StoppingRule
    score : callable, default=None
        ``score(outputs, y, sample_weight) -> float`` of the validation rows'
        raw network outputs (higher is better); needed with a validation set.
    callbacks : sequence of objects with ``on_epoch_end`` and ``on_stop``
        Told of every epoch (``on_epoch_begin(n_iter)`` too, where they
        have it), and of an early stop.  Per-epoch callbacks (progress bars,
        monitors) plug in here; one whose ``on_epoch_end`` returns True ends
        training after that epoch (``history.interrupted``).

    Returns
    -------
    history : History

    Raises
    ------
    FloatingPointError
        When the loss, or the model's outputs after the last epoch, are not finite.
    """
    validation = data.validation
    best_weights = None
    n_rows = data.train_rows.shape[0]
    planned_rows = n_rows * n_epochs
    beginnings = [c.on_epoch_begin for c in callbacks if hasattr(c, "on_epoch_begin")]
    for _ in range(n_epochs):
        for begin in beginnings:
            begin(history.n_iter + 1)
        start = time.perf_counter()
        order = random_state.permutation(data.train_rows)
        loss = engine.train_epoch(data.source, data.y, data.train_weight, batch_size, order,
                                  planned_rows=planned_rows)
        history.n_iter += 1
        _check_finite(loss, f"the loss became {loss}", history.n_iter)
        epoch = Epoch(history.n_iter, loss, train_seconds=time.perf_counter() - start,
                      n_rows=n_rows, n_batches=-(-n_rows // batch_size))
        if validation is not None:
            outputs = engine.predict(validation.X, batch_size, rows=validation.rows)
            epoch.score = score(outputs, validation.y, validation.sample_weight)
            best = history.best_score
            history.validation_scores.append(epoch.score)
            stop = stopping.update(epoch.score, best, higher_is_better=True)
            if epoch.score > best:
                best_weights = engine.get_weights()
        else:
            best = history.best_loss
            stop = stopping.update(loss, best, higher_is_better=False)
        history.loss_curve.append(loss)
        epoch.seconds = time.perf_counter() - start
        # Every callback is told of the epoch, even after one asks to stop.
        requests = [callback.on_epoch_end(epoch) for callback in callbacks]
        if stop:
            history.converged = True
            for callback in callbacks:
                callback.on_stop(epoch)
            break
        if any(requests):
            history.interrupted = True
            break
    if best_weights is not None:
        engine.set_weights(best_weights)
    # The last update can make the weights so large that the outputs
    # overflow after the epoch's loss was taken: a model that predicts NaN
    # must not be returned, so check a batch of training rows.
    outputs = engine.predict(data.X, batch_size, rows=data.train_rows[:batch_size])
    _check_finite(outputs, "the model's outputs became NaN or infinite", history.n_iter)
    return history


def _check_finite(values, what, n_iter):
    if not np.isfinite(values).all():
        raise FloatingPointError(
            f"Training diverged: {what} at epoch {n_iter}. Lower learning_rate_init or "
            "scale the input features."
        )
