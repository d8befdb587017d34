"""Model quality with default parameters: AFM against its FM baseline and other models.

Part 1, the bundled Telco churn data, over the 5 splits
``train_test_split(test_size=0.1, random_state=10..14)`` (those of the
reference figures in the data's README), held-out ROC AUC, mean +- std:

- "one-hot": ``ColumnTransformer(StandardScaler on the numeric columns,
  OneHotEncoder on the string columns)`` then the model;
- "raw": the DataFrame as it is, numeric columns standardised, the string
  columns passed through (the AFM estimators' ``categorical_features``
  default embeds each category; HistGradientBoosting gets ordinal codes and
  its native categorical splits; LogisticRegression cannot, so it gets the
  one-hot encoding there too).

Part 2, synthetic data with planted pairwise interactions: categorical fields
whose categories carry random signs, and a logit made of a few products of
two fields' signs plus small main effects.  AFM and FM (``use_attention=False``)
are compared on held-out ROC AUC, with default parameters and with 30 epochs
without early stopping, on the DataFrame and on its sparse one-hot encoding;
the script reports where the planted pairs rank in ``attention_pairs_``.

Part 3, MovieLens 100k (``sklearn_afm.fetch_movielens_100k``, through
``_movielens``: downloaded once into a cache, about 2 MB; target
``rating >= 4``), a random 80/10/10 split per seed and a split by time (the
earliest 80 % train), ROC AUC and log-loss on the test part, mean +- std over
``--movielens-seeds``.  The validation part is the early stopping set of the
models that stop early (AFM, FM, HistGradientBoosting, DeepCTR);
LogisticRegression trains on the train part alone, as the others.  AFM and FM
get the DataFrame: the categorical columns embedded and the genres as one
multi-valued column (a tuple of genres a row, one field); LogisticRegression
the one-hot encoding of the categorical columns and the genres as 19 0/1
columns; HistGradientBoosting the 19 0/1 genre columns, native categorical
splits (``categorical_features="from_dtype"``) for the columns of at most 255
categories, which is its limit, and the ordinal codes of user_id, item_id and
zip_code (943, 1682 and 795 categories) as numbers; DeepCTR 0.9.4's AFM
(embedding 16) the same columns, the 0/1 genres as embeddings scaled by their
value, in its own process.

Every estimator runs with its default parameters (``random_state`` apart),
except in the second synthetic setting.
Run ``python benchmarks/quality.py`` for the three parts (on two cores, at
6fd41a6: about 8 minutes for Telco and planted pairs, 35 more for MovieLens
over 3 seeds); ``--splits``, ``--models``,
``--skip-telco``, ``--skip-synthetic``, ``--skip-movielens``,
``--movielens-models`` and ``--movielens-seeds`` shorten it.
"""

import argparse
import sys
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.compose import make_column_selector, make_column_transformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from _machine import REPO_ROOT, machine_facts
from _movielens import features_and_target, genre_columns, load_movielens, run_deepctr, split

# Measure the checkout this file lives in, not some installed copy.
sys.path.insert(0, REPO_ROOT)

from sklearn_afm import AFMClassifier, load_telco_churn  # noqa: E402

MODELS = {
    "AFM": lambda seed: AFMClassifier(random_state=seed),
    "FM (use_attention=False)": lambda seed: AFMClassifier(use_attention=False, random_state=seed),
    "LogisticRegression": lambda seed: LogisticRegression(max_iter=1000),
    "HistGradientBoosting": lambda seed: HistGradientBoostingClassifier(random_state=seed),
}
SHORT_NAMES = {"afm": "AFM", "fm": "FM (use_attention=False)", "lr": "LogisticRegression",
               "hgb": "HistGradientBoosting"}


def one_hot():
    return make_column_transformer(
        (StandardScaler(), make_column_selector(dtype_include="number")),
        (OneHotEncoder(handle_unknown="ignore"), make_column_selector(dtype_exclude="number")),
    )


