"""ONNX export of fitted estimators: skl2onnx converters built from the network's arrays.

:func:`register` tells skl2onnx how to convert :class:`AFMClassifier` and
:class:`AFMRegressor`, alone or as the last step of a
:class:`~sklearn.pipeline.Pipeline`.  The graph computes what
:class:`~sklearn_afm._model.AFMNetwork` computes, from the weights of the
estimator's :class:`~sklearn_afm._network.TrainedNetwork` (no TensorFlow
involved): each row's present (non-zero) entries are moved to the front, as
:mod:`sklearn_afm._batching` pads a batch, their embeddings are gathered and
scaled, the slot pairs ``s < t`` are formed, and the attention is a softmax
over the pairs of present entries only.  Categorical columns given to the
estimator itself become feature ids through ONNX's ``LabelEncoder``.

This module imports skl2onnx; ``import sklearn_afm`` never imports it.
"""

import numbers

import numpy as np

try:
    from skl2onnx import update_registered_converter
    from skl2onnx.common.data_types import (
        BooleanTensorType,
        DoubleTensorType,
        FloatTensorType,
        Int32TensorType,
        Int64TensorType,
        StringTensorType,
    )
    from skl2onnx.common.utils_classifier import get_label_classes
    from skl2onnx.proto import onnx_proto
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "ONNX export needs skl2onnx, onnx and onnxruntime: "
        'pip install "sklearn-afm[onnx]".'
    ) from error

from ._estimators import AFMClassifier, AFMRegressor

# The ONNX operators used (TopK's attributes and K input, GatherElements,
# Range) exist from this opset on.
MIN_OPSET = 11

# Subtracted from the score of pairs with an absent entry before the softmax:
# their exponential is exactly 0 in float32, so they take no probability
# mass, as the network's masked softmax gives them none.
_ABSENT_PENALTY = np.float32(1e30)

_NUMERIC_INPUTS = (FloatTensorType, DoubleTensorType, Int64TensorType, Int32TensorType,
                   BooleanTensorType)

_FLOAT, _DOUBLE, _INT64 = (onnx_proto.TensorProto.FLOAT, onnx_proto.TensorProto.DOUBLE,
                           onnx_proto.TensorProto.INT64)
_PROTO_TYPES = {np.dtype(np.float32): _FLOAT, np.dtype(np.float64): _DOUBLE,
                np.dtype(np.int64): _INT64}


class _Graph:
    """Add nodes and constants to skl2onnx's container under unique names."""

    def __init__(self, scope, container):
        self.scope = scope
        self.container = container

    def const(self, array, hint="c"):
        """Add ``array`` (float32, int64 or str) as an initializer; return its name."""
        array = np.asarray(array)
        name = self.scope.get_unique_variable_name(hint)
        if array.dtype.kind in "US":
            content = [str(s).encode("utf-8") for s in array.ravel()]
            self.container.add_initializer(name, onnx_proto.TensorProto.STRING, array.shape,
                                           content)
        else:
            self.container.add_initializer(name, _PROTO_TYPES[array.dtype], array.shape,
                                           array.ravel().tolist())
        return name

    def op(self, op_type, *inputs, out=None, n_out=1, domain="", version=None, **attrs):
        """Add one ``op_type`` node; return its output name (a list for ``n_out`` > 1)."""
        if out is None:
            outs = [self.scope.get_unique_variable_name(op_type.lower()) for _ in range(n_out)]
        else:
            outs = [out]
        kwargs = {"op_domain": domain} if domain else {}
        if version is not None:
            kwargs["op_version"] = version
        self.container.add_node(op_type, list(inputs), outs,
                                name=self.scope.get_unique_operator_name(op_type),
                                **kwargs, **attrs)
        return outs[0] if n_out == 1 else outs

    def present(self, values):
        """1 where a value is present (not 0), else 0, as the network's mask.

        A NaN counts as present: it makes its own row's outputs NaN.  With the
        network's ``sign(abs(x))`` the number of entries would be NaN too, and
        the whole batch would fail.
        """
        return self.op("Cast", self.op("Not", self.op("Equal", values, self.const(
            np.float32(0)))), to=_FLOAT)

    def unsqueezed(self, x):
        """``x`` of shape (n, k) as (n, k, 1); Reshape, whose signature no opset changed."""
        return self.op("Reshape", x, self.const(np.array([0, -1, 1], dtype=np.int64)))

    def transposed(self, x):
        return self.op("Transpose", x, perm=[0, 2, 1])


