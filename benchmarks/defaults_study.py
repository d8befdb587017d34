"""Which default parameters make AFM win: a study across MovieLens 100k, Telco and planted pairs.

Issue 12 asks for defaults chosen by measurement across data sets, not on
one table.  This script evaluates candidate settings of the parameters of
:class:`sklearn_afm.AFMClassifier` (optimizer, learning rate, batch size, L2
on the attention network ``alpha``, ``dropout`` on the pooled vector,
``attention_dropout``, sizes, early stopping, ``init="fm"``: the paper's
pre-training, an FM fitted first and the AFM started from its embeddings,
linear weights and bias), plus prototypes of what CTR practice adds, which
the estimators do not have (they live in this script only):

- ``embedding_l2``: an L2 penalty on the embeddings, either on the rows a
  batch looks up (``embedding_l2_mode="batch"``: ``lambda * sum ||v_i||^2``
  over each row's present features, averaged over the batch; the gradient
  stays sparse) or on the whole table (``"table"``: a Keras
  ``embeddings_regularizer``, as DeepCTR's ``l2_reg_embedding``);
- ``linear_l2``: the same penalty (batch form) on the first-order weights
  ``w_i`` (DeepCTR's ``l2_reg_linear``);
- ``stand_in_rate``: the share of training cells of categorical columns
  replaced by their column's unknown (or missing) category, 1 % in the
  package (``_batching.STAND_IN_RATE``, so that those embeddings are
  trained); more is a field-level dropout toward "an average category",
  which is what a new user of the time split is.

Every candidate is a change to the defaults the study started from,
``PREVIOUS`` (``dropout=0.0, init="random", alpha=1e-4``).  The sweep first
chose ``dropout=0.5`` and ``init="fm"`` (``first-choice``); with the FM
pre-training the attention's L2 was swept again (``first-choice-alpha-*``);
``alpha=1e-3`` (``first-choice-alpha-0.001``) was the defaults from ``bfb81e3``
to ``6fd41a6``, and ``defaults``, the package's defaults since, adds
``alpha="auto"``: of 1e-4 and 0.1, the value with the better validation score.

Stage ``sweep`` (model selection, one seed): the *validation* ROC AUC of each
candidate on

- ``ml-random`` and ``ml-time``: MovieLens 100k (``_movielens``), random and
  time split, seed 0; fitted on the train part with early stopping on the
  validation part (``fit(X_val=, y_val=)``, as ``quality.py`` does), AUC on
  the validation part;
- ``telco``: Telco churn, splits ``random_state=10, 11, 12`` of
  ``quality.py``; within each split's train part a further 10 % is held out
  (``train_test_split(random_state=split)``), the model fitted on the rest
  as ``quality.py`` fits it (the raw DataFrame, its own early stopping), AUC
  on that held-out part;
- ``planted``: ``quality.planted_data``, seed 0, raw DataFrame, 20 % of the
  train part held out; AUC and the worst rank of a planted pair in
  ``attention_pairs_`` (3 means the three planted pairs rank first).

Stage ``final`` (``--final NAME ...``): the *test* scores of the named
candidates and of FM, LogisticRegression and HistGradientBoosting with the
defaults of ``quality.py``: MovieLens both splits over ``--seeds``, Telco the
5-split table on both inputs, planted pairs over ``--seeds``.  The test parts
are never used by the sweep.

Stage ``regressor``: the regressor shares the classifier's defaults; the
test R^2 of ``AFMRegressor`` with the previous defaults, each change alone
and both (``REGRESSOR_SETTINGS``) on the MovieLens rating (random split,
``--seeds``) and Telco's monthly charges (the 5 Telco splits).

Every result is appended as one JSON line to ``--results`` (a finished
(candidate, data set, seed, stage) is not run again), so the study can be
stopped and resumed; the tables are printed from that file.

    python benchmarks/defaults_study.py                       # sweep, all candidates
    python benchmarks/defaults_study.py --candidates defaults adagrad-0.1
    python benchmarks/defaults_study.py --stage final --final defaults NAME --seeds 0 1 2
    python benchmarks/defaults_study.py --stage regressor --seeds 0 1 2   # AFMRegressor
    python benchmarks/defaults_study.py --list                # the candidates
"""

import argparse
import contextlib
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss, r2_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from _machine import machine_facts
from _movielens import FEATURES, features_and_target, load_movielens, split
from quality import movielens_fit, one_hot, planted_data, raw, telco_study