def raw():
    return make_column_transformer(
        (StandardScaler(), make_column_selector(dtype_include="number")),
        remainder="passthrough",
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")


def native_categories():
    """Ordinal codes of the string columns, first: HistGradientBoosting's categorical input."""
    return make_column_transformer(
        (
            OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan),
            make_column_selector(dtype_exclude="number"),
        ),
        remainder="passthrough",
    )


def telco_pipeline(name, encoding, seed, n_categorical):
    model = MODELS[name](seed)
    if encoding == "one-hot" or name == "LogisticRegression":
        # LogisticRegression needs numbers: on "raw" it gets the one-hot encoding.
        return make_pipeline(one_hot(), model)
    if name == "HistGradientBoosting":
        model.set_params(categorical_features=np.arange(n_categorical))
        return make_pipeline(native_categories(), model)
    return make_pipeline(raw(), model)


def telco_study(names, splits):
    X, y = load_telco_churn(return_X_y=True)
    n_categorical = X.select_dtypes(exclude="number").shape[1]
    rows = []
    for name in names:
        for encoding in ("one-hot", "raw"):
            scores, seconds = [], []
            for split in splits:
                X_train, X_test, y_train, y_test = train_test_split(
                    X, y, test_size=0.1, random_state=split
                )
                model = telco_pipeline(name, encoding, split, n_categorical)
                start = time.perf_counter()
                model.fit(X_train, y_train)
                seconds.append(time.perf_counter() - start)
                scores.append(roc_auc_score(y_test, model.predict_proba(X_test)[:, 1]))
            rows.append((name, encoding, np.mean(scores), np.std(scores), np.mean(seconds)))
            print(
                f"  {name:26s} {encoding:8s} "
                + " ".join(f"{s:.4f}" for s in scores)
                + f"  ({np.mean(seconds):.1f} s/fit)",
                flush=True,
            )
    return rows


