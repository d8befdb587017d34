"""What a model file's record must be: its outline before its arrays are read, then its values.

A model file can come from anyone, so :func:`sklearn_afm.load` accepts only a
record that a fitted estimator of this package holds:

* :func:`check_outline` runs on the record's *outline* (each array replaced by
  the header of its ``.npy`` member, see :mod:`sklearn_afm._archive`), before
  any array data is read: the attribute names of :mod:`sklearn_afm._state`'s
  schema, the network configuration (types and bounds), the exact shape and
  dtype of every network weight and optimizer variable that the
  configuration implies, the shapes of the other arrays, and a bound on what
  all the arrays claim;
* :func:`check_values` runs on the decoded record: finite weights and
  optimizer state, distinct classes, finite target statistics.

The expected shapes are derived here from the configuration, without
TensorFlow: :func:`weight_shapes` is ``AFMNetwork(**config).get_weights()``
and :func:`optimizer_shapes` the variables of its Keras optimizer
(tests/test_persistence.py compares them on fitted networks).
"""

import math
from numbers import Integral, Real

import numpy as np

from ._archive import ArrayHeader, ObjectOutline
from ._container import shown
from ._encoding import FeatureEncoder
from ._inspection import MAX_COLUMNS_FOR_ATTENTION_SUMMARY
from ._state import complete, names_problem

# The largest count a configuration may give: feature ids are int32 in the
# network's batches, and the other sizes share the bound.
MAX_SIZE = 2**31 - 1
_CONFIG_KEYS = (
    "n_features", "n_outputs", "embedding_size", "attention_size", "attention_l2",
    "attention_dropout", "dropout", "use_attention", "seed",
)
# Optimizer variables per trainable weight, after the step count and the learning rate.
_SLOTS = {"adam": 2, "adagrad": 1, "sgd": 0}
# What the arrays besides the network's and the attention summary may claim:
# the encoder's per-column and per-feature arrays and numeric categories (a
# few int64 each, per column and per feature id), and a fixed allowance for
# class labels, array parameters and the random generator's state.
_BYTES_PER_FEATURE = 64
_OTHER_BYTES = 16 * 2**20
_ARRAYS = (ArrayHeader, np.ndarray, np.generic)
_FLOAT32, _FLOAT64 = np.dtype(np.float32), np.dtype(np.float64)


def weight_shapes(config):
    """Return the shapes of a network's weights, and of its trainable ones.

    In the order of ``AFMNetwork(**config).get_weights()``: the fixed feature
    scales, then the trainable weights: embeddings, linear weights, the
    attention network's kernel, bias and score (with attention only), the
    projection's kernel and bias.
    """
    n, outputs, d, t = (config[key] for key in _CONFIG_KEYS[:4])
    attention = [(d, t), (t,), (t, 1)] if config["use_attention"] else []
    trainable = [(n, d), (n, outputs), *attention, (d, outputs), (outputs,)]
    return [(n,), *trainable], trainable


def optimizer_shapes(solver, trainable):
    """Return the shapes of a Keras ``solver`` optimizer's variables for weights ``trainable``.

    Its step count and learning rate, then its slots for each weight in turn.
    """
    return [(), (), *(shape for shape in trainable for _ in range(_SLOTS[solver]))]


def check_outline(estimator_name, params, fitted, n_bytes):
    """Check the outline of a file's record, before its arrays are read.

    Parameters
    ----------
    estimator_name : str
        One of :data:`~sklearn_afm._state.ESTIMATORS`.
    params, fitted : dict
        The record's parameters and fitted state, each array an
        :class:`~sklearn_afm._archive.ArrayHeader`.
    n_bytes : int
        What all the record's arrays claim.

    Raises
    ------
    ValueError
        Naming the first thing that a fitted ``estimator_name`` would not hold.
    """
    try:
        record = complete({**params, **fitted})
    except (KeyError, TypeError, ValueError):
        raise ValueError("it lacks _optimizer_config, and its parameters do not give the "
                         "optimizer's settings.") from None
    names = [name for name in record if name not in params]
    problem = names_problem(estimator_name, names, fitted_only=True)
    if problem:
        raise ValueError(f"it holds {problem}.")
    if not fitted:
        _check_bytes(n_bytes, 0, 0)
        return
    config = check_config(record["_network_config"])
    n_columns = _integer(record["n_features_in_"], "n_features_in_", 1, config["n_features"])
    exact = _check_network(record, config) + _check_attention(record, n_columns)
    _check_outputs(estimator_name, record, config["n_outputs"])
    _check_encoder(record["_encoder"], config["n_features"], n_columns)
    _check_history(record, n_columns)
    _check_bytes(n_bytes, exact, config["n_features"] + n_columns)