def _network_logits(g, estimator, values, ids):
    """Add the network to the graph; return the name of its logits, (n, n_outputs) float32.

    Parameters
    ----------
    g : _Graph
    estimator : AFMClassifier or AFMRegressor
    values : str
        (n, n_columns) float32 entries, 0 for absent ones.
    ids : str or None
        (n, n_columns) int64 feature ids of the entries; None when feature
        ``j`` is column ``j``.
    """
    scale, embeddings, linear, *attention, kernel, bias = estimator._network.weights
    n_columns = estimator.n_features_in_
    n_outputs = bias.shape[0]
    present = g.present(values)
    # Present entries first, in increasing column order (as the batches the
    # network was trained on); the key is unique per column, so no tie.
    order_key = g.op(
        "Sub",
        g.op("Mul", present, g.const(np.float32(n_columns))),
        g.const(np.arange(n_columns, dtype=np.float32)),
    )
    counts = g.op("MatMul", present, g.const(np.ones((n_columns, 1), dtype=np.float32)))
    # Rows without any entry still get one (absent) slot, as a padded batch.
    width = g.op("Cast", g.op("Max", g.op("ReduceMax", counts, keepdims=0),
                              g.const(np.float32(1))), to=_INT64)
    _, slots = g.op(
        "TopK", order_key, g.op("Reshape", width, g.const(np.array([1], dtype=np.int64))),
        n_out=2, axis=-1, largest=1, sorted=1,
    )
    slot_values = g.op("GatherElements", values, slots, axis=1)
    slot_ids = slots if ids is None else g.op("GatherElements", ids, slots, axis=1)
    scaled = g.unsqueezed(g.op("Mul", slot_values, g.op("Gather", g.const(scale), slot_ids)))
    vectors = g.op("Mul", g.op("Gather", g.const(embeddings), slot_ids), scaled)
    linear_term = g.op(
        "MatMul", g.transposed(scaled), g.op("Gather", g.const(linear), slot_ids)
    )

    # The slot pairs s < t, in the order of numpy.triu_indices(width, 1).
    slot_range = g.op("Range", g.const(np.int64(0)), width, g.const(np.int64(1)))
    pairs = g.op("NonZero", g.op(
        "Less",
        g.op("Reshape", slot_range, g.const(np.array([-1, 1], dtype=np.int64))),
        g.op("Reshape", slot_range, g.const(np.array([1, -1], dtype=np.int64))),
    ))
    first, second = (g.op("Gather", pairs, g.const(np.int64(i)), axis=0) for i in (0, 1))

    def pair_product(x):
        return g.op("Mul", g.op("Gather", x, first, axis=1), g.op("Gather", x, second, axis=1))

    products = pair_product(vectors)
    pair_mask = pair_product(g.unsqueezed(g.present(slot_values)))
    if attention:
        hidden_kernel, hidden_bias, score_kernel = attention
        hidden = g.op("Relu", g.op("Add", g.op("MatMul", products, g.const(hidden_kernel)),
                                   g.const(hidden_bias)))
        scores = g.op("MatMul", hidden, g.const(score_kernel))
        masked = g.op("Add", g.op("Mul", scores, pair_mask), g.op(
            "Mul", g.op("Sub", pair_mask, g.const(np.float32(1))), g.const(_ABSENT_PENALTY)
        ))
        # Softmax over the pairs axis: the last but one axis is followed by
        # a single one, so this is the same in the opsets before 13, which
        # flatten the axes from `axis` on.
        weights = g.op("Mul", g.op("Softmax", masked, axis=1), pair_mask)
    else:
        weights = pair_mask
    pooled = g.op("MatMul", g.transposed(weights), products)
    logits = g.op("Add", g.op("Add", g.op("MatMul", pooled, g.const(kernel)), g.const(bias)),
                  linear_term)
    return g.op("Reshape", logits, g.const(np.array([-1, n_outputs], dtype=np.int64)))


def _input_columns(operator, estimator):
    """Return ``(input name, its type, column within it)`` for each column the estimator reads."""
    columns = []
    for variable in operator.inputs:
        shape = variable.type.shape
        width = shape[1] if len(shape) == 2 else None
        if not isinstance(width, numbers.Integral):
            raise ValueError(
                f"ONNX input {variable.onnx_name!r} has shape {shape}; the "
                f"{type(estimator).__name__} converter needs 2-D inputs with a known number "
                "of columns."
            )
        columns.extend((variable.full_name, variable.type, j) for j in range(width))
    if len(columns) != estimator.n_features_in_:
        raise ValueError(
            f"The ONNX inputs have {len(columns)} columns in all, but the "
            f"{type(estimator).__name__} was fitted on {estimator.n_features_in_}."
        )
    return columns


def _column(g, name, position, width):
    """Return column ``position`` of input ``name`` as an (n, 1) tensor."""
    if width == 1:
        return name
    return g.op("Gather", name, g.const(np.array([position], dtype=np.int64)), axis=1)


