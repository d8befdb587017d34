"""
=========================================
Exporting a pipeline to ONNX
=========================================

To serve a model outside Python, without pickles and without TensorFlow,
export it to `ONNX <https://onnx.ai>`_ and run it with onnxruntime (or any
ONNX runtime, from C++, C#, Java, JavaScript...).  After
:func:`sklearn_afm.onnx.register`, skl2onnx converts a fitted
:class:`~sklearn_afm.AFMClassifier` or :class:`~sklearn_afm.AFMRegressor`,
alone or at the end of a :class:`~sklearn.pipeline.Pipeline`.  This needs
``pip install "sklearn-afm[onnx]"``; see :ref:`deployment` for what is
supported.
"""

# %%
# A pipeline of one-hot encoded strings and scaled numbers
# --------------------------------------------------------
import time

import numpy as np
import onnxruntime as ort
import skl2onnx
from sklearn.compose import make_column_transformer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import sklearn_afm.onnx
from sklearn_afm import AFMClassifier, load_telco_churn

X, y = load_telco_churn(return_X_y=True)
# skl2onnx types float64 columns as double, and its ColumnTransformer cannot
# concatenate StandardScaler's double output with OneHotEncoder's float one:
# give it float32 numbers.
X = X.astype({"MonthlyCharges": np.float32, "TotalCharges": np.float32})
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.1, random_state=10)

numeric = ["SeniorCitizen", "tenure", "MonthlyCharges", "TotalCharges"]
strings = [c for c in X.columns if c not in numeric]
pipe = make_pipeline(
    make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore", sparse_output=False), strings),
        (StandardScaler(), numeric),
    ),
    AFMClassifier(max_iter=5, random_state=0),
).fit(X_train, y_train)

# %%
# Export
# ------
# ``register`` tells skl2onnx how to convert the AFM estimators; the graph is
# built from the fitted weights.  ``zipmap=False`` makes the probabilities an
# array, as ``predict_proba``'s (skl2onnx's default is one dictionary per row).
sklearn_afm.onnx.register()
onx = skl2onnx.to_onnx(pipe, X_train[:1], options={AFMClassifier: {"zipmap": False}})
print("inputs: ", [i.name for i in onx.graph.input][:4], "...")
print("outputs:", [o.name for o in onx.graph.output])
print(f"{len(onx.SerializeToString()) / 1024:.0f} KiB")

# %%
# Predict with onnxruntime
# ------------------------
# skl2onnx gives a DataFrame one input per column, of shape (n_samples, 1).


def feeds(frame):
    return {
        c: frame[c].to_numpy(dtype=None if frame[c].dtype.kind in "if" else object)
        .reshape(-1, 1)
        for c in frame.columns
    }


session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
label, proba = session.run(None, feeds(X_test))
difference = np.abs(proba - pipe.predict_proba(X_test)).max()
print(f"largest difference from predict_proba: {difference:.1e}")
print(f"same labels as predict: {(label == pipe.predict(X_test)).all()}")

# %%
# One row at a time
# -----------------
# The latency of a single prediction, the usual case of a service.


def median_ms(predict, rows):
    times = []
    for row in rows:
        start = time.perf_counter()
        predict(row)
        times.append(time.perf_counter() - start)
    return 1e3 * np.median(times)


rows = [X_test.iloc[[i]] for i in range(50)]
print(f"predict_proba: {median_ms(pipe.predict_proba, rows):.2f} ms")
row_feeds = [feeds(row) for row in rows]
print(f"onnxruntime:   {median_ms(lambda f: session.run(None, f), row_feeds):.2f} ms")

# %%
# The estimator's own categorical columns
# ---------------------------------------
# Given the DataFrame itself, the estimator treats its string columns as
# categorical; the ONNX graph looks their categories up with ONNX's
# ``LabelEncoder``, and a category unseen in training takes the column's
# "unknown" feature, as in Python.
clf = AFMClassifier(max_iter=5, random_state=0).fit(X_train, y_train)
onx = skl2onnx.to_onnx(clf, X_train[:1], options={"zipmap": False})
session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
_, proba = session.run(None, feeds(X_test))
difference = np.abs(proba - clf.predict_proba(X_test)).max()
print(f"largest difference from predict_proba: {difference:.1e}")