def check_config(config):
    """Check a network configuration (``_network_config``): its keys, types and bounds."""
    if not isinstance(config, dict) or set(config) != set(_CONFIG_KEYS):
        raise ValueError(f"_network_config must map {', '.join(_CONFIG_KEYS)}; it is "
                         f"{_kind(config)}.")
    for key in _CONFIG_KEYS[:4]:
        _integer(config[key], f"_network_config's {key}", 1, MAX_SIZE)
    _real(config["attention_l2"], "_network_config's attention_l2", lambda v: v >= 0, ">= 0")
    for key in ("attention_dropout", "dropout"):
        _real(config[key], f"_network_config's {key}", lambda v: 0 <= v < 1, "in [0, 1)")
    if not isinstance(config["use_attention"], bool):
        raise ValueError(f"_network_config's use_attention must be a bool, not "
                         f"{shown(config['use_attention'])}.")
    _integer(config["seed"], "_network_config's seed", 0, 2**32 - 1)
    return config


def _check_network(record, config):
    """Check the weights and optimizer state against ``config``; return what they claim."""
    weights, trainable = weight_shapes(config)
    optimizer = record["_optimizer_config"]
    if not (isinstance(optimizer, dict) and set(optimizer) == {"learning_rate", "solver"}
            and isinstance(optimizer["solver"], str) and optimizer["solver"] in _SLOTS):
        raise ValueError(f"_optimizer_config must give a solver among {', '.join(_SLOTS)} and "
                         f"a learning_rate; it is {shown(optimizer)}.")
    _real(optimizer["learning_rate"], "_optimizer_config's learning_rate", lambda v: v > 0,
          "positive")
    state = optimizer_shapes(optimizer["solver"], trainable)
    dtypes = [np.dtype(np.int64), *[_FLOAT32] * (len(state) - 1)]
    _check_device(record["device_"])
    return (_check_arrays("_weights", record["_weights"], weights, [_FLOAT32] * len(weights))
            + _check_arrays("_optimizer_state", record["_optimizer_state"], state, dtypes))


def _check_arrays(name, values, shapes, dtypes):
    """Check that ``values`` are arrays of ``shapes`` and ``dtypes``; return what they claim."""
    if not isinstance(values, list) or len(values) != len(shapes):
        raise ValueError(f"{name} must be a list of {len(shapes)} arrays for the network of "
                         f"its _network_config, not {_kind(values)}.")
    for i, (value, shape, dtype) in enumerate(zip(values, shapes, dtypes)):
        _check_array(f"{name}[{i}]", value, shape, dtype)
    return sum(value.nbytes for value in values)


def _check_array(name, value, shape, dtype=None):
    """Check that ``value`` is an array (or header) of ``shape`` and, if given, ``dtype``."""
    if not (
        isinstance(value, _ARRAYS) and value.shape == shape
        and (dtype is None or (value.dtype.kind, value.dtype.itemsize) == (dtype.kind,
                                                                           dtype.itemsize))
    ):
        expected = "an array" if dtype is None else f"a {dtype} array"
        raise ValueError(f"{name} must be {expected} of shape {shape}, not {_kind(value)}.")


def _check_attention(record, n_columns):
    """Check the attention summary (None beyond its column limit); return what it claims."""
    weights, totals = record["attention_weights_"], record["_attention_totals"]
    if weights is None and totals is None:
        return 0
    if n_columns > MAX_COLUMNS_FOR_ATTENTION_SUMMARY:
        raise ValueError(f"attention_weights_ must be None for {n_columns} columns, more "
                         f"than {MAX_COLUMNS_FOR_ATTENTION_SUMMARY}.")
    if not (isinstance(totals, tuple) and len(totals) == 2):
        raise ValueError(f"_attention_totals must be a pair of arrays, not {_kind(totals)}.")
    arrays = {"attention_weights_": weights, "_attention_totals[0]": totals[0],
              "_attention_totals[1]": totals[1]}
    for name, value in arrays.items():
        _check_array(name, value, (n_columns, n_columns), _FLOAT64)
    return sum(value.nbytes for value in arrays.values())


def _check_outputs(estimator_name, record, n_outputs):
    """Check the target encoding against the network's number of outputs."""
    if estimator_name == "AFMClassifier":
        classes = record["classes_"]
        if not (isinstance(classes, _ARRAYS) and len(classes.shape) == 1):
            raise ValueError(f"classes_ must be a 1-d array, not {_kind(classes)}.")
        if classes.shape[0] != (2 if n_outputs == 1 else n_outputs) or n_outputs == 2:
            raise ValueError(
                f"classes_ holds {classes.shape[0]} classes, but the network has {n_outputs} "
                "outputs (one for two classes, one per class for more)."
            )
        return
    if _integer(record["_y_ndim"], "_y_ndim", 1, 2) == 1 and n_outputs != 1:
        raise ValueError(f"_y_ndim is 1, but the network has {n_outputs} outputs.")
    for name in ("_y_mean", "_y_scale"):
        _check_array(name, record[name], (n_outputs,), _FLOAT64)


