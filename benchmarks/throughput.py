#!/usr/bin/env python
"""Throughput benchmark: sklearn_afm against DeepCTR's AFM and a naive m^2 AFM.

Measures, in one run on one machine, and prints as one table:

* training throughput (rows/s, median of several epochs after a warm-up
  epoch) and prediction throughput of ``AFMClassifier`` on two shapes, at
  batch sizes 256 and 1024:

  - *telco*: 7,043 rows x 19 dense standard-normal numeric columns (the size
    of the Telco churn data), embedding 16, attention 16;
  - *frappe*: 200,000 rows x 10 categorical fields with Frappe's field sizes
    (5,382 distinct features), embedding 16, attention 16;

* the same model in DeepCTR 0.9.4 (``deepctr.models.AFM`` on the legacy
  ``tf_keras``), and a naive "all m^2 pairs with a triangular mask" AFM
  written here in Keras 3, on the same data, shapes and batch sizes, with the
  ratios ours / DeepCTR and ours / naive;
* the wall time of the Telco case study end to end (load, Pipeline, fit with
  the default parameters, score) after TensorFlow is imported, its test
  ROC AUC, and the time of ``import sklearn_afm`` in a fresh process;
* the search overhead: a ``GridSearchCV`` of 8 candidates x 3 folds on the
  Telco pipeline (10 epochs each) over 24 warm-started 10-epoch fits of the
  same size;
* the achieved share of the arithmetic bound on the Frappe shape.

Every implementation runs in its own subprocess (DeepCTR needs
``TF_USE_LEGACY_KERAS=1`` before TensorFlow is imported, and separate
processes keep the measurements independent); each worker prints one JSON
line.  A worker can be run alone::

    python benchmarks/throughput.py --worker ours --shape telco --batch-size 256

Full run (about 4-5 minutes on 2 cores) and a smoke run (about 2 minutes)::

    python benchmarks/throughput.py
    python benchmarks/throughput.py --quick

DeepCTR is optional: install it with
``pip install deepctr==0.9.4 "tf_keras~=2.21.0"`` (tf_keras must match the
installed TensorFlow's minor version); without it its cells read "n/a".
This file is the driver (options, the workers' processes, the JSON); the
data and shapes are in ``_shapes.py``, ours' workers in ``_workers.py``, the
reference implementations in ``_reference.py``, and the table in ``_report.py``.
See benchmarks/README.md for results.
"""

import argparse
import json
import os
import subprocess
import sys
import time

from _machine import checkout_state, command_line, load_average
from _reference import worker_deepctr, worker_naive
from _report import key_name, print_setup, print_table
from _shapes import BATCH_SIZES, SHAPES
from _workers import worker_import, worker_ours, worker_peak, worker_search, worker_telco

# The driver runs every worker as ``python <this file> --worker NAME``.
THIS_FILE = os.path.abspath(__file__)

WORKERS = {
    "ours": worker_ours,
    "deepctr": worker_deepctr,
    "naive": worker_naive,
    "telco": worker_telco,
    "search": worker_search,
    "import": worker_import,
    "peak": worker_peak,
}


def run_worker(worker, args, shape=None, batch_size=None, extra=(), timeout=600, backend=None):
    """Run one worker in a fresh process; return its JSON result (or an error).

    ``backend`` sets ``KERAS_BACKEND`` in the worker ("jax": ours on Keras'
    JAX backend); Keras' default otherwise.
    """
    command = [sys.executable, THIS_FILE, "--worker", worker]
    if shape is not None:
        command += ["--shape", shape, "--batch-size", str(batch_size)]
    if args.quick:
        command.append("--quick")
    command += list(extra)
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if worker == "deepctr":
        env["TF_USE_LEGACY_KERAS"] = "1"
    else:
        env.pop("TF_USE_LEGACY_KERAS", None)
    env.pop("KERAS_BACKEND", None)
    if backend is not None:
        env["KERAS_BACKEND"] = backend
    label = " ".join(command[2:]) + (f" (KERAS_BACKEND={backend})" if backend else "")
    print(f"  running {label} ...", end="", flush=True)
    start = time.perf_counter()
    load = list(os.getloadavg())
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        print(f" timed out after {timeout} s")
        return {"error": f"timed out after {timeout} s"}
    seconds = time.perf_counter() - start
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        print(f" failed ({seconds:.0f} s)")
        return {"error": f"exit {done.returncode}: {' | '.join(tail)}"}
    result = json.loads(lines[-1])
    result["worker_s"] = seconds
    result["loadavg_start"] = load
    if args.verbose and done.stderr.strip():
        print("\n" + done.stderr)
    print(f" {seconds:.0f} s" + (f" ({result['error']})" if "error" in result else ""))
    return result


