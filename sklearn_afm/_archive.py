"""The model file: a zip archive of JSON and numpy arrays that loads without pickle.

Loading a pickle (or a joblib file) runs whatever code the file names, so it
is only safe for files one trusts.  :func:`write` writes instead a zip archive
that holds data only:

* ``estimator.json``: the format name and version, the versions of
  sklearn_afm and scikit-learn that wrote it, the estimator's class (one of
  :data:`~sklearn_afm._state.ESTIMATORS`), its ``get_params()`` and its fitted
  state (the record of :mod:`sklearn_afm._state`);
* ``arrays/<n>.npy``: every numeric array (network weights, optimizer state,
  attention totals, ...), read back with ``numpy.load(allow_pickle=False)``.

Values that JSON lacks are written as tagged objects (``{"__kind__": ...}``):
tuples, dicts with keys other than strings, numpy scalars, arrays of Python
objects (category labels, column names: their elements must be plain
scalars), numpy random generators (as ``get_state()``) and the few helper
objects of a fitted estimator named in :func:`_helpers`.  :func:`read` rebuilds
only those; anything else in a file is refused, so that a file can describe
an estimator but never make the loader run code.  This module knows the
container, not the estimators: :func:`sklearn_afm.load` turns what it reads
into an estimator.
"""

import io
import json
import os
import re
import zipfile
import zlib

import numpy as np

from ._atomic_write import write_atomically
from ._state import ESTIMATORS, FORMAT_VERSION

FORMAT_NAME = "sklearn_afm"

_MANIFEST = "estimator.json"
_ARRAY_NAME = re.compile(r"arrays/\d+\.npy")
# Scalar kinds that may appear in a file: bool, signed/unsigned int, float.
_SCALAR_KINDS = "biuf"
# What an array of Python objects (category labels, column names) may hold.
_PLAIN_SCALARS = (str, int, float, bool, np.generic, type(None))
# Attribute names a file may set: identifiers, dunder names excluded.
_ATTRIBUTE_NAME = re.compile(r"(?!__)[A-Za-z_][A-Za-z0-9_]*")
# What reading a damaged archive raises.
_CORRUPTED = (zipfile.BadZipFile, zlib.error, EOFError, OSError)


class InvalidFile(ValueError):
    """A file that is not, or no longer, a sklearn_afm model file."""


def invalid_file(source, message):
    """Return the error for a file ``source`` that is not a valid model file."""
    return InvalidFile(f"{source} is not a valid sklearn_afm model file: {message}")


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
    if isinstance(file, (str, os.PathLike)):
        write_atomically(file, lambda out: _write_zip(out, payload, writer.arrays))
    else:
        _write_zip(file, payload, writer.arrays)


def _write_zip(file, payload, arrays):
    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(_MANIFEST, payload)
        for name, array in arrays:
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
            archive.writestr(name, buffer.getvalue())


# -- reading ------------------------------------------------------------------------------


