"""``sklearn_afm.load``: an estimator from a model file, without pickle.

The top of the persistence stack: :mod:`sklearn_afm._archive` reads the file
(data only), :mod:`sklearn_afm._checks` checks its record against the schema
(its outline before any array is read, then its values), the estimator
classes are looked up here, and :func:`sklearn_afm._state.restore` turns the
record into their attributes, as unpickling does.
"""

import os

from ._archive import invalid_file, read
from ._checks import check_outline, check_values
from ._state import VERSION_KEY, restore


def load(file):
    """Load an estimator written by :meth:`~sklearn_afm.AFMClassifier.save`.

    Only data is read (JSON and numpy arrays without pickle), so a file from
    an untrusted source cannot run code when loaded, and each part of it is
    checked before it is read, so that it cannot make loading allocate more
    than the estimator it describes holds (see :ref:`persistence`).

    Parameters
    ----------
    file : str, path-like or binary file object

    Returns
    -------
    estimator : AFMClassifier or AFMRegressor
        Predicts exactly as the saved estimator did, and continues training
        from where it stopped (``partial_fit``, ``warm_start``).

    Raises
    ------
    ValueError
        If the file is not a sklearn_afm model file (a pickle, say), is
        truncated or corrupted, was written by a newer format version, or
        holds anything other than what a fitted estimator of this version
        holds (see :ref:`persistence` for the checks).

    Warns
    -----
    InconsistentVersionWarning
        When the file was written by another version of sklearn_afm.
    """
    from ._estimators import AFMClassifier, AFMRegressor

    source = os.fspath(file) if isinstance(file, (str, os.PathLike)) else "the file object"
    name, params, fitted, version = read(file, source, check_outline)
    try:
        check_values(name, fitted)
    except ValueError as error:
        raise invalid_file(source, str(error)) from None
    cls = {"AFMClassifier": AFMClassifier, "AFMRegressor": AFMRegressor}[name]
    try:
        estimator = cls(**params)
    except TypeError as error:
        raise invalid_file(source, f"its parameters do not fit {name} ({error}).") from None
    try:
        # The check fit() would make: a file's parameters are not trusted.
        estimator._validate_params()
    except ValueError as error:
        raise invalid_file(source, str(error)) from None
    restore(estimator, {**params, **fitted, VERSION_KEY: version}, source)
    return estimator
