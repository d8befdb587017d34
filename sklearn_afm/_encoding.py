"""Map the user's columns, numeric and categorical, to the network's feature ids.

A numeric column is one feature whose embedding is scaled by the value.  A
categorical column is one *field*: each of its categories is a feature of its
own (value 1), plus one "unknown" feature for categories first seen after
fitting and one "missing" feature for NaN/None.  Only one entry per column and
row is stored (:class:`~sklearn_afm._batching.FieldMatrix`); no one-hot matrix
is ever built.
"""


import numpy as np
from sklearn.preprocessing import OrdinalEncoder

from ._batching import FieldMatrix

# OrdinalEncoder codes for the two extra features of a categorical column.
_UNKNOWN, _MISSING = -1, -2


def resolve_categorical_features(categorical_features, X):
    """Return a boolean mask of the categorical columns of ``X``.

    Parameters
    ----------
    categorical_features : None, "from_dtype" or array-like of bool, int or str
        As in :class:`~sklearn.ensemble.HistGradientBoostingClassifier`, except
        that "from_dtype" treats pandas ``category``, ``object`` and string
        columns as categorical.
    X : array-like, DataFrame or sparse matrix of shape (n_samples, n_features)

    Returns
    -------
    is_categorical : ndarray of bool, shape (n_features,)
    """
    n_features = X.shape[1]
    columns = getattr(X, "columns", None)
    dtypes = getattr(X, "dtypes", None)
    if categorical_features is None:
        return np.zeros(n_features, dtype=bool)
    if isinstance(categorical_features, str):
        # Only "from_dtype" passes parameter validation.
        if dtypes is None or not hasattr(dtypes, "items"):
            return np.zeros(n_features, dtype=bool)
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        return np.array([not (is_numeric_dtype(d) or is_bool_dtype(d)) for d in dtypes])
    spec = np.asarray(categorical_features)
    if spec.size == 0:
        return np.zeros(n_features, dtype=bool)
    mask = np.zeros(n_features, dtype=bool)
    if spec.dtype.kind == "b":
        if spec.shape != (n_features,):
            raise ValueError(
                f"categorical_features as a boolean mask must have shape ({n_features},), "
                f"got {spec.shape}."
            )
        return spec.copy()
    if spec.dtype.kind in "iu":
        if spec.min() < 0 or spec.max() >= n_features:
            raise ValueError(
                f"categorical_features has indices out of range for {n_features} columns: "
                f"{spec.tolist()}."
            )
        mask[spec] = True
        return mask
    if spec.dtype.kind in "UO" and all(isinstance(s, str) for s in spec.ravel()):
        if columns is None:
            raise ValueError(
                "categorical_features given as column names needs X to be a DataFrame "
                "with those columns."
            )
        names = [str(c) for c in columns]
        missing = [s for s in spec if s not in names]
        if missing:
            raise ValueError(f"categorical_features names columns that X lacks: {missing}.")
        mask[[names.index(s) for s in spec]] = True
        return mask
    raise TypeError(
        "categorical_features must be None, 'from_dtype', or an array-like of bool, int "
        f"or str; got {categorical_features!r}."
    )


def _columns(X, positions):
    if hasattr(X, "iloc"):
        return X.iloc[:, positions]
    return np.asarray(X)[:, positions]


class FeatureEncoder:
    """Learned vocabulary of the categorical columns and feature-id layout.

    Parameters
    ----------
    is_categorical : ndarray of bool, shape (n_columns,)
    categories : "auto" or list of array-like
        Categories of each categorical column, in column order, or "auto" to
        learn them from the data in :meth:`fit`.

    Attributes
    ----------
    categories_ : list of ndarray
        Known categories of each categorical column.
    offsets_ : ndarray of int64, shape (n_columns,)
        First feature id of each column.
    n_features_ : int
        Number of distinct feature ids.
    feature_columns_ : ndarray of int32, shape (n_features_,)
        Input column of each feature id.
    """

    def __init__(self, is_categorical, categories="auto"):
        self.is_categorical = is_categorical
        self.categories = categories

    def fit(self, X):
        """Learn the categories of ``X``'s categorical columns."""
        categorical = np.flatnonzero(self.is_categorical)
        self.ordinal_ = OrdinalEncoder(
            categories=self.categories,
            handle_unknown="use_encoded_value",
            unknown_value=_UNKNOWN,
            encoded_missing_value=_MISSING,
            dtype=np.float64,
        ).fit(_columns(X, categorical))
        self.categories_ = self.ordinal_.categories_
        sizes = np.ones(self.is_categorical.shape[0], dtype=np.int64)
        # Known categories, then the "unknown" and "missing" features.
        sizes[categorical] = [len(c) + 2 for c in self.categories_]
        self.offsets_ = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.n_features_ = int(sizes.sum())
        self.feature_columns_ = np.repeat(np.arange(sizes.shape[0], dtype=np.int32), sizes)
        return self

    def transform(self, X, feature_names):
        """Return ``X`` as a :class:`~sklearn_afm._batching.FieldMatrix`.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_columns)
        feature_names : sequence of str
            Column names, for error messages.
        """
        categorical = np.flatnonzero(self.is_categorical)
        numeric = np.flatnonzero(~self.is_categorical)
        n_samples = X.shape[0]
        ids = np.empty((n_samples, self.is_categorical.shape[0]), dtype=np.int32)
        values = np.ones((n_samples, self.is_categorical.shape[0]), dtype=np.float32)
        if numeric.size:
            try:
                numbers_ = np.asarray(_columns(X, numeric), dtype=np.float64)
            except (TypeError, ValueError) as error:
                raise ValueError(
                    f"The numeric columns {[feature_names[j] for j in numeric]} must hold "
                    f"numbers ({error}); pass categorical_features to treat a column of "
                    "labels as categorical."
                ) from error
            bad = ~np.isfinite(numbers_).all(axis=0)
            if bad.any():
                raise ValueError(
                    "Input contains NaN or infinity in the numeric column(s) "
                    f"{[feature_names[j] for j in numeric[bad]]}; impute them (for example "
                    "with SimpleImputer) or declare the column categorical."
                )
            values[:, numeric] = numbers_
            ids[:, numeric] = self.offsets_[numeric]
        if categorical.size:
            codes = self.ordinal_.transform(_columns(X, categorical)).astype(np.int64)
            sizes = np.array([len(c) for c in self.categories_])
            codes = np.where(codes == _UNKNOWN, sizes, codes)
            codes = np.where(codes == _MISSING, sizes + 1, codes)
            ids[:, categorical] = self.offsets_[categorical] + codes
        return FieldMatrix(ids, values, self.n_features_)
