"""Map the user's columns, numeric and categorical, to the network's feature ids.

A numeric column is one feature whose embedding is scaled by the value.  A
categorical column is one *field*: each of its categories is a feature of its
own (value 1), plus one "unknown" feature for categories first seen after
fitting and one "missing" feature for NaN/None.  Only one entry per column and
row is stored (:class:`~sklearn_afm._batching.FieldMatrix`); no one-hot matrix
is ever built.
"""

from collections.abc import Hashable

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.preprocessing import OrdinalEncoder

from ._batching import FieldMatrix

# OrdinalEncoder codes for the two extra features of a categorical column.
_UNKNOWN, _MISSING = -1, -2

# Cells that hold several values: OrdinalEncoder would make each distinct
# combination a category of its own (or fail on the unhashable ones).
_MULTI_VALUED = (tuple, list, set, frozenset, np.ndarray)

# The network computes in float32.
_FLOAT32 = np.finfo(np.float32)


def check_float32_range(largest, names, fitting):
    """Refuse numeric columns whose values float32, the network's precision, cannot hold.

    Values beyond float32's largest (3.4e38) would become infinite.  When
    ``fitting``, a column whose largest magnitude is below float32's smallest
    normal number (1.2e-38) is refused too: it would keep few bits or none,
    and the scale learned from it (1 / that magnitude) would overflow.  Tiny
    values in a column of ordinary ones are accepted: rounded towards 0 in
    float32, they stay negligible next to the others.

    Parameters
    ----------
    largest : ndarray of shape (n_columns,)
        The largest absolute value of each column.
    names : sequence of str
        The columns' names.
    fitting : bool
        Whether this is the data of a first fit, which learns the columns' scale.
    """
    too_large = largest > _FLOAT32.max
    if too_large.any():
        raise ValueError(
            f"X holds values beyond float32's range ({largest.max():.3g}; float32, which the "
            f"network computes in, ends at {_FLOAT32.max:.3g}) in column(s) "
            f"{_some(names, too_large)}; rescale them (for example with StandardScaler)."
        )
    too_small = fitting & (largest > 0) & (largest < _FLOAT32.tiny)
    if too_small.any():
        raise ValueError(
            f"All the values of column(s) {_some(names, too_small)} are below the smallest "
            f"normal float32 ({_FLOAT32.tiny:.3g}) in magnitude: in float32, which the "
            "network computes in, they would lose their precision or become 0. Rescale them."
        )


def _some(names, mask, limit=5):
    """Return the names where ``mask`` holds, the first ``limit`` of them, for a message."""
    chosen = [names[j] for j in np.flatnonzero(mask)]
    more = f" and {len(chosen) - limit} more" if len(chosen) > limit else ""
    return f"{chosen[:limit]}{more}"


