"""The task maths of the estimators: targets in, network outputs out.

Pure array functions, no estimator state: the classifier and the regressor
call them from their target hooks (``_encode_y``, ``_validation_score``,
``_output_units``, ...).  The network always sees targets in one form per
loss (see :class:`~sklearn_afm._engine.Engine`): 0/1 floats for ``binary``,
class codes for ``multiclass``, standardised 2-D floats for ``squared``.
"""

import numpy as np
from scipy.special import expit, logsumexp, softmax
from sklearn.metrics import r2_score

# -- classification -------------------------------------------------------------------


def classification_loss(classes):
    """Return the engine loss for ``classes``: one logit for two classes, else one per class."""
    return "binary" if len(classes) == 2 else "multiclass"


def n_logits(classes):
    """Return the number of network outputs for ``classes``."""
    return 1 if len(classes) == 2 else len(classes)


def logit_names(classes):
    """Return what each output is: the positive class of a binary model, else every class."""
    return classes[1:] if len(classes) == 2 else classes


def fit_classes(y, classes=None):
    """Return the sorted labels of a model of ``y``: ``classes`` when given, else ``y``'s.

    Raises
    ------
    ValueError
        When there are fewer than two labels.
    """
    labels = np.unique(y if classes is None else classes)
    if labels.shape[0] < 2:
        raise ValueError(
            "The target needs samples of at least 2 classes, but the data contains only "
            f"one class: {labels.tolist()}."
        )
    return labels


def check_partial_fit_classes(fitted_classes, classes):
    """Check the ``classes`` argument of ``partial_fit`` against the model's.

    Parameters
    ----------
    fitted_classes : ndarray or None
        ``classes_`` of the model, None before its first call.
    classes : array-like or None
        The argument: required on the first call, the same labels afterwards.
    """
    if fitted_classes is None:
        if classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
    elif classes is not None and not np.array_equal(np.unique(classes), fitted_classes):
        raise ValueError(
            f"classes={np.unique(classes).tolist()} is not the same as on the first call "
            f"to partial_fit, was: {fitted_classes.tolist()}."
        )


def encode_labels(y, classes, first_fit):
    """Return the network's targets for labels ``y``: 0/1 floats, or int class codes.

    ``first_fit`` only words the error for labels outside ``classes``.
    """
    unseen = np.setdiff1d(y, classes)
    if unseen.size:
        raise ValueError(
            f"y contains labels {unseen.tolist()} that are not in classes."
            if first_fit
            else f"y contains labels {unseen.tolist()} that are not among the classes of "
            f"the previous fit {classes.tolist()}."
        )
    codes = np.searchsorted(classes, y)
    return codes.astype(np.float32 if len(classes) == 2 else np.int32)


def negative_log_loss(logits, codes, sample_weight):
    """Return minus the weighted mean log-loss of ``logits`` (higher is better).

    Computed from the logits, which stays finite where probabilities round to
    0 or 1.
    """
    if logits.shape[1] == 1:
        losses = np.logaddexp(0, logits[:, 0]) - codes * logits[:, 0]
    else:
        losses = logsumexp(logits, axis=1) - logits[np.arange(logits.shape[0]), codes]
    return -float(np.average(losses, weights=sample_weight))


def logits_to_scores(logits):
    """Return ``decision_function``'s output: 1-D for one logit."""
    return logits[:, 0] if logits.shape[1] == 1 else logits


def logits_to_proba(logits):
    """Return class probabilities, shape (n_samples, n_classes)."""
    if logits.shape[1] == 1:
        positive = expit(logits[:, 0])
        return np.column_stack([1 - positive, positive])
    return softmax(logits, axis=1)


def logits_to_codes(logits):
    """Return the code of the most probable class of each row."""
    return (logits[:, 0] > 0).astype(int) if logits.shape[1] == 1 else logits.argmax(axis=1)


# -- regression -----------------------------------------------------------------------


def as_columns(y):
    """Return targets as a 2-D array, one column per target."""
    return y.reshape(-1, 1) if y.ndim == 1 else y


def fit_standardisation(targets):
    """Return the mean and scale of each column of ``targets`` (scale 1 for constants).

    The squared deviations overflow float64 from targets of about 1e154 on
    (and the sum of many targets near float64's largest): such columns are
    measured on the targets divided by their largest magnitude, then scaled
    back, which is finite for any finite targets.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        mean, scale = targets.mean(axis=0), targets.std(axis=0)
    overflow = ~(np.isfinite(mean) & np.isfinite(scale))
    if overflow.any():
        largest = np.abs(targets[:, overflow]).max(axis=0)
        unit = targets[:, overflow] / largest
        mean[overflow] = unit.mean(axis=0) * largest
        scale[overflow] = unit.std(axis=0) * largest
    return mean, np.where(scale > 0, scale, 1.0)


def standardise(targets, mean, scale):
    """Return the network's float32 targets for 2-D ``targets``.

    Raises
    ------
    ValueError
        When a standardised target is beyond float32's range: centred, it
        exceeds float64's, or a later ``partial_fit`` chunk lies far outside
        the targets that ``mean`` and ``scale`` were measured on.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        standardised = ((targets - mean) / scale).astype(np.float32)
    bad = ~np.isfinite(standardised)
    if bad.any():
        raise ValueError(
            f"y holds {bad.sum()} value(s) too large for the network: standardised with the "
            f"mean {mean.tolist()} and standard deviation {scale.tolist()} of the targets of "
            "the first fit, they exceed float32's range. Rescale y (for example with "
            "TransformedTargetRegressor)."
        )
    return standardised


def unstandardise(outputs, mean, scale, ndim):
    """Return predictions in the units (and the dimensionality ``ndim``) of the targets.

    Raises
    ------
    ValueError
        When a prediction is beyond float64's range (targets near its limits).
    """
    with np.errstate(over="ignore", invalid="ignore"):
        predictions = outputs * scale + mean
    if not np.isfinite(predictions).all():
        raise ValueError(
            "The predictions overflow float64: the network's outputs, times the standard "
            f"deviation of the targets ({scale.tolist()}), exceed its range. Rescale y for fit "
            "(for example with TransformedTargetRegressor)."
        )
    return predictions[:, 0] if ndim == 1 else predictions


def unstandardise_terms(bias, linear, interactions, mean, scale):
    """Express the additive terms of a standardised output in the targets' units.

    Every term is scaled back; the mean belongs to no feature and joins the bias.
    """
    return bias * scale + mean, linear * scale, interactions * scale


def r2_of_standardised(outputs, targets, sample_weight):
    """Return R^2, which is unchanged by the standardisation applied to both sides."""
    return float(r2_score(targets, outputs, sample_weight=sample_weight))


def target_names(ndim, n_targets):
    """Return the output names of a regressor: "y", or "y0", "y1", ..."""
    if ndim == 1:
        return np.array(["y"])
    return np.array([f"y{j}" for j in range(n_targets)])
