"""The throughput benchmark's results table: formatting, targets, verdicts, printing.

``print_table`` takes the driver's results (one dict per worker, keyed by
``(impl, shape, batch_size)`` or by the worker's name for the one-off
workers) and prints the run's facts, one Markdown table of every figure
with the issue's targets, and the notes on what failed.  A missing or failed
worker makes its cells read "n/a" instead of stopping the report.
"""

import itertools

from _machine import checkout_state, load_average, machine_facts, versions
from _shapes import (
    FRAPPE_FIELDS,
    SHAPES,
    TELCO_COLUMNS,
    TELCO_ROWS,
    epochs_for,
    flops_per_row,
    frappe_rows,
    predict_repeats,
)

# Targets of the issue (ratios measured in the same run).
TARGET_TRAIN_VS_DEEPCTR = 5.0
TARGET_TRAIN_VS_NAIVE = 10.0
TARGET_PREDICT_VS_DEEPCTR = 3.0
TARGET_IMPORT_S = 0.5
TARGET_TELCO_S = 5.0
TARGET_TELCO_AUC = 0.847  # the article's model
TARGET_SEARCH_OVERHEAD = 1.25

# (phase, compared with, minimum ratio ours / it, shapes the target is set for)
RATIO_TARGETS = (
    ("train", "DeepCTR", TARGET_TRAIN_VS_DEEPCTR, SHAPES),
    ("train", "naive", TARGET_TRAIN_VS_NAIVE, ("telco",)),
    ("predict", "DeepCTR", TARGET_PREDICT_VS_DEEPCTR, SHAPES),
)
PHASES = (("train", "train_rows_per_s"), ("predict", "predict_rows_per_s"))
COLUMNS = (
    "figure",
    "ours",
    "DeepCTR 0.9.4",
    "naive m²",
    "ours / DeepCTR",
    "ours / naive",
    "target",
    "met",
)


# -- cells -----------------------------------------------------------------------------


def row(label, ours="", deepctr="", naive="", vs_deepctr="", vs_naive="", target="", met=""):
    """One line of the table; an empty cell is written ``| |``."""
    cells = (label, ours, deepctr, naive, vs_deepctr, vs_naive, target, met)
    return "|" + "".join(f" {cell} |" if cell else " |" for cell in cells)


def key_name(key):
    """A results key as text: ``"ours/frappe/1024"``, or the one-off worker's name."""
    return key if isinstance(key, str) else "/".join(map(str, key))


def fmt_rate(result, key):
    """``result[key]`` as a whole number with thousands separators, or "n/a"."""
    if not result or "error" in result or key not in result:
        return "n/a"
    return f"{result[key]:,.0f}"


def ratio(ours, other, key, other_key=None):
    """``ours[key] / other[other_key or key]``, or None where either figure is missing."""
    try:
        return ours[key] / other[other_key or key]
    except (KeyError, TypeError, ZeroDivisionError):
        return None


def fmt_ratio(ours, other, key, other_key=None):
    """The ``ratio`` as ``"1.23x"``, or "n/a"."""
    value = ratio(ours, other, key, other_key)
    return "n/a" if value is None else f"{value:.2f}x"


def fmt_train_predict(result, other=None):
    """Train and predict in one cell, ``"train / predict"``: rates, or ratios to ``other``."""
    if other is None:
        return " / ".join(fmt_rate(result, key) for _, key in PHASES)
    return " / ".join(fmt_ratio(result, other, key) for _, key in PHASES)


def verdict(value, target, higher_is_better=True):
    """"yes" if ``value`` meets ``target``, "NO" if not, "n/a" if it is missing or NaN."""
    if value is None or value != value:
        return "n/a"
    return "yes" if (value >= target if higher_is_better else value < target) else "NO"


