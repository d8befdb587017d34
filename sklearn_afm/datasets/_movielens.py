"""Fetcher of MovieLens 100k, downloaded at run time: its licence forbids redistribution.

The data are read from RecBole's wheel on PyPI (``recbole==1.2.1`` ships them
under ``recbole/dataset_example/ml-100k/`` as RecBole "atomic files"), which
is downloaded once into ``<data_home>/movielens/``, checked against a pinned
SHA-256 before it is used, and read straight from the zip.
"""

import hashlib
import os
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from .._atomic_write import write_atomically

RECBOLE = "recbole==1.2.1"
ARCHIVE = "recbole-1.2.1-py3-none-any.whl"
URL = (
    "https://files.pythonhosted.org/packages/ab/fe/"
    "7d606cb7cd2b166a36b100cb9435d21014ceee16c192d972deb0976967a8/" + ARCHIVE
)
# The digest PyPI publishes for the file (its simple index's #sha256=).
SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
MEMBER = "recbole/dataset_example/ml-100k/ml-100k.{}"
SUBFOLDER = "movielens"
TIMEOUT = 60  # seconds without an answer before the download gives up

CATEGORICAL = ["user_id", "item_id", "age", "gender", "occupation", "zip_code", "release_year"]
FEATURES = CATEGORICAL + ["genres"]


def _data_home(data_home):
    """``data_home``, else ``$SKLEARN_AFM_DATA``, else ``~/.cache/sklearn_afm``, as a Path."""
    if data_home is None:
        data_home = os.environ.get("SKLEARN_AFM_DATA", Path("~") / ".cache" / "sklearn_afm")
    return Path(data_home).expanduser()


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _help(path):
    """What to do where this machine cannot download the archive."""
    return (
        f"Download {URL} where the network can be reached (or run "
        f"`pip download --no-deps {RECBOLE}`, which fetches the same file) and put "
        f"it at {path}, or pass data_home= (or set SKLEARN_AFM_DATA to) a folder "
        f"whose {SUBFOLDER}/ subfolder holds {ARCHIVE}."
    )


def _download(path):
    """Download ``URL`` to ``path``: written only once complete and its SHA-256 checked."""
    from urllib.request import urlopen

    digest = hashlib.sha256()

    def write_to(out):
        try:
            with urlopen(URL, timeout=TIMEOUT) as response:
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    digest.update(chunk)
                    out.write(chunk)
        except OSError as error:  # URLError, timeouts, refused connections
            raise OSError(
                f"Could not download MovieLens 100k (inside RecBole's wheel) from {URL}: "
                f"{error}.\n{_help(path)}"
            ) from error
        if digest.hexdigest() != SHA256:
            # Raised before the temporary file is renamed: nothing is left in the cache.
            raise OSError(
                f"The file downloaded from {URL} has SHA-256 {digest.hexdigest()}, not the "
                f"expected {SHA256}: it was not saved. Try again; if it persists, the "
                f"file on PyPI is not the one this version of sklearn-afm knows."
            )

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, write_to)


def _archive(data_home, download_if_missing):
    """The path of the verified archive in the cache, downloading it if missing (and allowed)."""
    path = _data_home(data_home) / SUBFOLDER / ARCHIVE
    if not path.exists():
        if not download_if_missing:
            raise OSError(
                f"MovieLens 100k is not in the cache: {path} does not exist. Call "
                f"fetch_movielens_100k() with download_if_missing=True (the default) to "
                f"download it (about 2 MB), or: {_help(path)}"
            )
        _download(path)
        return path
    # The fetcher writes only verified files: a mismatch is a file put there by
    # hand (another version of the wheel) or damaged since; it is not replaced
    # behind the user's back.
    found = _sha256(path)
    if found != SHA256:
        raise OSError(
            f"{path} has SHA-256 {found}, not the expected {SHA256} of {ARCHIVE}: it is "
            f"damaged or another file. Delete it, and fetch_movielens_100k() downloads it "
            f"again from {URL}."
        )
    return path


def _read_atomic(archive, suffix):
    """One RecBole atomic file as a DataFrame of strings, headers ``name:type`` cut to ``name``."""
    import io

    import pandas as pd

    with archive.open(MEMBER.format(suffix)) as handle:
        frame = pd.read_csv(
            io.TextIOWrapper(handle, "utf-8"), sep="\t", dtype=str, keep_default_na=False,
            quoting=3,  # QUOTE_NONE: titles hold quotes of their own
        )
    return frame.rename(columns=lambda column: column.split(":")[0])


