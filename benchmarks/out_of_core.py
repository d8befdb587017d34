#!/usr/bin/env python
"""Out-of-core benchmark: fit AFM on a large scipy sparse matrix in streamed batches.

Builds a one-hot-like CSR matrix (default 1,000,000 rows x 100,000 columns,
10 non-zeros per row) directly in float32 with int32 indices, without ever
creating a dense array, then fits ``AFMClassifier`` (or ``AFMRegressor``) for
one epoch and reports:

* the input size (``data + indices + indptr`` bytes),
* resident memory before the fit (TensorFlow already imported, data built),
  the peak during the fit and the growth over that baseline as a multiple of
  the input size,
* fit wall time and rows/second,
* prediction throughput on the first 100,000 rows,
* the training loss and a train ROC AUC (R^2 for the regressor) on those rows,
  to show the model learned the planted rule.

Smoke check (a few seconds after TensorFlow has loaded)::

    python benchmarks/out_of_core.py --rows 20000

See benchmarks/README.md for results.
"""

import argparse
import os
import platform
import resource
import sys
import threading
import time
import warnings

import numpy as np
from _machine import REPO_ROOT, command_line, machine_facts
import scipy.sparse as sp

# Benchmark the checkout this file lives in, not some installed copy.
sys.path.insert(0, REPO_ROOT)

import sklearn_afm  # noqa: E402
from sklearn_afm import AFMClassifier, AFMRegressor  # noqa: E402

MB = 1024.0 * 1024.0
# Fields whose codes carry the planted signal (see make_data).
SIGNAL_FIELDS = 3


# -- memory probes ---------------------------------------------------------------------


