"""Faults, bad input, concurrency and reproducibility.

Complements test_validation.py (single bad inputs and parameters, interrupted
warm start and first fit) with the full matrix of public methods against bad
inputs, interruptions of every kind of training call, real divergence,
threads, and seeding that leaves the user's global random state alone.
"""

import copy
import json
import pickle
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError

from sklearn_afm import AFMClassifier, AFMRegressor
from sklearn_afm._batching import as_row_source
from sklearn_afm._engine import Engine

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

CPU = {"device": "cpu"}


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(90, 5))
    y = np.where(X[:, 0] * X[:, 1] > 0, "yes", "no")
    return X, y


@pytest.fixture(scope="module")
def fitted(data):
    return AFMClassifier(max_iter=2, batch_size=32, random_state=0, **CPU).fit(*data)


# -- bad input: every public method -------------------------------------------------------

METHODS = [
    "fit",
    "partial_fit",
    "predict",
    "predict_proba",
    "decision_function",
    "score",
    "pair_attention",
    "explain",
]
# Methods that take y (and sample_weight).
SUPERVISED = ("fit", "partial_fit", "score")


def _set(X, value, dtype=None):
    X = X.astype(dtype or X.dtype)
    X[3, 2] = value
    return X


def _object_column(X, y):
    frame = pd.DataFrame(X, columns=list("abcde"))
    frame["b"] = [{"k": 1}] * len(frame)
    return frame, y, None


def _mixed_object_array(X, y):
    X = X.astype(object)
    X[0, 0] = "x"
    return X, y, None


# name -> (function of (X, y) returning (X, y, sample_weight), methods it
# applies to, expected error type, fragment of the message)
BAD_INPUTS = {
    "nan": (lambda X, y: (_set(X, np.nan), y, None), METHODS, ValueError, "contains NaN"),
    "inf": (lambda X, y: (_set(X, np.inf), y, None), METHODS, ValueError, "infinity"),
    "complex": (
        lambda X, y: (X + 1j, y, None), METHODS, ValueError, "Complex data not supported"
    ),
    "strings": (
        lambda X, y: (np.full(X.shape, "abc"), y, None), METHODS, ValueError,
        "needs numeric input.*not numbers.*categorical_features",
    ),
    "object-column": (
        _object_column, METHODS[1:], ValueError, r"column\(s\) \['b'\] are not numeric"
    ),
    "object-column-fit": (
        _object_column, ["fit"], TypeError, "column 'b' has, in row 0, a dict.*not a category"
    ),
    "mixed-object-array": (
        _mixed_object_array, METHODS[1:], ValueError, "not numbers.*could not convert string"
    ),
    # Its column holds a string: categorical under from_dtype, of mixed types.
    "mixed-object-array-fit": (
        _mixed_object_array, ["fit"], TypeError, "column 'x0' mixes strings .* and other values"
    ),
    "too-few-columns": (
        lambda X, y: (X[:, :4], y, None), METHODS[1:], ValueError,
        "X has 4 features, but AFMClassifier is expecting 5",
    ),
    "too-many-columns-sparse": (
        lambda X, y: (sp.random(len(X), 7, density=0.5, format="csr", random_state=0), y, None),
        METHODS[1:], ValueError, "X has 7 features, but AFMClassifier is expecting 5",
    ),
    "1-d": (lambda X, y: (X[:, 0], y, None), METHODS, ValueError, "Expected 2D array"),
    "3-d": (lambda X, y: (X[:, :, None], y, None), METHODS, ValueError, "dim 3"),
    "scalar": (lambda X, y: (3.0, y, None), METHODS, ValueError, "got scalar array"),
    "ragged-list": (
        lambda X, y: ([[1.0, 2.0], [3.0]], y[:2], None), METHODS, ValueError, "inhomogeneous"
    ),
    "empty": (lambda X, y: (X[:0], y[:0], None), METHODS, ValueError, "0 sample"),
    "unseen-label": (
        lambda X, y: (X, np.where(y == "yes", "maybe", y), None), ["partial_fit"], ValueError,
        r"labels \['maybe'\] that are not among the classes",
    ),
    "continuous-y": (
        lambda X, y: (X, np.linspace(0, 1, len(X)), None), ["fit", "partial_fit"], ValueError,
        "Unknown label type: continuous",
    ),
    "y-none": (lambda X, y: (X, None, None), ["fit", "partial_fit"], ValueError, "requires y"),
    "short-y": (
        lambda X, y: (X, y[:-1], None), SUPERVISED, ValueError, "inconsistent numbers of samples"
    ),
    "short-sample-weight": (
        lambda X, y: (X, y, np.ones(len(y) - 1)), ["fit", "partial_fit"], ValueError,
        r"sample_weight.shape == \(89,\), expected \(90,\)",
    ),
    "short-sample-weight-score": (
        lambda X, y: (X, y, np.ones(len(y) - 1)), ["score"], ValueError,
        "inconsistent numbers of samples",
    ),
    "nan-sample-weight": (
        lambda X, y: (X, y, np.r_[np.nan, np.ones(len(y) - 1)]), SUPERVISED, ValueError,
        "sample_weight contains NaN",
    ),
    "negative-sample-weight": (
        lambda X, y: (X, y, -np.ones(len(y))), ["fit", "partial_fit"], ValueError,
        "Negative values in data passed to `sample_weight`",
    ),
    "2-d-sample-weight": (
        lambda X, y: (X, y, np.ones((len(y), 2))), ["fit", "partial_fit"], ValueError,
        "Sample weights must be 1D",
    ),
}

