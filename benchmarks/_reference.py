"""The reference implementations the throughput benchmark compares ours against.

- DeepCTR 0.9.4's ``deepctr.models.AFM`` on the legacy ``tf_keras`` (optional:
  without it its worker reports the import error and the install command);
- a naive "all m^2 pairs with a triangular mask" AFM written here in Keras 3,
  the formulation of the article.

Both are trained with one Keras ``fit`` whose epochs a callback times, on the
data of ``_shapes`` with the same model sizes, seed and optimizer as ours.
"""

import os

import numpy as np
from _machine import package_version
from _measure import emit, keras_timings
from _shapes import (
    ALPHA,
    ATTENTION,
    EMBEDDING,
    FRAPPE_FEATURES,
    FRAPPE_FIELDS,
    LEARNING_RATE,
    SEED,
    frappe_offsets,
    load_shape,
)

DEEPCTR_INSTALL = 'pip install deepctr==0.9.4 "tf_keras~=2.21.0"'


# -- DeepCTR 0.9.4 ---------------------------------------------------------------------


def weighted_columns(names, values):
    """Numeric columns as DeepCTR features whose embedding is scaled by the value.

    Each column ``j`` is a one-entry ``VarLenSparseFeat`` (vocabulary {1},
    ``combiner="sum"``) whose embedding is multiplied by the column's value
    (``weight_name``): exactly the ``v_j x_j`` of the FM/AFM definition and of
    sklearn_afm, which DeepCTR's ``DenseFeat`` cannot give (its AFM refuses
    dense features in the pairwise part).

    Returns
    -------
    columns : list of VarLenSparseFeat
    inputs : dict of ndarray
        Two inputs per column: its index and its value.
    """
    from deepctr.feature_column import SparseFeat, VarLenSparseFeat

    n = values.shape[0]
    columns = [
        VarLenSparseFeat(
            SparseFeat(name, vocabulary_size=2, embedding_dim=EMBEDDING),
            maxlen=1,
            combiner="sum",
            weight_name=name + "_value",
            weight_norm=False,
        )
        for name in names
    ]
    # Index 0 is DeepCTR's sequence padding (masked), so each column's one
    # feature is index 1.
    inputs = {}
    for j, name in enumerate(names):
        inputs[name] = np.ones((n, 1), dtype=np.int32)
        inputs[name + "_value"] = values[:, j].reshape(n, 1, 1)
    return columns, inputs


def deepctr_inputs(shape, X_raw, variant):
    """Build DeepCTR's feature columns and input dict for the same data.

    DeepCTR's AFM forms pairs only between embedded (sparse) features;
    ``DenseFeat`` is refused in its interaction part.  For the telco shape the
    ``weighted`` variant gives the numeric columns to ``weighted_columns``
    (``v_j x_j`` as in sklearn_afm); the linear part is one ``DenseFeat`` of
    the 19 values.  The ``bucketized`` variant is the
    usual DeepCTR recipe instead: each column cut into 10 quantile bins, a
    ``SparseFeat`` each (a different model, kept as a speed reference).

    Returns
    -------
    linear, interaction : list of DeepCTR feature columns
        The columns of the linear part and of the pairwise part.
    inputs : dict of ndarray
        The model's inputs by column name.
    """
    from deepctr.feature_column import DenseFeat, SparseFeat

    if shape == "frappe":
        columns = [
            SparseFeat(name, vocabulary_size=size, embedding_dim=EMBEDDING)
            for name, size in FRAPPE_FIELDS
        ]
        inputs = {name: X_raw[:, j] for j, (name, _) in enumerate(FRAPPE_FIELDS)}
        return columns, columns, inputs
    names = [f"x{j}" for j in range(X_raw.shape[1])]
    if variant == "bucketized":
        bins = 10
        edges = np.quantile(X_raw, np.linspace(0, 1, bins + 1)[1:-1], axis=0)
        columns = [
            SparseFeat(name, vocabulary_size=bins, embedding_dim=EMBEDDING) for name in names
        ]
        inputs = {
            name: np.searchsorted(edges[:, j], X_raw[:, j]).astype(np.int32)
            for j, name in enumerate(names)
        }
        return columns, columns, inputs
    interaction, inputs = weighted_columns(names, X_raw)
    linear = [DenseFeat("values", X_raw.shape[1])]
    inputs["values"] = X_raw
    return linear, interaction, inputs


def import_deepctr():
    """Import DeepCTR 0.9.4 on ``tf_keras``.

    Returns
    -------
    modules : tuple or None
        ``(deepctr, tensorflow, deepctr.models.AFM)``; None if the import failed.
    error : str or None
        The import error and the install command; None if it worked.
    """
    # DeepCTR 0.9.4 needs Keras 2 (tf_keras) behind tf.keras, chosen before TensorFlow loads.
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    try:
        import deepctr
        import tensorflow as tf
        from deepctr.models import AFM
    except Exception as error:  # noqa: BLE001
        return None, f"{type(error).__name__}: {error} (install: {DEEPCTR_INSTALL})"
    return (deepctr, tf, AFM), None


