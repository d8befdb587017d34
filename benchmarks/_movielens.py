"""MovieLens 100k for the quality benchmark: fetched at run time, never stored in the repository.

Its licence does not allow redistribution: ``sklearn_afm.fetch_movielens_100k``
downloads RecBole's wheel from PyPI once into its cache (``$SKLEARN_AFM_DATA``,
else ``~/.cache/sklearn_afm``, in its ``movielens`` subfolder) and reads the
data straight from the zip.  The genres are one multi-valued column (tuples of
genres), which AFM and FM take as one field; ``genre_columns`` turns them into
the 19 0/1 columns the other models need.

Run as ``python benchmarks/_movielens.py --worker deepctr --split random --seed 0``
it is the worker that fits DeepCTR 0.9.4's AFM on one split in its own
process (DeepCTR needs ``TF_USE_LEGACY_KERAS=1`` before TensorFlow is
imported, which the AFM estimators' Keras 3 cannot share) and prints its
scores as one JSON line.
"""

import argparse
import json
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd

from _machine import REPO_ROOT

# The fetcher of the checkout this file lives in, not some installed copy.
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from sklearn_afm.datasets import fetch_movielens_100k  # noqa: E402
from sklearn_afm.datasets._movielens import CATEGORICAL, FEATURES  # noqa: E402
# The 19 genres of MovieLens 100k ("unknown" one of them), in the order of their columns.
GENRES = ["Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
          "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
          "Thriller", "War", "Western", "unknown"]
# Names TensorFlow takes as scopes (DeepCTR names its layers after the columns):
# genre_Children_s, genre_Film_Noir, genre_Sci_Fi.
GENRE_COLUMNS = ["genre_" + re.sub(r"\W", "_", name) for name in GENRES]


def load_movielens():
    """MovieLens 100k, ``fetch_movielens_100k().frame``: the features, ``timestamp`` and ``target``.

    The features (``FEATURES``) are the fetcher's: ``user_id``, ``item_id``,
    ``age``, ``gender``, ``occupation``, ``zip_code`` and ``release_year`` as
    ``category`` columns and ``genres``, one multi-valued column of tuples;
    ``timestamp`` (seconds) serves the time split and ``target`` is 1 where
    ``rating >= 4`` (RecBole's context-aware convention).  ``movie_title`` and
    ``rating`` are in the frame too, never in a model's input.
    """
    frame = fetch_movielens_100k().frame
    found = set().union(*frame["genres"])
    if found != set(GENRES):
        raise ValueError(f"unexpected genres: {sorted(found ^ set(GENRES))}")
    return frame


def genre_columns(X):
    """``X`` with ``genres`` replaced by its 19 0/1 columns ``GENRE_COLUMNS`` (int8), at the end.

    The input of the models that have no multi-valued columns
    (LogisticRegression, HistGradientBoosting, DeepCTR).
    """
    index = {genre: j for j, genre in enumerate(GENRES)}
    values = np.zeros((len(X), len(GENRES)), dtype=np.int8)
    for row, cell in enumerate(X["genres"]):
        values[row, [index[genre] for genre in cell]] = 1
    dummies = pd.DataFrame(values, columns=GENRE_COLUMNS, index=X.index)
    return pd.concat([X.drop(columns="genres"), dummies], axis=1)


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
    """The models' input (the ``FEATURES``, genres as one multi-valued column) and the target."""
    part = frame.iloc[rows]
    return part[FEATURES], part["target"].to_numpy()


# -- DeepCTR 0.9.4's AFM, in its own process ------------------------------------------

# Keras' early stopping with the AFM estimators' defaults: the epochs, the patience
# and the optimizer are theirs, so that the two AFMs differ by their model only.
DEEPCTR_FIT = {"epochs": 100, "batch_size": 256, "patience": 10, "learning_rate": 0.01}


def deepctr_data(X, embedding):
    """DeepCTR's linear and pairwise feature columns and inputs for a part of the frame.

    The categorical columns are ``SparseFeat`` indexed by their codes, which
    the whole frame's categories fix for every part; the genres, as their
    19 0/1 columns (``genre_columns``), go to ``weighted_columns`` (an
    embedding times the value: the pairs of sklearn_afm's multi-valued
    column, each present genre a feature of value 1) and, for the linear
    part, to one ``DenseFeat``.
    """
    from _reference import weighted_columns
    from deepctr.feature_column import DenseFeat, SparseFeat

    sparse = [
        SparseFeat(name, vocabulary_size=len(X[name].cat.categories), embedding_dim=embedding)
        for name in CATEGORICAL
    ]
    genres = GENRE_COLUMNS
    values = genre_columns(X)[genres].to_numpy(np.float32)
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
