"""Turn validated user data into the padded (feature index, value) batches the model reads.

A row of ``n_features`` columns is represented only by its non-zero entries.  A
batch of rows becomes two ``(batch, k)`` arrays: the column indices of the
non-zero entries and their values, padded with ``(0, 0.0)`` up to ``k``.  The
model treats value ``0`` as "absent", so padding never takes part in a pair or
in the attention softmax.  ``k`` is the batch's largest number of non-zeros,
rounded up to one of a few widths (and capped at ``n_features``) so that the
compiled model only ever sees a handful of distinct shapes.

Three kinds of row source are batched: a dense numeric array (column ``j`` is
feature ``j``), a CSR matrix (likewise), and a :class:`FieldMatrix`, the compact
form of data with categorical columns built by :mod:`sklearn_afm._encoding`
(one entry per input column, holding the feature id of the row's category or
of the numeric column).  Nothing here densifies a sparse matrix or copies the
whole data set: batches are cut from the source one at a time.
"""

import numpy as np
import scipy.sparse as sp

# Share of categorical entries that training batches replace by their
# column's "unknown" or "missing" feature (half each), so that unseen
# categories, and missing values in a column that had none in training, meet
# an embedding that was trained (as an average category), not one left at its
# random initial value.
STAND_IN_RATE = 0.01