import sklearn_afm._base as afm_base  # noqa: E402 (quality put the checkout on sys.path)
import sklearn_afm._batching as afm_batching  # noqa: E402
import sklearn_afm._model as afm_model  # noqa: E402
from sklearn_afm import AFMClassifier, AFMRegressor, load_telco_churn  # noqa: E402

PLANTED = [(0, 1), (2, 3), (4, 5)]
PLANTED_NAMES = {(f"f{i}", f"f{j}") for i, j in PLANTED}
SWEEP_TELCO_SPLITS = [10, 11, 12]
FINAL_TELCO_SPLITS = [10, 11, 12, 13, 14]
DATASETS = ["ml-random", "ml-time", "telco", "planted"]


# -- the candidates: estimator parameters, and the prototypes' settings ---------------

def candidate(params=None, **extras):
    return {"params": params or {}, "extras": extras}


# The defaults before the study; each candidate changes them.
PREVIOUS = {"dropout": 0.0, "init": "random", "alpha": 1e-4}
# The study's first choice, on which the attention L2 was swept again.
FIRST_CHOICE = {"dropout": 0.5, "init": "fm"}
PAPER = {"solver": "adagrad", "learning_rate_init": 0.1, "alpha": 1e-2, "dropout": 0.5}
CANDIDATES = {
    "previous-defaults": candidate(),
    "lr-0.003": candidate({"learning_rate_init": 0.003}),
    "lr-0.03": candidate({"learning_rate_init": 0.03}),
    "batch-64": candidate({"batch_size": 64}),
    "batch-1024": candidate({"batch_size": 1024}),
    "batch-1024-lr-0.03": candidate({"batch_size": 1024, "learning_rate_init": 0.03}),
    "adagrad-0.05": candidate({"solver": "adagrad", "learning_rate_init": 0.05}),
    "adagrad-0.1": candidate({"solver": "adagrad", "learning_rate_init": 0.1}),
    "adagrad-0.2": candidate({"solver": "adagrad", "learning_rate_init": 0.2}),
    "alpha-1e-3": candidate({"alpha": 1e-3}),
    "alpha-1e-2": candidate({"alpha": 1e-2}),
    "alpha-1e-1": candidate({"alpha": 1e-1}),
    "dropout-0.2": candidate({"dropout": 0.2}),
    "dropout-0.5": candidate({"dropout": 0.5}),
    "attention-dropout-0.2": candidate({"attention_dropout": 0.2}),
    "embedding-8": candidate({"embedding_size": 8}),
    "embedding-32": candidate({"embedding_size": 32}),
    "attention-8": candidate({"attention_size": 8}),
    "attention-32": candidate({"attention_size": 32}),
    "patience-5": candidate({"n_iter_no_change": 5}),
    "emb-l2-batch-1e-5": candidate(embedding_l2=1e-5),
    "emb-l2-batch-1e-4": candidate(embedding_l2=1e-4),
    "emb-l2-batch-1e-3": candidate(embedding_l2=1e-3),
    "emb-l2-table-1e-6": candidate(embedding_l2=1e-6, embedding_l2_mode="table"),
    "emb-l2-table-1e-5": candidate(embedding_l2=1e-5, embedding_l2_mode="table"),
    "linear-l2-1e-5": candidate(linear_l2=1e-5),
    "linear-l2-1e-4": candidate(linear_l2=1e-4),
    "linear-l2-1e-3": candidate(linear_l2=1e-3),
    "stand-in-0.05": candidate(stand_in_rate=0.05),
    "stand-in-0.1": candidate(stand_in_rate=0.1),
    "stand-in-0.2": candidate(stand_in_rate=0.2),
    "fm-init": candidate({"init": "fm"}),
    "paper": candidate(PAPER),
    "paper-fm-init": candidate({**PAPER, "init": "fm"}),
    "first-choice": candidate(FIRST_CHOICE),
    # With the FM pre-training, the attention's L2 again: with a weak one the
    # attention overfits the pre-trained embeddings (see benchmarks/README.md).
    **{f"first-choice-alpha-{alpha:g}": candidate({**FIRST_CHOICE, "alpha": alpha})
       for alpha in (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)},
    # What the study chose: the package's defaults since.
    "defaults": candidate({**FIRST_CHOICE, "alpha": "auto"}),
}