def step_cost(result_small, result_large):
    """Split ours' time per training step into a fixed part and a part per row.

    From the epochs at two batch sizes: ``seconds per step = fixed + per_row x batch``.

    Returns
    -------
    (fixed, per_row) : tuple of float, or None
        Seconds per step and seconds per row; None where a figure is missing
        or the two batch sizes are equal.
    """
    try:
        points = []
        for result in (result_small, result_large):
            steps = -(-result["rows"] // result["batch_size"])
            points.append(
                (result["batch_size"], result["rows"] / result["train_rows_per_s"] / steps)
            )
        (b1, t1), (b2, t2) = points
        per_row = (t2 - t1) / (b2 - b1)
        return t1 - per_row * b1, per_row
    except (KeyError, TypeError, ZeroDivisionError, ValueError):
        return None


# -- rows ------------------------------------------------------------------------------


def ratio_goals(phase, shape):
    """The ``(implementation, minimum ratio)`` targets of ``phase`` on ``shape``."""
    return [
        (name, target)
        for goal_phase, name, target, goal_shapes in RATIO_TARGETS
        if goal_phase == phase and shape in goal_shapes
    ]


def comparison_rows(results, shapes, batch_sizes, shape_names):
    """The main rows: ours against DeepCTR and naive, train and predict, with the targets."""
    lines = []
    for (phase, key), shape, batch_size in itertools.product(PHASES, shapes, batch_sizes):
        ours, deepctr, naive = (
            results.get((impl, shape, batch_size)) for impl in ("ours", "deepctr", "naive")
        )
        others = {"DeepCTR": deepctr, "naive": naive}
        goals = ratio_goals(phase, shape)
        lines.append(
            row(
                f"{phase} rows/s, {shape_names[shape]}, batch {batch_size}",
                *(fmt_rate(result, key) for result in (ours, deepctr, naive)),
                fmt_ratio(ours, deepctr, key),
                fmt_ratio(ours, naive, key),
                target=", ".join(f"≥ {target:g}x {name}" for name, target in goals),
                met=", ".join(
                    verdict(ratio(ours, others[name], key), target) for name, target in goals
                ),
            )
        )
    return lines


def secondary_rows(args, results, shapes, batch_sizes):
    """Ours through ``fit()``, DeepCTR's bucketized Telco, and ours on Frappe as CSR."""
    lines = []
    for shape, batch_size in itertools.product(shapes, batch_sizes):
        ours = results.get(("ours", shape, batch_size))
        deepctr = results.get(("deepctr", shape, batch_size))
        lines.append(
            row(
                f"train rows/s via `fit()` (warm-started calls of "
                f"{epochs_for(shape, args.quick)[1]} epochs), {shape}, batch {batch_size}",
                fmt_rate(ours, "fit_rows_per_s"),
                fmt_rate(deepctr, "train_rows_per_s"),
                vs_deepctr=fmt_ratio(ours, deepctr, "fit_rows_per_s", "train_rows_per_s"),
            )
        )
    for batch_size in batch_sizes:
        bucket = results.get(("deepctr-bucketized", "telco", batch_size))
        ours = results.get(("ours", "telco", batch_size))
        if bucket is not None:
            lines.append(
                row(
                    f"train / predict rows/s, telco, batch {batch_size}, DeepCTR with 10-bin "
                    "SparseFeat per column",
                    fmt_train_predict(ours),
                    fmt_train_predict(bucket),
                    vs_deepctr=fmt_train_predict(ours, bucket),
                )
            )
    for shape, batch_size in itertools.product(shapes, batch_sizes):
        on_jax = results.get(("ours-jax", shape, batch_size))
        if on_jax is not None:
            ours = results.get(("ours", shape, batch_size))
            lines.append(
                row(
                    f"train / predict rows/s on Keras' JAX backend (CPU), {shape}, batch "
                    f"{batch_size}; ours on JAX / ours on TensorFlow: "
                    f"{fmt_train_predict(on_jax, ours)}",
                    fmt_train_predict(on_jax),
                    fmt_train_predict(results.get(("deepctr", shape, batch_size))),
                    vs_deepctr=fmt_train_predict(
                        on_jax, results.get(("deepctr", shape, batch_size))
                    ),
                )
            )
    for batch_size in batch_sizes:
        csr = results.get(("ours-csr", "frappe", batch_size))
        if csr is not None:
            lines.append(
                row(
                    "train / predict rows/s, frappe as one-hot CSR (5,382 columns), batch "
                    f"{batch_size}",
                    fmt_train_predict(csr),
                )
            )
    return lines


def import_rows(results):
    """``import sklearn_afm`` against its target, and importing the estimator for reference."""
    imp = results.get("import") or {}
    if "median_import_s" not in imp:
        return [row("`import sklearn_afm`", f"n/a ({imp.get('error', 'not run')})")]
    figures = (
        # (key, label, decimals, target or None where it is for reference only)
        (
            "import",
            f"`import sklearn_afm`, fresh process (median of {len(imp['import_s'])})",
            4,
            TARGET_IMPORT_S,
        ),
        (
            "estimator",
            "`from sklearn_afm import AFMClassifier` (imports scikit-learn), fresh process",
            2,
            None,
        ),
    )
    lines = []
    for key, label, digits, target in figures:
        heavy = " (loads TensorFlow!)" if imp[f"{key}_loads_tensorflow_or_keras"] else ""
        seconds = imp[f"median_{key}_s"]
        if target is None:
            goal, met = "(none)", ""
        else:
            goal, met = f"< {target:g} s", verdict(seconds, target, higher_is_better=False)
        lines.append(row(label + heavy, f"{seconds:.{digits}f} s", target=goal, met=met))
    return lines


def telco_rows(results):
    """The Telco case study: time end to end and test ROC AUC, against their targets."""
    telco = results.get("telco") or {}
    if "end_to_end_s" not in telco:
        return [row("Telco case study", f"n/a ({telco.get('error', 'not run')})")]
    first = telco["runs"][0]
    seconds = telco["end_to_end_s"]
    lines = [
        row(
            f"Telco case study end to end after `import tensorflow` (split 10: imports "
            f"{telco['imports_s']:.2f} + load {first['load_s']:.2f} + Pipeline "
            f"{first['build_s']:.2f} + fit {first['fit_s']:.1f} ({first['n_iter']} epochs) "
            f"+ score {first['score_s']:.2f} s)",
            f"{seconds:.1f} s",
            target=f"< {TARGET_TELCO_S:g} s",
            met=verdict(seconds, TARGET_TELCO_S, higher_is_better=False),
        ),
        row(
            "Telco test ROC AUC, split 10",
            f"{telco['auc']:.4f}",
            target=f"≥ {TARGET_TELCO_AUC}",
            met=verdict(telco["auc"], TARGET_TELCO_AUC),
        ),
    ]
    if len(telco["runs"]) > 1:
        per_split = ", ".join(f"{r['total_s']:.1f}" for r in telco["runs"])
        aucs = ", ".join(f"{r['auc']:.3f}" for r in telco["runs"])
        lines.append(
            row(
                f"Telco splits 10-14: mean ROC AUC ({aucs}); seconds per split ({per_split})",
                f"{telco['mean_auc']:.4f}; {telco['mean_total_s']:.1f} s",
                target=f"≥ {TARGET_TELCO_AUC}",
                met=verdict(telco["mean_auc"], TARGET_TELCO_AUC),
            )
        )
    return lines


def search_rows(results):
    """The search overhead: a GridSearchCV's time over the same epochs in a built model."""
    search = results.get("search") or {}
    if "overhead_ratio" not in search:
        return [row("GridSearchCV overhead", f"n/a ({search.get('error', 'not run')})")]
    return [
        row(
            f"GridSearchCV overhead: 8 candidates x 3 folds on the Telco pipeline, 10 epochs "
            f"each, {search['search_s']:.1f} s, over {search['fits']} x one warm-started "
            f"10-epoch fit of a fold ({search['warm_fit_s']:.2f} s)",
            f"{search['overhead_ratio']:.2f}",
            target=f"≤ {TARGET_SEARCH_OVERHEAD:g}",
            met=verdict(search["overhead_ratio"], TARGET_SEARCH_OVERHEAD, higher_is_better=False),
        )
    ]


def arithmetic_rows(results, shapes, batch_sizes):
    """Ours' achieved share of the measured GEMM peak, and its step cost split."""
    lines = []
    peak = results.get("peak") or {}
    ours_1024 = results.get(("ours", "frappe", 1024)) or {}
    step_flops, _ = flops_per_row(len(FRAPPE_FIELDS))
    if "gemm_2048_gflops" in peak and "train_rows_per_s" in ours_1024:
        gemm = peak["gemm_2048_gflops"]
        achieved = ours_1024["train_rows_per_s"] * step_flops / 1e9
        lines.append(
            row(
                f"arithmetic, frappe batch 1024: {step_flops / 1e3:.0f} kFLOP/row/step x ours' "
                f"rows/s = achieved GFLOP/s; bound = measured 2048² GEMM {gemm:.0f} GFLOP/s "
                f"(attention-shaped GEMM {peak['gemm_attention_shape_gflops']:.0f}) → rows/s "
                f"bound {gemm * 1e9 / step_flops:,.0f}",
                f"{achieved:.2f} GFLOP/s = {achieved / gemm:.1%} of GEMM peak",
            )
        )
    if len(batch_sizes) < 2:
        return lines
    smallest, largest = min(batch_sizes), max(batch_sizes)
    for shape in shapes:
        split = step_cost(
            results.get(("ours", shape, smallest)), results.get(("ours", shape, largest))
        )
        if split is None:
            continue
        fixed, per_row = split
        _, forward = flops_per_row(TELCO_COLUMNS if shape == "telco" else len(FRAPPE_FIELDS))
        marginal = 3 * forward / per_row / 1e9 if per_row > 0 else float("nan")
        lines.append(
            row(
                f"ours' training step, {shape}: fixed cost per step + cost per row (fit of "
                f"batch {smallest} vs {largest}); marginal GFLOP/s",
                f"{fixed * 1e3:.2f} ms + {per_row * 1e6:.2f} µs/row; {marginal:.1f} GFLOP/s",
            )
        )
    return lines


# -- around the table ------------------------------------------------------------------


def print_setup(command):
    """Print the command, the machine and the package versions (at the start and the end)."""
    print(f"command: {command}")
    print(f"machine: {machine_facts()}")
    print(f"versions: {versions()}")


def print_run_facts(args, results, command, elapsed):
    """Print what the figures were measured on and under which load."""
    print("\n== results (all figures measured in this run)")
    print_setup(command)
    checkout = checkout_state()
    if checkout == args.checkout_at_start:
        print(f"sklearn_afm: {checkout}")
    else:
        print(
            f"sklearn_afm: {args.checkout_at_start} at the start, {checkout} at the end: "
            "THE CODE CHANGED DURING THE RUN, the workers did not all measure the same code"
        )
    loads = [
        r["loadavg_start"][0]
        for r in results.values()
        if isinstance(r, dict) and "loadavg_start" in r
    ]
    if loads:
        print(
            f"1-minute load average when the workers started: {min(loads):.2f}-{max(loads):.2f} "
            "(it includes the previous worker of this benchmark)"
        )
    print(f"load average at end: {load_average()}; total run {elapsed:.0f} s")


def print_footnotes(args, results):
    """Print how the figures were measured, the sanity AUCs, and a note per failed worker."""
    print(
        "train rows/s: median of the timed epochs after 1 warm-up epoch "
        f"({'quick mode, ' if args.quick else ''}"
        f"telco {epochs_for('telco', args.quick)[1]} epochs, frappe "
        f"{epochs_for('frappe', args.quick)[1]} epochs); ours = the epochs of one "
        "_training.train call (batching + compiled steps), DeepCTR and naive = Keras fit() epochs timed by a callback.  predict "
        f"rows/s: median of {predict_repeats(args.quick, 'telco')} (telco) or "
        f"{predict_repeats(args.quick, 'frappe')} (frappe) calls on all rows after a warm-up "
        "call (ours predict_proba, others model.predict)."
    )
    aucs = [
        f"{key_name(key)} {result['train_auc']:.3f}"
        for key, result in results.items()
        if isinstance(key, tuple) and isinstance(result, dict) and "train_auc" in result
    ]
    if aucs:
        print(
            "sanity, train ROC AUC after the timed epochs (ours trained twice as many epochs: "
            "the fit() ones, then the Engine ones; not a quality comparison): " + "; ".join(aucs)
        )
    for key, result in results.items():
        if isinstance(result, dict) and "error" in result:
            print(f"note: {key_name(key)}: {result['error']}")
        if isinstance(result, dict) and "engine_error" in result:
            print(
                f"note: {key_name(key)}: engine-level timing failed "
                f"({result['engine_error']}); its train figure is fit()'s"
            )


def print_table(args, results, command, elapsed):
    """Print the run's facts, the table of every figure and the notes under it.

    Parameters
    ----------
    args : argparse.Namespace
        The driver's options (``quick``, ``shapes``, ``batch_sizes``) and
        ``checkout_at_start``.
    results : dict
        Each worker's result, as collected by the driver.
    command : str
        The command line of the run.
    elapsed : float
        Seconds the whole run took.
    """
    shapes = args.shapes.split(",")
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    shape_names = {
        "telco": f"Telco {TELCO_ROWS:,} x 19 dense",
        "frappe": f"Frappe {frappe_rows(args.quick):,} x 10 fields",
    }
    lines = [
        row(*COLUMNS),
        "|---|---:|---:|---:|---:|---:|---|---|",
        *comparison_rows(results, shapes, batch_sizes, shape_names),
        *secondary_rows(args, results, shapes, batch_sizes),
        *import_rows(results),
        *telco_rows(results),
        *search_rows(results),
        *arithmetic_rows(results, shapes, batch_sizes),
    ]
    print_run_facts(args, results, command, elapsed)
    print()
    print("\n".join(lines))
    print()
    print_footnotes(args, results)