class _Reader:
    """Rebuild values written by :class:`_Writer`, refusing anything else."""

    def __init__(self, archive, source):
        self.archive = archive
        self.source = source
        self.helpers = _helpers()

    def fail(self, message):
        raise invalid_file(self.source, message)

    def attributes(self, state, where):
        """Decode a mapping of attribute names to values."""
        if not isinstance(state, dict):
            self.fail(f"{where} is not a mapping of attributes.")
        bad = [k for k in state if not _ATTRIBUTE_NAME.fullmatch(k)]
        if bad:
            self.fail(f"{where} has attribute names that are not allowed: {bad}.")
        return {k: self.decode(v, f"{where}.{k}") for k, v in state.items()}

    def decode(self, value, where):
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, list):
            return [self.decode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if not isinstance(value, dict):
            self.fail(f"{where} holds a {type(value).__name__}.")
        kind = value.get("__kind__")
        try:
            decode = getattr(self, f"_decode_{kind}") if isinstance(kind, str) else None
        except AttributeError:
            decode = None
        if decode is None:
            self.fail(f"{where} has an unknown kind of value {kind!r}.")
        try:
            return decode(value, where)
        except InvalidFile:
            raise
        except (KeyError, TypeError, ValueError, OverflowError) as error:
            self.fail(f"{where} cannot be read ({type(error).__name__}: {error}).")

    def _decode_tuple(self, value, where):
        return tuple(self.decode(value["items"], where))

    def _decode_dict(self, value, where):
        result = {}
        for key, item in value["items"]:
            key = self.decode(key, f"{where} key")
            result[key] = self.decode(item, f"{where}[{key!r}]")
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
        if not isinstance(name, str) or not _ARRAY_NAME.fullmatch(name):
            self.fail(f"{where} names an array {name!r} outside the archive's arrays/.")
        try:
            data = self.archive.read(name)
        except KeyError:
            self.fail(f"{where} names an array {name!r} that the archive lacks.")
        try:
            # Reads the .npy format only (np.load would also open .npz and pickles).
            array = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
        except ValueError as error:
            # Object arrays need pickle to load: refused by allow_pickle=False.
            self.fail(f"the array {name!r} ({where}) cannot be read without pickle ({error}).")
        if array.dtype.kind not in _SCALAR_KINDS + "U":
            self.fail(f"the array {name!r} ({where}) has dtype {array.dtype}, not allowed.")
        return array

    def _decode_RandomState(self, value, where):
        state = self.decode(value["state"], where)
        generator = np.random.RandomState()
        generator.set_state(state)
        return generator

    def _decode_object(self, value, where):
        cls = self.helpers.get(value["class"])
        if cls is None:
            self.fail(f"{where} is an object of class {value['class']!r}, which is not allowed.")
        state = self.attributes(value["state"], where)
        instance = cls.__new__(cls)
        if hasattr(cls, "__setstate__"):
            instance.__setstate__(state)
        else:
            instance.__dict__.update(state)
        return instance


def read(file, source):
    """Read the estimator that :func:`write` wrote to ``file``.

    Only data is read (JSON and numpy arrays without pickle), so a file from
    an untrusted source cannot run code when read.

    Parameters
    ----------
    file : str, path-like or binary file object
    source : str
        How messages name the file.

    Returns
    -------
    estimator_name : str
        One of :data:`~sklearn_afm._state.ESTIMATORS`.
    params : dict
    fitted : dict
        Its fitted state, decoded.
    version : str or None
        The sklearn_afm version that wrote it.

    Raises
    ------
    ValueError
        If the file is not a sklearn_afm model file (a pickle, say), is
        truncated or corrupted, was written by a newer format version, names a
        class that is not allowed, or holds an array that needs pickle.
    """
    try:
        archive = zipfile.ZipFile(file)
    except zipfile.BadZipFile as error:
        head = _head(file)
        hint = (
            " It looks like a pickle: load those only from trusted sources, with joblib.load."
            if head.startswith(b"\x80")
            else " Is it truncated?"
        )
        raise ValueError(
            f"{source} is not a sklearn_afm model file (not a zip archive: {error}).{hint}"
        ) from None
    with archive:
        manifest = _read_manifest(archive, source)
        reader = _Reader(archive, source)
        try:
            params = reader.attributes(manifest["params"], "parameters")
            fitted = reader.attributes(manifest["fitted"], "fitted attributes")
        except _CORRUPTED as error:
            raise _corrupted(source, error) from None
        except (KeyError, AttributeError) as error:
            reader.fail(f"its {_MANIFEST} lacks {error}.")
    return manifest["estimator"], params, fitted, manifest.get("sklearn_afm_version")


def _corrupted(source, error):
    return ValueError(f"{source} is a truncated or corrupted sklearn_afm model file ({error}).")


def _read_manifest(archive, source):
    """Return the checked manifest of ``archive``: format, version and estimator class."""
    try:
        manifest = json.loads(archive.read(_MANIFEST))
    except KeyError:
        raise ValueError(
            f"{source} is a zip archive but not a sklearn_afm model file (it has no "
            f"{_MANIFEST})."
        ) from None
    except (*_CORRUPTED, ValueError, RecursionError) as error:
        raise _corrupted(source, error) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise invalid_file(source, f"its {_MANIFEST} does not declare format {FORMAT_NAME!r}.")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{source} has sklearn_afm file format version {version!r} (written by "
            f"sklearn_afm {manifest.get('sklearn_afm_version')}), but this sklearn_afm "
            f"reads format versions up to {FORMAT_VERSION}; upgrade sklearn_afm to load it."
        )
    name = manifest.get("estimator")
    if name not in ESTIMATORS:
        raise invalid_file(
            source, f"it holds a {name!r}; only {', '.join(ESTIMATORS)} are allowed."
        )
    return manifest


def _head(file):
    """Return the first bytes of ``file``, leaving a file object where it was."""
    try:
        if isinstance(file, (str, os.PathLike)):
            with open(file, "rb") as f:
                return f.read(2)
        position = file.tell()
        file.seek(0)
        head = file.read(2)
        file.seek(position)
        return head
    except (OSError, AttributeError):
        return b""