def planted_data(n_samples, n_fields, n_categories, planted, seed):
    """Categorical fields with random category signs; the logit multiplies planted pairs."""
    rng = np.random.RandomState(seed)
    codes = rng.randint(n_categories, size=(n_samples, n_fields))
    signs = rng.choice([-1.0, 1.0], size=(n_fields, n_categories))
    s = signs[np.arange(n_fields), codes]
    logit = sum(2.0 * s[:, i] * s[:, j] for i, j in planted) + 0.3 * s[:, : n_fields // 2].sum(1)
    y = (rng.uniform(size=n_samples) < 1 / (1 + np.exp(-logit))).astype(int)
    X = pd.DataFrame({f"f{j}": pd.Series(codes[:, j]).map("c{}".format) for j in range(n_fields)})
    return X, y


# FM overfits these data in log-loss long before its ranking peaks, so its
# early stopping picks an early epoch: the second setting shows both models
# trained for a fixed number of epochs instead.
SYNTHETIC_SETTINGS = {
    "defaults": {},
    "30 epochs": {"early_stopping": False, "max_iter": 30},
}


def synthetic_study(seeds, n_samples=5000, n_fields=10, n_categories=20):
    planted = [(0, 1), (2, 3), (4, 5)]
    names = {(f"f{i}", f"f{j}") for i, j in planted}
    rows = []
    for setting, params in SYNTHETIC_SETTINGS.items():
        for encoding in ("one-hot", "raw"):
            for use_attention in (True, False):
                scores, ranks = [], []
                for seed in seeds:
                    X, y = planted_data(n_samples, n_fields, n_categories, planted, seed)
                    X_train, X_test, y_train, y_test = train_test_split(
                        X, y, test_size=0.2, random_state=seed
                    )
                    model = AFMClassifier(
                        use_attention=use_attention, random_state=seed, **params
                    )
                    if encoding == "one-hot":
                        # Sparse CSR input, one column per category.
                        model = make_pipeline(OneHotEncoder(handle_unknown="ignore"), model)
                    model.fit(X_train, y_train)
                    scores.append(roc_auc_score(y_test, model.predict_proba(X_test)[:, 1]))
                    if use_attention and encoding == "raw":
                        table = model.attention_pairs_
                        is_planted = [
                            pair in names for pair in zip(table.feature_1, table.feature_2)
                        ]
                        # Worst rank (1-based) of a planted pair in the attention ranking.
                        ranks.append(int(np.flatnonzero(is_planted).max()) + 1)
                label = "AFM" if use_attention else "FM (use_attention=False)"
                rows.append((label, setting, encoding, np.mean(scores), np.std(scores), ranks))
                per_seed = " ".join(f"{s:.4f}" for s in scores)
                print(f"  {label:26s} {setting:10s} {encoding:8s} {per_seed}", flush=True)
    return rows, planted, (n_samples, n_fields, n_categories)


# HistGradientBoosting's native categorical splits take at most 255 categories
# (max_bins); these ids and zip codes have more, so they enter as ordinal codes.
HIGH_CARDINALITY = ["user_id", "item_id", "zip_code"]
MOVIELENS_MODELS = {**SHORT_NAMES, "deepctr": "DeepCTR AFM"}


def hgb_input(X):
    """``X`` with the high-cardinality columns as their category codes (numbers)."""
    return X.assign(**{name: X[name].cat.codes for name in HIGH_CARDINALITY})


def movielens_fit(name, seed, parts):
    """Fit one model on the train part (validation part for early stopping); test probabilities.

    AFM and FM take the genres as one multi-valued column; LogisticRegression
    and HistGradientBoosting, which have none, as 19 0/1 columns.
    """
    (X, y), (X_val, y_val), (X_test, _) = parts
    if name == "LogisticRegression":
        model = make_pipeline(one_hot(), MODELS[name](seed)).fit(genre_columns(X), y)
        return model.predict_proba(genre_columns(X_test))[:, 1]
    if name == "HistGradientBoosting":
        X, X_val, X_test = (hgb_input(genre_columns(part)) for part in (X, X_val, X_test))
        model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed)
        model.fit(X, y, X_val=X_val, y_val=y_val)
        return model.predict_proba(X_test)[:, 1]
    model = MODELS[name](seed).fit(X, y, X_val=X_val, y_val=y_val)
    return model.predict_proba(X_test)[:, 1]


def movielens_study(names, seeds):
    """ROC AUC, log-loss and fit seconds per model, split kind and seed on MovieLens 100k."""
    frame = load_movielens()
    results = {}
    for kind in ("random", "time"):
        for seed in seeds:
            parts = [features_and_target(frame, rows) for rows in split(frame, kind, seed)]
            y_test = parts[2][1]
            for name in names:
                start = time.perf_counter()
                if name == "DeepCTR AFM":
                    result = run_deepctr(kind, seed)
                    if "error" in result:
                        print(f"  {name} {kind} seed {seed}: {result['error']}", flush=True)
                        continue
                    scores = (result["auc"], result["log_loss"])
                else:
                    proba = movielens_fit(name, seed, parts)
                    scores = (roc_auc_score(y_test, proba), log_loss(y_test, proba))
                seconds = time.perf_counter() - start
                results.setdefault((name, kind), []).append((*scores, seconds))
                print(f"  {name:26s} {kind:6s} seed {seed}: ROC AUC {scores[0]:.4f} "
                      f"log-loss {scores[1]:.4f} ({seconds:.0f} s)", flush=True)
    return results


