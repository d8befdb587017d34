"""Turn the network's per-slot attention into per-feature-pair summaries.

The network reports attention for pairs of *slots* of a padded batch; the
functions here map slots back to the columns they hold (see
:mod:`sklearn_afm._batching`) and aggregate over rows.
"""

import numpy as np
import scipy.sparse as sp

# Above this many features a dense (n_features, n_features) summary would
# weigh hundreds of megabytes, so it is returned as a sparse matrix instead.
DENSE_PAIR_MATRIX_MAX_FEATURES = 4096


def _present_pairs(indices, values, attention):
    """Return the (first column, second column, attention) of the pairs present in a batch."""
    k = indices.shape[1]
    first, second = np.triu_indices(k, 1)
    present = values != 0
    mask = present[:, first] & present[:, second]
    rows = np.broadcast_to(np.arange(indices.shape[0])[:, None], mask.shape)[mask]
    return rows, indices[:, first][mask], indices[:, second][mask], attention[mask]


def mean_pair_attention(batches, n_features):
    """Average the attention of each feature pair over the rows where it is present.

    Parameters
    ----------
    batches : iterable of (indices, values, attention)
        As yielded by :meth:`sklearn_afm._engine.Engine.attention`.
    n_features : int

    Returns
    -------
    matrix : ndarray or scipy.sparse.csr_array of shape (n_features, n_features)
        Symmetric, 0 on the diagonal and for pairs never present; dense up to
        ``DENSE_PAIR_MATRIX_MAX_FEATURES`` features, sparse beyond.
    """
    shape = (n_features, n_features)
    total = sp.csr_array(shape, dtype=np.float64)
    count = sp.csr_array(shape, dtype=np.float64)
    for indices, values, attention in batches:
        _, i, j, a = _present_pairs(indices, values, attention)
        total += sp.coo_array((a.astype(np.float64), (i, j)), shape=shape).tocsr()
        count += sp.coo_array((np.ones(a.shape[0]), (i, j)), shape=shape).tocsr()
    mean = sp.csr_array(total.multiply(count.power(-1.0)))
    mean = mean + mean.T
    return mean.toarray() if n_features <= DENSE_PAIR_MATRIX_MAX_FEATURES else mean


def per_sample_pair_attention(batches, n_samples, sparse_output):
    """Collect each row's attention over the feature pairs present in the data.

    Parameters
    ----------
    batches : iterable of (indices, values, attention)
        As yielded by :meth:`sklearn_afm._engine.Engine.attention`, in row order.
    n_samples : int
    sparse_output : bool
        Whether to return a sparse matrix (for sparse input) or a dense array.

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
        r, i, j, a = _present_pairs(indices, values, attention)
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
