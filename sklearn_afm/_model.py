"""The Attentional Factorization Machine network, in Keras layers and ``keras.ops``.

This module knows nothing of scikit-learn.  The network reads the padded
``(indices, values)`` batches built by :mod:`sklearn_afm._batching`: entry ``s`` of
row ``r`` is feature ``indices[r, s]`` with value ``values[r, s]``, and value 0
means "absent" (padding).  For the present features X of a row it computes::

    out = w0 + sum_{i in X} w_i x_i + P^T sum_{i<j in X} a_ij (v_i * v_j) x_i x_j
    a'_ij = h^T ReLU(W (v_i * v_j) x_i x_j + b),  a = softmax of a' over the pairs of X

Each value ``x_i`` enters multiplied by a fixed per-feature ``feature_scale``
(set from the training data, see :func:`sklearn_afm._batching.feature_scale`).
Only the ``k (k - 1) / 2`` slot pairs ``s < t`` of the padded width ``k`` are
formed, and pairs touching padding are removed from the softmax, so the cost of
a row grows with its number of non-zeros, not with the number of columns.
"""

import keras
import numpy as np
from keras import ops


def seeds(seed, n):
    """Draw ``n`` independent integer seeds from ``seed`` without global state."""
    return np.random.RandomState(seed).randint(0, 2**31 - 1, size=n).tolist()


