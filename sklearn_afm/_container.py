"""The container of a model file, checked before any of it is decoded.

:func:`open_checked` opens a model file's zip archive and reads its
``estimator.json``, refusing anything but the format: members other than
``estimator.json`` and ``arrays/<n>.npy``, repeated members, links,
encryption, compression methods other than deflate, sizes that the file's
bytes cannot hold (no member can make the reader allocate more than 1032
times the file's size: deflate's limit), a manifest beyond
:data:`MAX_MANIFEST_BYTES` or nested more than :data:`MAX_DEPTH` levels deep,
repeated JSON keys, and manifest keys, versions and estimator classes other
than the format's.  :mod:`sklearn_afm._archive` decodes what it returns.
"""

import collections
import json
import os
import re
import reprlib
import stat
import zipfile
import zlib

from ._state import ESTIMATORS, FORMAT_VERSION

FORMAT_NAME = "sklearn_afm"

MANIFEST = "estimator.json"
_MANIFEST_KEYS = (
    "format", "format_version", "sklearn_afm_version", "sklearn_version", "estimator",
    "params", "fitted",
)
ARRAY_NAME = re.compile(r"arrays/\d{1,9}\.npy")
# Largest estimator.json written or read: room for millions of category labels,
# and a bound on what parsing it allocates.
MAX_MANIFEST_BYTES = 64 * 2**20
# Deepest nesting of estimator.json.  A fitted estimator's record needs fewer
# than ten levels; decoding recurses once per level.
MAX_DEPTH = 32
# Deflate cannot expand data more than 1032-fold: a member that claims more is forged.
_DEFLATE_RATIO = 1032
# The longest message about a file's content.
MAX_MESSAGE = 500
# What reading a damaged archive raises.
CORRUPTED = (zipfile.BadZipFile, zlib.error, EOFError, OSError)

_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = 6


def shown(value):
    """Return ``repr(value)`` cut short: messages echo what a file holds, whatever its size."""
    return _SHORT.repr(value)


class InvalidFile(ValueError):
    """A file that is not, or no longer, a sklearn_afm model file."""


def invalid_file(source, message):
    """Return the error for a file ``source`` that is not a valid model file.

    ``message`` is cut to :data:`MAX_MESSAGE` characters, should it echo a
    large value of the file.
    """
    if len(message) > MAX_MESSAGE:
        message = f"{message[:MAX_MESSAGE]} [...]"
    return InvalidFile(f"{source} is not a valid sklearn_afm model file: {message}")


def corrupted(source, error):
    """Return the error for a file ``source`` that reading failed on with ``error``."""
    return ValueError(f"{source} is a truncated or corrupted sklearn_afm model file ({error}).")


def open_checked(file, source):
    """Open the model file ``file``; return its zip archive and its checked manifest.

    Raises
    ------
    ValueError
        If ``file`` is not a zip archive (a pickle, say), or its container or
        manifest are not the format's.
    """
    archive = _open(file, source)
    try:
        _check_members(archive, source)
        manifest = _read_manifest(archive, source)
    except BaseException as error:
        archive.close()
        if isinstance(error, CORRUPTED):
            raise corrupted(source, error) from None
        raise
    return archive, manifest


def _open(file, source):
    try:
        return zipfile.ZipFile(file)
    except zipfile.BadZipFile as error:
        hint = (
            " It looks like a pickle: load those only from trusted sources, with joblib.load."
            if _head(file).startswith(b"\x80")
            else " Is it truncated?"
        )
        raise ValueError(
            f"{source} is not a sklearn_afm model file (not a zip archive: {error}).{hint}"
        ) from None