def fetch_movielens_100k(*, data_home=None, download_if_missing=True, return_X_y=False):
    """Load the MovieLens 100k ratings with user and film features (binary classification).

    Downloaded from PyPI on first use, about 2 MB, into a cache: the licence
    of MovieLens does not allow redistributing the data, so sklearn-afm does
    not ship them.  They are read from RecBole's wheel (``recbole==1.2.1``
    holds them under ``recbole/dataset_example/ml-100k/``), whose SHA-256 is
    checked before it is used, straight from the zip.

    =================   ==============
    Classes                          2
    Samples total               100000
    Dimensionality                   8
    Features            categorical, one of them multi-valued (``genres``)
    =================   ==============

    Read more in the description, ``fetch_movielens_100k().DESCR``.

    Parameters
    ----------
    data_home : str or path-like, default=None
        The cache folder; the archive is stored in its ``movielens``
        subfolder.  By default ``$SKLEARN_AFM_DATA``, else
        ``~/.cache/sklearn_afm``.
    download_if_missing : bool, default=True
        If False, raise an ``OSError`` when the data are not in the cache
        instead of downloading them.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With the fields:

        data : DataFrame of shape (100000, 8)
            ``user_id``, ``item_id``, ``age``, ``gender``, ``occupation``,
            ``zip_code`` and ``release_year`` as ``category`` columns (RecBole
            reads them all as tokens; the release year stays categorical
            because its effect is not monotonic and RecBole's file holds
            non-years for two films, ``"unkonwn"`` and ``"V"``, which stay
            categories of their own; the age too, as RecBole has it), and
            ``genres``, one multi-valued categorical column whose cells are
            tuples of the film's genres (1 to 6 of 19, ``"unknown"`` one of
            them), which the estimators take as one field.
        target : Series of shape (100000,)
            1 where the rating is at least 4 (RecBole's context-aware
            convention), else 0.
        frame : DataFrame of shape (100000, 12)
            ``data``, then ``movie_title`` (a string, not a feature: the
            film's id says it), ``rating`` (1 to 5), ``timestamp`` (seconds
            since 1970, for a split by time) and ``target``.
        feature_names : list of str
            The columns of ``data``.
        target_names : ndarray of str
            ``["rating < 4", "rating >= 4"]``.
        DESCR : str
            The description of the data, their source and licence.

    (data, target) : tuple if ``return_X_y`` is True

    Raises
    ------
    OSError
        If the data are not in the cache and ``download_if_missing`` is
        False, if the download fails (the message says which URL to fetch
        by other means and where to put the file), or if a downloaded or
        cached file does not have the expected SHA-256.  A download is
        written to the cache only once complete and verified; a cached file
        with another digest is not replaced: delete it to download again.

    Examples
    --------
    >>> from sklearn_afm import fetch_movielens_100k
    >>> X, y = fetch_movielens_100k(return_X_y=True)  # doctest: +SKIP
    >>> X.shape, int(y.sum())  # doctest: +SKIP
    ((100000, 8), 55375)
    """
    import pandas as pd

    with zipfile.ZipFile(_archive(data_home, download_if_missing)) as archive:
        inter, users, items = (_read_atomic(archive, s) for s in ("inter", "user", "item"))
    # Genres are separated by spaces (no genre name holds one); a film without
    # any would be an empty tuple, the column's missing value.
    items["genres"] = pd.Series(
        [tuple(cell.split()) for cell in items.pop("class")], index=items.index, dtype=object
    )
    frame = inter.merge(users, on="user_id", how="left", validate="many_to_one").merge(
        items, on="item_id", how="left", validate="many_to_one"
    )
    frame = frame[FEATURES + ["movie_title", "rating", "timestamp"]].copy()
    frame[CATEGORICAL] = frame[CATEGORICAL].astype("category")
    frame["rating"] = frame["rating"].astype(np.float64).astype(np.int64)
    frame["timestamp"] = frame["timestamp"].astype(np.float64).astype(np.int64)
    frame["target"] = (frame["rating"] >= 4).astype(np.int64)
    data, target = frame[FEATURES], frame["target"]
    if return_X_y:
        return data, target
    package = resources.files("sklearn_afm.datasets")
    descr = (package / "descr" / "movielens_100k.rst").read_text(encoding="utf-8")
    return Bunch(
        data=data,
        target=target,
        frame=frame,
        feature_names=list(FEATURES),
        target_names=np.array(["rating < 4", "rating >= 4"], dtype=object),
        DESCR=descr,
    )