MATRIX = [
    pytest.param(case, method, id=f"{case}-{method}")
    for case, (_, methods, _, _) in BAD_INPUTS.items()
    for method in methods
]


def _call(fitted, method, X, y, sample_weight):
    if method == "fit":
        return AFMClassifier(max_iter=1, **CPU).fit(X, y, sample_weight=sample_weight)
    if method == "partial_fit":
        # A copy: a failed call must not matter to the other cases (it does
        # not, see test_failed_calls_leave_the_model_unchanged).
        return copy.deepcopy(fitted).partial_fit(X, y, sample_weight=sample_weight)
    if method == "score":
        return fitted.score(X, y, sample_weight=sample_weight)
    return getattr(fitted, method)(X)


@pytest.mark.parametrize("case, method", MATRIX)
def test_bad_input_matrix(data, fitted, case, method):
    make, _, error, message = BAD_INPUTS[case]
    X, y, sample_weight = make(*data)
    with pytest.raises(error, match=message):
        _call(fitted, method, X, y, sample_weight)


def test_failed_calls_leave_the_model_unchanged(data, fitted):
    X, y = data
    model = copy.deepcopy(fitted)
    before = model.predict_proba(X)
    for case, (make, methods, error, _) in BAD_INPUTS.items():
        if "partial_fit" in methods:
            with pytest.raises(error):
                model.partial_fit(*make(X, y)[:2], sample_weight=make(X, y)[2])
    assert model.n_iter_ == fitted.n_iter_
    np.testing.assert_array_equal(model.predict_proba(X), before)


def test_score_counts_unseen_labels_as_errors(data, fitted):
    # As scikit-learn's classifiers: a label never seen in fit is simply never
    # predicted (cross-validation folds can lack a rare class).
    X, y = data
    relabelled = np.where(np.arange(len(y)) < 30, "maybe", y)
    expected = np.mean(fitted.predict(X)[30:] == y[30:]) * (len(y) - 30) / len(y)
    assert fitted.score(X, relabelled) == pytest.approx(expected)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda F, y: (F, np.full(len(y), "high")), "needs numeric targets, but y has dtype <U4"),
        (lambda F, y: (F, np.r_[np.nan, y[1:]]), "Input y contains NaN"),
        (lambda F, y: (F.assign(v=np.inf), y), r"NaN or infinity in the numeric column\(s\) \['v"),
        (lambda F, y: (F.assign(v=1j), y), "Complex data not supported"),
        (
            lambda F, y: (F.assign(city=["a", 1] * (len(y) // 2)), y),
            r"Categorical column 'city' mixes strings \('a'\) and other values \(1\)",
        ),
    ],
    ids=["string-targets", "nan-target", "inf-in-frame", "complex-in-frame", "mixed-categories"],
)
def test_bad_regressor_and_frame_input(make, message):
    rng = np.random.RandomState(0)
    frame = pd.DataFrame({"city": rng.choice(["a", "b"], 40), "v": rng.normal(size=40)})
    X, y = make(frame, rng.normal(size=40))
    with pytest.raises((ValueError, TypeError), match=message):
        AFMRegressor(max_iter=1, **CPU).fit(X, y)


@pytest.mark.parametrize(
    "rename, message",
    [
        ({"v": "u"}, "Feature names unseen at fit time"),
        (None, "must be in the same order"),
    ],
)
def test_frame_with_other_columns_at_predict(rename, message):
    rng = np.random.RandomState(0)
    frame = pd.DataFrame({"city": rng.choice(["a", "b"], 40), "v": rng.normal(size=40)})
    model = AFMRegressor(max_iter=1, **CPU).fit(frame, rng.normal(size=40))
    other = frame.rename(columns=rename) if rename else frame[["v", "city"]]
    with pytest.raises(ValueError, match=message):
        model.predict(other)


# -- faults during training ---------------------------------------------------------------


def _public_state(model, X):
    return (
        model.predict_proba(X),
        model.n_iter_,
        list(model.loss_curve_),
        model.attention_weights_.copy(),
        [w.copy() for w in model._network.optimizer_state],
    )


def _assert_same(a, b):
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1:3] == b[1:3]
    np.testing.assert_array_equal(a[3], b[3])
    for x, y in zip(a[4], b[4]):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("call", ["refit", "warm_start", "partial_fit"])