@keras.saving.register_keras_serializable(package="sklearn_afm")
class AFMNetwork(keras.Model):
    """Attentional Factorization Machine (Xiao et al., IJCAI 2017).

    Parameters
    ----------
    n_features : int
        Number of distinct features (rows of the embedding tables).
    n_outputs : int, default=1
        Number of output logits; each output has its own projection ``P``,
        linear weights and bias, while embeddings and attention are shared.
    embedding_size : int, default=16
        Size of the feature embeddings ``v_i``.
    attention_size : int, default=16
        Hidden size ``t`` of the attention network.
    attention_l2 : float, default=0.0
        L2 penalty on the attention weights ``W`` (the paper's lambda).
    attention_dropout : float, default=0.0
        Dropout rate on the normalised attention weights, during training.
    dropout : float, default=0.0
        Dropout rate on the attention-pooled interaction vector, during training.
    use_attention : bool, default=True
        When False, every present pair has weight ``a_ij = 1`` (no attention
        network, no softmax): the network is a plain factorization machine.
    seed : int, default=None
        Seed of the initialisers and dropout masks.
    """

    # The weights an AFM starts from when it is pre-trained as the FM of the
    # same configuration (the estimators' init="fm"): the features'
    # embeddings and linear weights, and the bias.  The attention network and
    # the projection P start afresh: the FM's P weighs the plain sum of every
    # pair, the AFM's an attention-weighted mean.
    FM_START_WEIGHTS = (
        "afm_network/embeddings/embeddings",
        "afm_network/linear/embeddings",
        "afm_network/projection/bias",
    )

    def __init__(
        self,
        n_features,
        n_outputs=1,
        embedding_size=16,
        attention_size=16,
        attention_l2=0.0,
        attention_dropout=0.0,
        dropout=0.0,
        use_attention=True,
        seed=None,
        **kwargs,
    ):
        # The network computes in float32 whatever Keras' global dtype policy
        # (a user's mixed_bfloat16 or float64 would change a trained model's
        # predictions, and the engine's float32 inputs would not fit).
        kwargs.setdefault("dtype", "float32")
        # Fixed names: Keras would number each new network and layer, and each
        # new name makes TensorFlow cache its variables' kernels anew (about
        # 0.9 MB a fit, never freed, over a long search).
        kwargs.setdefault("name", "afm_network")
        super().__init__(**kwargs)
        self.n_features = n_features
        self.n_outputs = n_outputs
        self.embedding_size = embedding_size
        self.attention_size = attention_size
        self.attention_l2 = attention_l2
        self.attention_dropout = attention_dropout
        self.dropout = dropout
        self.use_attention = use_attention
        self.seed = seed
        s = seeds(seed, 6)
        init = keras.initializers
        self.embeddings = keras.layers.Embedding(
            n_features,
            embedding_size,
            embeddings_initializer=init.RandomNormal(stddev=0.1, seed=s[0]),
            name="embeddings",
            dtype=self.dtype_policy,
        )
        self.linear = keras.layers.Embedding(
            n_features, n_outputs, embeddings_initializer="zeros", name="linear",
            dtype=self.dtype_policy,
        )
        if use_attention:
            self.attention_hidden = keras.layers.Dense(
                attention_size,
                activation="relu",
                kernel_initializer=init.GlorotUniform(seed=s[1]),
                kernel_regularizer=keras.regularizers.L2(attention_l2) if attention_l2 else None,
                name="attention_hidden",
                dtype=self.dtype_policy,
            )
            self.attention_score = keras.layers.Dense(
                1,
                use_bias=False,
                kernel_initializer=init.GlorotUniform(seed=s[2]),
                name="attention_score",
                dtype=self.dtype_policy,
            )
        self.attention_dropout_layer = keras.layers.Dropout(
            attention_dropout, seed=s[3], name="attention_dropout", dtype=self.dtype_policy
        )
        self.pooled_dropout_layer = keras.layers.Dropout(
            dropout, seed=s[4], name="pooled_dropout", dtype=self.dtype_policy
        )
        self.projection = keras.layers.Dense(
            n_outputs,
            kernel_initializer=init.GlorotUniform(seed=s[5]),
            name="projection",
            dtype=self.dtype_policy,
        )

    @property
    def dropout_layers(self):
        """The layers that draw random masks in training."""
        return (self.attention_dropout_layer, self.pooled_dropout_layer)

    def build(self, input_shape):
        d = self.embedding_size
        self.embeddings.build((None, None))
        self.linear.build((None, None))
        if self.use_attention:
            self.attention_hidden.build((None, None, d))
            self.attention_score.build((None, None, self.attention_size))
        self.projection.build((None, d))
        # Multiplies each feature's value; set once from the training data
        # (not trained) so that numeric columns of any unit enter the model on
        # the scale of the embeddings.
        self.feature_scale = self.add_weight(
            shape=(self.n_features,), initializer="ones", trainable=False, name="feature_scale"
        )
        self.built = True

    def _scale(self, indices, values):
        return values * ops.take(self.feature_scale, indices)

    def interactions(self, inputs):
        """Return the pair interactions of a batch and their attention (before dropout).

        Parameters
        ----------
        inputs : tuple of (indices, values)
            Padded batch of shape (batch, k) each; ``k`` must be static.

        Returns
        -------
        products : tensor of shape (batch, n_pairs, embedding_size)
            ``(v_i * v_j) x_i x_j`` for the slot pairs ``s < t``.
        attention : tensor of shape (batch, n_pairs)
            Softmax over the pairs present in each row, 0 for pairs with padding.
        first, second : ndarray of int32, shape (n_pairs,)
            The slots ``s`` and ``t`` of each pair.
        """
        products, attention, first, second = self._pairs(inputs)
        return (
            ops.transpose(products, (1, 0, 2)),
            ops.transpose(attention),
            first,
            second,
        )

    def attention(self, inputs):
        """Return only the attention of :meth:`interactions`, shape (batch, n_pairs)."""
        return ops.transpose(self._pairs(inputs)[1])

    def contributions(self, inputs):
        """Split the output of a batch into additive terms (dropout off, as at inference).

        Parameters
        ----------
        inputs : tuple of (indices, values)
            Padded batch of shape (batch, k) each; ``k`` must be static.

        Returns
        -------
        bias : tensor of shape (n_outputs,)
            ``w0``.
        linear : tensor of shape (batch, k, n_outputs)
            ``w_i x_i`` of each slot (0 for padding).
        interactions : tensor of shape (batch, n_pairs, n_outputs)
            ``a_ij P^T (v_i * v_j) x_i x_j`` of each slot pair ``s < t`` of
            ``numpy.triu_indices(k, 1)`` (0 for pairs with padding).
        attention : tensor of shape (batch, n_pairs)
            ``a_ij``, as in :meth:`interactions`.

        ``bias + linear.sum(1) + interactions.sum(1)`` is the output of :meth:`call`.
        """
        indices, values = inputs
        products, attention, _, _ = self._pairs(inputs)
        projected = ops.matmul(products, self.projection.kernel) * ops.expand_dims(attention, -1)
        linear = self.linear(indices) * ops.expand_dims(self._scale(indices, values), -1)
        return (
            self.projection.bias.value,
            linear,
            ops.transpose(projected, (1, 0, 2)),
            ops.transpose(attention),
        )

    def _pairs(self, inputs):
        """:meth:`interactions` in pair-major layout: (n_pairs, batch, ...).

        Gathering pairs along the leading axis keeps the gradient of the
        gathers a plain segment sum, without the transposes TensorFlow adds
        for a gather along an inner axis (a third of the step's time).
        """
        indices, values = inputs
        k = indices.shape[1]
        first, second = (a.astype("int32") for a in np.triu_indices(k, 1))
        scaled = self.embeddings(indices) * ops.expand_dims(self._scale(indices, values), -1)
        scaled = ops.transpose(scaled, (1, 0, 2))
        products = ops.take(scaled, first, axis=0) * ops.take(scaled, second, axis=0)
        # 1 where a value is present, 0 for absent entries and padding.  Float
        # arithmetic instead of boolean masks: TensorFlow's oneDNN build logs an
        # error for boolean tensors on CPUs without AVX-512.
        present = ops.transpose(ops.sign(ops.abs(values)))
        pair_mask = ops.take(present, first, axis=0) * ops.take(present, second, axis=0)
        if not self.use_attention:
            return products, pair_mask, first, second
        scores = ops.squeeze(self.attention_score(self.attention_hidden(products)), -1)
        if first.size == 0:
            # Width 1: no row of the batch has a pair to attend to.
            return products, ops.zeros_like(scores), first, second
        # Absent pairs must not receive any probability mass: they are pushed to
        # the row minimum before the max-shift and zeroed after the exponential.
        floor = ops.min(scores, axis=0, keepdims=True)
        scores = scores * pair_mask + floor * (1 - pair_mask)
        scores = scores - ops.max(scores, axis=0, keepdims=True)
        weights = ops.exp(scores) * pair_mask
        total = ops.sum(weights, axis=0, keepdims=True)
        attention = weights / ops.maximum(total, keras.config.epsilon())
        return products, attention, first, second

    def call(self, inputs, training=False):
        indices, values = inputs
        products, attention, _, _ = self._pairs(inputs)
        attention = self.attention_dropout_layer(attention, training=training)
        pooled = ops.sum(ops.expand_dims(attention, -1) * products, axis=0)
        pooled = self.pooled_dropout_layer(pooled, training=training)
        linear = ops.sum(
            self.linear(indices) * ops.expand_dims(self._scale(indices, values), -1), axis=1
        )
        return self.projection(pooled) + linear

    def get_config(self):
        config = super().get_config()
        config.update(
            n_features=self.n_features,
            n_outputs=self.n_outputs,
            embedding_size=self.embedding_size,
            attention_size=self.attention_size,
            attention_l2=self.attention_l2,
            attention_dropout=self.attention_dropout,
            dropout=self.dropout,
            use_attention=self.use_attention,
            seed=self.seed,
        )
        return config
