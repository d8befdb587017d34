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

Every estimator runs with its default parameters (``random_state`` apart),
except in the second synthetic setting.
Run ``python benchmarks/quality.py`` (a few minutes on two cores);
``--splits``, ``--models`` and ``--skip-synthetic`` shorten it.
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
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from _machine import REPO_ROOT, machine_facts

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, nargs="+", default=[10, 11, 12, 13, 14])
    parser.add_argument(
        "--models", nargs="+", choices=sorted(SHORT_NAMES), default=["afm", "fm", "lr", "hgb"]
    )
    parser.add_argument("--synthetic-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--skip-telco", action="store_true")
    args = parser.parse_args()
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

if __name__ == "__main__":
    main()
