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
import json
import os
import re
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
        ``genre_<name>`` of 0/1, one per genre (``genre_Children_s``,
        ``genre_Film_Noir``, ``genre_Sci_Fi``: no character TensorFlow refuses), because the estimators have
        no multi-valued categorical columns yet (a later change will make
        the genres one field); ``timestamp`` (seconds, for the time split, not
        a feature) and ``target``, 1 where ``rating >= 4`` (RecBole's
        context-aware convention).
    """
    with zipfile.ZipFile(fetch_wheel()) as archive:
        inter = read_atomic(archive, "inter")
        users = read_atomic(archive, "user")
        items = read_atomic(archive, "item")
    genres = items.pop("class").str.get_dummies(sep=" ").astype(np.int8)
    # Names TensorFlow takes as scopes (DeepCTR names its layers after the columns).
    genres.columns = ["genre_" + re.sub(r"\W", "_", name) for name in genres.columns]
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


# -- DeepCTR 0.9.4's AFM, in its own process ------------------------------------------

# Keras' early stopping with the AFM estimators' defaults: the epochs, the patience
# and the optimizer are theirs, so that the two AFMs differ by their model only.
DEEPCTR_FIT = {"epochs": 100, "batch_size": 256, "patience": 10, "learning_rate": 0.01}


def deepctr_data(X, embedding):
    """DeepCTR's linear and pairwise feature columns and inputs for a part of the frame.

    The categorical columns are ``SparseFeat`` indexed by their codes, which
    the whole frame's categories fix for every part; the 0/1 genre columns go
    to ``weighted_columns`` (an embedding times the value, as in
    sklearn_afm) and, for the linear part, to one ``DenseFeat``.
    """
    from _reference import weighted_columns
    from deepctr.feature_column import DenseFeat, SparseFeat

    sparse = [
        SparseFeat(name, vocabulary_size=len(X[name].cat.categories), embedding_dim=embedding)
        for name in CATEGORICAL
    ]
    genres = [name for name in X if name.startswith("genre_")]
    values = X[genres].to_numpy(np.float32)
    weighted, inputs = weighted_columns(genres, values)
    inputs.update({name: X[name].cat.codes.to_numpy(np.int32) for name in CATEGORICAL})
    inputs["genres"] = values
    return sparse + [DenseFeat("genres", len(genres))], sparse + weighted, inputs


def worker_deepctr(args):
    """Fit DeepCTR's AFM on one split, early stopping on its validation part; emit the scores."""
    from _measure import emit
    from _reference import EMBEDDING, import_deepctr
    from sklearn.metrics import log_loss, roc_auc_score

    modules, error = import_deepctr()
    if error:
        emit({"error": error})
        return
    deepctr, tf, AFM = modules
    frame = load_movielens()
    parts = [features_and_target(frame, rows) for rows in split(frame, args.split, args.seed)]
    (linear, interaction, train), (_, _, val), (_, _, test) = (
        deepctr_data(X, EMBEDDING) for X, _ in parts
    )
    tf.keras.utils.set_random_seed(args.seed)
    # DeepCTR's own defaults for the model (attention factor, L2, dropout).
    model = AFM(linear, interaction, seed=args.seed, task="binary")
    model.compile(tf.keras.optimizers.Adam(DEEPCTR_FIT["learning_rate"]), "binary_crossentropy")
    stop = tf.keras.callbacks.EarlyStopping(
        patience=DEEPCTR_FIT["patience"], restore_best_weights=True
    )
    history = model.fit(
        train, parts[0][1], batch_size=DEEPCTR_FIT["batch_size"], epochs=DEEPCTR_FIT["epochs"],
        validation_data=(val, parts[1][1]), callbacks=[stop], verbose=0,
    )
    proba = model.predict(test, batch_size=4096, verbose=0).ravel()
    y_test = parts[2][1]
    emit({"auc": roc_auc_score(y_test, proba), "log_loss": log_loss(y_test, proba),
          "epochs": len(history.history["loss"]), "deepctr": deepctr.__version__})


def run_deepctr(kind, seed, timeout=1800):
    """Run ``worker_deepctr`` in a fresh process; return its JSON result (or an error)."""
    command = [sys.executable, os.path.abspath(__file__), "--worker", "deepctr",
               "--split", kind, "--seed", str(seed)]
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"error": f"exit {done.returncode}: {' | '.join(tail)}"}
    return json.loads(lines[-1])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=["deepctr"], required=True)
    parser.add_argument("--split", choices=["random", "time"], default="random")
    parser.add_argument("--seed", type=int, default=0)
    worker_deepctr(parser.parse_args())