def resolve_categorical_features(categorical_features, X):
    """Return a boolean mask of the categorical columns of ``X``.

    Parameters
    ----------
    categorical_features : None, "from_dtype" or array-like of bool, int or str
        As in :class:`~sklearn.ensemble.HistGradientBoostingClassifier`, except
        that "from_dtype" treats pandas ``category``, ``object`` and string
        columns as categorical, and, in a NumPy array of dtype ``object``, the
        columns that hold a string or several values in at least one cell
        (see :func:`_object_array_categorical`).
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
            return _object_array_categorical(X)
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


def _object_array_categorical(X):
    """Return which columns of an array "from_dtype" takes as categorical.

    Those of a NumPy array of dtype ``object`` that hold, in at least one
    cell, a string or several values (a list, tuple, set or array): such an
    array is what scikit-learn's meta-estimators (``BaggingClassifier``,
    ``cross_val_predict`` after ``check_array``, ...) make of a DataFrame
    with string columns, and its numeric columns hold only numbers.  Arrays
    of another dtype, string dtypes included (a list of rows mixing numbers
    and strings becomes one, its numbers turned into strings), and sparse
    matrices have no categorical column.
    """
    if sp.issparse(X) or getattr(getattr(X, "dtype", None), "kind", None) != "O":
        return np.zeros(X.shape[1], dtype=bool)
    is_label = np.frompyfunc(lambda value: isinstance(value, (str, *_MULTI_VALUED)), 1, 1)
    return is_label(X).astype(bool).any(axis=0)


def _columns(X, positions):
    if hasattr(X, "iloc"):
        return X.iloc[:, positions]
    return np.asarray(X)[:, positions]


def _categorical_values(X, positions):
    """Return the categorical columns as an object array, and where values are missing.

    None, NaN, pd.NA and NaT are all one "missing" category, stored as NaN:
    OrdinalEncoder would otherwise keep None apart from NaN and refuse pd.NA.
    """
    values = np.array(_columns(X, positions), dtype=object)  # a writable copy
    missing = pd.isna(values)
    values[missing] = np.nan
    return values, missing


def _numeric_values(X, positions, feature_names, fitting):
    """Return the numeric columns as floats, refusing what is not a finite float32 number.

    ``fitting`` as in :func:`check_float32_range`.
    """
    columns = np.asarray(_columns(X, positions))
    if columns.dtype.kind == "c":
        # Converting to float would silently drop the imaginary parts.
        raise ValueError(
            f"Complex data not supported: the numeric columns "
            f"{[feature_names[j] for j in positions]} hold complex numbers."
        )
    try:
        values = columns.astype(np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"The numeric columns {[feature_names[j] for j in positions]} must hold "
            f"numbers ({error}); pass categorical_features to treat a column of "
            "labels as categorical."
        ) from error
    bad = ~np.isfinite(values).all(axis=0)
    if bad.any():
        raise ValueError(
            "Input contains NaN or infinity in the numeric column(s) "
            f"{[feature_names[j] for j in positions[bad]]}; impute them (for example "
            "with SimpleImputer) or declare the column categorical."
        )
    if values.size:
        largest = np.maximum(values.max(axis=0), -values.min(axis=0))
        check_float32_range(largest, [feature_names[j] for j in positions], fitting)
    return values


def _brief(value, limit=60):
    """Return the repr of a value for a message, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _refuse_cell(name, value, where):
    """Raise the error for a value that cannot be a category; return if it can be one.

    Parameters
    ----------
    name : str
        The column's name.
    value : object
    where : str
        Where the value is: "in row 3", "among its given categories".
    """
    kind = type(value).__name__
    if isinstance(value, _MULTI_VALUED):
        raise ValueError(
            f"Categorical column {name!r} has, {where}, a {kind} ({_brief(value)}): a value "
            "with several values cannot be one category. Multi-valued columns are not "
            "supported: one-hot their values (for example with MultiLabelBinarizer) or "
            "join each cell's values into one string."
        )
    if not isinstance(value, Hashable):
        raise TypeError(
            f"Categorical column {name!r} has, {where}, a {kind} ({_brief(value)}), which is "
            "not a category: a categorical cell must be a string, a number or missing."
        )


def _refuse_odd_cells(values, names, candidates=None):
    """Raise the error for the first cell of ``values`` that cannot be a category.

    Parameters
    ----------
    values : ndarray of object, shape (n_samples, n_columns)
    names : sequence of str
        The names of the columns of ``values``.
    candidates : ndarray of bool of the shape of ``values``, default=None
        The cells to look at (all when None).
    """
    for c, name in enumerate(names):
        column = values[:, c]
        rows = range(column.shape[0]) if candidates is None else np.flatnonzero(candidates[:, c])
        for row in rows:
            _refuse_cell(name, column[row], f"in row {row}")