PROTOTYPE_SETTINGS = ("embedding_l2", "embedding_l2_mode", "linear_l2", "stand_in_rate")


def add_combinations(specs):
    """Candidates given on the command line as ``name=param:value,param:value``.

    Values are parsed as JSON (numbers, strings in quotes not needed for the
    solver: a value that is not JSON stays a string); the names of
    ``PROTOTYPE_SETTINGS`` are the prototypes' settings.
    """
    for spec in specs:
        name, _, body = spec.partition("=")
        params, extras = {}, {}
        for item in filter(None, body.split(",")):
            key, _, value = item.partition(":")
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
            (extras if key in PROTOTYPE_SETTINGS else params)[
                key
            ] = value
        CANDIDATES[name] = candidate(params, **extras)


# -- the prototypes, inside this script only -------------------------------------------

class StudyNetwork(afm_model.AFMNetwork):
    """AFMNetwork with an optional L2 penalty on the embeddings (the study's prototype)."""

    def __init__(self, *args, embedding_l2=0.0, embedding_l2_mode="batch", linear_l2=0.0,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.embedding_l2 = embedding_l2
        self.embedding_l2_mode = embedding_l2_mode
        self.linear_l2 = linear_l2
        if embedding_l2 and embedding_l2_mode == "table":
            import keras

            # Read by Embedding.build, which AFMNetwork.build calls later.
            self.embeddings.embeddings_regularizer = keras.regularizers.L2(embedding_l2)

    def call(self, inputs, training=False):
        out = super().call(inputs, training=training)
        if not training:
            return out
        from keras import ops

        indices, values = inputs
        present = ops.expand_dims(ops.sign(ops.abs(values)), -1)
        rows = ops.cast(ops.shape(indices)[0], "float32")
        # Penalties on the rows the batch looks up: their gradients stay sparse.
        if self.embedding_l2 and self.embedding_l2_mode == "batch":
            looked_up = self.embeddings(indices) * present
            self.add_loss(self.embedding_l2 * ops.sum(ops.square(looked_up)) / rows)
        if self.linear_l2:
            looked_up = self.linear(indices) * present
            self.add_loss(self.linear_l2 * ops.sum(ops.square(looked_up)) / rows)
        return out


# The engine imports AFMNetwork from _model when it builds a network: the study's
# network, identical with its defaults, serves every fit of this process.
afm_model.AFMNetwork = StudyNetwork
_build_engine = afm_base.build_engine


@contextlib.contextmanager
def prototype(network_extras, stand_in_rate=None):
    """Fits in this block (their FM pre-training too) get the extra network settings.

    The extras go into the fit's network configuration (so the traced steps
    of different settings are not shared, and the trained network keeps them).
    """

    def build_engine(config, *args, **kwargs):
        config.update(network_extras)
        return _build_engine(config, *args, **kwargs)

    package_rate = afm_batching.STAND_IN_RATE
    afm_base.build_engine = build_engine
    if stand_in_rate is not None:
        # Read by _batching.training_source at each fit.
        afm_batching.STAND_IN_RATE = stand_in_rate
    try:
        yield
    finally:
        afm_base.build_engine = _build_engine
        afm_batching.STAND_IN_RATE = package_rate


class Candidate(ClassifierMixin, BaseEstimator):
    """An AFMClassifier with ``PREVIOUS`` changed by ``params``, and the prototypes' settings."""

    def __init__(self, params=None, embedding_l2=0.0, embedding_l2_mode="batch",
                 linear_l2=0.0, stand_in_rate=None, random_state=None):
        self.params = params
        self.embedding_l2 = embedding_l2
        self.embedding_l2_mode = embedding_l2_mode
        self.linear_l2 = linear_l2
        self.stand_in_rate = stand_in_rate
        self.random_state = random_state

    def fit(self, X, y, **fit_params):
        params = {**PREVIOUS, **(self.params or {}), "random_state": self.random_state}
        # Only settings that are on enter the network's configuration: a candidate
        # without them shares the package's traced steps.
        extras = {key: value for key, value in [
            ("embedding_l2", self.embedding_l2), ("linear_l2", self.linear_l2)] if value}
        if self.embedding_l2:
            extras["embedding_l2_mode"] = self.embedding_l2_mode
        self.model_ = AFMClassifier(**params)
        with prototype(extras, self.stand_in_rate):
            self.model_.fit(X, y, **fit_params)
        self.classes_ = self.model_.classes_
        self.n_iter_ = self.model_.n_iter_
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(X)

    @property
    def attention_pairs_(self):
        return self.model_.attention_pairs_


def make_candidate(name, seed):
    spec = CANDIDATES[name]
    return Candidate(spec["params"], random_state=seed, **spec["extras"])


# -- the data sets ----------------------------------------------------------------------

_MOVIELENS = {}


def movielens_frame():
    if "frame" not in _MOVIELENS:
        _MOVIELENS["frame"] = load_movielens()
    return _MOVIELENS["frame"]


def movielens_parts(kind, seed):
    frame = movielens_frame()
    return [features_and_target(frame, rows) for rows in split(frame, kind, seed)]


def worst_planted_rank(model):
    table = model.attention_pairs_
    planted = [pair in PLANTED_NAMES for pair in zip(table.feature_1, table.feature_2)]
    return int(np.flatnonzero(planted).max()) + 1


def evaluate(name, dataset, seed, stage):
    """Scores of candidate ``name`` on one data set and seed (split): validation or test part."""
    start = time.perf_counter()
    result = {}
    model = make_candidate(name, seed)
    if dataset.startswith("ml-"):
        (X, y), (X_val, y_val), (X_test, y_test) = movielens_parts(dataset[3:], seed)
        model.fit(X, y, X_val=X_val, y_val=y_val)
        X_score, y_score = (X_val, y_val) if stage == "sweep" else (X_test, y_test)
    elif dataset.startswith("telco"):
        X, y = load_telco_churn(return_X_y=True)
        X, X_test, y, y_test = train_test_split(X, y, test_size=0.1, random_state=seed)
        if stage == "sweep":
            X, X_test, y, y_test = train_test_split(X, y, test_size=0.1, random_state=seed)
        encoding = one_hot() if dataset == "telco-one-hot" else raw()
        model = make_pipeline(encoding, model).fit(X, y)
        X_score, y_score = X_test, y_test
    else:
        X, y = planted_data(5000, 10, 20, PLANTED, seed)
        X, X_test, y, y_test = train_test_split(X, y, test_size=0.2, random_state=seed)
        if stage == "sweep":
            X, X_test, y, y_test = train_test_split(X, y, test_size=0.2, random_state=seed)
        if dataset == "planted-one-hot":
            model = make_pipeline(OneHotEncoder(handle_unknown="ignore"), model).fit(X, y)
        else:
            model.fit(X, y)
            result["rank"] = worst_planted_rank(model)
        X_score, y_score = X_test, y_test
    proba = model.predict_proba(X_score)[:, 1]
    estimator = model[-1] if hasattr(model, "steps") else model
    result.update(auc=roc_auc_score(y_score, proba), log_loss=log_loss(y_score, proba),
                  n_iter=int(estimator.n_iter_), seconds=time.perf_counter() - start)
    return result


# The regressor shares the classifier's defaults: are they right for it too?
REGRESSOR_SETTINGS = {
    "previous-defaults": PREVIOUS,
    "dropout-0.5": {**PREVIOUS, "dropout": 0.5},
    "fm-init": {**PREVIOUS, "init": "fm"},
    "first-choice": {**PREVIOUS, **FIRST_CHOICE},
    "defaults": {},
}


def regressor_result(name, dataset, seed):
    """Test R^2 of ``AFMRegressor`` with ``REGRESSOR_SETTINGS[name]`` on one split.

    ``ml-rating``: the MovieLens rating (1 to 5) on the random split of
    ``seed``, early stopping on its validation part; ``telco-charges``: Telco's
    ``MonthlyCharges`` from the other columns (``TotalCharges``, about
    ``tenure`` times the charges, left out), the Telco split ``seed``, raw input.
    """
    start = time.perf_counter()
    model = AFMRegressor(random_state=seed, **REGRESSOR_SETTINGS[name])
    if dataset == "ml-rating":
        frame = movielens_frame()
        parts = [(frame.iloc[rows][FEATURES], frame.iloc[rows]["rating"].to_numpy(float))
                 for rows in split(frame, "random", seed)]
        (X, y), (X_val, y_val), (X_test, y_test) = parts
        model.fit(X, y, X_val=X_val, y_val=y_val)
    else:
        X, _ = load_telco_churn(return_X_y=True)
        y = X.pop("MonthlyCharges").to_numpy()
        X = X.drop(columns="TotalCharges")
        X, X_test, y, y_test = train_test_split(X, y, test_size=0.1, random_state=seed)
        model = make_pipeline(raw(), model).fit(X, y)
    estimator = model[-1] if hasattr(model, "steps") else model
    return {"r2": r2_score(y_test, model.predict(X_test)), "n_iter": int(estimator.n_iter_),
            "seconds": time.perf_counter() - start}


def baseline_results(seeds):
    """Test scores of FM, LR and HGB with quality.py's defaults (MovieLens and Telco)."""
    results = []
    names = ["FM (use_attention=False)", "LogisticRegression", "HistGradientBoosting"]
    for kind in ("random", "time"):
        for seed in seeds:
            parts = movielens_parts(kind, seed)
            for name in names:
                start = time.perf_counter()
                proba = movielens_fit(name, seed, parts)
                y_test = parts[2][1]
                results.append({"candidate": name, "dataset": f"ml-{kind}", "seed": seed,
                                "stage": "final", "auc": roc_auc_score(y_test, proba),
                                "log_loss": log_loss(y_test, proba),
                                "seconds": time.perf_counter() - start})
                print(f"  {name:26s} ml-{kind:6s} seed {seed}: {results[-1]['auc']:.4f}",
                      flush=True)
    rows = telco_study(names, FINAL_TELCO_SPLITS)
    for name, encoding, mean, std, seconds in rows:
        dataset = "telco" if encoding == "raw" else "telco-one-hot"
        results.append({"candidate": name, "dataset": dataset, "seed": "5 splits",
                        "stage": "final", "auc": mean, "auc_std": std, "seconds": seconds})
    return results


# -- results file and tables ------------------------------------------------------------

def read_results(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append_result(path, record):
    with path.open("a") as handle:
        handle.write(json.dumps(record) + "\n")


def summary(records, name, dataset, stage):
    runs = [r for r in records if (r["candidate"], r["dataset"], r["stage"]) == (name, dataset,
                                                                                stage)]
    if not runs:
        return None
    if "auc_std" in runs[0]:
        return runs[0]["auc"], runs[0]["auc_std"], None, len(FINAL_TELCO_SPLITS)
    aucs = [r["auc"] for r in runs]
    ranks = [r["rank"] for r in runs if "rank" in r]
    return np.mean(aucs), np.std(aucs), ranks or None, len(runs)


def print_table(records, names, datasets, stage):
    title = "validation" if stage == "sweep" else "test"
    print(f"\n{title} ROC AUC, mean +- std over seeds/splits (n), worst planted rank")
    print("| candidate | " + " | ".join(datasets) + " | mean of data sets |")
    print("|---|" + "---|" * (len(datasets) + 1))
    for name in names:
        cells, means = [], []
        for dataset in datasets:
            found = summary(records, name, dataset, stage)
            if found is None:
                cells.append("")
                continue
            mean, std, ranks, n = found
            means.append(mean)
            cell = f"{mean:.4f}" if n == 1 else f"{mean:.4f} +- {std:.4f}"
            if ranks:
                cell += f" (rank {max(ranks)})"
            cells.append(cell)
        overall = f"{np.mean(means):.4f}" if len(means) == len(datasets) else ""
        print(f"| {name} | " + " | ".join(cells) + f" | {overall} |")


def plan(stage, names, seeds):
    """(candidate, data set, seed) triples of a stage."""
    if stage == "sweep":
        per_dataset = {"ml-random": [0], "ml-time": [0], "telco": SWEEP_TELCO_SPLITS,
                       "planted": [0]}
        datasets = DATASETS
    else:
        per_dataset = {"ml-random": seeds, "ml-time": seeds, "telco": FINAL_TELCO_SPLITS,
                       "telco-one-hot": FINAL_TELCO_SPLITS, "planted": seeds,
                       "planted-one-hot": seeds}
        datasets = list(per_dataset)
    return [(n, d, s) for n in names for d in datasets for s in per_dataset[d]], datasets


def regressor_stage(args, records, command):
    """Run and print the regressor check: ``REGRESSOR_SETTINGS`` on ``regressor_result``'s data."""
    splits = {"ml-rating": args.seeds, "telco-charges": FINAL_TELCO_SPLITS}
    done = {(r["candidate"], r["dataset"], r["seed"]) for r in records if r["stage"] == "regressor"}
    for name in REGRESSOR_SETTINGS:
        for dataset, seeds in splits.items():
            for seed in seeds:
                if (name, dataset, seed) in done:
                    continue
                result = regressor_result(name, dataset, seed)
                record = {"candidate": name, "dataset": dataset, "seed": seed,
                          "stage": "regressor", "params": REGRESSOR_SETTINGS[name], **result}
                append_result(args.results, record)
                records.append(record)
                print(f"  {name:18s} {dataset:14s} {seed:>3}: R^2 {result['r2']:.4f} "
                      f"({result['n_iter']} epochs, {result['seconds']:.0f} s)", flush=True)
    print(f"\n{command}\n\ntest R^2 of AFMRegressor, mean +- std over seeds/splits")
    print("| setting | " + " | ".join(splits) + " |")
    print("|---|" + "---|" * len(splits))
    for name in REGRESSOR_SETTINGS:
        cells = []
        for dataset in splits:
            r2 = [r["r2"] for r in records if r["stage"] == "regressor"
                  and (r["candidate"], r["dataset"]) == (name, dataset)]
            cells.append(f"{np.mean(r2):.4f} +- {np.std(r2):.4f}" if r2 else "")
        print(f"| {name} | " + " | ".join(cells) + " |")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=["sweep", "final", "regressor"], default="sweep",
                        help="regressor: the regressor check, REGRESSOR_SETTINGS")
    parser.add_argument("--candidates", nargs="+", help="sweep these (default: all)")
    parser.add_argument("--final", nargs="+", default=["defaults"],
                        help="the candidates of the final stage")
    parser.add_argument("--define", nargs="+", default=[], metavar="NAME=PARAM:VALUE,...",
                        help="more candidates, e.g. best=solver:adagrad,learning_rate_init:0.1")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="seeds of the final stage (MovieLens, planted pairs)")
    parser.add_argument("--no-baselines", action="store_true",
                        help="final stage without FM/LR/HGB")
    parser.add_argument("--results", type=Path, default=Path("defaults_study.jsonl"))
    parser.add_argument("--datasets", nargs="+", help="only these data sets")
    parser.add_argument("--list", action="store_true")
    return parser.parse_args()