def _check_encoder(encoder, n_features, n_columns):
    """Check that the encoder maps the columns to the network's features."""
    if encoder is None:
        if n_features != n_columns:
            raise ValueError(
                f"_network_config has {n_features} features, but without categorical "
                f"columns the network has one per column ({n_columns})."
            )
        return
    if not (isinstance(encoder, ObjectOutline) and encoder.cls is FeatureEncoder):
        raise ValueError(f"_encoder must be None or a FeatureEncoder, not {_kind(encoder)}.")
    mapped = encoder.state.get("n_features_")
    if mapped != n_features:
        raise ValueError(f"_encoder maps the columns to {shown(mapped)} features, but the "
                         f"network has {n_features}.")
    _check_array("_encoder.is_categorical", encoder.state.get("is_categorical"), (n_columns,),
                 np.dtype(bool))


def _check_history(record, n_columns):
    """Check the training history, the column names, the device and the random generator."""
    _integer(record["n_iter_"], "n_iter_", 0, math.inf)
    _numbers(record["loss_curve_"], "loss_curve_")
    if record.get("validation_scores_") is not None:
        _numbers(record["validation_scores_"], "validation_scores_")
    for name in ("best_loss_", "best_validation_score_"):
        value = record.get(name)
        if value is not None and not _is_number(value):
            raise ValueError(f"{name} must be None or a number, not {_kind(value)}.")
    names = record.get("feature_names_in_")
    if names is not None:
        _check_array("feature_names_in_", names, (n_columns,))
        if names.dtype.kind != "O" or not all(isinstance(name, str) for name in names):
            raise ValueError("feature_names_in_ must hold strings.")
    generator = record["_random_state"]
    if not (isinstance(generator, ObjectOutline) and generator.cls is np.random.RandomState):
        raise ValueError(f"_random_state must be a RandomState, not {_kind(generator)}.")


def _check_device(device):
    devices = [device] if isinstance(device, str) else device
    if not (
        isinstance(devices, (list, tuple)) and 0 < len(devices) <= 1024
        and all(isinstance(d, str) and len(d) <= 200 for d in devices)
    ):
        raise ValueError(f"device_ must be a TensorFlow device name or a tuple of them, not "
                         f"{shown(device)}.")


def _check_bytes(n_bytes, exact, n_items):
    """Refuse arrays claiming more than the network, the attention summary and the rest hold."""
    limit = exact + _BYTES_PER_FEATURE * n_items + _OTHER_BYTES
    if n_bytes > limit:
        raise ValueError(f"its arrays claim {n_bytes} bytes, more than the {limit} that an "
                         "estimator of its recorded configuration holds.")


def check_values(estimator_name, fitted):
    """Check what only the values of a decoded record tell.

    Finite network weights and optimizer state (a step count >= 0, a positive
    learning rate), distinct classes, finite target statistics.

    Raises
    ------
    ValueError
        Naming the attribute at fault.
    """
    if not fitted:
        return
    for name in ("_weights", "_optimizer_state"):
        for i, value in enumerate(fitted[name]):
            if not np.isfinite(value).all():
                raise ValueError(f"{name}[{i}] holds NaN or infinite values.")
    steps, learning_rate = fitted["_optimizer_state"][:2]
    if steps < 0 or learning_rate <= 0:
        raise ValueError("_optimizer_state must start with a step count >= 0 and a positive "
                         f"learning rate, not {shown(steps)} and {shown(learning_rate)}.")
    if estimator_name == "AFMClassifier":
        classes = fitted["classes_"].tolist()
        if len(set(classes)) < len(classes):
            raise ValueError(f"classes_ repeats labels: {shown(classes)}.")
    elif not (np.isfinite(fitted["_y_mean"]).all() and np.isfinite(fitted["_y_scale"]).all()):
        raise ValueError("_y_mean and _y_scale hold NaN or infinite values.")


def _integer(value, name, low, high):
    if isinstance(value, Integral) and _is_number(value) and low <= value <= high:
        return int(value)
    raise ValueError(f"{name} must be an integer in [{low}, {high}], not {shown(value)}.")


def _real(value, name, valid, expected):
    """Check a finite number for which ``valid`` holds (``expected`` says which)."""
    if _is_number(value) and math.isfinite(value) and valid(value):
        return float(value)
    raise ValueError(f"{name} must be a number {expected}, not {shown(value)}.")


def _is_number(value):
    return isinstance(value, Real) and not isinstance(value, bool)


def _numbers(value, name):
    if not (isinstance(value, list) and all(_is_number(v) for v in value)):
        raise ValueError(f"{name} must be a list of numbers, not {_kind(value)}.")


def _kind(value):
    """Describe ``value`` for a message: an array's dtype and shape, a list's length, a type."""
    if isinstance(value, _ARRAYS):
        return f"a {value.dtype} array of shape {shown(value.shape)}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} values"
    return f"a {type(value).__name__}"