def _refuse_unknown_multi_valued(values, names, unknown, columns):
    """Raise the error for the first multi-valued cell among the ``unknown`` cells of ``values``.

    OrdinalEncoder finds tuples and frozensets, which are hashable, unknown
    categories.  Only the given ``columns`` are looked at, and in each only
    its distinct unknown values, not every cell.
    """
    for c in columns:
        distinct = pd.unique(values[unknown[:, c], c])
        if any(isinstance(value, _MULTI_VALUED) for value in distinct):
            _refuse_odd_cells(values[:, [c]], [names[c]], unknown[:, [c]])


def _refuse_multi_valued(values, names):
    """Raise the error for the first cell of ``values`` that holds several values, if any."""
    multi_valued = np.frompyfunc(lambda value: isinstance(value, _MULTI_VALUED), 1, 1)
    _refuse_odd_cells(values, names, multi_valued(values).astype(bool))


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
    unknown_ids_ : ndarray of int64, shape (n_columns,)
        Feature id of each categorical column's "unknown" category (its
        "missing" category is the next id); -1 for numeric columns.
    """

    def __init__(self, is_categorical, categories="auto"):
        self.is_categorical = is_categorical
        self.categories = categories
        self._categorical = np.flatnonzero(is_categorical)
        self._numeric = np.flatnonzero(~is_categorical)

    def fit(self, X, feature_names=None):
        """Learn the categories of ``X``'s categorical columns.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_columns)
        feature_names : sequence of str, default=None
            Column names, for error messages; "x0", "x1", ... when None.

        Raises
        ------
        ValueError
            For a cell or a given category that holds several values (a
            tuple, list, set or array).
        """
        categorical = self._categorical
        if feature_names is None:
            feature_names = [f"x{j}" for j in range(X.shape[1])]
        names = [feature_names[j] for j in categorical]
        if self.categories != "auto":
            for name, given in zip(names, self.categories):
                for value in given:
                    _refuse_cell(name, value, "among its given categories")
        values, _ = _categorical_values(X, categorical)
        try:
            self.ordinal_ = self._ordinal_encoder(self.categories).fit(values)
        except TypeError:
            # OrdinalEncoder names only the type of lists, sets and arrays;
            # what else it refuses (dicts, mixed types) its message says well.
            _refuse_multi_valued(values, names)
            raise
        # Tuples and frozensets are hashable: OrdinalEncoder took them as categories.
        if any(isinstance(v, _MULTI_VALUED) for c in self.ordinal_.categories_ for v in c):
            _refuse_multi_valued(values, names)
        # Missing values have a feature of their own, never a known category.
        known = [c[~pd.isna(c)] for c in self.ordinal_.categories_]
        if any(len(k) < len(c) for k, c in zip(known, self.ordinal_.categories_)):
            self.ordinal_ = self._ordinal_encoder(known).fit(values)
        self.categories_ = self.ordinal_.categories_
        sizes = np.ones(self.is_categorical.shape[0], dtype=np.int64)
        # Known categories, then the "unknown" and "missing" features.
        sizes[categorical] = [len(c) + 2 for c in self.categories_]
        self.offsets_ = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.n_features_ = int(sizes.sum())
        self.feature_columns_ = np.repeat(np.arange(sizes.shape[0], dtype=np.int32), sizes)
        self.unknown_ids_ = np.full(sizes.shape[0], -1, dtype=np.int64)
        self.unknown_ids_[categorical] = self.offsets_[categorical] + sizes[categorical] - 2
        return self

    def column_categories(self):
        """Return the categories of each input column: None for numeric columns."""
        categories = iter(self.categories_)
        return [next(categories) if c else None for c in self.is_categorical]

    @staticmethod
    def _ordinal_encoder(categories):
        return OrdinalEncoder(
            categories=categories,
            handle_unknown="use_encoded_value",
            unknown_value=_UNKNOWN,
            encoded_missing_value=_MISSING,
            dtype=np.float64,
        )

    def fit_transform(self, X, feature_names):
        """Learn the categories of ``X`` and return it as a FieldMatrix.

        As :meth:`fit` then :meth:`transform`, and it also refuses the numeric
        columns too small for float32 (see :func:`check_float32_range`).
        """
        return self.fit(X, feature_names)._transform(X, feature_names, fitting=True)

    def transform(self, X, feature_names):
        """Return ``X`` as a :class:`~sklearn_afm._batching.FieldMatrix`.

        Values that are not a known category are the column's "unknown"
        feature, except cells that cannot be a category at all: a cell with
        several values (tuple, list, set, array) is a ValueError, as in
        :meth:`fit`, and any other unhashable one a TypeError.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_columns)
        feature_names : sequence of str
            Column names, for error messages.
        """
        return self._transform(X, feature_names, fitting=False)

    def _transform(self, X, feature_names, fitting):
        categorical, numeric = self._categorical, self._numeric
        # Everything is checked before the matrix is allocated.
        if numeric.size:
            numeric_values = _numeric_values(X, numeric, feature_names, fitting)
        if categorical.size:
            codes = self._category_codes(X, [feature_names[j] for j in categorical])
        n_samples = X.shape[0]
        ids = np.empty((n_samples, self.is_categorical.shape[0]), dtype=np.int32)
        values = np.ones((n_samples, self.is_categorical.shape[0]), dtype=np.float32)
        if numeric.size:
            values[:, numeric] = numeric_values
            ids[:, numeric] = self.offsets_[numeric]
        if categorical.size:
            unknown = self.unknown_ids_[categorical]
            ids[:, categorical] = np.select(
                [codes == _UNKNOWN, codes == _MISSING],
                [unknown, unknown + 1],
                self.offsets_[categorical] + codes,
            )
        return FieldMatrix(ids, values, self.n_features_, unknown_ids=self.unknown_ids_)

    def _category_codes(self, X, names):
        """Position of each categorical value among its column's ``categories_``.

        Unknown categories are ``_UNKNOWN`` and missing values ``_MISSING``;
        ``names`` are the categorical columns' names.  Columns of pandas'
        ``category`` dtype already hold integer codes: only their few
        categories are looked up, which is over ten times faster than
        OrdinalEncoder on each value (it dominated predicting on such frames).
        """
        categorical = self._categorical
        codes = np.empty((X.shape[0], categorical.size), dtype=np.int64)
        slow = []
        for c, position in enumerate(categorical):
            column = X.iloc[:, position] if hasattr(X, "iloc") else None
            if not isinstance(getattr(column, "dtype", None), pd.CategoricalDtype):
                slow.append(c)
                continue
            codes[:, c] = self._category_dtype_codes(c, column, names[c])
        if slow:
            # OrdinalEncoder keeps its columns in fit order: give it all of
            # them, and keep the results of the columns that need it.
            values, missing = _categorical_values(X, categorical)
            try:
                encoded = self.ordinal_.transform(values).astype(np.int64)
            except TypeError:
                # Its message ("unhashable type") names neither column nor row.
                _refuse_odd_cells(values[:, slow], [names[c] for c in slow])
                raise
            encoded[missing] = _MISSING
            _refuse_unknown_multi_valued(values, names, encoded == _UNKNOWN, slow)
            codes[:, slow] = encoded[:, slow]
        return codes

    def _category_dtype_codes(self, c, column, name):
        """Return the codes of the ``c``-th categorical column, a pandas ``category`` Series."""
        categories = column.cat.categories.astype(object)
        lookup = pd.Index(self.categories_[c], dtype=object).get_indexer(categories)
        pandas_codes = column.cat.codes.to_numpy()
        for k in np.flatnonzero(lookup < 0):
            # Categories are hashable, but tuples and frozensets hold several values.
            if isinstance(categories[k], _MULTI_VALUED):
                rows = np.flatnonzero(pandas_codes == k)
                if rows.size:
                    _refuse_cell(name, categories[k], f"in row {rows[0]}")
        # pandas codes a missing value -1; categories never hold one.
        lookup = np.append(np.where(lookup < 0, _UNKNOWN, lookup), _MISSING)
        return lookup[pandas_codes]
