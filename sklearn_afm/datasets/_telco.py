"""Loader of the bundled Telco customer churn data."""

from importlib import resources

import numpy as np
from sklearn.utils import Bunch

NUMERIC_COLUMNS = ["SeniorCitizen", "tenure", "MonthlyCharges", "TotalCharges"]


def load_telco_churn(*, as_frame=True, return_X_y=False):
    """Load the Telco customer churn data set (binary classification).

    =================   ==============
    Classes                          2
    Samples total                 7043
    Dimensionality                  19
    Features            numeric and categorical strings
    =================   ==============

    Read more in the description, ``load_telco_churn().DESCR``.

    Parameters
    ----------
    as_frame : bool, default=True
        If True, ``data`` is a pandas DataFrame with string columns for the
        categorical features and ``target`` a Series.  If False, ``data`` is
        a numpy array of dtype object and ``target`` an int array.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With the fields ``data``, ``target`` (1 for churn), ``frame`` (data and
        target together, when ``as_frame``), ``feature_names``,
        ``target_names`` (``["No", "Yes"]``) and ``DESCR``.
    (data, target) : tuple if ``return_X_y`` is True

    Examples
    --------
    >>> from sklearn_afm import load_telco_churn
    >>> X, y = load_telco_churn(return_X_y=True)
    >>> X.shape, int(y.sum())
    ((7043, 19), 1869)
    """
    import pandas as pd

    package = resources.files("sklearn_afm.datasets")
    with (package / "data" / "telco_churn.csv").open("rb") as f:
        frame = pd.read_csv(f, dtype=str, keep_default_na=False)
    frame = frame.drop(columns="customerID")
    # TotalCharges is blank exactly for customers with tenure 0, who have
    # not been billed yet: their total is 0, not unknown.
    frame["TotalCharges"] = frame["TotalCharges"].str.strip().replace("", "0")
    frame[NUMERIC_COLUMNS] = frame[NUMERIC_COLUMNS].astype(np.float64)
    frame["SeniorCitizen"] = frame["SeniorCitizen"].astype(np.int64)
    frame["tenure"] = frame["tenure"].astype(np.int64)
    frame["Churn"] = (frame["Churn"] == "Yes").astype(np.int64)
    feature_names = [c for c in frame.columns if c != "Churn"]
    data, target = frame[feature_names], frame["Churn"]
    if not as_frame:
        data, target, frame = data.to_numpy(dtype=object), target.to_numpy(), None
    if return_X_y:
        return data, target
    descr = (package / "descr" / "telco_churn.rst").read_text(encoding="utf-8")
    return Bunch(
        data=data,
        target=target,
        frame=frame,
        feature_names=feature_names,
        target_names=np.array(["No", "Yes"], dtype=object),
        DESCR=descr,
    )
