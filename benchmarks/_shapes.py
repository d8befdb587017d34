"""Data, model sizes and run lengths shared by every worker of the throughput benchmark.

Every implementation rebuilds the same data in its own process from numpy
and a fixed seed, so the workers need nothing but this module to agree on
what they measure.  Two shapes:

- *telco*: 7,043 rows x 19 dense standard-normal numeric columns (the size
  of the Telco churn data);
- *frappe*: 200,000 rows (20,000 in quick mode) x 10 categorical fields
  with Frappe's field sizes (5,382 distinct features).

Only numpy is imported at module level: the workers import their own
frameworks, and the DeepCTR worker must set ``TF_USE_LEGACY_KERAS`` before
anything imports TensorFlow.
"""

import numpy as np

# The model, in every implementation.
EMBEDDING = 16
ATTENTION = 16
ALPHA = 1e-4  # L2 on the attention network's W, as AFMClassifier's default
LEARNING_RATE = 0.01  # Adam, as AFMClassifier's default
SEED = 0
BATCH_SIZES = (256, 1024)
SHAPES = ("telco", "frappe")

TELCO_ROWS = 7_043
TELCO_COLUMNS = 19
# Frappe's ten context fields and their numbers of distinct values (5,382 in all).
FRAPPE_FIELDS = (
    ("user", 957),
    ("item", 4082),
    ("daytime", 7),
    ("weekday", 7),
    ("isweekend", 2),
    ("homework", 3),
    ("cost", 2),
    ("weather", 9),
    ("country", 80),
    ("city", 233),
)
FRAPPE_FEATURES = sum(size for _, size in FRAPPE_FIELDS)
FRAPPE_ROWS = 200_000
FRAPPE_QUICK_ROWS = 20_000


def make_telco(rows=TELCO_ROWS, seed=SEED):
    """Telco-shaped dense data: ``rows`` x 19 standard-normal float32 columns.

    The label follows a planted rule with two pairwise interactions and two
    main effects, ``1.5 x0 x1 - x2 x3 + 0.5 x4 - 0.5 x5``, plus logistic noise.
    No entry is 0, so every row has all 19 features and all 171 pairs.
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, TELCO_COLUMNS), dtype=np.float32)
    score = 1.5 * X[:, 0] * X[:, 1] - X[:, 2] * X[:, 3] + 0.5 * X[:, 4] - 0.5 * X[:, 5]
    y = (score + rng.logistic(size=rows) > 0).astype(np.int64)
    return X, y


def make_frappe(rows=FRAPPE_ROWS, seed=SEED):
    """Frappe-shaped data: integer codes of 10 fields with Frappe's cardinalities.

    Codes are uniform within each field (with 200,000 rows every one of the
    5,382 values occurs).  Each code of ``user``, ``item`` and ``daytime`` gets
    a random sign ``s``; the label is ``1.5 s_user s_item + s_daytime +
    logistic noise > 0``.

    Returns
    -------
    codes : ndarray of int32, shape (rows, 10)
        Code of each field, in ``range(cardinality)``.
    y : ndarray of int64
    """
    rng = np.random.default_rng(seed)
    sizes = np.array([size for _, size in FRAPPE_FIELDS])
    codes = (rng.random((rows, len(sizes))) * sizes).astype(np.int32)
    signs = [rng.choice(np.array([-1.0, 1.0]), size=size) for size in sizes[:3]]
    score = 1.5 * signs[0][codes[:, 0]] * signs[1][codes[:, 1]] + signs[2][codes[:, 2]]
    y = (score + rng.logistic(size=rows) > 0).astype(np.int64)
    return codes, y


def frappe_offsets():
    """The first feature index of each Frappe field when the 10 fields share one index space."""
    sizes = [size for _, size in FRAPPE_FIELDS]
    return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int32)


def frappe_dataframe(codes):
    """The codes as a DataFrame of ``category`` columns (ours' native categorical path)."""
    import pandas as pd

    return pd.DataFrame(
        {
            name: pd.Categorical.from_codes(codes[:, j], categories=np.arange(size))
            for j, (name, size) in enumerate(FRAPPE_FIELDS)
        }
    )


def frappe_csr(codes):
    """The codes as a one-hot CSR matrix of shape (rows, 5382), 10 non-zeros per row."""
    import scipy.sparse as sp

    rows, fields = codes.shape
    indices = (codes + frappe_offsets()).reshape(-1)
    indptr = np.arange(0, rows * fields + 1, fields)
    data = np.ones(rows * fields, dtype=np.float32)
    return sp.csr_array((data, indices, indptr), shape=(rows, FRAPPE_FEATURES))


def frappe_rows(quick):
    """Rows of the Frappe shape: fewer in quick mode."""
    return FRAPPE_QUICK_ROWS if quick else FRAPPE_ROWS


def load_shape(shape, quick):
    """Return ``(X_raw, y)`` of ``shape``: telco's float columns or frappe's field codes."""
    if shape == "telco":
        return make_telco()
    return make_frappe(frappe_rows(quick))


def epochs_for(shape, quick):
    """(warm-up epochs, timed epochs): small epochs are noisier, so they get more."""
    if quick:
        return 1, 2
    return (1, 10) if shape == "telco" else (1, 3)


def predict_repeats(quick, shape="frappe"):
    """Timed prediction calls (after one warm-up call); the 7,043-row calls get more."""
    if quick:
        return 1
    return 10 if shape == "telco" else 3


def flops_per_row(fields, d=EMBEDDING, t=ATTENTION):
    """Floating-point operations of one row in one training step (forward + backward).

    Forward, per row with ``m`` fields and ``P = m (m - 1) / 2`` pairs: value
    scaling ``m d``, products ``P d``, attention hidden layer ``P (2 d t + 2 t)``
    (matmul, bias, ReLU), scores ``2 P t``, softmax ``~5 P``, pooling ``2 P d``,
    projection ``2 d``, linear part ``2 m``.  Backward costs about twice the
    forward pass (a gradient for each operand of every product and matmul),
    so a training step is about 3 x forward.

    Returns
    -------
    step : int
        FLOPs of one training step (3 x forward).
    forward : int
        FLOPs of the forward pass.
    """
    pairs = fields * (fields - 1) // 2
    forward = (
        fields * d
        + pairs * d
        + pairs * (2 * d * t + 2 * t)
        + 2 * pairs * t
        + 5 * pairs
        + 2 * pairs * d
        + 2 * d
        + 2 * fields
    )
    return 3 * forward, forward