@pytest.mark.parametrize("error", [KeyboardInterrupt, MemoryError])
def test_interrupted_training_keeps_the_previous_model(data, monkeypatch, call, error):
    X, y = data
    model = AFMClassifier(max_iter=3, batch_size=32, random_state=0, **CPU).fit(X, y)
    model.set_params(warm_start=call == "warm_start")
    twin = copy.deepcopy(model)
    before = _public_state(model, X)
    real_epoch = Engine.train_epoch
    batches = []

    def interrupted(self, *args, **kwargs):
        # Train one real epoch, so that the live weights and optimizer moved.
        batches.append(1)
        real_epoch(self, *args, **kwargs)
        raise error("interrupted")

    monkeypatch.setattr(Engine, "train_epoch", interrupted)
    train = model.partial_fit if call == "partial_fit" else model.fit
    with pytest.raises(error):
        train(X, y)
    assert batches == [1]
    monkeypatch.undo()
    _assert_same(_public_state(model, X), before)
    # Training goes on as if the interrupted call had never happened.
    train(X, y)
    (twin.partial_fit if call == "partial_fit" else twin.fit)(X, y)
    _assert_same(_public_state(model, X), _public_state(twin, X))


@pytest.mark.parametrize("make", [AFMClassifier, AFMRegressor])
def test_real_divergence_is_an_error_never_a_nan_model(data, make):
    X, y = data
    target = y if make is AFMClassifier else X[:, 0] * X[:, 1] * 100
    # One epoch of one batch: the loss of that epoch is still finite, and
    # only the update after it overflows.
    diverging = dict(solver="sgd", learning_rate_init=1e30, batch_size=500, max_iter=1)
    model = make(**diverging, random_state=0, **CPU)
    with pytest.raises(FloatingPointError, match="diverged.*NaN or infinite.*learning_rate_init"):
        model.fit(X, target)
    with pytest.raises(NotFittedError):
        model.predict(X)
    # A warm start or partial_fit that diverges (here on features a trillion
    # times larger) keeps the previous model.  (learning_rate_init cannot
    # make it diverge: a continued fit keeps the optimizer's learning rate.)
    model.set_params(learning_rate_init=0.01, batch_size=32, warm_start=True).fit(X, target)
    raw = model.decision_function if make is AFMClassifier else model.predict
    before = raw(X)
    for train in (model.fit, model.partial_fit):
        with pytest.raises(FloatingPointError, match="diverged"):
            train(X * 1e12, target)
        np.testing.assert_array_equal(raw(X), before)
    assert np.isfinite(before).all()