def main():
    args = parse_args()
    add_combinations(args.define)
    if args.list:
        for name, spec in CANDIDATES.items():
            print(f"{name:24s} {spec['params']} {spec['extras']}")
        return
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    command = "python " + " ".join(sys.argv)
    print(command)
    print(machine_facts(with_load=True))
    records = read_results(args.results)
    if args.stage == "regressor":
        regressor_stage(args, records, command)
        return
    names = args.candidates or list(CANDIDATES) if args.stage == "sweep" else args.final
    unknown = [name for name in names if name not in CANDIDATES]
    if unknown:
        raise SystemExit(f"unknown candidates: {unknown}; see --list")
    done = {(r["candidate"], r["dataset"], r["seed"], r["stage"]) for r in records}
    runs, datasets = plan(args.stage, names, args.seeds)
    if args.datasets:
        datasets = [d for d in datasets if d in args.datasets]
        runs = [run for run in runs if run[1] in datasets]
    for name, dataset, seed in runs:
        if (name, dataset, seed, args.stage) in done:
            continue
        result = evaluate(name, dataset, seed, args.stage)
        record = {"candidate": name, "dataset": dataset, "seed": seed, "stage": args.stage,
                  **CANDIDATES[name], **result}
        append_result(args.results, record)
        records.append(record)
        rank = f" rank {result['rank']}" if "rank" in result else ""
        print(f"  {name:24s} {dataset:15s} {seed:>3}: AUC {result['auc']:.4f}{rank} "
              f"({result['n_iter']} epochs, {result['seconds']:.0f} s)", flush=True)
    if args.stage == "final" and not args.no_baselines:
        if not any(r["candidate"] == "LogisticRegression" for r in records):
            for record in baseline_results(args.seeds):
                append_result(args.results, record)
                records.append(record)
        names = names + ["FM (use_attention=False)", "LogisticRegression",
                         "HistGradientBoosting"]
    print(f"\n{command}")
    print_table(records, names, datasets, args.stage)


if __name__ == "__main__":
    main()
