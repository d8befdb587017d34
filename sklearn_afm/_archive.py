"""The model file: a zip archive of JSON and numpy arrays that loads without pickle.

Loading a pickle (or a joblib file) runs whatever code the file names, so it
is only safe for files one trusts.  :func:`write` writes instead a zip archive
that holds data only:

* ``estimator.json``: the format name and version, the versions of
  sklearn_afm and scikit-learn that wrote it, the estimator's class (one of
  :data:`~sklearn_afm._state.ESTIMATORS`), its ``get_params()`` and its fitted
  state (the record of :mod:`sklearn_afm._state`);
* ``arrays/<n>.npy``: every numeric array (network weights, optimizer state,
  attention totals, ...), in numpy's ``.npy`` format, read without pickle.

Values that JSON lacks are written as tagged objects (``{"__kind__": ...}``):
tuples, dicts with keys other than strings, numpy scalars, arrays of Python
objects (category labels, column names: their elements must be plain
scalars), numpy random generators (as ``get_state()``) and the few helper
objects of a fitted estimator named in :func:`_helpers`.  :func:`read` rebuilds
only those; anything else in a file is refused, so that a file can describe
an estimator but never make the loader run code.

Nor can a file make the loader allocate what it does not hold:
:mod:`sklearn_afm._container` checks the zip archive and ``estimator.json``
first; each array's ``.npy`` header must describe exactly the bytes its
member holds; and the record's *outline*, every array replaced by its
:class:`ArrayHeader`, goes to the caller's check before any array data is
read.  This module knows the format, not the estimators:
:func:`sklearn_afm.load` checks the record (:mod:`sklearn_afm._checks`) and
turns it into an estimator.
"""

import io
import json
import math
import os
import re
import zipfile
from typing import NamedTuple

import numpy as np

from ._atomic_write import write_atomically
from ._container import (
    ARRAY_NAME,
    CORRUPTED,
    FORMAT_NAME,
    MANIFEST,
    MAX_MANIFEST_BYTES,
    InvalidFile,
    corrupted,
    invalid_file,
    open_checked,
    shown,
)
from ._state import FORMAT_VERSION

_NPY_HEADERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}
# Scalar kinds that may appear in a file: bool, signed/unsigned int, float.
_SCALAR_KINDS = "biuf"
# What an array of Python objects (category labels, column names) may hold.
_PLAIN_SCALARS = (str, int, float, bool, np.generic, type(None))
# Attribute names a file may set: identifiers, dunder names excluded.
_ATTRIBUTE_NAME = re.compile(r"(?!__)[A-Za-z_][A-Za-z0-9_]{0,99}")
# The fields of each kind of tagged value, {"__kind__": kind, field: ...}.
_KINDS = {
    "scalar": ("dtype", "value"),
    "tuple": ("items",),
    "dict": ("items",),
    "object_array": ("shape", "items"),
    "ndarray": ("file",),
    "RandomState": ("state",),
    "dtype": ("name",),
    "object": ("class", "state"),
}

class ArrayHeader(NamedTuple):
    """What the ``.npy`` header of an array member claims, read before its data."""

    shape: tuple
    dtype: np.dtype

    @property
    def nbytes(self):
        return math.prod(self.shape) * self.dtype.itemsize


class ObjectOutline(NamedTuple):
    """An object of a file (a helper, a RandomState) before it is built: its class and state."""

    cls: type
    state: object


def _helpers():
    """Classes of the objects that a fitted estimator's state may hold, by qualified name."""
    from sklearn.preprocessing import OrdinalEncoder

    from ._encoding import FeatureEncoder

    classes = (FeatureEncoder, OrdinalEncoder)
    return {f"{cls.__module__}.{cls.__qualname__}": cls for cls in classes}


# -- writing ------------------------------------------------------------------------------