def _numeric_entries(g, estimator, columns):
    """Return the float32 (n, n_columns) entries of purely numeric input."""
    names = list(dict.fromkeys(name for name, _, _ in columns))
    for name, kind, _ in columns:
        if not isinstance(kind, _NUMERIC_INPUTS):
            raise TypeError(
                f"ONNX input {name!r} is a {type(kind).__name__}, but the "
                f"{type(estimator).__name__} was fitted without categorical columns: it reads "
                "numbers only. Encode strings first (for example with OneHotEncoder in a "
                "ColumnTransformer), or fit with categorical_features."
            )
    floats = [g.op("Cast", name, to=_FLOAT) for name in names]
    return floats[0] if len(floats) == 1 else g.op("Concat", *floats, axis=1)


def _category_ids(g, column, kind, categories, first_id, unknown_id, name):
    """Return the (n, 1) int64 feature ids of a categorical column: LabelEncoder."""
    ids = np.arange(first_id, first_id + len(categories), dtype=np.int64).tolist()
    encoder = {"values_int64s": ids, "default_int64": int(unknown_id)}
    if isinstance(kind, StringTensorType):
        if not all(isinstance(c, str) for c in categories):
            raise TypeError(
                f"Categorical column {name!r} is a string input, but its categories are not "
                "all strings: give the column to the ONNX model as the type it was fitted on."
            )
        return g.op("LabelEncoder", column, domain="ai.onnx.ml", version=2,
                    keys_strings=list(categories), **encoder)
    if not isinstance(kind, _NUMERIC_INPUTS) or not all(
        isinstance(c, numbers.Real) for c in categories
    ):
        raise TypeError(
            f"Categorical column {name!r} is a {type(kind).__name__} input, but its "
            f"categories are {np.asarray(categories).dtype}: give strings for string "
            "categories, numbers for numeric ones."
        )
    keys = np.asarray(categories, dtype=np.float32)
    if np.unique(keys).shape[0] < keys.shape[0]:
        raise ValueError(
            f"The categories of column {name!r} are not distinct in float32, in which the "
            "ONNX graph looks them up."
        )
    column = g.op("Cast", column, to=_FLOAT)
    encoded = g.op("LabelEncoder", column, domain="ai.onnx.ml", version=2,
                   keys_floats=keys.tolist(), **encoder)
    # NaN is the one missing value a numeric tensor can hold.
    return g.op("Where", g.op("IsNaN", column), g.const(np.int64(unknown_id + 1)), encoded)


def _field_entries(g, estimator, columns):
    """Return the (n, n_columns) float32 entries and int64 feature ids of categorical input."""
    encoder = estimator._encoder
    names = estimator._column_names()
    widths = {}
    for input_name, _, _ in columns:
        widths[input_name] = widths.get(input_name, 0) + 1
    categories = iter(encoder.categories_)
    values, ids = [], []
    for j, (input_name, kind, position) in enumerate(columns):
        column = _column(g, input_name, position, widths[input_name])
        shape = g.op("Shape", column)
        if encoder.is_categorical[j]:
            ids.append(_category_ids(g, column, kind, list(next(categories)),
                                     encoder.offsets_[j], encoder.unknown_ids_[j], names[j]))
            values.append(g.op("Expand", g.const(np.ones((1, 1), dtype=np.float32)), shape))
        else:
            if isinstance(kind, StringTensorType):
                raise TypeError(
                    f"Column {names[j]!r} is numeric in the fitted {type(estimator).__name__}, "
                    "but its ONNX input holds strings."
                )
            values.append(g.op("Cast", column, to=_FLOAT))
            ids.append(g.op("Expand", g.const(np.full((1, 1), encoder.offsets_[j])), shape))
    return g.op("Concat", *values, axis=1), g.op("Concat", *ids, axis=1)


def _add_network(scope, operator, container):
    """Add the estimator's network to the graph; return the graph, the estimator, the logits."""
    if container.target_opset < MIN_OPSET:
        raise ValueError(
            f"The sklearn_afm converters need target_opset >= {MIN_OPSET}, got "
            f"{container.target_opset}."
        )
    estimator = operator.raw_operator
    g = _Graph(scope, container)
    columns = _input_columns(operator, estimator)
    if estimator._encoder is None:
        return g, estimator, _network_logits(
            g, estimator, _numeric_entries(g, estimator, columns), None
        )
    return g, estimator, _network_logits(g, estimator, *_field_entries(g, estimator, columns))


def _output_type(operator):
    """Double outputs for double input, else float, as skl2onnx's own converters."""
    return DoubleTensorType if isinstance(operator.inputs[0].type, DoubleTensorType) else (
        FloatTensorType
    )