def test_interrupted_save_keeps_the_previous_file(data, fitted, tmp_path, monkeypatch):
    path = tmp_path / "model.afm"
    fitted.save(path)
    before = path.read_bytes()
    calls = []

    def interrupted_save(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_save(*args, **kwargs)

    real_save = np.save
    monkeypatch.setattr(np, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        fitted.save(path)
    assert len(calls) == 3
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.afm"]


# -- threads ------------------------------------------------------------------------------


def test_concurrent_predict_proba_equals_sequential():
    rng = np.random.RandomState(0)
    # Sparse rows with different numbers of non-zeros: the threads' batches
    # have different padded widths, so they compile steps concurrently too.
    X = sp.random(400, 30, density=0.15, format="csr", random_state=rng)
    y = (X.sum(axis=1).A1 > np.median(X.sum(axis=1).A1)).astype(int)
    model = AFMClassifier(max_iter=2, batch_size=16, random_state=0, **CPU).fit(X, y)
    chunks = [X[i::8] for i in range(8)]
    expected = [model.predict_proba(chunk) for chunk in chunks]
    # Right after unpickling the engine is not built: all threads race to build it.
    for candidate in (pickle.loads(pickle.dumps(model)), model):
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(candidate.predict_proba, chunks * 3))
        for got, want in zip(results, expected * 3):
            np.testing.assert_array_equal(got, want)


# -- reproducibility ----------------------------------------------------------------------

_FIT_IN_FRESH_PROCESS = """
    import pickle, sys
    import numpy as np
    from sklearn_afm import AFMRegressor

    with open(sys.argv[1], "rb") as f:
        X, y, params = pickle.load(f)
    for seed in (0, 1):
        model = AFMRegressor(random_state=seed, **params).fit(X, y)
        np.save(f"{sys.argv[2]}{seed}.npy", model.predict(X))
"""


def test_categorical_fit_is_bitwise_reproducible_across_processes(tmp_path, run_python):
    # The random generator drives initialisation, shuffling, dropout, the
    # validation split and the stand-ins for unknown categories.
    rng = np.random.RandomState(0)
    X = pd.DataFrame(
        {"city": rng.choice(["a", "b", "c"], 1200), "v": rng.normal(size=1200),
         "w": rng.normal(size=1200)}
    )
    y = X["v"] * (X["city"] == "a") + X["w"]
    params = dict(max_iter=3, batch_size=128, dropout=0.2, early_stopping=True, **CPU)
    with open(tmp_path / "data.pkl", "wb") as f:
        pickle.dump((X, y, params), f)
    run_python(_FIT_IN_FRESH_PROCESS, tmp_path / "data.pkl", tmp_path / "pred")
    here = AFMRegressor(random_state=0, **params).fit(X, y).predict(X)
    again = AFMRegressor(random_state=0, **params).fit(X, y).predict(X)
    np.testing.assert_array_equal(again, here)
    np.testing.assert_array_equal(np.load(tmp_path / "pred0.npy"), here)
    assert not np.allclose(np.load(tmp_path / "pred1.npy"), here)


_GLOBAL_STATE = """
    import json, random
    import numpy as np
    import keras
    import tensorflow as tf
    from sklearn_afm import AFMClassifier

    def draws():
        return [
            random.random(),
            float(np.random.rand()),
            float(tf.random.uniform([])),
            float(keras.random.uniform(())),
        ]

    X = np.random.RandomState(0).normal(size=(200, 4))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    AFMClassifier(max_iter=1, device="cpu", random_state=0).fit(X, y)  # warm-up
    keras.utils.set_random_seed(123)
    without_fit = draws()
    keras.utils.set_random_seed(123)
    model = AFMClassifier(max_iter=2, dropout=0.3, device="cpu", random_state=0).fit(X, y)
    model.predict_proba(X)
    with_fit = draws()
    print(json.dumps([without_fit, with_fit]))
"""


def test_fitting_leaves_global_random_state_alone(run_python):
    without_fit, with_fit = json.loads(run_python(_GLOBAL_STATE).strip().splitlines()[-1])
    # Python's, numpy's, TensorFlow's and Keras' global generators go on as if
    # no model had been fitted in between.
    assert with_fit == without_fit


# -- fork -------------------------------------------------------------------------------

_FORK_CHILDREN = """
    import multiprocessing, queue
    import numpy as np
    from sklearn_afm import AFMClassifier

    X = np.random.RandomState(0).normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    model = AFMClassifier(max_iter=1, device="cpu", random_state=0).fit(X, y)
    calls = {
        "predict": lambda: model.predict(X),
        "fit": lambda: AFMClassifier(max_iter=1, device="cpu").fit(X, y),
        "partial_fit": lambda: model.partial_fit(X, y),
    }

    def child(results, name):
        try:
            calls[name]()
            results.put("no error")
        except RuntimeError as error:
            results.put(str(error))

    fork = multiprocessing.get_context("fork")
    for name in calls:
        results = fork.Queue()
        process = fork.Process(target=child, args=(results, name))
        process.start()
        try:
            print(name, "->", results.get(timeout=30).replace(chr(10), " "))
        except queue.Empty:
            print(name, "-> hang")
            process.kill()
        process.join()
"""


@pytest.mark.tensorflow
def test_fork_child_of_a_tensorflow_process_fails_fast(run_python):
    # TensorFlow's runtime does not survive fork: a child that used it would
    # wait forever on threads that only exist in the parent.
    lines = run_python(_FORK_CHILDREN, timeout=150).strip().splitlines()[-3:]
    assert [line.split(" -> ")[0] for line in lines] == ["predict", "fit", "partial_fit"]
    for line in lines:
        assert "forked" in line and "'spawn'" in line and "'forkserver'" in line, line


# -- numbers beyond float32 -------------------------------------------------------------


def _frame(X):
    frame = pd.DataFrame(X, columns=list("abcde"))
    frame["city"] = np.resize(["x", "y", "z"], len(frame))
    return frame


@pytest.mark.parametrize("kind", ["dense", "sparse", "frame"])
@pytest.mark.parametrize("factor, message", [
    (1e39, r"beyond float32's range.*\['x2'\]"),
    (1e-39, r"\['x2'\] are below the smallest normal float32"),
])
def test_values_float32_cannot_hold_are_refused_at_fit(data, kind, factor, message):
    X, y = data
    X = X.copy()
    X[:, 2] *= factor
    given = {"dense": X, "sparse": sp.csr_array(X), "frame": _frame(X)}[kind]
    if kind == "frame":
        message = message.replace("x2", "c")
    with pytest.raises(ValueError, match=message):
        AFMClassifier(max_iter=1, **CPU).fit(given, y)


def test_values_beyond_float32_are_refused_at_predict(data, fitted):
    X, _ = data
    model = copy.deepcopy(fitted)
    for method in (model.predict, model.predict_proba, model.partial_fit):
        args = (X * 1e39,) if method != model.partial_fit else (X * 1e39, data[1])
        with pytest.raises(ValueError, match="beyond float32's range"):
            method(*args)
    # A tiny value in a column of ordinary ones is simply close to 0.
    tiny = X.copy()
    tiny[0, 2] = 1e-40
    assert np.isfinite(fitted.predict_proba(tiny)).all()


@pytest.mark.parametrize("method", ["predict_proba", "decision_function", "predict", "score"])
def test_overflowing_network_is_an_error_never_nan(data, fitted, method):
    # 1e30 fits in float32, but products of such features in the network do not.
    X, y = data
    args = (X * 1e30, y) if method == "score" else (X * 1e30,)
    with pytest.raises(ValueError, match="overflow.*float32.*row"):
        getattr(fitted, method)(*args)


def test_overflowing_regressor_is_an_error_never_nan(data):
    X, _ = data
    model = AFMRegressor(max_iter=1, **CPU).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="network's outputs overflow float32"):
        model.predict(X * 1e30)
    # Outputs far from those of training, in the units of targets near float64's limit.
    model.fit(X, np.resize([-1e308, 1e308], len(X)))
    with pytest.raises(ValueError, match="predictions overflow float64"):
        model.predict(X * 1e3)