class _Writer:
    """Turn Python values into JSON, collecting their numeric arrays."""

    def __init__(self):
        self.arrays = []
        self.helpers = {cls: name for name, cls in _helpers().items()}

    def encode(self, value, where):
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, np.generic) and value.dtype.kind in _SCALAR_KINDS:
            return {"__kind__": "scalar", "dtype": value.dtype.str, "value": value.item()}
        if isinstance(value, list):
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, tuple):
            items = [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
            return {"__kind__": "tuple", "items": items}
        if isinstance(value, dict):
            items = [
                [self.encode(k, f"{where} key"), self.encode(v, f"{where}[{k!r}]")]
                for k, v in value.items()
            ]
            return {"__kind__": "dict", "items": items}
        if isinstance(value, np.ndarray):
            return self._encode_array(value, where)
        if isinstance(value, np.random.RandomState):
            return {"__kind__": "RandomState", "state": self.encode(value.get_state(), where)}
        if isinstance(value, type) and issubclass(value, np.generic):
            # A dtype given as a numpy type, as OrdinalEncoder's dtype=np.float64.
            return {"__kind__": "dtype", "name": np.dtype(value).str}
        if type(value) in self.helpers:
            state = value.__getstate__() if hasattr(value, "__getstate__") else vars(value)
            return {
                "__kind__": "object",
                "class": self.helpers[type(value)],
                "state": {k: self.encode(v, f"{where}.{k}") for k, v in state.items()},
            }
        raise TypeError(
            f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which the "
            "sklearn_afm file format cannot store (it stores only data: numbers, strings, "
            "arrays, lists, dicts and numpy RandomState). Set it to plain data before "
            "saving, or use joblib for files that only trusted parties load."
        )

    def _encode_array(self, array, where):
        if array.dtype.kind == "O":
            for value in array.ravel():
                if not isinstance(value, _PLAIN_SCALARS):
                    raise TypeError(
                        f"{where} is an object array holding a {type(value).__name__}; the "
                        "sklearn_afm file format stores only numbers and strings there."
                    )
            items = [self.encode(v, f"{where}[{i}]") for i, v in enumerate(array.ravel())]
            return {"__kind__": "object_array", "shape": list(array.shape), "items": items}
        if array.dtype.kind not in _SCALAR_KINDS + "U":
            raise TypeError(
                f"{where} is an array of dtype {array.dtype}, which the sklearn_afm file "
                "format cannot store."
            )
        name = f"arrays/{len(self.arrays)}.npy"
        self.arrays.append((name, array))
        return {"__kind__": "ndarray", "file": name}


def write(file, estimator_name, params, fitted):
    """Write an estimator's parameters and fitted state to ``file`` without pickle.

    Parameters
    ----------
    file : str, path-like or binary file object
        Where to write.  A path is written through a temporary file in the
        same folder and then renamed (see
        :func:`~sklearn_afm._atomic_write.write_atomically`).
    estimator_name : str
        One of :data:`~sklearn_afm._state.ESTIMATORS`.
    params : dict
        ``get_params(deep=False)``.
    fitted : dict
        The rest of the estimator's record (see :mod:`sklearn_afm._state`).

    Raises
    ------
    TypeError
        If a parameter or attribute holds something other than data (for
        example a callable).
    ValueError
        If ``estimator.json`` would exceed :data:`MAX_MANIFEST_BYTES`, which
        :func:`read` refuses (category labels by the million).
    """
    from sklearn import __version__ as sklearn_version

    from . import __version__

    writer = _Writer()
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "sklearn_afm_version": __version__,
        "sklearn_version": sklearn_version,
        "estimator": estimator_name,
        "params": {k: writer.encode(v, f"parameter {k}") for k, v in params.items()},
        "fitted": {k: writer.encode(v, f"attribute {k}") for k, v in fitted.items()},
    }
    payload = json.dumps(manifest, indent=1, allow_nan=True).encode()
    if len(payload) > MAX_MANIFEST_BYTES:
        raise ValueError(
            f"This {estimator_name}'s {MANIFEST} would hold {len(payload)} bytes, more than "
            f"the {MAX_MANIFEST_BYTES} that sklearn_afm.load reads (too many category "
            "labels); save it with joblib instead."
        )
    if isinstance(file, (str, os.PathLike)):
        write_atomically(file, lambda out: _write_zip(out, payload, writer.arrays))
    else:
        _write_zip(file, payload, writer.arrays)