def _padded_width(max_nnz, n_features):
    """Return the padded width for a batch whose longest row has ``max_nnz`` entries.

    The width is rounded up to a number with at most three significant bits
    (1-8, 10, 12, 14, 16, 20, 24, ...): at most four compiled shapes per
    doubling of the width, at the price of at most 25 % extra slots.
    """
    max_nnz = max(int(max_nnz), 1)
    # One slot still gives well-formed tensors for rows with a single feature
    # or none: such rows simply have no pair.
    step = 1 << max(max_nnz.bit_length() - 3, 0)
    return int(min(n_features, -(-max_nnz // step) * step))


class FieldMatrix:
    """Rows given as one (feature id, value) entry per input column.

    Parameters
    ----------
    ids : ndarray of int32, shape (n_samples, n_columns)
        Feature id of each entry (a category's own id for categorical columns).
    values : ndarray of float32, shape (n_samples, n_columns)
        Value of each entry; 1 for categories, 0 for absent entries.
    n_features : int
        Number of distinct feature ids.
    unknown_ids : ndarray of int, shape (n_columns,), default=None
        Feature id that stands for "a category not seen in training" in each
        categorical column (-1 for numeric columns); the next id stands for
        "missing".  With ``stand_in_rate``, batches cut for training replace
        that share of the categorical entries by one of the two (half each),
        so that their embeddings are learned like any other.
    stand_in_rate : float, default=0.0
    random_state : RandomState, default=None
        Draws the replaced entries.
    """

    def __init__(
        self, ids, values, n_features, unknown_ids=None, stand_in_rate=0.0, random_state=None
    ):
        self.ids = ids
        self.values = values
        self.shape = (ids.shape[0], n_features)
        self.unknown_ids = unknown_ids
        self.stand_in_rate = stand_in_rate
        self.random_state = random_state

    def __getitem__(self, rows):
        ids = self.ids[rows]
        if self.stand_in_rate:
            draw = self.random_state.random_sample(ids.shape)
            replace = (draw < self.stand_in_rate) & (self.unknown_ids >= 0)
            # The lower half of the draws picks "unknown", the upper "missing".
            stand_in = self.unknown_ids + (draw >= self.stand_in_rate / 2)
            ids = np.where(replace, stand_in, ids)
        return FieldMatrix(ids, self.values[rows], self.shape[1])

    def with_stand_ins(self, rate, random_state):
        """Return the same rows, cut into training batches with unknown/missing stand-ins."""
        return FieldMatrix(
            self.ids, self.values, self.shape[1], self.unknown_ids, rate, random_state
        )


def training_source(X, random_state):
    """Return the row source that training batches are cut from.

    A :class:`FieldMatrix` gets its unknown/missing stand-ins at
    :data:`STAND_IN_RATE`, drawn from ``random_state`` as batches are cut;
    other sources are returned as they are.
    """
    if isinstance(X, FieldMatrix):
        return X.with_stand_ins(STAND_IN_RATE, random_state)
    return X


def as_row_source(X):
    """Prepare validated ``X`` for fast row batching without copying dense data.

    Parameters
    ----------
    X : ndarray or scipy sparse matrix/array of shape (n_samples, n_features)
        Finite numeric data, already validated.

    Returns
    -------
    X : ndarray or scipy.sparse.csr_array
        Dense input is returned as is; sparse input as CSR with float32 values,
        sorted indices, duplicates summed and no explicit zeros (a copy is made
        only if needed).
    """
    if not sp.issparse(X):
        return X
    X = sp.csr_array(X) if X.format != "csr" else X
    needs_copy = not X.has_canonical_format or (X.data == 0).any()
    if needs_copy or X.dtype != np.float32:
        X = sp.csr_array(X, dtype=np.float32, copy=True)
        X.sum_duplicates()
        X.eliminate_zeros()
    return X


def feature_scale(X):
    """Return the multiplier of each feature: 1 / its largest absolute value in ``X``.

    Features that are always 0 keep the multiplier 1.  Fitted once, it puts
    numeric columns of any unit on a comparable scale while leaving 0 (absent)
    at 0 and one-hot columns and categories (value 1) unchanged, as
    :class:`~sklearn.preprocessing.MaxAbsScaler` does.

    Parameters
    ----------
    X : ndarray, scipy.sparse.csr_array or FieldMatrix
        Output of :func:`as_row_source`, or a :class:`FieldMatrix`.

    Returns
    -------
    scale : ndarray of float32, shape (n_features,)
    """
    if sp.issparse(X):
        largest = np.maximum(X.max(axis=0).toarray(), -X.min(axis=0).toarray()).ravel()
    elif isinstance(X, FieldMatrix):
        largest = np.zeros(X.shape[1])
        np.maximum.at(largest, X.ids.ravel(), np.abs(X.values.ravel()))
    else:
        largest = np.maximum(X.max(axis=0), -X.min(axis=0))
    largest = np.asarray(largest, dtype=np.float64)
    scale = np.divide(1.0, largest, out=np.ones_like(largest), where=largest > 0)
    return scale.astype(np.float32)


def make_batch(X, rows):
    """Build the padded model input for the given rows of ``X``.

    Parameters
    ----------
    X : ndarray, scipy.sparse.csr_array or FieldMatrix
        Output of :func:`as_row_source`, or a :class:`FieldMatrix`.
    rows : slice or ndarray of int
        The rows of the batch, in order.

    Returns
    -------
    indices : ndarray of int32, shape (batch, k)
        Column index of each non-zero entry, in increasing column order; 0 for padding.
    values : ndarray of float32, shape (batch, k)
        The entries themselves; exactly 0 for padding.
    """
    n_features = X.shape[1]
    if sp.issparse(X):
        return _sparse_batch(X[rows], n_features)
    if isinstance(X, FieldMatrix):
        sub = X[rows]
        return _compact_batch(sub.values, sub.ids)
    return _compact_batch(np.asarray(X[rows], dtype=np.float32))


def _sparse_batch(sub, n_features):
    lengths = np.diff(sub.indptr)
    n_rows = lengths.shape[0]
    k = _padded_width(lengths.max(initial=0), n_features)
    indices = np.zeros((n_rows, k), dtype=np.int32)
    values = np.zeros((n_rows, k), dtype=np.float32)
    row_of_entry = np.repeat(np.arange(n_rows), lengths)
    slot_of_entry = np.arange(sub.nnz) - np.repeat(sub.indptr[:-1], lengths)
    indices[row_of_entry, slot_of_entry] = sub.indices
    values[row_of_entry, slot_of_entry] = sub.data
    return indices, values


def _compact_batch(sub, ids=None):
    """Move each row's non-zero entries to the front; ``ids`` maps entries to features."""
    present = sub != 0
    n_columns = sub.shape[1]
    if present.all():
        columns = np.broadcast_to(np.arange(n_columns, dtype=np.int32), sub.shape)
        return np.ascontiguousarray(columns if ids is None else ids, dtype=np.int32), sub
    k = _padded_width(present.sum(axis=1).max(initial=0), n_columns)
    # A stable sort moves each row's present entries to the front while
    # keeping them in increasing column order.
    order = np.argsort(~present, axis=1, kind="stable")[:, :k]
    keep = np.take_along_axis(present, order, axis=1)
    values = np.where(keep, np.take_along_axis(sub, order, axis=1), np.float32(0))
    features = order if ids is None else np.take_along_axis(ids, order, axis=1)
    indices = np.where(keep, features, 0).astype(np.int32)
    return indices, values


# A step builds (pairs, rows, embedding) float32 tensors, which grow with
# the square of a row's number of non-zero features: batches are cut into
# chunks of rows whose tensors hold at most PAIR_BUDGET values (32 MiB), and
# a row whose tensors alone would hold more than MAX_ROW_PAIR_VALUES (256 MiB)
# is refused before anything is allocated.
PAIR_BUDGET = 2**23
MAX_ROW_PAIR_VALUES = 2**26
# Inference keeps no activations for a backward pass, so it can take more
# rows per step than training (fewer steps, less per-step overhead): up to
# MAX_PREDICTION_ROWS, within PAIR_BUDGET.
MAX_PREDICTION_ROWS = 4096


def padded_width_of(X):
    """Return the padded width of a batch holding the widest row of ``X``."""
    if sp.issparse(X):
        widest = np.diff(X.indptr).max(initial=0)
    elif isinstance(X, FieldMatrix):
        widest = (X.values != 0).sum(axis=1).max(initial=0)
    else:
        widest = (X != 0).sum(axis=1).max(initial=0)
    return _padded_width(widest, X.shape[1])


def rows_within_budget(width, embedding_size):
    """Return how many rows of padded width ``width`` a step may take at once.

    Raises
    ------
    ValueError
        When even one row would exceed :data:`MAX_ROW_PAIR_VALUES`.
    """
    n_pairs = width * (width - 1) // 2
    pair_values = max(n_pairs, 1) * embedding_size
    if pair_values > MAX_ROW_PAIR_VALUES:
        raise ValueError(
            f"Rows of X have up to {width} non-zero features: their {n_pairs:,} pairs of "
            f"{embedding_size}-dimensional embeddings need {pair_values * 4 / 2**30:.1f} GiB "
            "per tensor, more than the model can hold. Give rows with fewer non-zero "
            "features: keep zeros as zeros (they are absent; a sparse matrix stores only "
            "the non-zeros), select fewer columns, or declare categorical columns with "
            "categorical_features (a column is then one feature, whatever its categories)."
        )
    return max(1, PAIR_BUDGET // pair_values)


def prediction_batch_size(X, batch_size, embedding_size):
    """Return the rows per batch for inference on ``X``.

    At least ``batch_size`` (the training batch size) for narrow rows, up to
    :data:`MAX_PREDICTION_ROWS`; for wide rows as many as
    :data:`PAIR_BUDGET` allows.

    Parameters
    ----------
    X : ndarray, scipy.sparse.csr_array or FieldMatrix
    batch_size : int
    embedding_size : int
    """
    budget = rows_within_budget(padded_width_of(X), embedding_size)
    return int(min(max(batch_size, min(budget, MAX_PREDICTION_ROWS)), budget))


def iter_batches(rows, batch_size):
    """Yield the row selections of consecutive batches.

    Parameters
    ----------
    rows : int or ndarray of int
        Either the number of rows, to visit them all in order as contiguous
        slices, or the rows themselves in the order to visit them (a shuffled
        permutation for a training epoch, or a subset).
    batch_size : int
    """
    if isinstance(rows, (int, np.integer)):
        for start in range(0, rows, batch_size):
            yield slice(start, min(start + batch_size, rows))
    else:
        for start in range(0, len(rows), batch_size):
            yield rows[start : start + batch_size]
