"""ONNX export: onnxruntime's outputs are those of predict_proba / predict."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.compose import make_column_transformer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from sklearn_afm import AFMClassifier, AFMRegressor

skl2onnx = pytest.importorskip("skl2onnx", reason="ONNX export needs skl2onnx (onnx extra)")
ort = pytest.importorskip("onnxruntime", reason="ONNX export tests need onnxruntime (onnx extra)")
from skl2onnx.common.data_types import FloatTensorType  # noqa: E402

import sklearn_afm.onnx  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# float32 network, float32 graph: only the order of the sums differs.
TOLERANCE = 1e-5


@pytest.fixture(scope="module", autouse=True)
def registered():
    sklearn_afm.onnx.register()


@pytest.fixture(scope="module")
def frame(telco_split, numeric_columns):
    """The Telco split with float32 amounts, as skl2onnx's ColumnTransformer needs.

    skl2onnx types a float64 column as double, and its ColumnTransformer
    cannot concatenate a double StandardScaler output with OneHotEncoder's
    float one.
    """
    X_train, X_test, y_train, _ = telco_split
    amounts = ["MonthlyCharges", "TotalCharges"]
    X_train, X_test = (X.astype({c: np.float32 for c in amounts}) for X in (X_train, X_test))
    return X_train, X_test, y_train


def session(onx):
    return ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])


def frame_feeds(X):
    """One onnxruntime input per column, as skl2onnx declares a DataFrame's inputs."""
    return {
        column: (
            X[[column]].to_numpy()
            if X[column].dtype.kind in "if"
            else X[[column]].to_numpy().astype(str).astype(object)
        )
        for column in X.columns
    }


def assert_classifier_matches(clf, onx, feeds, X):
    label, proba = session(onx).run(None, feeds)
    np.testing.assert_allclose(proba, clf.predict_proba(X), rtol=0, atol=TOLERANCE)
    np.testing.assert_array_equal(label, clf.predict(X))


def test_pipeline_of_column_transformer_matches_predict_proba(frame, fast_params, numeric_columns):
    X_train, X_test, y_train = frame
    strings = [c for c in X_train.columns if c not in numeric_columns]
    preprocess = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore", sparse_output=False), strings),
        (StandardScaler(), numeric_columns),
    )
    pipe = make_pipeline(preprocess, AFMClassifier(random_state=0, **fast_params))
    pipe.fit(X_train, y_train)

    onx = skl2onnx.to_onnx(pipe, X_train[:1], options={AFMClassifier: {"zipmap": False}})
    assert_classifier_matches(pipe, onx, frame_feeds(X_test), X_test)

    # skl2onnx's default output: one {class: probability} dictionary per row.
    label, proba = session(skl2onnx.to_onnx(pipe, X_train[:1])).run(None, frame_feeds(X_test[:3]))
    expected = pipe.predict_proba(X_test[:3])
    for row, probabilities in enumerate(proba):
        assert sorted(probabilities) == [0, 1]
        np.testing.assert_allclose([probabilities[0], probabilities[1]], expected[row],
                                   atol=TOLERANCE)


def test_sparse_one_hot_input(frame, fast_params, make_preprocessor):
    """A model fitted on a CSR matrix: its ONNX graph takes the same rows dense."""
    X_train, X_test, y_train = frame
    everything = OneHotEncoder(handle_unknown="ignore").fit(X_train.drop(
        columns=["MonthlyCharges", "TotalCharges"]))
    Xs_train, Xs_test = (everything.transform(X.drop(columns=["MonthlyCharges", "TotalCharges"]))
                         for X in (X_train, X_test))
    assert sp.issparse(Xs_train) and Xs_train.shape[1] > 100
    clf = AFMClassifier(random_state=0, **fast_params).fit(Xs_train, y_train)
    onx = skl2onnx.to_onnx(
        clf, initial_types=[("X", FloatTensorType([None, Xs_train.shape[1]]))],
        options={"zipmap": False},
    )
    assert_classifier_matches(clf, onx, {"X": Xs_test.toarray().astype(np.float32)}, Xs_test)

    # And the sparse pipeline of the usage tests, converted from the frame.
    pipe = make_pipeline(make_preprocessor(), AFMClassifier(random_state=0, **fast_params))
    pipe.fit(X_train, y_train)
    onx = skl2onnx.to_onnx(pipe, X_train[:1], options={AFMClassifier: {"zipmap": False}})
    assert_classifier_matches(pipe, onx, frame_feeds(X_test), X_test)


