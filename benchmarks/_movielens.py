"""MovieLens 100k for the quality benchmark: fetched at run time, never stored in the repository.

Its licence does not allow redistribution, so the data are read from RecBole's
wheel on PyPI (``recbole==1.2.1`` ships ``recbole/dataset_example/ml-100k/``),
downloaded once into a cache directory (``$SKLEARN_AFM_DATA``, else
``~/.cache/sklearn_afm/movielens``) and read straight from the zip.

Run as ``python benchmarks/_movielens.py --worker deepctr --split random --seed 0``
it is the worker that fits DeepCTR 0.9.4's AFM on one split in its own
process (DeepCTR needs ``TF_USE_LEGACY_KERAS=1`` before TensorFlow is
imported, which the AFM estimators' Keras 3 cannot share) and prints its
scores as one JSON line.
"""

import argparse
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

RECBOLE = "recbole==1.2.1"
WHEEL = "recbole-1.2.1-py3-none-any.whl"
MEMBER = "recbole/dataset_example/ml-100k/ml-100k.{}"
CATEGORICAL = ["user_id", "item_id", "age", "gender", "occupation", "zip_code", "release_year"]


def cache_dir():
    """The cache directory: ``$SKLEARN_AFM_DATA`` or ``~/.cache/sklearn_afm/movielens``."""
    default = Path.home() / ".cache" / "sklearn_afm" / "movielens"
    return Path(os.environ.get("SKLEARN_AFM_DATA", default))


def fetch_wheel():
    """Return the path of RecBole's wheel in the cache, downloading it with pip if missing."""
    directory = cache_dir()
    wheel = directory / WHEEL
    if wheel.exists():
        return wheel
    directory.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", RECBOLE, "-d", str(directory)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0 or not wheel.exists():
        raise RuntimeError(
            f"Could not download MovieLens 100k (inside RecBole's wheel). Run\n"
            f"    pip download --no-deps {RECBOLE} -d {directory}\n"
            f"where PyPI can be reached, or set SKLEARN_AFM_DATA to a directory holding "
            f"{WHEEL}.\npip said: {done.stderr.strip()[-500:]}"
        )
    return wheel


def read_atomic(archive, suffix):
    """One RecBole atomic file as a DataFrame of strings, its header ``name:type`` cut to ``name``."""
    with archive.open(MEMBER.format(suffix)) as handle:
        frame = pd.read_csv(io.TextIOWrapper(handle, "utf-8"), sep="\t", dtype=str,
                            keep_default_na=False, quoting=3)
    return frame.rename(columns=lambda column: column.split(":")[0])


def load_movielens():
    """MovieLens 100k ratings joined with user and item features, and a binary target.

    Returns
    -------
    frame : DataFrame of shape (100000, 28)
        ``user_id``, ``item_id``, ``age``, ``gender``, ``occupation``,
        ``zip_code`` and ``release_year`` as ``category`` columns (RecBole
        reads them all as tokens; the release year stays categorical because
        its effect is not monotonic and RecBole's file holds non-years for a
        few items, ``"unkonwn"`` and ``"V"``, which stay categories of
        their own; age too, as RecBole has it); 19 genre columns
        ``genre_<name>`` of 0/1, one per genre, because the estimators have
        no multi-valued categorical columns yet (a later change will make
        the genres one field); ``timestamp`` (seconds, for the time split, not
        a feature) and ``target``, 1 where ``rating >= 4`` (RecBole's
        context-aware convention).
    """
    with zipfile.ZipFile(fetch_wheel()) as archive:
        inter = read_atomic(archive, "inter")
        users = read_atomic(archive, "user")
        items = read_atomic(archive, "item")
    genres = items.pop("class").str.get_dummies(sep=" ").add_prefix("genre_").astype(np.int8)
    items = pd.concat([items.drop(columns="movie_title"), genres], axis=1)
    frame = inter.merge(users, on="user_id", how="left").merge(items, on="item_id", how="left")
    frame[CATEGORICAL] = frame[CATEGORICAL].astype("category")
    frame["timestamp"] = frame["timestamp"].astype(float).astype(np.int64)
    frame["target"] = (frame.pop("rating").astype(float) >= 4).astype(np.int8)
    return frame


def split(frame, kind, seed):
    """Row positions of train, validation and test parts (80/10/10).

    ``kind="random"`` shuffles with ``seed``; ``kind="time"`` sorts by
    timestamp (ties by position) and trains on the earliest 80 %, as a
    deployed recommender would: the seed then only changes the models.
    """
    n = len(frame)
    if kind == "random":
        order = np.random.RandomState(seed).permutation(n)
    else:
        order = np.argsort(frame["timestamp"].to_numpy(), kind="stable")
    cuts = [int(0.8 * n), int(0.9 * n)]
    return np.split(order, cuts)


def features_and_target(frame, rows):
    """The model's input (every column but ``timestamp`` and ``target``) and the target."""
    part = frame.iloc[rows]
    return part.drop(columns=["timestamp", "target"]), part["target"].to_numpy()
