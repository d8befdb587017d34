"""Turn the network's per-slot attention into per-column-pair summaries.

The network reports attention for pairs of *slots* of a padded batch.  The
functions here map slots back to the input columns they come from (see
:mod:`sklearn_afm._batching`; a categorical column's categories all map to that
column) and aggregate over rows.
"""

import numpy as np
import scipy.sparse as sp

# Above this many input columns a dense (n_columns, n_columns) summary would
# weigh hundreds of megabytes and its accumulation would dominate training.
MAX_COLUMNS_FOR_ATTENTION_SUMMARY = 4096


def _present_pairs(indices, values, attention, feature_columns):
    """Return (row, first column, second column, attention) of the pairs present in a batch."""
    k = indices.shape[1]
    first, second = np.triu_indices(k, 1)
    present = values != 0
    mask = present[:, first] & present[:, second]
    rows = np.broadcast_to(np.arange(indices.shape[0])[:, None], mask.shape)[mask]
    columns = indices if feature_columns is None else feature_columns[indices]
    return rows, columns[:, first][mask], columns[:, second][mask], attention[mask]


def add_pair_attention(totals, batches, n_columns, feature_columns=None):
    """Add each column pair's summed attention and count of rows to running totals.

    Parameters
    ----------
    totals : tuple of two ndarray of shape (n_columns, n_columns) or None
        Running (sum of attention, number of rows) per pair ``i < j``; None to start.
    batches : iterable of (indices, values, attention)
        As yielded by :meth:`sklearn_afm._engine.Engine.attention`.
    n_columns : int
    feature_columns : ndarray of int, default=None
        Input column of each feature id; feature ids are columns when None.

    Returns
    -------
    totals : tuple of two ndarray of shape (n_columns, n_columns)
    """
    size = n_columns * n_columns
    total = np.zeros(size) if totals is None else totals[0].ravel().copy()
    count = np.zeros(size) if totals is None else totals[1].ravel().copy()
    for indices, values, attention in batches:
        _, i, j, a = _present_pairs(indices, values, attention, feature_columns)
        key = i.astype(np.int64) * n_columns + j
        total += np.bincount(key, weights=a, minlength=size)
        count += np.bincount(key, minlength=size)
    return total.reshape(n_columns, n_columns), count.reshape(n_columns, n_columns)


def mean_pair_attention(totals):
    """Return the symmetric mean attention per column pair from running totals.

    Pairs never present, and the diagonal, are 0.
    """
    total, count = totals
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    return mean + mean.T


def per_sample_pair_attention(batches, n_samples, sparse_output, feature_columns=None):
    """Collect each row's attention over the column pairs present in the data.

    Parameters
    ----------
    batches : iterable of (indices, values, attention)
        As yielded by :meth:`sklearn_afm._engine.Engine.attention`, in row order.
    n_samples : int
    sparse_output : bool
        Whether to return a sparse matrix (for sparse input) or a dense array.
    feature_columns : ndarray of int, default=None
        Input column of each feature id; feature ids are columns when None.

    Returns
    -------
    attention : ndarray or scipy.sparse.csr_array of shape (n_samples, n_pairs)
    pairs : ndarray of int64, shape (n_pairs, 2)
        The column indices ``(i, j)``, ``i < j``, of each column of ``attention``:
        every pair present in at least one row, in lexicographic order.
    """
    rows, firsts, seconds, weights = [], [], [], []
    offset = 0
    for indices, values, attention in batches:
        r, i, j, a = _present_pairs(indices, values, attention, feature_columns)
        rows.append(r + offset)
        firsts.append(i)
        seconds.append(j)
        weights.append(a)
        offset += indices.shape[0]
    rows, firsts, seconds, weights = (np.concatenate(v) for v in (rows, firsts, seconds, weights))
    keys = firsts.astype(np.int64) << 32 | seconds.astype(np.int64)
    unique_keys, columns = np.unique(keys, return_inverse=True)
    pairs = np.column_stack([unique_keys >> 32, unique_keys & 0xFFFFFFFF])
    matrix = sp.csr_array(
        (weights.astype(np.float64), (rows, columns)), shape=(n_samples, pairs.shape[0])
    )
    return (matrix if sparse_output else matrix.toarray()), pairs