# -- huge regression targets --------------------------------------------------------------


def test_regressor_handles_targets_near_float64_limits(data):
    X, _ = data
    target = X[:, 0] * X[:, 1] + X[:, 2]
    params = dict(max_iter=3, batch_size=32, random_state=0, **CPU)
    reference = AFMRegressor(**params).fit(X, target).predict(X)
    for magnitude in (1e200, 1e306):
        huge = AFMRegressor(**params).fit(X, target * magnitude)
        predictions = huge.predict(X)
        assert np.isfinite(predictions).all()
        np.testing.assert_allclose(predictions / magnitude, reference, rtol=1e-3, atol=1e-3)


def test_regressor_refuses_targets_it_cannot_standardise(data):
    X, _ = data
    # Centred, the largest target exceeds float64's range.
    y = np.resize([-1.7e308, -1.7e308, 1.7e308], len(X))
    with pytest.raises(ValueError, match="y.*too large"):
        AFMRegressor(max_iter=1, **CPU).fit(X, y)
    # A later chunk far outside the first one's range does not fit float32.
    model = AFMRegressor(max_iter=1, **CPU).partial_fit(X, X[:, 0])
    before = model.predict(X)
    with pytest.raises(ValueError, match="y.*too large"):
        model.partial_fit(X, X[:, 0] * 1e300)
    np.testing.assert_array_equal(model.predict(X), before)


