"""Where the time of ``n_jobs=2`` goes on a small problem (docs/scaling.rst, "Parallel jobs").

Telco churn, 1500 rows, ``AFMClassifier(max_iter=5, batch_size=256)``::

    python benchmarks/worker_startup.py probe        # a loky worker's first fit, by phase
    python benchmarks/worker_startup.py job cv 2     # cross_val_score(cv=4), n_jobs=2 (loky)
    python benchmarks/worker_startup.py job pi threading
    python benchmarks/worker_startup.py warm         # the same call on cold, then warm workers

``job`` takes ``cv`` (``cross_val_score``, cv=4) or ``pi`` (a fit, then
``permutation_importance``, 5 repeats) and ``1``, ``2`` (loky) or
``threading`` (2 threads); run each in a fresh interpreter, as a user would.
Times are wall-clock seconds and include importing TensorFlow.
"""

import os
import pickle
import sys
import time
import warnings
from pathlib import Path

START = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from joblib import Parallel, delayed, parallel_config  # noqa: E402
from sklearn.inspection import permutation_importance  # noqa: E402
from sklearn.model_selection import cross_val_score, train_test_split  # noqa: E402

from sklearn_afm import AFMClassifier, load_telco_churn  # noqa: E402

FAST = {"max_iter": 5, "batch_size": 256, "learning_rate_init": 0.05}


def _timed(function):
    start = time.perf_counter()
    function()
    return round(time.perf_counter() - start, 2)


def _probe(X, y, seed, sent):
    """Time each phase of one task in a worker (TensorFlow's import costs only in a fresh one)."""
    warnings.simplefilter("ignore")
    from sklearn_afm._runtime import import_tensorflow

    out = {"pid": os.getpid(), "fresh worker": "tensorflow" not in sys.modules}
    out["waited for worker"] = round(time.time() - sent, 2)
    out["import TensorFlow"] = _timed(import_tensorflow)
    clf = AFMClassifier(**FAST, random_state=seed)
    out["fit"] = _timed(lambda: clf.fit(X, y))
    out["fit again"] = _timed(lambda: AFMClassifier(**FAST, random_state=seed + 1).fit(X, y))
    out["predict_proba"] = _timed(lambda: clf.predict_proba(X))
    unpickled = pickle.loads(pickle.dumps(clf))
    out["predict_proba, unpickled"] = _timed(lambda: unpickled.predict_proba(X))
    return out


def main(argv):
    warnings.simplefilter("ignore")
    X, y = load_telco_churn(return_X_y=True)
    X, _, y, _ = train_test_split(X, y, train_size=1500, stratify=y, random_state=0)
    clf = AFMClassifier(**FAST, random_state=0)
    if argv[0] == "probe":
        blob = pickle.dumps((X, y))
        seconds = _timed(lambda: pickle.loads(pickle.dumps((X, y))))
        print(f"data per task: {len(blob) / 1e3:.0f} kB, {seconds * 1e3:.0f} ms there and back")
        start = time.perf_counter()
        results = Parallel(n_jobs=2)(delayed(_probe)(X, y, i, time.time()) for i in range(4))
        print(f"4 tasks on 2 loky workers: {time.perf_counter() - start:.1f} s")
        for result in results:
            print(result)
    elif argv[0] == "warm":
        for call in ("cold workers", "warm workers", "warm workers, embedding_size=16"):
            if call.endswith("=16"):
                clf.set_params(embedding_size=16)
            seconds = _timed(lambda: cross_val_score(clf, X, y, cv=4, n_jobs=2))
            print(f"cross_val_score(cv=4, n_jobs=2), {call}: {seconds:.1f} s")
    else:
        job, mode = argv[1], argv[2]
        backend = "threading" if mode == "threading" else "loky"
        with parallel_config(backend=backend, n_jobs=1 if mode == "1" else 2):
            if job == "cv":
                result = cross_val_score(clf, X, y, cv=4)
            else:
                clf.fit(X, y)
                fitted = time.perf_counter()
                result = permutation_importance(clf, X, y, n_repeats=5, random_state=0)
                result = result.importances_mean
                print(f"fit {fitted - START:.1f} s, permutation_importance "
                      f"{time.perf_counter() - fitted:.1f} s")
        total = time.perf_counter() - START
        print(f"{job} {mode}: {total:.1f} s in all, {np.round(result[:4], 4)}")


if __name__ == "__main__":
    main(sys.argv[1:])
