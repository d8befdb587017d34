"""Map the user's columns, numeric and categorical, to the network's feature ids.

A numeric column is one feature whose embedding is scaled by the value.  A
categorical column is one *field*: each of its categories is a feature of its
own (value 1), plus one "unknown" feature for categories first seen after
fitting and one "missing" feature for NaN/None.  Only one entry per column and
row is stored (:class:`~sklearn_afm._batching.FieldMatrix`); no one-hot matrix
is ever built.

A *multi-valued* categorical column (cells that are lists, tuples, sets or
arrays of categories, or strings split on a separator) is a field too, whose
row holds several of its categories: each present value is an entry of its
own (value 1), so that the row's pairs are those of a multi-hot encoding and
AFM's pair semantics are kept.  Its entries follow each other in the row, in
column order, so that every entry maps back to its column.  An empty cell is
the field's "missing" feature, unseen values its "unknown" one.
"""

import itertools
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
            "with several values cannot be one category. A column is multi-valued when its "
            "cells in fit are lists, tuples, sets or arrays of categories (or strings split "
            "by multi_value_separator); this one held single values, and categories are "
            "single values."
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


def _refuse_mixed_types(values, names):
    """Raise the error for the first column of ``values`` that mixes strings and numbers."""
    for c, name in enumerate(names):
        column = values[:, c]
        column = column[~pd.isna(column)]
        is_string = np.frompyfunc(lambda value: isinstance(value, str), 1, 1)(column).astype(bool)
        if 0 < is_string.sum() < column.shape[0]:
            number = column[np.flatnonzero(~is_string)[0]]
            raise TypeError(
                f"Categorical column {name!r} mixes strings ({_brief(column[is_string][0])}) "
                f"and other values ({_brief(number)}): its categories must all be strings or "
                "all numbers. In an object array, a column holding a string is categorical: "
                "turn its numbers into strings, or its strings into numbers."
            )


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


def _holds_several_values(column):
    """Whether a column (an object array) has a cell with several values: a list, tuple, set, array."""
    # infer_dtype names a type only when every cell has it: only a "mixed"
    # column can hold containers, and the scan runs on those alone.
    if pd.api.types.infer_dtype(column, skipna=True) not in ("mixed", "mixed-integer"):
        return False
    return any(isinstance(value, _MULTI_VALUED) for value in column)


def _resolve_separators(separator, categorical, feature_names):
    """Return the separator of each categorical column's strings; None where they are single values.

    Parameters
    ----------
    separator : None, str or dict
        ``multi_value_separator``: one separator for every column, or one per
        column named or indexed by the keys.
    categorical : ndarray of int
        Positions of the categorical columns.
    feature_names : sequence of str
        Names of all the columns.
    """
    if not isinstance(separator, dict):
        separator = {int(j): separator for j in categorical}
    by_position = {}
    for key, value in separator.items():
        if isinstance(key, str) and key in feature_names:
            position = list(feature_names).index(key)
        elif isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            position = int(key)
        else:
            raise ValueError(
                f"multi_value_separator names a column that X lacks: {key!r} (keys are column "
                "names or indices)."
            )
        if position not in categorical:
            raise ValueError(
                f"multi_value_separator names column {key!r}, which is not categorical: declare "
                "it in categorical_features."
            )
        if value is not None and not (isinstance(value, str) and value):
            raise ValueError(
                f"multi_value_separator must give non-empty strings as separators; got "
                f"{value!r} for column {key!r}."
            )
        by_position[position] = value
    return [by_position.get(int(j)) for j in categorical]