# -- odd categorical cells ----------------------------------------------------------------


def _genres(cells):
    rng = np.random.RandomState(0)
    return pd.DataFrame({"genre": pd.Series(cells, dtype=object), "v": rng.normal(size=len(cells))})


# (Columns of lists, tuples, sets or arrays are multi-valued: tests/test_multivalued.py.)
@pytest.mark.parametrize(
    "cells",
    [[("Action",), "Comedy"] * 20, [["Action", "Drama"], 7] * 20],
    ids=["tuple-and-str", "list-and-number"],
)
def test_multi_valued_cells_mixed_with_single_values_are_refused_at_fit(cells):
    X = _genres(cells)
    with pytest.raises(ValueError, match=r"column 'genre' has, in row \d+, .*several values"):
        AFMClassifier(max_iter=1, **CPU).fit(X, np.resize([0, 1], len(X)))


def test_multi_valued_categories_are_refused_at_fit():
    X = _genres(["Action", "Comedy"] * 20)
    model = AFMClassifier(max_iter=1, categories=[[("Action",), "Comedy"]], **CPU)
    message = r"column 'genre' has, among its given categories, .*several values"
    with pytest.raises(ValueError, match=message):
        model.fit(X, np.resize([0, 1], len(X)))


@pytest.fixture(scope="module")
def genre_model():
    X = _genres(["Action", "Comedy", "Drama"] * 20)
    return AFMClassifier(max_iter=1, random_state=0, **CPU).fit(X, np.resize([0, 1], len(X)))


@pytest.mark.parametrize(
    "cell, error, message, as_category",
    [
        (("Action", "Drama"), ValueError, "several values", False),
        (["Action", "Drama"], ValueError, "several values", False),
        ({"Action"}, ValueError, "several values", False),
        (np.array(["Action"]), ValueError, "several values", False),
        ({"k": 1}, TypeError, "dict.*not a category", False),
        # pandas categories are hashable: of these, only tuples can be one.
        (("Action", "Drama"), ValueError, "several values", True),
    ],
    ids=["tuple", "list", "set", "array", "dict", "tuple-in-category-dtype"],
)
def test_odd_cells_at_predict_get_a_clear_error(genre_model, cell, error, message, as_category):
    X = _genres(["Action", "Comedy", "Drama"] * 2)
    X.iat[4, 0] = cell
    if as_category:
        X["genre"] = X["genre"].astype("category")
    with pytest.raises(error, match=rf"column 'genre'.*row 4.*{message}"):
        genre_model.predict_proba(X)


@pytest.mark.parametrize("cell", [7, 2.5, b"Action", True, object(), "never seen"])
def test_other_unseen_values_are_unknown_categories(genre_model, cell):
    X = _genres(["Action", "Comedy", "Drama"] * 2)
    expected = genre_model.predict_proba(X.assign(genre="never seen"))[4]
    X.iat[4, 0] = cell
    np.testing.assert_array_equal(genre_model.predict_proba(X)[4], expected)


# -- refitting while serving --------------------------------------------------------------


def test_refit_while_predicting_serves_the_old_or_the_new_model():
    rng = np.random.RandomState(0)

    def frame(n_cities):
        cities = rng.choice([f"c{i}" for i in range(n_cities)], 200)
        return pd.DataFrame({"city": cities, "v": rng.normal(size=200)})

    # The new model has ten times the categories: its encoder's feature ids
    # are beyond the old network's embeddings.
    X_old, X_new = frame(3), frame(30)
    y_old, y_new = (X_old["v"] > 0).astype(int), (X_new["v"] > 0.5).astype(int)
    params = dict(max_iter=4, batch_size=32, random_state=0, **CPU)
    query = X_new[:40]
    served = AFMClassifier(**params).fit(X_old, y_old)
    expected = [served.predict_proba(query),
                AFMClassifier(**params).fit(X_new, y_new).predict_proba(query)]
    stop, results, errors = threading.Event(), [], []

    def serve():
        while not stop.is_set():
            try:
                results.append(served.predict_proba(query))
            except Exception as error:  # every failure is a finding
                errors.append(error)

    readers = [threading.Thread(target=serve) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        for X, y in [(X_new, y_new), (X_old, y_old), (X_new, y_new)]:
            served.set_params(batch_size=32).fit(X, y)
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert not errors, errors[:3]
    assert len(results) > 10
    mixed = [r for r in results if not any(np.array_equal(r, e) for e in expected)]
    assert not mixed, f"{len(mixed)} of {len(results)} predictions mixed two models"


# -- reproducibility across thread counts ---------------------------------------------------


def test_user_guide_says_what_reproducibility_covers():
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[1] / "docs" / "user_guide.rst").read_text()
    section = guide.split("Reproducibility\n---------------")[1].split("\n---")[0]
    # Another thread count sums in another order (measured: 2.4e-4 apart).
    for fact in ("same machine", "number of threads", "OMP_NUM_THREADS"):
        assert fact in section, fact