def _cast_out(g, operator, x, out):
    to = _DOUBLE if _output_type(operator) is DoubleTensorType else _FLOAT
    return g.op("Cast", x, out=out, to=to)


def _classes(scope, estimator):
    """Return the class labels as an int64 or str array for the graph, refusing others.

    With skl2onnx's option ``nocl`` the labels are the class codes 0, 1, ...
    """
    classes = get_label_classes(scope, estimator)
    if all(isinstance(c, str) for c in classes):
        return np.asarray(classes, dtype=str)
    if all(isinstance(c, (numbers.Integral, np.bool_)) or (
        isinstance(c, numbers.Real) and float(c).is_integer()
    ) for c in classes):
        return np.asarray(classes).astype(np.int64)
    raise TypeError(
        f"ONNX labels must be integers or strings; the classes of this AFMClassifier are "
        f"{classes.tolist()}. Fit it on integer or string labels."
    )


def _classifier_shape(operator):
    n = operator.inputs[0].get_first_dimension()
    classes = _classes(operator.scope_inst, operator.raw_operator)
    label = StringTensorType if classes.dtype.kind == "U" else Int64TensorType
    operator.outputs[0].type = label([n])
    operator.outputs[1].type = _output_type(operator)([n, len(classes)])


def _regressor_shape(operator):
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = _output_type(operator)([n, operator.raw_operator._n_outputs])


def _convert_classifier(scope, operator, container):
    g, estimator, logits = _add_network(scope, operator, container)
    label, probabilities = (variable.full_name for variable in operator.outputs)
    if len(estimator.classes_) == 2:
        positive = g.op("Sigmoid", logits)
        proba = g.op("Concat", g.op("Sub", g.const(np.float32(1)), positive), positive, axis=1)
        # The sign of the logit, as predict: the argmax of probabilities
        # rounded to 0.5 could pick the other class.
        codes = g.op("Cast", g.op("Greater", logits, g.const(np.float32(0))), to=_INT64)
        codes = g.op("Reshape", codes, g.const(np.array([-1], dtype=np.int64)))
    else:
        proba = g.op("Softmax", logits, axis=1)
        codes = g.op("ArgMax", logits, axis=1, keepdims=0)
    _cast_out(g, operator, proba, probabilities)
    g.op("Gather", g.const(_classes(scope, estimator)), codes, out=label, axis=0)


def _convert_regressor(scope, operator, container):
    g, estimator, logits = _add_network(scope, operator, container)
    # Back to the targets' units in float64 when the input is, as predict does.
    dtype = np.float64 if _output_type(operator) is DoubleTensorType else np.float32
    if dtype is np.float64:
        logits = g.op("Cast", logits, to=_DOUBLE)
    mean, scale = (g.const(a.astype(dtype)) for a in (estimator._y_mean, estimator._y_scale))
    g.op("Add", g.op("Mul", logits, scale), mean, out=operator.outputs[0].full_name)


def register():
    """Register the converters of the AFM estimators with skl2onnx.

    After this call, :func:`skl2onnx.to_onnx` converts a fitted
    :class:`~sklearn_afm.AFMClassifier` or :class:`~sklearn_afm.AFMRegressor`,
    alone or as the last step of a :class:`~sklearn.pipeline.Pipeline` (for
    example after a :class:`~sklearn.compose.ColumnTransformer` of
    :class:`~sklearn.preprocessing.OneHotEncoder` and
    :class:`~sklearn.preprocessing.StandardScaler`).  Calling it again
    changes nothing.

    The classifier has skl2onnx's usual outputs: ``output_label`` and
    ``output_probability`` (a list of dictionaries, or with
    ``options={"zipmap": False}`` an array as ``predict_proba``'s); the
    regressor has ``variable``, of shape (n_samples, n_targets).  See
    :ref:`deployment` for what is supported.

    Examples
    --------
    >>> import numpy as np
    >>> import skl2onnx
    >>> import sklearn_afm.onnx
    >>> from sklearn_afm import AFMRegressor
    >>> X = np.random.RandomState(0).normal(size=(200, 3)).astype(np.float32)
    >>> reg = AFMRegressor(max_iter=2, random_state=0).fit(X, X[:, 0] * X[:, 1])
    >>> sklearn_afm.onnx.register()
    >>> onx = skl2onnx.to_onnx(reg, X[:1])
    >>> [output.name for output in onx.graph.output]
    ['variable']
    """
    update_registered_converter(
        AFMClassifier, "SklearnAFMClassifier", _classifier_shape, _convert_classifier,
        options={"zipmap": [True, False, "columns"], "nocl": [True, False]},
    )
    update_registered_converter(
        AFMRegressor, "SklearnAFMRegressor", _regressor_shape, _convert_regressor
    )