def _cell_values(column, missing, separator, name):
    """Return the values of each cell of a multi-valued column: flat values and counts per row.

    A missing cell has no value, a string is split on ``separator``
    (dropping empty pieces), and missing values inside a cell are dropped.

    Returns
    -------
    values : ndarray of object, shape (n_values,)
        The cells' values, row after row.
    lengths : ndarray of int64, shape (n_samples,)
        How many of them each row holds.

    Raises
    ------
    ValueError
        For a single value among cells of several (a list column mixed
        with scalars), or a value that holds several values itself (nested
        lists, arrays of more than one dimension).
    TypeError
        For a value that cannot be a category (a dict, ...).
    """
    cells = []
    for row, cell in enumerate(column):
        if missing[row]:
            cells.append(())
        elif separator is not None and isinstance(cell, str):
            cells.append([value for value in cell.split(separator) if value])
        elif isinstance(cell, np.ndarray) and cell.ndim != 1:
            raise ValueError(
                f"Multi-valued column {name!r} has, in row {row}, an array of shape "
                f"{cell.shape}: its cells must be flat lists of categories, not nested ones."
            )
        elif isinstance(cell, _MULTI_VALUED):
            cells.append(cell)
        else:
            strings = " or strings split on multi_value_separator" if separator else ""
            raise ValueError(
                f"Multi-valued column {name!r} has, in row {row}, a single value "
                f"({_brief(cell)}) while other cells hold several values: give every cell as "
                f"a list, tuple, set or array of categories{strings} (one value as a list of "
                "one, none as an empty list or a missing value)."
            )
    lengths = np.fromiter(map(len, cells), dtype=np.int64, count=len(cells))
    values = np.fromiter(
        itertools.chain.from_iterable(cells), dtype=object, count=int(lengths.sum())
    )
    rows = np.repeat(np.arange(lengths.shape[0]), lengths)
    for k in np.flatnonzero(np.frompyfunc(lambda v: isinstance(v, _MULTI_VALUED), 1, 1)(values)):
        raise ValueError(
            f"Multi-valued column {name!r} has, in row {rows[k]}, a value that holds several "
            f"values itself ({_brief(values[k])}): its cells must be flat lists of categories, "
            "not nested ones."
        )
    for k, value in enumerate(values):
        _refuse_cell(name, value, f"in row {rows[k]}")
    present = ~pd.isna(values)
    if not present.all():
        values = values[present]
        lengths = np.bincount(rows[present], minlength=lengths.shape[0])
    return values, lengths


def _multi_valued_entries(codes, lengths, offset, unknown_id):
    """Return the entries of a multi-valued column: (n_samples, width) feature ids and values.

    ``codes`` are the positions of the values among the column's categories
    (``_UNKNOWN`` for unseen ones), ``lengths`` the number of values of each
    row.  A row's distinct features come first; a value repeated in a cell,
    or several unseen ones, are one feature; an empty cell is the column's
    "missing" feature.  Unused slots have value 0 (absent).
    """
    n_samples = lengths.shape[0]
    features = np.where(codes == _UNKNOWN, unknown_id, offset + codes)
    rows = np.repeat(np.arange(n_samples), lengths)
    slots = np.arange(rows.shape[0]) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    # Empty slots hold a sentinel that sorts after every feature id.
    sentinel = np.iinfo(np.int64).max
    ids = np.full((n_samples, max(int(lengths.max(initial=0)), 1)), sentinel)
    ids[rows, slots] = features
    ids[lengths == 0, 0] = unknown_id + 1
    ids.sort(axis=1)
    present = ids != sentinel
    present[:, 1:] &= ids[:, 1:] != ids[:, :-1]
    return np.where(present, ids, 0).astype(np.int32), present.astype(np.float32)


