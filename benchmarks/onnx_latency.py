"""Single-row prediction latency: onnxruntime against predict_proba.

Fits a Telco pipeline (OneHotEncoder and StandardScaler in a
ColumnTransformer, then AFMClassifier) and an AFMClassifier on the frame's
own categorical columns, exports both with skl2onnx, and times predicting
one row at a time, each way, with default threads.  docs/deployment.rst
quotes its output.

    python benchmarks/onnx_latency.py [--rows 300]
"""

import argparse
import sys
import time

import numpy as np


def feeds(X):
    """One onnxruntime input per column, as skl2onnx declares a DataFrame's inputs."""
    return {
        c: X[c].to_numpy(dtype=None if X[c].dtype.kind in "if" else object).reshape(-1, 1)
        for c in X.columns
    }


def latencies(predict, rows):
    """Milliseconds of ``predict(row)`` for each row, after a few warm-up calls."""
    for row in rows[:5]:
        predict(row)
    times = []
    for row in rows:
        start = time.perf_counter()
        predict(row)
        times.append((time.perf_counter() - start) * 1e3)
    return np.array(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300, help="rows predicted one at a time")
    args = parser.parse_args()
    print("command:", " ".join([sys.executable.rsplit("/", 1)[-1], *sys.argv]))

    import onnxruntime as ort
    import skl2onnx
    from sklearn.compose import make_column_transformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    import sklearn_afm.onnx
    from sklearn_afm import AFMClassifier, load_telco_churn

    sklearn_afm.onnx.register()
    X, y = load_telco_churn(return_X_y=True)
    # float32 amounts: skl2onnx's ColumnTransformer cannot concatenate double
    # and float blocks.
    X = X.astype({"MonthlyCharges": np.float32, "TotalCharges": np.float32})
    numeric = ["SeniorCitizen", "tenure", "MonthlyCharges", "TotalCharges"]
    strings = [c for c in X.columns if c not in numeric]
    models = {
        "pipeline (one-hot + scaler)": make_pipeline(
            make_column_transformer(
                (OneHotEncoder(handle_unknown="ignore", sparse_output=False), strings),
                (StandardScaler(), numeric),
            ),
            AFMClassifier(max_iter=5, random_state=0),
        ),
        "native categorical columns": AFMClassifier(max_iter=5, random_state=0),
    }
    test = X[-args.rows:]
    print(f"{'model':<30} {'way':<28} {'median ms':>10} {'p90 ms':>8}")
    for name, model in models.items():
        model.fit(X[: -args.rows], y[: -args.rows])
        onx = skl2onnx.to_onnx(model, X[:1], options={AFMClassifier: {"zipmap": False}})
        session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
        rows = [test.iloc[[i]] for i in range(len(test))]
        row_feeds = [feeds(row) for row in rows]
        ways = {
            "predict_proba": latencies(model.predict_proba, rows),
            "onnxruntime (run)": latencies(lambda f: session.run(None, f), row_feeds),
            "onnxruntime (frame -> run)": latencies(
                lambda row: session.run(None, feeds(row)), rows
            ),
        }
        for way, ms in ways.items():
            print(f"{name:<30} {way:<28} {np.median(ms):>10.3f} {np.percentile(ms, 90):>8.3f}")


if __name__ == "__main__":
    main()
