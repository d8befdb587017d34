"""Turn the network's per-slot attention into per-column-pair summaries.

The network reports attention for pairs of *slots* of a padded batch.  The
functions here map slots back to the input columns they come from (see
:mod:`sklearn_afm._batching`; a categorical column's categories all map to that
column) and aggregate over rows.  The values of a multi-valued column are
several slots of one column: their pairs with each other are the pair of the
column with itself, ``(c, c)``, the one pair of a column with itself that a
summary holds.
"""

import numpy as np
import scipy.sparse as sp

# Above this many input columns a dense (n_columns, n_columns) summary would
# weigh hundreds of megabytes and its accumulation would dominate training.
MAX_COLUMNS_FOR_ATTENTION_SUMMARY = 4096


# explain() refuses to return dense per-pair arrays of more values than this
# (512 MiB of float64 for the interactions alone).
MAX_EXPLAIN_VALUES = 2**26


def check_explain_size(n_samples, n_pairs, n_outputs):
    """Refuse an explanation whose dense interaction terms would exceed :data:`MAX_EXPLAIN_VALUES`."""
    size = n_samples * n_pairs * n_outputs
    if size > MAX_EXPLAIN_VALUES:
        raise ValueError(
            f"explain would return {n_samples} samples x {n_pairs} column pairs x "
            f"{n_outputs} outputs = {size} values, more than {MAX_EXPLAIN_VALUES}. Explain "
            "fewer rows at a time, or give categorical data with categorical_features so "
            "that each field is one column."
        )


def attention_table(names, weights, totals):
    """Return the column pairs present in training with their mean attention, largest first.

    Parameters
    ----------
    names : sequence of str
        Column names.
    weights : ndarray of shape (n_columns, n_columns)
        ``attention_weights_``.
    totals : tuple of two ndarray
        The running totals of :func:`add_pair_attention`; a pair is present
        when its count is positive.

    Returns
    -------
    table : pandas.DataFrame
        Columns ``feature_1``, ``feature_2`` and ``attention``.
    """
    import pandas as pd

    # Only multi-valued columns pair with themselves (on the diagonal).
    first, second = np.triu_indices(len(names))
    present = totals[1][first, second] > 0
    first, second = first[present], second[present]
    names = np.asarray(names, dtype=object)
    table = pd.DataFrame(
        {
            "feature_1": names[first],
            "feature_2": names[second],
            "attention": weights[first, second],
        }
    )
    return table.sort_values("attention", ascending=False, kind="stable").reset_index(drop=True)


def column_pairs(n_columns, multi_valued=None):
    """Return the pairs of columns that :meth:`explain` reports, in lexicographic order.

    Every pair ``(i, j)``, ``i < j``, and ``(c, c)`` for each multi-valued column ``c``.

    Parameters
    ----------
    n_columns : int
    multi_valued : ndarray of bool of shape (n_columns,), default=None
        Which columns are multi-valued; none when None.

    Returns
    -------
    pairs : ndarray of int64, shape (n_pairs, 2)
    """
    first, second = np.triu_indices(n_columns)
    keep = first < second
    if multi_valued is not None:
        keep |= multi_valued[first]
    return np.column_stack([first[keep], second[keep]]).astype(np.int64)


def _present_pairs(indices, values, attention, feature_columns, *per_pair):
    """Return (row, first column, second column, attention) of the pairs present in a batch.

    Arrays of ``per_pair`` (batch, n_slot_pairs, ...) are selected likewise and
    appended to the result.
    """
    k = indices.shape[1]
    first, second = np.triu_indices(k, 1)
    present = values != 0
    mask = present[:, first] & present[:, second]
    rows = np.broadcast_to(np.arange(indices.shape[0])[:, None], mask.shape)[mask]
    columns = indices if feature_columns is None else feature_columns[indices]
    selected = (attention[mask], *(array[mask] for array in per_pair))
    return (rows, columns[:, first][mask], columns[:, second][mask], *selected)


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

    Pairs never present are 0; so is the diagonal, except for multi-valued
    columns, whose values pair with each other.
    """
    total, count = totals
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    return mean + np.triu(mean, 1).T


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


def per_sample_contributions(batches, n_samples, n_columns, pairs, feature_columns=None):
    """Gather each row's additive terms per input column and per pair of columns.

    Parameters
    ----------
    batches : iterable of (indices, values, bias, linear, interactions, attention)
        As yielded by :meth:`sklearn_afm._engine.Engine.contributions`, in row order.
    n_samples, n_columns : int
    pairs : ndarray of int, shape (n_pairs, 2)
        The pairs of columns of :func:`column_pairs`: every pair the rows can hold.
    feature_columns : ndarray of int, default=None
        Input column of each feature id; feature ids are columns when None.

    Returns
    -------
    bias : ndarray of shape (n_outputs,)
    linear : ndarray of shape (n_samples, n_columns, n_outputs)
    interactions : ndarray of shape (n_samples, n_pairs, n_outputs)
        One term per pair of ``pairs``; 0 for the pairs absent from a row.
    attention : ndarray of shape (n_samples, n_pairs)
    """
    n_pairs = pairs.shape[0]
    # Lexicographic order: a pair's position is that of its key among the keys.
    keys = pairs[:, 0].astype(np.int64) * n_columns + pairs[:, 1]
    linear = interactions = attention = None
    offset = 0
    for indices, values, bias, slot_linear, slot_interactions, slot_attention in batches:
        if linear is None:
            n_outputs = bias.shape[0]
            linear = np.zeros((n_samples, n_columns, n_outputs))
            interactions = np.zeros((n_samples, n_pairs, n_outputs))
            attention = np.zeros((n_samples, n_pairs))
        columns = indices if feature_columns is None else feature_columns[indices]
        rows = np.arange(indices.shape[0])[:, None] + offset
        # Padding slots hold value 0, so their linear terms are 0 wherever they land.
        np.add.at(linear, (rows, columns), slot_linear)
        r, i, j, a, terms = _present_pairs(
            indices, values, slot_attention, feature_columns, slot_interactions
        )
        i, j = np.minimum(i, j), np.maximum(i, j)
        pair = np.searchsorted(keys, i.astype(np.int64) * n_columns + j)
        np.add.at(interactions, (r + offset, pair), terms)
        np.add.at(attention, (r + offset, pair), a)
        offset += indices.shape[0]
    return bias.astype(np.float64), linear, interactions, attention