# -- wide rows, dtype policies, memory over many fits (issue 14, items 1, 8, 13) -----------


def test_rows_too_wide_for_any_step_are_refused_before_allocating(run_python):
    """5 rows x 10,000 dense columns once grew to 6.8 GB and crashed: now a ValueError,
    under an address-space limit that the old allocation would exceed."""
    out = run_python(
        """
        import resource
        import numpy as np
        resource.setrlimit(resource.RLIMIT_AS, (5 * 2**30, 5 * 2**30))
        from sklearn_afm import AFMClassifier
        X = np.random.RandomState(0).rand(5, 10_000)
        try:
            AFMClassifier(max_iter=1, device="cpu").fit(X, [0, 1, 0, 1, 0])
        except ValueError as error:
            print(error)
        """
    )
    assert "non-zero features" in out and "categorical_features" in out


def test_wide_rows_train_and_predict_in_row_chunks_within_the_budget(monkeypatch):
    """A batch whose pair tensors exceed the budget is cut into chunks of rows: the update
    is the same as one step over the whole batch, and prediction takes smaller batches."""
    import sklearn_afm._batching as batching

    rng = np.random.RandomState(0)
    X, y = rng.rand(60, 12), rng.randint(2, size=60)
    # No dropout: a chunk of rows draws its own mask, of its own shape.
    params = dict(max_iter=2, batch_size=30, early_stopping=False, random_state=0, dropout=0.0,
                  **CPU)
    whole = AFMClassifier(**params).fit(X, y)
    # 12 columns: 66 pairs x 16 = 1,056 values a row; a budget of 5,000 takes 4 rows.
    monkeypatch.setattr(batching, "PAIR_BUDGET", 5_000)
    chunked = AFMClassifier(**params).fit(X, y)
    np.testing.assert_allclose(chunked.loss_curve_, whole.loss_curve_, rtol=1e-5)
    np.testing.assert_allclose(chunked.predict_proba(X), whole.predict_proba(X), rtol=1e-5)
    assert batching.prediction_batch_size(as_row_source(X), 30, 16) == 4


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "float64"])
def test_global_keras_dtype_policy_changes_nothing(run_python, policy):
    out = run_python(
        """
        import sys
        import numpy as np
        import keras
        from sklearn_afm import AFMClassifier
        rng = np.random.RandomState(0)
        X = rng.normal(size=(300, 5)); y = (X[:, 0] * X[:, 1] > 0).astype(int)
        fit = lambda: AFMClassifier(max_iter=2, random_state=0, device="cpu").fit(X, y)
        default = fit()
        expected = default.predict_proba(X)
        keras.mixed_precision.set_global_policy(sys.argv[1])
        print(np.abs(default.predict_proba(X) - expected).max(),
              np.abs(fit().predict_proba(X) - expected).max())
        """,
        policy,
    )
    assert [float(v) for v in out.split()] == [0.0, 0.0]


def test_many_fits_in_one_process_do_not_grow_memory(run_python):
    """Before: ~0.9 MB of native memory per fit, kept (a long GridSearchCV leaked)."""
    out = run_python(
        """
        import resource
        import warnings
        import numpy as np
        from sklearn_afm import AFMClassifier
        warnings.simplefilter("ignore")
        rng = np.random.RandomState(0)
        X = rng.normal(size=(100, 4)); y = (X[:, 0] > 0).astype(int)
        params = dict(max_iter=1, embedding_size=4, attention_size=3, batch_size=50, device="cpu")
        rss = []
        for i in range(70):
            AFMClassifier(random_state=i, **params).fit(X, y).predict(X)
            if i in (19, 69):
                rss.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB
        print((rss[1] - rss[0]) / 50)
        """
    )
    assert float(out) < 300, f"{float(out):.0f} KiB per fit"