def run_shape(args, shape, batch_size, impls):
    """Run the implementations on one shape and batch size back to back (similar load)."""
    results = {}
    for impl in impls:
        extra = ("--variant", "weighted") if impl == "deepctr" and shape == "telco" else ()
        results[(impl, shape, batch_size)] = run_worker(impl, args, shape, batch_size, extra)
    if "deepctr" in impls and shape == "telco" and args.deepctr_bucketized:
        results[("deepctr-bucketized", shape, batch_size)] = run_worker(
            "deepctr", args, shape, batch_size, ("--variant", "bucketized")
        )
    if "ours" in impls and args.jax:
        results[("ours-jax", shape, batch_size)] = run_worker(
            "ours", args, shape, batch_size, backend="jax"
        )
    if "ours" in impls and shape == "frappe" and args.csr:
        results[("ours-csr", shape, batch_size)] = run_worker(
            "ours", args, shape, batch_size, ("--input", "csr")
        )
    return results


def driver(args):
    """Run every worker in its own process, print the table, optionally write the JSON."""
    command = command_line()
    start = time.perf_counter()
    print_setup(command)
    args.checkout_at_start = checkout_state()
    print(f"sklearn_afm: {args.checkout_at_start}")
    print(f"load average at start: {load_average()}")
    impls = args.impls.split(",")
    results = {}
    print("workers (each in its own process):")
    results["import"] = run_worker("import", args)
    for shape in args.shapes.split(","):
        for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
            results.update(run_shape(args, shape, batch_size, impls))
    results["telco"] = run_worker("telco", args)
    results["search"] = run_worker("search", args)
    results["peak"] = run_worker("peak", args)
    elapsed = time.perf_counter() - start
    print_table(args, results, command, elapsed)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({key_name(k): v for k, v in results.items()}, out, indent=1)
        print(f"raw results written to {args.json}")


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke mode: fewer rows, epochs, repeats"
    )
    parser.add_argument("--impls", default="ours,deepctr,naive", help="implementations to compare")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="telco and/or frappe")
    parser.add_argument("--batch-sizes", default=",".join(map(str, BATCH_SIZES)))
    parser.add_argument(
        "--no-csr",
        dest="csr",
        action="store_false",
        help="skip ours on the one-hot CSR form of frappe",
    )
    parser.add_argument(
        "--no-jax",
        dest="jax",
        action="store_false",
        help="skip ours on Keras' JAX backend (needs jax: pip install '.[jax]')",
    )
    parser.add_argument(
        "--no-deepctr-bucketized",
        dest="deepctr_bucketized",
        action="store_false",
        help="skip DeepCTR's bucketized telco variant",
    )
    parser.add_argument("--json", help="also write the raw per-worker results to this file")
    parser.add_argument("--verbose", action="store_true", help="show the workers' stderr")
    # Worker mode.
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--shape", choices=SHAPES, default="telco", help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=256, help=argparse.SUPPRESS)
    parser.add_argument(
        "--variant", choices=["weighted", "bucketized"], default="weighted", help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--input", choices=["dataframe", "csr"], default="dataframe", help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="with --worker ours: cProfile one training epoch (to stderr)",
    )
    args = parser.parse_args(argv)
    if args.worker:
        WORKERS[args.worker](args)
    else:
        driver(args)


if __name__ == "__main__":
    main()