def _write_zip(file, payload, arrays):
    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MANIFEST, payload)
        for name, array in arrays:
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
            archive.writestr(name, buffer.getvalue())


# -- reading ------------------------------------------------------------------------------


class _Reader:
    """Rebuild values written by :class:`_Writer`, refusing anything else.

    With ``outline=True`` no array data is read: each array becomes the
    :class:`ArrayHeader` of its member, each object an :class:`ObjectOutline`.
    """

    def __init__(self, archive, source, outline=False):
        self.archive = archive
        self.source = source
        self.outline = outline
        self.helpers = _helpers()
        # The header of each array member read so far: a member serves one value only.
        self.headers = {}

    def fail(self, message):
        raise invalid_file(self.source, message)

    def record(self, manifest):
        """Decode the parameters and the fitted state of a checked manifest."""
        return (
            self.attributes(manifest["params"], "parameters"),
            self.attributes(manifest["fitted"], "fitted attributes"),
        )

    def attributes(self, state, where, cls=None):
        """Decode a mapping of attribute names to values, of an object of ``cls`` if given."""
        if not isinstance(state, dict):
            self.fail(f"{where} is not a mapping of attributes.")
        bad = [k for k in state if not _ATTRIBUTE_NAME.fullmatch(k)]
        if bad:
            self.fail(f"{where} has attribute names that are not allowed: {shown(bad)}.")
        # An instance attribute named like a method or property would hide it.
        hiding = [k for k in state if hasattr(cls, k)] if cls is not None else []
        if hiding:
            self.fail(f"{where} has attributes that would hide {cls.__name__}'s: {shown(hiding)}.")
        return {k: self.decode(v, f"{where}.{k}") for k, v in state.items()}

    def decode(self, value, where):
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, list):
            return [self.decode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        kind = value.get("__kind__")
        fields = _KINDS.get(kind) if isinstance(kind, str) else None
        if fields is None:
            self.fail(f"{where} has an unknown kind of value {shown(kind)}.")
        if sorted(value) != sorted(("__kind__", *fields)):
            self.fail(f"{where} has the fields {shown(sorted(value))}; a {kind} has "
                      f"{', '.join(fields)}.")
        try:
            return getattr(self, f"_decode_{kind}")(value, where)
        except InvalidFile:
            raise
        except (KeyError, TypeError, ValueError, OverflowError) as error:
            self.fail(f"{where} cannot be read ({type(error).__name__}: {shown(str(error))}).")

    def _decode_tuple(self, value, where):
        return tuple(self.decode(value["items"], where))

    def _decode_dict(self, value, where):
        result = {}
        for key, item in value["items"]:
            key = self.decode(key, f"{where} key")
            result[key] = self.decode(item, f"{where}[{shown(key)}]")
        return result

    def _dtype(self, name, kinds, where):
        dtype = np.dtype(str(name))
        if dtype.kind not in kinds:
            self.fail(f"{where} has dtype {dtype}, which this format does not allow.")
        return dtype

    def _decode_scalar(self, value, where):
        return self._dtype(value["dtype"], _SCALAR_KINDS, where).type(value["value"])

    def _decode_dtype(self, value, where):
        return self._dtype(value["name"], _SCALAR_KINDS, where).type

    def _decode_object_array(self, value, where):
        items = [self.decode(v, f"{where}[{i}]") for i, v in enumerate(value["items"])]
        if any(not isinstance(v, _PLAIN_SCALARS) for v in items):
            self.fail(f"{where} is an object array with elements other than scalars.")
        array = np.empty(len(items), dtype=object)
        array[:] = items
        return array.reshape([int(n) for n in value["shape"]])

    def _decode_ndarray(self, value, where):
        name = value["file"]
        if not isinstance(name, str) or not ARRAY_NAME.fullmatch(name):
            self.fail(f"{where} names an array {shown(name)} outside the archive's arrays/.")
        if name in self.headers:
            self.fail(f"{where} names the array {name!r}, which another value names too.")
        try:
            info = self.archive.getinfo(name)
        except KeyError:
            self.fail(f"{where} names an array {name!r} that the archive lacks.")
        with self.archive.open(info) as stream:
            header = self.headers[name] = self._header(stream, info, where)
        if self.outline:
            return header
        with self.archive.open(info) as stream:
            # Reads the .npy format only (np.load would also open .npz and pickles).
            return np.lib.format.read_array(stream, allow_pickle=False)

    def _header(self, stream, info, where):
        """Read the ``.npy`` header of member ``info``; it must describe the member's bytes."""
        what = f"the array {info.filename!r} ({where})"
        try:
            read_header = _NPY_HEADERS.get(np.lib.format.read_magic(stream))
            if read_header is None:
                raise ValueError("a .npy format version other than 1.0 and 2.0")
            shape, _, dtype = read_header(stream)
        except ValueError as error:
            self.fail(f"{what} is not a .npy array this format reads ({shown(str(error))}).")
        if dtype.hasobject:
            # Object arrays need pickle to load.
            self.fail(f"{what} holds Python objects: it cannot be read without pickle.")
        if dtype.kind not in _SCALAR_KINDS + "U" or dtype.itemsize == 0:
            self.fail(f"{what} has dtype {shown(str(dtype))}, which this format does not allow.")
        header = ArrayHeader(shape, dtype)
        size = info.file_size - stream.tell()
        if min(shape, default=0) < 0 or header.nbytes != size:
            self.fail(f"{what} claims shape {shown(shape)} of {dtype} ({header.nbytes} bytes), "
                      f"but holds {size} bytes of data.")
        return header

    def _decode_RandomState(self, value, where):
        state = self.decode(value["state"], where)
        if self.outline:
            return ObjectOutline(np.random.RandomState, state)
        generator = np.random.RandomState()
        generator.set_state(state)
        return generator

    def _decode_object(self, value, where):
        cls = self.helpers.get(value["class"])
        if cls is None:
            self.fail(f"{where} is an object of class {shown(value['class'])}, which is not "
                      "allowed.")
        state = self.attributes(value["state"], where, cls)
        if self.outline:
            return ObjectOutline(cls, state)
        instance = cls.__new__(cls)
        if hasattr(cls, "__setstate__"):
            instance.__setstate__(state)
        else:
            instance.__dict__.update(state)
        return instance


def read(file, source, check):
    """Read the estimator that :func:`write` wrote to ``file``.

    Only data is read (JSON and numpy arrays without pickle), so a file from
    an untrusted source cannot run code when read; and nothing is read before
    it is checked (see :ref:`persistence`): the container and
    ``estimator.json`` here, then the record's outline by ``check``, before
    any array data.

    Parameters
    ----------
    file : str, path-like or binary file object
    source : str
        How messages name the file.
    check : callable
        ``check(estimator_name, params, fitted, n_bytes)`` is given the
        record's outline (each array an :class:`ArrayHeader`, each object an
        :class:`ObjectOutline`) and the bytes all its arrays claim; it raises
        ValueError, with a message, for a record to refuse.

    Returns
    -------
    estimator_name : str
        One of :data:`~sklearn_afm._state.ESTIMATORS`.
    params : dict
    fitted : dict
        Its fitted state, decoded.
    version : str
        The sklearn_afm version that wrote it.

    Raises
    ------
    ValueError
        If the file is not a sklearn_afm model file (a pickle, say), is
        truncated or corrupted, was written by a newer format version, holds
        anything the format does not, or a record that ``check`` refuses.
    """
    archive, manifest = open_checked(file, source)
    with archive:
        try:
            outline = _Reader(archive, source, outline=True)
            params, fitted = outline.record(manifest)
            try:
                n_bytes = sum(header.nbytes for header in outline.headers.values())
                check(manifest["estimator"], params, fitted, n_bytes)
            except ValueError as error:
                raise invalid_file(source, str(error)) from None
            unused = set(archive.namelist()) - set(outline.headers) - {MANIFEST}
            if unused:
                raise invalid_file(source, f"it holds arrays that no value names: "
                                           f"{shown(sorted(unused))}.")
            params, fitted = _Reader(archive, source).record(manifest)
        except CORRUPTED as error:
            raise corrupted(source, error) from None
    return manifest["estimator"], params, fitted, manifest["sklearn_afm_version"]


