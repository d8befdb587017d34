"""Validate the user's ``X`` and turn it into a row source, encoding categorical columns.

The first step down from the estimator facade: scikit-learn's checks
(``validate_data``: number of columns, feature names, finiteness), the range
of float32 that the network computes in, the categorical columns
(:mod:`sklearn_afm._encoding`), and the row sources that
:mod:`sklearn_afm._batching` cuts into batches.
"""

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.utils.validation import check_array, validate_data

from ._batching import as_row_source
from ._encoding import FeatureEncoder, check_float32_range, resolve_categorical_features

# How validate_data checks numeric X in every public method.
_X_CHECKS = {"accept_sparse": ("csr", "csc", "coo"), "dtype": (np.float32, np.float64)}

_FLOAT32_MAX = np.finfo(np.float32).max

_CATEGORICAL_HINT = (
    "Declare categorical columns with categorical_features (column names, indices or a "
    "mask; 'from_dtype' finds a DataFrame's string and category columns and the string "
    "columns of an object array), or encode them first, for example with OneHotEncoder "
    "in a ColumnTransformer."
)


def column_names(estimator):
    """Return the names of the estimator's input columns: ``feature_names_in_`` or "x0", ..."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        return list(names)
    return [f"x{j}" for j in range(estimator.n_features_in_)]


def encode_X(estimator, X, *, reset, encoder=None):
    """Validate ``X`` and return it as a row source, with its categorical encoder.

    Parameters
    ----------
    estimator : BaseAFM
        Its parameters say which columns are categorical; ``validate_data``
        sets (with ``reset``) or checks its ``n_features_in_`` and
        ``feature_names_in_``.
    X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
    reset : bool
        Whether this is a first fit, which learns the categorical columns.
    encoder : FeatureEncoder or None
        The fitted encoder when not ``reset``; None when no column is categorical.

    Returns
    -------
    source : ndarray, csr_array or FieldMatrix
    encoder : FeatureEncoder or None
        Fitted anew with ``reset``, else ``encoder``.
    """
    X = as_pandas(X)
    if not hasattr(X, "shape") or len(X.shape) != 2:
        # Lists, and arrays that are not 2-D, get check_array's errors.
        X = check_array(X, dtype=None, ensure_all_finite=False)
    if reset:
        is_categorical = resolve_categorical_features(estimator.categorical_features, X)
    elif encoder is None:
        is_categorical = np.zeros(estimator.n_features_in_, dtype=bool)
    else:
        is_categorical = encoder.is_categorical
    if not is_categorical.any():
        _reject_non_numeric(estimator, X)
        X = validate_data(estimator, X, reset=reset, **_X_CHECKS)
        _check_numeric_range(estimator, X, reset)
        return as_row_source(X), None
    if sp.issparse(X):
        raise ValueError(
            "categorical_features needs dense input (a DataFrame or an array); for "
            "sparse one-hot data leave categorical_features=None."
        )
    validate_data(estimator, X, reset=reset, skip_check_array=True)
    if not hasattr(X, "iloc"):
        X = check_array(X, dtype=None, ensure_all_finite=False)
    if X.shape[0] == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is "
            "required."
        )
    if reset:
        encoder = FeatureEncoder(
            is_categorical, estimator.categories, estimator.multi_value_separator
        )
        return encoder.fit_transform(X, column_names(estimator)), encoder
    return encoder.transform(X, column_names(estimator)), encoder


def as_pandas(X):
    """Return a DataFrame of another library (polars, pyarrow, ...) as a pandas DataFrame.

    Any eager DataFrame that narwhals, scikit-learn's own DataFrame layer,
    accepts is converted column by column, without pyarrow: Categorical and
    Enum columns become pandas ``category`` columns with the same categories,
    string columns ``object`` ones (nulls as None), numeric columns NumPy
    arrays (an integer column with nulls as floats with NaN), list columns
    ``object`` columns of arrays.  The column names are kept, so that
    ``feature_names_in_`` is the same as scikit-learn's.  Everything else,
    pandas DataFrames included, is returned as it is (so is everything when
    narwhals, which scikit-learn 1.9 depends on, is not installed).
    """
    if isinstance(X, pd.DataFrame):
        return X
    try:
        import narwhals.stable.v2 as nw
    except ImportError:
        return X
    if not nw.dependencies.is_into_dataframe(X):
        return X
    frame = nw.from_native(X, eager_only=True)
    columns = {}
    for name in frame.columns:
        series = frame[name]
        values = series.to_numpy()
        if series.dtype in (nw.Categorical, nw.Enum):
            values = pd.Categorical(values, categories=series.cat.get_categories().to_numpy())
        columns[name] = values
    return pd.DataFrame(columns, index=pd.RangeIndex(frame.shape[0]))


def _check_numeric_range(estimator, X, fitting):
    """Refuse numeric ``X`` (validated) that float32 cannot hold; see check_float32_range.

    Only float64 data can exceed float32's range; only a first fit's data
    can be too small for it.  Sparse data is measured on its stored values,
    column by column only when needed.
    """
    if X.dtype != np.float64 and not fitting:
        return
    if not sp.issparse(X):
        largest = np.maximum(X.max(axis=0), -X.min(axis=0))
    elif not fitting and (X.nnz == 0 or max(X.data.max(), -X.data.min()) <= _FLOAT32_MAX):
        return
    else:
        coo = sp.coo_array(X)
        largest = np.zeros(X.shape[1])
        np.maximum.at(largest, coo.col, np.abs(coo.data))
    check_float32_range(largest, column_names(estimator), fitting)


def _reject_non_numeric(estimator, X):
    """Raise a helpful error for input columns that are not numbers."""
    dtypes = getattr(X, "dtypes", None)
    if dtypes is not None and hasattr(dtypes, "items"):
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        bad = [str(c) for c, dt in dtypes.items() if not (is_numeric_dtype(dt) or is_bool_dtype(dt))]
        if bad:
            raise ValueError(
                f"{type(estimator).__name__} needs numeric input, but column(s) {bad} "
                f"are not numeric. {_CATEGORICAL_HINT}"
            )
    elif getattr(getattr(X, "dtype", None), "kind", None) in ("O", "U", "S"):
        try:
            np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as error:
            # The type of numpy's error is kept: TypeError for objects that
            # are no scalar, ValueError for strings that are no number.
            raise type(error)(
                f"{type(estimator).__name__} needs numeric input, but X holds values that "
                f"are not numbers ({error}). {_CATEGORICAL_HINT}"
            ) from error