def _proc_status_kb(key):
    """Return a ``/proc/self/status`` entry (``VmRSS``, ``VmHWM``) in kB, or None."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_mb():
    """Current resident set size in MiB (``VmRSS``)."""
    kb = _proc_status_kb("VmRSS")
    return float("nan") if kb is None else kb / 1024.0


def maxrss_mb():
    """Process-lifetime peak RSS in MiB from ``getrusage`` (kB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MB if sys.platform == "darwin" else peak / 1024.0


def reset_hwm():
    """Reset the kernel's RSS high-water mark (``VmHWM``); return whether it worked.

    Writing ``5`` to ``/proc/self/clear_refs`` (Linux >= 4.0) resets the peak
    so that ``VmHWM`` afterwards is the exact peak of the following phase; the
    50 ms sampler below is the portable fallback.
    """
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    hwm, rss = _proc_status_kb("VmHWM"), _proc_status_kb("VmRSS")
    return hwm is not None and rss is not None and hwm <= rss + 4096


def hwm_mb():
    kb = _proc_status_kb("VmHWM")
    return float("nan") if kb is None else kb / 1024.0


class RSSSampler:
    """Sample ``VmRSS`` every ``interval`` seconds in a background thread; keep the peak."""

    def __init__(self, interval=0.05):
        self.interval = interval
        self.peak = 0.0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while True:
            self.peak = max(self.peak, rss_mb())
            self.samples += 1
            if self._stop.wait(self.interval):
                break

    def __enter__(self):
        self.peak = rss_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


class Phase:
    """Measure wall time, sampled peak RSS and (if resettable) exact peak RSS of a block."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.hwm_reset = reset_hwm()
        self.rss_before = rss_mb()
        self._sampler = RSSSampler().__enter__()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._start
        self._sampler.__exit__(*exc)
        self.sampled_peak = self._sampler.peak
        self.samples = self._sampler.samples
        self.hwm = hwm_mb() if self.hwm_reset else float("nan")
        self.maxrss = maxrss_mb()
        # The best estimate of the phase's peak: the kernel's reset
        # high-water mark when available, else the 50 ms samples.
        self.peak = max(self.sampled_peak, self.hwm) if self.hwm_reset else self.sampled_peak


# -- data ------------------------------------------------------------------------------


def make_data(rows, columns, nnz, seed, rule=None):
    """Build a CSR matrix of ``nnz`` one-hot fields and targets from a planted rule.

    Column ``f * size + c`` (``size = columns // nnz``) is code ``c`` of field
    ``f``, so each row has exactly ``nnz`` distinct columns, already sorted.
    Each code of fields 0-2 has a random sign ``s`` (the ``rule``); the score
    of a row is ``1.5 * s0 * s1 + s2`` (one pairwise interaction, one main
    effect) and the class is ``score + logistic noise > 0`` (balanced by
    symmetry); the regression target is ``score + N(0, 0.5^2)``.

    Parameters
    ----------
    rule : ndarray of shape (3, size), default=None
        The signs; drawn from ``seed`` when None.  Pass the training set's
        rule to draw held-out rows of the same task.

    Returns
    -------
    X : scipy.sparse.csr_array of float32 with int32 indices
    y_class : ndarray of int8
    y_value : ndarray of float32
    score : ndarray of float32
        The noiseless score, to compute the best achievable AUC.
    rule : ndarray of shape (3, size)
    """
    if nnz < SIGNAL_FIELDS:
        raise SystemExit(f"--nnz must be at least {SIGNAL_FIELDS} (the planted rule uses 3 fields)")
    size = columns // nnz
    if size < 2:
        raise SystemExit("--columns must be at least 2 * --nnz")
    total = rows * nnz
    index_dtype = np.int32 if max(total, columns) < np.iinfo(np.int32).max else np.int64
    rng = np.random.default_rng(seed)
    if rule is None:
        rule = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=(SIGNAL_FIELDS, size))
    # (rows, nnz) codes: these *are* the CSR column indices once the field
    # offsets are added in place, not a dense copy of X.
    codes = rng.integers(0, size, size=(rows, nnz), dtype=index_dtype)
    score = 1.5 * rule[0][codes[:, 0]] * rule[1][codes[:, 1]] + rule[2][codes[:, 2]]
    y_class = (score + rng.logistic(size=rows).astype(np.float32) > 0).astype(np.int8)
    y_value = (score + 0.5 * rng.standard_normal(rows, dtype=np.float32)).astype(np.float32)
    codes += np.arange(nnz, dtype=index_dtype) * index_dtype(size)
    indices = codes.reshape(-1)
    data = np.ones(total, dtype=np.float32)
    indptr = np.arange(0, total + 1, nnz, dtype=index_dtype)
    X = sp.csr_array((data, indices, indptr), shape=(rows, columns), copy=False)
    X.has_sorted_indices = True
    return X, y_class, y_value, score, rule


def nbytes(X):
    return X.data.nbytes + X.indices.nbytes + X.indptr.nbytes


# -- benchmark -------------------------------------------------------------------------


def run_estimator(kind, train, test, args, input_mb, baseline_mb):
    """Fit one estimator for one epoch, predict on a prefix, return a dict of results."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import r2_score, roc_auc_score

    common = dict(
        max_iter=1,
        early_stopping=False,
        batch_size=args.batch_size,
        random_state=args.seed,
        categorical_features=None,
    )
    X, y_class, y_value, _, _ = train
    X_test, y_class_test, y_value_test, score_test, _ = test
    if kind == "classifier":
        estimator, y, y_test = AFMClassifier(**common), y_class, y_class_test
    else:
        estimator, y, y_test = AFMRegressor(**common), y_value, y_value_test
    print(f"\n== {type(estimator).__name__}: fit one epoch on {X.shape[0]:,} x {X.shape[1]:,}")
    print(f"   {estimator!r}")

    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
    with warnings.catch_warnings():
        # One epoch never "converges"; that warning is expected here.
        warnings.simplefilter("ignore", ConvergenceWarning)
        with Phase("fit") as fit:
            if profiler is not None:
                profiler.enable()
            estimator.fit(X, y)
            if profiler is not None:
                profiler.disable()

    n_pred = min(args.predict_rows, X.shape[0])
    X_head = X[:n_pred]
    with Phase("predict") as predict:
        if kind == "classifier":
            out = estimator.predict_proba(X_head)[:, 1]
        else:
            out = estimator.predict(X_head)
    # Train scores alone can reflect memorisation (most columns occur in only
    # a few hundred rows); held-out rows of the same rule show generalisation,
    # and the noiseless score gives the best value reachable under the noise.
    if kind == "classifier":
        metric, quality_name = roc_auc_score, "ROC AUC"
        out_test = estimator.predict_proba(X_test)[:, 1]
    else:
        metric, quality_name = r2_score, "R^2"
        out_test = estimator.predict(X_test)
    quality = metric(y[:n_pred], out)
    quality_test = metric(y_test, out_test)
    quality_best = metric(y_test, score_test)

    growth = fit.peak - baseline_mb
    result = {
        "estimator": type(estimator).__name__,
        "fit_s": fit.seconds,
        "fit_rows_per_s": X.shape[0] / fit.seconds,
        "fit_peak_mb": fit.peak,
        "fit_sampled_peak_mb": fit.sampled_peak,
        "fit_hwm_mb": fit.hwm,
        "fit_samples": fit.samples,
        "fit_growth_mb": growth,
        "fit_growth_x_input": growth / input_mb,
        "fit_peak_x_input": fit.peak / input_mb,
        "maxrss_after_fit_mb": fit.maxrss,
        "predict_rows": n_pred,
        "predict_s": predict.seconds,
        "predict_rows_per_s": n_pred / predict.seconds,
        "predict_peak_mb": predict.peak,
        "loss_curve": list(estimator.loss_curve_),
        "quality_name": quality_name,
        "quality": quality,
        "quality_test": quality_test,
        "quality_best": quality_best,
        "attention_is_none": estimator.attention_weights_ is None,
        "device": estimator.device_,
    }
    print(f"   fit: {fit.seconds:.1f} s, {result['fit_rows_per_s']:,.0f} rows/s")
    print(
        f"   RSS: before fit {baseline_mb:,.0f} MiB, peak during fit {fit.peak:,.0f} MiB "
        f"(sampled every 50 ms: {fit.sampled_peak:,.0f} MiB over {fit.samples} samples; "
        f"kernel VmHWM after reset: "
        + (f"{fit.hwm:,.0f} MiB" if fit.hwm_reset else "unavailable")
        + f"), growth {growth:,.0f} MiB = {growth / input_mb:.2f} x input"
    )
    print(f"   getrusage ru_maxrss (process lifetime peak) after fit: {fit.maxrss:,.0f} MiB")
    print(f"   loss_curve_: {[round(v, 5) for v in estimator.loss_curve_]}")
    print(
        f"   attention_weights_ is None: {result['attention_is_none']} "
        f"(expected for n_features_in_={estimator.n_features_in_:,} > 4096)"
    )
    print(
        f"   predict on first {n_pred:,} rows: {predict.seconds:.2f} s, "
        f"{result['predict_rows_per_s']:,.0f} rows/s, peak RSS {predict.peak:,.0f} MiB"
    )
    print(
        f"   {quality_name}: train (those rows) {quality:.4f}, held-out "
        f"({X_test.shape[0]:,} new rows of the same rule) {quality_test:.4f}, "
        f"best possible (noiseless score) {quality_best:.4f}"
    )
    if profiler is not None:
        import pstats

        print("\n   cProfile of fit (top 25 by internal time):")
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats("tottime").print_stats(25)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="number of rows")
    parser.add_argument("--columns", type=int, default=100_000, help="number of columns")
    parser.add_argument("--nnz", type=int, default=10, help="non-zeros (one-hot fields) per row")
    parser.add_argument("--batch-size", type=int, default=1024, help="estimator batch_size")
    parser.add_argument("--seed", type=int, default=0, help="data and estimator seed")
    parser.add_argument(
        "--estimator",
        choices=["classifier", "regressor", "both"],
        default="classifier",
        help="which estimator(s) to fit",
    )
    parser.add_argument(
        "--predict-rows", type=int, default=100_000, help="rows for predict throughput and AUC"
    )
    parser.add_argument("--profile", action="store_true", help="run fit under cProfile")
    args = parser.parse_args(argv)

    command = command_line()
    print(f"command: {command}")
    print(f"sklearn_afm {sklearn_afm.__version__} from {os.path.dirname(sklearn_afm.__file__)}")

    # TensorFlow's own memory belongs to the baseline, not to the fit.
    start = time.perf_counter()
    from sklearn_afm._runtime import import_tensorflow

    tf = import_tensorflow()
    import keras
    import scipy
    import sklearn

    print(
        f"TensorFlow {tf.__version__} (imported in {time.perf_counter() - start:.1f} s), "
        f"Keras {keras.__version__}, scikit-learn {sklearn.__version__}, numpy "
        f"{np.__version__}, scipy {scipy.__version__}, Python {platform.python_version()}"
    )
    print(f"machine: {machine_facts(with_load=True)}")
    rss_tf = rss_mb()
    print(f"RSS after importing TensorFlow: {rss_tf:,.0f} MiB")

    with Phase("data") as build:
        train = make_data(args.rows, args.columns, args.nnz, args.seed)
    X, y_class = train[0], train[1]
    n_test = min(args.predict_rows, args.rows)
    test = make_data(n_test, args.columns, args.nnz, args.seed + 1, rule=train[4])
    input_mb = nbytes(X) / MB
    print(
        f"data: {X.shape[0]:,} x {X.shape[1]:,} CSR, nnz {X.nnz:,}, data {X.data.dtype}, "
        f"indices {X.indices.dtype}; input {input_mb:,.1f} MiB "
        f"(data {X.data.nbytes / MB:.1f} + indices {X.indices.nbytes / MB:.1f} + "
        f"indptr {X.indptr.nbytes / MB:.1f}); built in {build.seconds:.1f} s, "
        f"peak RSS while building {build.peak:,.0f} MiB; positive rate {y_class.mean():.3f}"
    )
    from sklearn_afm._batching import as_row_source

    print(f"estimator uses the input as is (no copy): {as_row_source(X) is X}")

    baseline_mb = rss_mb()
    print(f"RSS before fit (TensorFlow imported, data built): {baseline_mb:,.0f} MiB")

    kinds = ["classifier", "regressor"] if args.estimator == "both" else [args.estimator]
    results = []
    for kind in kinds:
        baseline_mb = rss_mb()
        results.append(run_estimator(kind, train, test, args, input_mb, baseline_mb))
        results[-1]["baseline_mb"] = baseline_mb

    print("\n== summary")
    print(f"command: {command}")
    metric = " / ".join(dict.fromkeys(r["quality_name"] for r in results))
    rows = [
        ("input (data+indices+indptr)", lambda r: f"{input_mb:,.1f} MiB"),
        ("RSS after TF import", lambda r: f"{rss_tf:,.0f} MiB"),
        ("RSS before fit", lambda r: f"{r['baseline_mb']:,.0f} MiB"),
        ("peak RSS during fit", lambda r: f"{r['fit_peak_mb']:,.0f} MiB"),
        ("  = x input", lambda r: f"{r['fit_peak_x_input']:.1f}"),
        ("growth over baseline", lambda r: f"{r['fit_growth_mb']:,.0f} MiB"),
        ("  = x input", lambda r: f"{r['fit_growth_x_input']:.2f}"),
        ("ru_maxrss (process peak)", lambda r: f"{r['maxrss_after_fit_mb']:,.0f} MiB"),
        ("fit wall time (1 epoch)", lambda r: f"{r['fit_s']:.1f} s"),
        ("fit rows/s", lambda r: f"{r['fit_rows_per_s']:,.0f}"),
        ("predict rows/s", lambda r: f"{r['predict_rows_per_s']:,.0f} ({r['predict_rows']:,} rows)"),
        ("peak RSS during predict", lambda r: f"{r['predict_peak_mb']:,.0f} MiB"),
        ("training loss (loss_curve_)", lambda r: f"{r['loss_curve'][-1]:.4f}"),
        ("train " + metric, lambda r: f"{r['quality']:.4f}"),
        ("held-out " + metric, lambda r: f"{r['quality_test']:.4f}"),
        ("  best possible", lambda r: f"{r['quality_best']:.4f}"),
        ("attention_weights_ is None", lambda r: str(r["attention_is_none"])),
        ("device", lambda r: r["device"]),
    ]
    header = f"{'':30s}" + "".join(f"{r['estimator']:>24s}" for r in results)
    print(header)
    for label, cell in rows:
        print(f"{label:30s}" + "".join(f"{cell(r):>24s}" for r in results))
    print(
        "note: wall times and RSS depend on other processes sharing the machine; "
        "repeat runs to judge the noise."
    )


if __name__ == "__main__":
    main()