def worker_deepctr(args):
    """Time DeepCTR 0.9.4's AFM on ``args.shape``; report its import error if it is missing."""
    modules, error = import_deepctr()
    if error:
        emit({"impl": "deepctr", "shape": args.shape, "batch_size": args.batch_size, "error": error})
        return
    deepctr, tf, AFM = modules
    keras = tf.keras
    X_raw, y = load_shape(args.shape, args.quick)
    linear, interaction, inputs = deepctr_inputs(args.shape, X_raw, args.variant)
    tf.keras.utils.set_random_seed(SEED)
    model = AFM(
        linear,
        interaction,
        attention_factor=ATTENTION,
        l2_reg_linear=0.0,
        l2_reg_embedding=0.0,
        l2_reg_att=ALPHA,
        afm_dropout=0.0,
        seed=SEED,
        task="binary",
    )
    model.compile(keras.optimizers.Adam(LEARNING_RATE), "binary_crossentropy")
    timings = keras_timings(keras, model, inputs, y, args)
    emit(
        {
            "impl": "deepctr",
            "variant": args.variant if args.shape == "telco" else "sparse",
            "shape": args.shape,
            "batch_size": args.batch_size,
            "rows": X_raw.shape[0],
            "deepctr": deepctr.__version__,
            "tensorflow": tf.__version__,
            "tf_keras": package_version("tf_keras"),
            "legacy_keras": os.environ.get("TF_USE_LEGACY_KERAS"),
            **timings,
        }
    )


# -- naive "all m^2 pairs with a triangular mask" AFM ----------------------------------


def build_naive(keras, n_fields, n_features=None):
    """The article's formulation: all ``m x m`` products, upper triangle kept by a mask.

    The ``(batch, m, m, d)`` tensor of every product ``e_i * e_j`` is formed,
    the diagonal and lower triangle are multiplied by 0, and the attention
    softmax runs over all ``m^2`` entries: the masked zero vectors still get a
    score (``h^T ReLU(b)``) and a share of the softmax.  The embedding ``e_i``
    is ``v_i x_i`` for dense columns (``n_features=None``), or the looked-up
    embedding of each field's code for categorical fields.
    """
    from keras import ops

    class NaiveAFM(keras.Model):
        def __init__(self):
            super().__init__()
            init = keras.initializers
            if n_features is None:
                self.v = self.add_weight(
                    shape=(n_fields, EMBEDDING),
                    initializer=init.RandomNormal(stddev=0.1, seed=SEED),
                    name="v",
                )
                self.w = self.add_weight(shape=(n_fields, 1), initializer="zeros", name="w")
            else:
                self.embedding = keras.layers.Embedding(
                    n_features,
                    EMBEDDING,
                    embeddings_initializer=init.RandomNormal(stddev=0.1, seed=SEED),
                )
                self.linear = keras.layers.Embedding(n_features, 1, embeddings_initializer="zeros")
            self.hidden = keras.layers.Dense(
                ATTENTION, activation="relu", kernel_regularizer=keras.regularizers.L2(ALPHA)
            )
            self.score = keras.layers.Dense(1, use_bias=False)
            self.projection = keras.layers.Dense(1)
            mask = np.triu(np.ones((n_fields, n_fields), dtype=np.float32), 1)
            self.mask = mask.reshape(1, n_fields, n_fields, 1)

        def call(self, x):
            if n_features is None:
                e = ops.expand_dims(x, -1) * self.v  # (b, m, d)
                linear = ops.matmul(x, self.w)
            else:
                e = self.embedding(x)
                linear = ops.sum(self.linear(x), axis=1)
            pairs = ops.expand_dims(e, 2) * ops.expand_dims(e, 1) * self.mask  # (b, m, m, d)
            pairs = ops.reshape(pairs, (-1, n_fields * n_fields, EMBEDDING))
            attention = ops.softmax(self.score(self.hidden(pairs)), axis=1)  # (b, m^2, 1)
            pooled = ops.sum(attention * pairs, axis=1)
            return self.projection(pooled) + linear

    return NaiveAFM()


def worker_naive(args):
    """Time the naive m^2 AFM (Keras 3) on ``args.shape``."""
    os.environ.pop("TF_USE_LEGACY_KERAS", None)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(SEED)
    X_raw, y = load_shape(args.shape, args.quick)
    if args.shape == "telco":
        X, model = X_raw, build_naive(keras, X_raw.shape[1])
    else:
        # One embedding table for all fields: shift each field's codes past the previous ones.
        X = X_raw + frappe_offsets()
        model = build_naive(keras, X.shape[1], FRAPPE_FEATURES)
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
    )
    timings = keras_timings(keras, model, X, y, args)
    emit(
        {
            "impl": "naive",
            "shape": args.shape,
            "batch_size": args.batch_size,
            "rows": X_raw.shape[0],
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            **timings,
        }
    )