def print_movielens(results, seeds):
    """The MovieLens table: mean +- std over the seeds of each score, per split kind."""
    print(f"\nMovieLens 100k, rating >= 4, test part, mean +- std over seeds {seeds}")
    print("| model | random: ROC AUC | random: log-loss | time: ROC AUC | time: log-loss "
          "| fit s (random, time) |\n|---|---|---|---|---|---|")
    for name in dict.fromkeys(name for name, _ in results):
        cells, times = [], []
        for kind in ("random", "time"):
            runs = np.array(results.get((name, kind), [(np.nan,) * 3]))
            cells += [f"{runs[:, k].mean():.4f} +- {runs[:, k].std():.4f}" for k in (0, 1)]
            times.append(f"{runs[:, 2].mean():.0f}")
        print(f"| {name} | " + " | ".join(cells) + f" | {', '.join(times)} |")


def parse_args():
    """The command line: which parts to run, on which splits and seeds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, nargs="+", default=[10, 11, 12, 13, 14])
    parser.add_argument(
        "--models", nargs="+", choices=sorted(SHORT_NAMES), default=["afm", "fm", "lr", "hgb"]
    )
    parser.add_argument("--synthetic-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--skip-telco", action="store_true")
    parser.add_argument("--skip-movielens", action="store_true",
                        help="leave out the MovieLens 100k part (which downloads about 2 MB "
                             "once into sklearn_afm's data cache)")
    # The MovieLens part used to need this flag; it runs by default now.
    parser.add_argument("--movielens", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--movielens-models", nargs="+", choices=sorted(MOVIELENS_MODELS),
                        default=["afm", "fm", "lr", "hgb", "deepctr"])
    parser.add_argument("--movielens-seeds", type=int, nargs="+", default=[0, 1, 2])
    return parser.parse_args()


def main():
    args = parse_args()
    # The fixed-epoch setting stops at max_iter on purpose.
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    command = "python " + " ".join(sys.argv)
    print(command)
    print(machine_facts(with_load=True))

    if not args.skip_telco:
        print(f"\nTelco churn, splits random_state={args.splits}, held-out ROC AUC per split:")
        rows = telco_study([SHORT_NAMES[m] for m in args.models], args.splits)
    if not args.skip_synthetic:
        print("\nPlanted pairs, held-out ROC AUC per seed:")
        synthetic, planted, shape = synthetic_study(args.synthetic_seeds)
    if not args.skip_movielens:
        print("\nMovieLens 100k, per split kind and seed:")
        names = [MOVIELENS_MODELS[m] for m in args.movielens_models]
        movielens = movielens_study(names, args.movielens_seeds)

    print(f"\n{command}")
    if not args.skip_telco:
        print(f"\nTelco churn, ROC AUC mean +- std over {len(args.splits)} splits")
        print(f"| model | one-hot pipeline | raw DataFrame | fit time (raw) |\n|---|---|---|---|")
        table = {(name, encoding): (m, s, t) for name, encoding, m, s, t in rows}
        for name in dict.fromkeys(name for name, *_ in rows):
            cells = [f"{m:.4f} +- {s:.4f}" for m, s, _ in
                     (table[(name, e)] for e in ("one-hot", "raw"))]
            if name == "LogisticRegression":
                cells[1] += " (one-hot)"
            print(f"| {name} | {cells[0]} | {cells[1]} | {table[(name, 'raw')][2]:.1f} s |")
    if not args.skip_synthetic:
        n_samples, n_fields, n_categories = shape
        print(
            f"\nPlanted pairs {planted}: {n_samples} samples, {n_fields} categorical fields of "
            f"{n_categories} categories, seeds {args.synthetic_seeds}, 20 % held out"
        )
        print(
            "| model | parameters | input | ROC AUC mean +- std | worst rank of a planted "
            "pair in attention_pairs_ (per seed) |"
        )
        print("|---|---|---|---|---|")
        for label, setting, encoding, m, s, ranks in synthetic:
            print(
                f"| {label} | {setting} | {encoding} | {m:.4f} +- {s:.4f} | "
                f"{ranks if ranks else '-'} |"
            )
    if not args.skip_movielens:
        print_movielens(movielens, args.movielens_seeds)

if __name__ == "__main__":
    main()