def test_native_categorical_columns(frame, fast_params):
    """String columns given to the estimator itself go through ONNX's LabelEncoder."""
    X_train, X_test, y_train = frame
    clf = AFMClassifier(random_state=0, **fast_params).fit(X_train, y_train)
    assert clf.is_categorical_.sum() == 15
    X_test = X_test.copy()
    # A category unseen in training takes the column's "unknown" feature.
    X_test.loc[X_test.index[:5], "Contract"] = "Four year"
    onx = skl2onnx.to_onnx(clf, X_train[:1], options={"zipmap": False})
    assert_classifier_matches(clf, onx, frame_feeds(X_test), X_test)


def test_numeric_categories_unknown_and_missing():
    """Categorical columns of a float array: known, unknown and NaN codes."""
    rng = np.random.RandomState(0)
    X = np.column_stack([rng.randint(0, 4, 400), rng.normal(size=400), rng.randint(0, 3, 400)])
    X = X.astype(np.float32)
    X[::7, 0] = np.nan
    y = (np.nan_to_num(X[:, 0]) + X[:, 1] > 1.5).astype(int)
    clf = AFMClassifier(categorical_features=[0, 2], max_iter=3, random_state=0).fit(X, y)
    X_new = X[:50].copy()
    X_new[:10, 2] = 9  # unknown
    X_new[10:20, 1] = 0  # absent numeric entries
    onx = skl2onnx.to_onnx(clf, X[:1], options={"zipmap": False})
    assert_classifier_matches(clf, onx, {"X": X_new}, X_new)


@pytest.mark.parametrize("use_attention", [True, False])
def test_regressor_and_fm(use_attention):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(500, 6))
    # Absent entries, rows with a single entry and rows with none.
    X[rng.rand(*X.shape) < 0.3] = 0
    X[:5] = 0
    X[5:10, 1:] = 0
    y = 1000 + 50 * (X[:, 0] * X[:, 1] + X[:, 2])
    reg = AFMRegressor(use_attention=use_attention, max_iter=5, random_state=0).fit(X, y)
    for dtype in (np.float32, np.float64):
        onx = skl2onnx.to_onnx(reg, X[:1].astype(dtype))
        (predicted,) = session(onx).run(None, {"X": X.astype(dtype)})
        assert predicted.dtype == dtype and predicted.shape == (500, 1)
        np.testing.assert_allclose(predicted[:, 0], reg.predict(X.astype(dtype)), rtol=TOLERANCE)


def test_multi_target_regressor_and_single_column():
    rng = np.random.RandomState(1)
    X = rng.normal(size=(300, 1)).astype(np.float32)
    X[::4] = 0
    y = np.column_stack([X[:, 0], 3 * X[:, 0] ** 2])
    reg = AFMRegressor(max_iter=3, random_state=0).fit(X, y)
    (predicted,) = session(skl2onnx.to_onnx(reg, X[:1])).run(None, {"X": X})
    np.testing.assert_allclose(predicted, reg.predict(X), rtol=TOLERANCE, atol=1e-6)


def test_nan_makes_only_its_row_nan():
    """predict refuses NaN; the graph cannot, but keeps the other rows of a batch."""
    X = np.random.RandomState(3).normal(size=(200, 3)).astype(np.float32)
    reg = AFMRegressor(max_iter=1, random_state=0).fit(X, X[:, 0])
    X_new = X[:4].copy()
    X_new[0, 1] = np.nan
    (predicted,) = session(skl2onnx.to_onnx(reg, X[:1])).run(None, {"X": X_new})
    assert np.isnan(predicted[0, 0])
    np.testing.assert_allclose(predicted[1:, 0], reg.predict(X_new[1:]), rtol=TOLERANCE)


def test_multiclass_string_labels():
    rng = np.random.RandomState(2)
    X = rng.normal(size=(600, 5)).astype(np.float32)
    y = np.array(["low", "mid", "high"])[np.digitize(X[:, 0] + X[:, 1] * X[:, 2], [-0.5, 0.5])]
    clf = AFMClassifier(max_iter=5, random_state=0).fit(X, y)
    onx = skl2onnx.to_onnx(clf, X[:1], options={"zipmap": False})
    assert_classifier_matches(clf, onx, {"X": X}, X)


def test_refused_inputs(frame):
    X_train, _, y_train = frame
    X = np.random.RandomState(0).normal(size=(100, 3)).astype(np.float32)
    reg = AFMRegressor(max_iter=1, random_state=0).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="fitted on 3"):
        skl2onnx.to_onnx(reg, initial_types=[("X", FloatTensorType([None, 4]))])
    with pytest.raises(ValueError, match="target_opset >= 11"):
        skl2onnx.to_onnx(reg, X[:1], target_opset=10)
    # String columns to a model fitted on numbers only.
    strings = X_train[["gender", "Partner"]]
    numeric = AFMRegressor(max_iter=1, random_state=0).fit(
        (strings == "Male").astype(np.float32).to_numpy(), y_train)
    with pytest.raises(TypeError, match="without categorical columns"):
        skl2onnx.to_onnx(numeric, strings[:1])
