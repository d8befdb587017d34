"""The saved form of a fitted estimator: one schema for pickles and model files.

An estimator's live attributes are not what is saved.  :func:`to_record`
turns them into a *record*: a flat mapping whose names are this schema's (the
names of 0.1.0's attributes, so that its pickles and files load as they are),
holding only plain data.  :func:`restore` checks a record and turns it back
into attributes.  Pickling (``BaseAFM.__getstate__``/``__setstate__``) and the
model files of :mod:`sklearn_afm._archive` both go through these two
functions, so renaming an attribute changes neither: only this module maps
the two.

The record of a fitted estimator holds the parameters, the attributes that
are saved as they are (``n_iter_``, ``classes_``, ...), the encoder, and the
network (:class:`~sklearn_afm._network.TrainedNetwork`) flattened into
:data:`NETWORK_FIELDS`.  ``is_categorical_`` and ``categories_`` are written
for readers of the format, and read back from the encoder.
"""

import warnings

from sklearn.exceptions import InconsistentVersionWarning as _SklearnVersionWarning

from ._network import TrainedNetwork

# Version of this schema; model files record it as their format version.
FORMAT_VERSION = 1

# The estimators that a record may describe, by class name.
ESTIMATORS = ("AFMClassifier", "AFMRegressor")

# Where a pickle records the sklearn_afm version that wrote it.
VERSION_KEY = "_sklearn_afm_version"

# Record names of the TrainedNetwork's fields.
NETWORK_FIELDS = {
    "_network_config": "config",
    "_optimizer_config": "optimizer",
    "_weights": "weights",
    "_optimizer_state": "optimizer_state",
    "device_": "placement",
}

# Views of the encoder, written for readers of the format.
_ENCODER_VIEWS = ("is_categorical_", "categories_")

# Fitted state that predicting and continuing a fit need: a record holding
# part of it is refused, rather than failing later.
_REQUIRED = (
    "n_features_in_",
    "is_categorical_",
    "categories_",
    "_encoder",
    "_network_config",
    "_weights",
    "_optimizer_state",
    "_optimizer_config",
    "_random_state",
    "_attention_totals",
    "attention_weights_",
    "n_iter_",
    "loss_curve_",
    "device_",
)
REQUIRED = {
    "AFMClassifier": (*_REQUIRED, "classes_"),
    "AFMRegressor": (*_REQUIRED, "_y_mean", "_y_scale", "_y_ndim"),
}
# The rest of a fitted estimator's state: the history of a fit with or without
# validation, and the column names of a fit on a DataFrame.  A model file may
# hold nothing else (pickles hold whatever the estimator held, such as
# scikit-learn's ``_metadata_request``).
OPTIONAL = ("feature_names_in_", "best_loss_", "validation_scores_", "best_validation_score_")


class InconsistentVersionWarning(_SklearnVersionWarning):
    """Warning that an estimator is loaded with another sklearn_afm version than it was saved with.

    A subclass of scikit-learn's warning of the same name, so that filters set
    for scikit-learn's estimators apply to these too.

    Parameters
    ----------
    estimator_name : str
    current_version : str
        The installed version of sklearn_afm.
    original_version : str
        The version that saved the estimator ("unknown" when the file or pickle
        does not say).
    """

    def __init__(self, *, estimator_name, current_version, original_version):
        super().__init__(
            estimator_name=estimator_name,
            current_sklearn_version=current_version,
            original_sklearn_version=original_version,
        )

    def __str__(self):
        return (
            f"Loading {self.estimator_name} saved by sklearn_afm "
            f"{self.original_sklearn_version} with sklearn_afm "
            f"{self.current_sklearn_version}. This might lead to breaking code or invalid "
            "results; refit the estimator, or load it with the version that saved it."
        )


def to_record(attributes):
    """Return the record of an estimator's attributes (``vars(estimator)``).

    Parameters and any other attribute (a ``set_output`` configuration, say)
    pass through unchanged.
    """
    record = dict(attributes)
    network = record.pop("_network", None)
    if network is not None:
        record.update({name: getattr(network, field) for name, field in NETWORK_FIELDS.items()})
    if "_encoder" in record:
        encoder = record["_encoder"]
        record["is_categorical_"] = None if encoder is None else encoder.is_categorical
        record["categories_"] = None if encoder is None else encoder.column_categories()
    return record


def restore(estimator, record, source):
    """Set ``estimator``'s attributes from ``record`` (parameters included).

    Parameters
    ----------
    estimator : AFMClassifier or AFMRegressor
        A new estimator, or one being unpickled.
    record : dict
        As :func:`to_record` returns, with the writer's version under
        :data:`VERSION_KEY` (absent: unknown).
    source : str
        What the record comes from, for messages ("the pickle", a path).

    Raises
    ------
    ValueError
        If the record holds some but not all of the fitted state.

    Warns
    -----
    InconsistentVersionWarning
        When another sklearn_afm version wrote the record.
    """
    record = dict(record)
    name = type(estimator).__name__
    _check_version(name, record.pop(VERSION_KEY, None))
    complete(record)
    # Parameters added since 0.1.0's first builds, with the values that
    # behave as those builds did: a refit of an older record trains as it did.
    for parameter, value in (("multi_value_separator", None), ("init", "random")):
        record.setdefault(parameter, value)
    problem = names_problem(name, record)
    if problem:
        raise ValueError(
            f"{source} holds {problem}. It was not written by this version of sklearn_afm, "
            "or was altered."
        )
    if "_network_config" in record:
        network = {field: record.pop(name) for name, field in NETWORK_FIELDS.items()}
        record["_network"] = TrainedNetwork(**network)
        for view in _ENCODER_VIEWS:
            del record[view]
    vars(estimator).update(record)


def names_problem(estimator_name, names, fitted_only=False):
    """Say what makes ``names`` not the attribute names of an estimator's record; None if nothing.

    A record holds all of the fitted state (:data:`REQUIRED`) or none of it.
    With ``fitted_only`` (a model file's fitted section), ``names`` may hold
    nothing else than :data:`REQUIRED` and :data:`OPTIONAL`, and nothing at
    all for an unfitted estimator.
    """
    required = REQUIRED[estimator_name]
    missing = [field for field in required if field not in names]
    if 0 < len(missing) < len(required):
        return f"an incomplete fitted {estimator_name}: {', '.join(missing)} missing"
    allowed = () if missing else (*required, *OPTIONAL)
    unknown = [field for field in names if field not in allowed]
    if fitted_only and unknown:
        state = "an unfitted" if missing else "a fitted"
        return f"attributes that {state} {estimator_name} does not have: {', '.join(unknown)}"
    return None


def complete(record):
    """Add to ``record`` the fitted state that earlier 0.1.0 builds did not record."""
    if "_optimizer_state" in record and "_optimizer_config" not in record:
        # The optimizer then always had the parameters' settings.
        record["_optimizer_config"] = {
            "solver": record["solver"],
            "learning_rate": float(record["learning_rate_init"]),
        }
    return record


def _check_version(estimator_name, original_version):
    """Warn when ``original_version`` is not the installed sklearn_afm version."""
    from . import __version__

    if original_version != __version__:
        warnings.warn(
            InconsistentVersionWarning(
                estimator_name=estimator_name,
                current_version=__version__,
                original_version=original_version or "unknown",
            ),
            # The user's pickle.load or sklearn_afm.load.
            stacklevel=4,
        )