def _check_members(archive, source):
    """Refuse members other than the format's, repeated ones, links, and forged sizes.

    The sizes a member claims are checked against the bytes the file holds,
    so that no claim can make the reader allocate more than ``_DEFLATE_RATIO``
    times the file's size.
    """
    infos = archive.infolist()
    names = collections.Counter(info.filename for info in infos)
    if MANIFEST not in names:
        raise ValueError(
            f"{source} is a zip archive but not a sklearn_afm model file (it has no "
            f"{MANIFEST})."
        )
    repeated = [name for name, count in names.items() if count > 1]
    if repeated:
        raise invalid_file(source, f"it holds the members {shown(repeated)} more than once.")
    for info in infos:
        what = f"its member {shown(info.filename)}"
        kind = stat.S_IFMT(info.external_attr >> 16)
        if info.filename != MANIFEST and not ARRAY_NAME.fullmatch(info.filename):
            problem = f"is not part of the format (only {MANIFEST} and arrays/<n>.npy are)"
        elif kind not in (0, stat.S_IFREG):
            problem = "is a symbolic link" if kind == stat.S_IFLNK else "is not a regular file"
        elif info.flag_bits & 0x1:
            problem = "is encrypted"
        elif info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            problem = f"uses compression method {info.compress_type}, not deflate"
        elif info.file_size > info.compress_size * (
            1 if info.compress_type == zipfile.ZIP_STORED else _DEFLATE_RATIO
        ):
            problem = (f"claims {info.file_size} bytes, more than its {info.compress_size} "
                       "compressed bytes can hold")
        else:
            continue
        raise invalid_file(source, f"{what} {problem}.")
    if sum(info.compress_size for info in infos) > archive.fp.seek(0, os.SEEK_END):
        raise invalid_file(source, "its members claim more bytes than the file holds.")


def _read_manifest(archive, source):
    """Return the checked manifest of ``archive``: its keys, format, versions and class."""
    size = archive.getinfo(MANIFEST).file_size
    if size > MAX_MANIFEST_BYTES:
        raise invalid_file(source, f"its {MANIFEST} holds {size} bytes, more than the "
                                   f"{MAX_MANIFEST_BYTES} this format allows.")
    try:
        manifest = json.loads(archive.read(MANIFEST), object_pairs_hook=_unique_keys)
        too_deep = _deeper_than(manifest, MAX_DEPTH)
    except RecursionError:
        too_deep = True
    except (*CORRUPTED, ValueError) as error:
        raise corrupted(source, error) from None
    if too_deep:
        raise invalid_file(source, f"its {MANIFEST} is nested more than {MAX_DEPTH} levels deep.")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise invalid_file(source, f"its {MANIFEST} does not declare format {FORMAT_NAME!r}.")
    missing = [key for key in _MANIFEST_KEYS if key not in manifest]
    if missing:
        raise invalid_file(source, f"its {MANIFEST} lacks {', '.join(map(repr, missing))}.")
    unknown = [key for key in manifest if key not in _MANIFEST_KEYS]
    if unknown:
        raise invalid_file(source, f"its {MANIFEST} has keys the format does not have: "
                                   f"{shown(unknown)}.")
    _check_versions(manifest, source)
    name = manifest["estimator"]
    if name not in ESTIMATORS:
        raise invalid_file(
            source, f"it holds a {shown(name)}; only {', '.join(ESTIMATORS)} are allowed."
        )
    return manifest


def _check_versions(manifest, source):
    """Refuse a format version this package does not read, and versions that are not names."""
    for key in ("sklearn_afm_version", "sklearn_version"):
        value = manifest[key]
        if not isinstance(value, str) or len(value) > 64:
            raise invalid_file(source, f"its {key} is {shown(value)}, not a version.")
    version = manifest["format_version"]
    if type(version) is not int or version < 1:
        raise invalid_file(source, f"its format version {shown(version)} is not a positive "
                                   "integer.")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{source} has sklearn_afm file format version {version} (written by "
            f"sklearn_afm {manifest['sklearn_afm_version']}), but this sklearn_afm reads "
            f"format versions up to {FORMAT_VERSION}; upgrade sklearn_afm to load it."
        )


def _unique_keys(pairs):
    """Make a JSON object, refusing a key given twice (json would keep the last silently)."""
    repeated = [key for key, count in collections.Counter(k for k, _ in pairs).items()
                if count > 1]
    if repeated:
        raise ValueError(f"an object of {MANIFEST} repeats the key {shown(repeated[0])}")
    return dict(pairs)


def _deeper_than(value, limit):
    """Whether JSON ``value`` nests lists and objects more than ``limit`` levels deep."""
    level = [value]
    for _ in range(limit):
        level = [
            child
            for container in level
            for child in (container.values() if isinstance(container, dict) else container)
            if isinstance(child, (dict, list))
        ]
        if not level:
            return False
    return True


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