class FeatureEncoder:
    """Learned vocabulary of the categorical columns and feature-id layout.

    Parameters
    ----------
    is_categorical : ndarray of bool, shape (n_columns,)
    categories : "auto" or list of array-like
        Categories of each categorical column (of a multi-valued one: of its
        values), in column order, or "auto" to learn them from the data in
        :meth:`fit`.
    separator : None, str or dict, default=None
        ``multi_value_separator``: what splits the string cells of all
        categorical columns (a str) or of the columns it names or indexes (a
        dict) into several values.

    Attributes
    ----------
    categories_ : list of ndarray
        Known categories of each categorical column.
    multi_valued_ : ndarray of bool, shape (n_columns,)
        Which columns are multi-valued: categorical columns whose cells in
        :meth:`fit` are lists, tuples, sets or arrays, or that have a separator.
    separators_ : list of (str or None), length n_columns
        The separator of each column's strings; None where they are single values.
    ordinal_ : OrdinalEncoder or None
        Encoder of the single-valued categorical columns; None if there is none.
    value_encoders_ : list of OrdinalEncoder
        Encoder of the values of each multi-valued column, in column order.
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

    def __init__(self, is_categorical, categories="auto", separator=None):
        self.is_categorical = is_categorical
        self.categories = categories
        self.separator = separator
        self._categorical = np.flatnonzero(is_categorical)
        self._numeric = np.flatnonzero(~is_categorical)

    def __setstate__(self, state):
        # Encoders saved before multi-valued columns existed have none, and
        # their ordinal_ encodes every categorical column.
        n_columns = len(state["is_categorical"])
        self.__dict__.update(
            {
                "separator": None,
                "multi_valued_": np.zeros(n_columns, dtype=bool),
                "separators_": [None] * n_columns,
                "value_encoders_": [],
                **state,
            }
        )

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
            For a given category that holds several values (a tuple, list,
            set or array), and for the bad cells of a multi-valued column
            (see :func:`_cell_values`).
        """
        categorical = self._categorical
        if feature_names is None:
            feature_names = [f"x{j}" for j in range(X.shape[1])]
        names = [feature_names[j] for j in categorical]
        given = self.categories != "auto"
        if given:
            if len(self.categories) != categorical.size:
                raise ValueError(
                    f"categories lists {len(self.categories)} columns' categories, but X has "
                    f"{categorical.size} categorical columns."
                )
            for name, column_categories in zip(names, self.categories):
                for value in column_categories:
                    _refuse_cell(name, value, "among its given categories")
        separators = _resolve_separators(self.separator, categorical, feature_names)
        values, missing = _categorical_values(X, categorical)
        multi = np.array(
            [s is not None or _holds_several_values(values[:, c]) for c, s in enumerate(separators)],
            dtype=bool,
        )
        self.multi_valued_ = np.zeros(self.is_categorical.shape[0], dtype=bool)
        self.multi_valued_[categorical[multi]] = True
        self.separators_ = [None] * self.is_categorical.shape[0]
        for j, separator in zip(categorical[multi], np.asarray(separators, dtype=object)[multi]):
            self.separators_[j] = separator
        categories = [None] * categorical.size
        single = np.flatnonzero(~multi)
        self.ordinal_ = None
        if single.size:
            try:
                self.ordinal_ = self._fit_ordinal(
                    values[:, single], [self.categories[c] for c in single] if given else "auto"
                )
            except TypeError:
                # OrdinalEncoder names neither the column nor the row.
                _refuse_odd_cells(values[:, single], [names[c] for c in single])
                _refuse_mixed_types(values[:, single], [names[c] for c in single])
                raise
            for c, found in zip(single, self.ordinal_.categories_):
                categories[c] = found
        self.value_encoders_ = []
        for c in np.flatnonzero(multi):
            j = categorical[c]
            flat, _ = _cell_values(values[:, c], missing[:, c], self.separators_[j], names[c])
            if given:
                # OrdinalEncoder needs a value to fit, even on given categories.
                seen = flat if flat.size else np.asarray(self.categories[c], dtype=object)
                encoder = self._fit_ordinal(seen[:, None], [self.categories[c]])
            elif flat.size:
                encoder = self._fit_ordinal(flat[:, None], "auto")
            else:
                raise ValueError(
                    f"Multi-valued column {names[c]!r} has no value in the data of fit: give "
                    "its categories with categories=, or leave it out."
                )
            self.value_encoders_.append(encoder)
            categories[c] = encoder.categories_[0]
        self.categories_ = categories
        sizes = np.ones(self.is_categorical.shape[0], dtype=np.int64)
        # Known categories, then the "unknown" and "missing" features.
        sizes[categorical] = [len(c) + 2 for c in self.categories_]
        self.offsets_ = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.n_features_ = int(sizes.sum())
        self.feature_columns_ = np.repeat(np.arange(sizes.shape[0], dtype=np.int32), sizes)
        self.unknown_ids_ = np.full(sizes.shape[0], -1, dtype=np.int64)
        self.unknown_ids_[categorical] = self.offsets_[categorical] + sizes[categorical] - 2
        return self

    @classmethod
    def _fit_ordinal(cls, values, categories):
        """Fit an OrdinalEncoder on ``values``; missing values are never a known category."""
        encoder = cls._ordinal_encoder(categories).fit(values)
        known = [c[~pd.isna(c)] for c in encoder.categories_]
        if any(len(k) < len(c) for k, c in zip(known, encoder.categories_)):
            encoder = cls._ordinal_encoder(known).fit(values)
        return encoder

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
        several values (tuple, list, set, array) in a single-valued column is
        a ValueError, as are the bad cells of a multi-valued column (see
        :func:`_cell_values`), and any other unhashable one a TypeError.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_columns)
        feature_names : sequence of str
            Column names, for error messages.
        """
        return self._transform(X, feature_names, fitting=False)

    def _transform(self, X, feature_names, fitting):
        categorical, numeric = self._categorical, self._numeric
        single = categorical[~self.multi_valued_[categorical]]
        # Everything is checked before the matrix is allocated.
        if numeric.size:
            numeric_values = _numeric_values(X, numeric, feature_names, fitting)
        if single.size:
            codes = self._category_codes(X, single, [feature_names[j] for j in single])
        multi_entries = self._multi_valued_columns(X, feature_names)
        n_samples = X.shape[0]
        ids = np.empty((n_samples, self.is_categorical.shape[0]), dtype=np.int32)
        values = np.ones((n_samples, self.is_categorical.shape[0]), dtype=np.float32)
        if numeric.size:
            values[:, numeric] = numeric_values
            ids[:, numeric] = self.offsets_[numeric]
        if single.size:
            unknown = self.unknown_ids_[single]
            ids[:, single] = np.select(
                [codes == _UNKNOWN, codes == _MISSING],
                [unknown, unknown + 1],
                self.offsets_[single] + codes,
            )
        unknown_ids = self.unknown_ids_
        if multi_entries:
            ids, values, unknown_ids = self._insert_entries(ids, values, multi_entries)
        return FieldMatrix(ids, values, self.n_features_, unknown_ids=unknown_ids)

    def _multi_valued_columns(self, X, feature_names):
        """Return the (ids, values) entries of each multi-valued column, in column order."""
        positions = np.flatnonzero(self.multi_valued_)
        if not positions.size:
            return []
        columns, missing = _categorical_values(X, positions)
        entries = []
        for c, (j, encoder) in enumerate(zip(positions, self.value_encoders_)):
            name = feature_names[j]
            flat, lengths = _cell_values(columns[:, c], missing[:, c], self.separators_[j], name)
            codes = (
                encoder.transform(flat[:, None])[:, 0].astype(np.int64)
                if flat.size
                else np.empty(0, dtype=np.int64)
            )
            entries.append(
                _multi_valued_entries(codes, lengths, self.offsets_[j], self.unknown_ids_[j])
            )
        return entries

    def _insert_entries(self, ids, values, entries):
        """Put each multi-valued column's entries in place of its column in ``ids`` and ``values``.

        Returns the widened ids and values and the "unknown" feature id of each entry.
        """
        positions = np.flatnonzero(self.multi_valued_)
        bounds = np.concatenate([[0], positions + 1])
        id_parts, value_parts, unknown_parts = [], [], []
        for start, j, (column_ids, column_values) in zip(bounds, positions, entries):
            id_parts += [ids[:, start:j], column_ids]
            value_parts += [values[:, start:j], column_values]
            width = column_ids.shape[1]
            unknown_parts += [self.unknown_ids_[start:j], np.repeat(self.unknown_ids_[j], width)]
        id_parts.append(ids[:, bounds[-1]:])
        value_parts.append(values[:, bounds[-1]:])
        unknown_parts.append(self.unknown_ids_[bounds[-1]:])
        return np.hstack(id_parts), np.hstack(value_parts), np.concatenate(unknown_parts)

    def _category_codes(self, X, positions, names):
        """Position of each value of the single-valued categorical ``positions`` among their categories.

        Unknown categories are ``_UNKNOWN`` and missing values ``_MISSING``;
        ``names`` are the columns' names.  Columns of pandas' ``category``
        dtype already hold integer codes: only their few categories are
        looked up, which is over ten times faster than OrdinalEncoder on each
        value (it dominated predicting on such frames).
        """
        index = np.searchsorted(self._categorical, positions)
        codes = np.empty((X.shape[0], positions.size), dtype=np.int64)
        slow = []
        for c, position in enumerate(positions):
            column = X.iloc[:, position] if hasattr(X, "iloc") else None
            if not isinstance(getattr(column, "dtype", None), pd.CategoricalDtype):
                slow.append(c)
                continue
            codes[:, c] = self._category_dtype_codes(index[c], column, names[c])
        if slow:
            # OrdinalEncoder keeps its columns in fit order: give it all of
            # them, and keep the results of the columns that need it.
            values, missing = _categorical_values(X, positions)
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
