"""Saving and loading: the pickle-free format, joblib, and what loading refuses."""

import io
import json
import os
import pickle
import signal
import stat
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import sklearn_afm
from sklearn_afm import AFMClassifier, AFMRegressor, InconsistentVersionWarning

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FAST = dict(max_iter=2, batch_size=64, random_state=0, device="cpu")


def _inputs(kind, rng):
    """Training rows of each input kind the estimators accept."""
    n = 150
    if kind == "dense":
        return rng.normal(size=(n, 4))
    if kind == "sparse":
        return sp.random(n, 12, density=0.3, format="csr", random_state=rng)
    # String, integer-label and pandas category columns, a missing value, and
    # a numeric column: every kind of vocabulary the encoder keeps.
    frame = pd.DataFrame(
        {
            "city": rng.choice(["Paris", "Rome", "Oslo"], n).astype(object),
            "size": rng.normal(size=n),
            "grade": rng.choice([1, 2, 3], n).astype(object),
            "band": pd.Categorical(rng.choice([0.5, 1.5], n)),
        }
    )
    frame.loc[3, "city"] = None
    return frame


def _fit(estimator, kind, seed=0):
    rng = np.random.RandomState(seed)
    X = _inputs(kind, rng)
    if estimator == "classifier":
        return AFMClassifier(**FAST).fit(X, rng.choice(["no", "yes", "maybe"], X.shape[0])), X
    return AFMRegressor(**FAST).fit(X, rng.normal(size=X.shape[0])), X


def _output(model, X):
    return model.predict_proba(X) if hasattr(model, "predict_proba") else model.predict(X)


CASES = [(e, k) for e in ("classifier", "regressor") for k in ("dense", "sparse", "categorical")]

_LOAD_IN_FRESH_PROCESS = """
    import pickle, sys
    from pathlib import Path

    import joblib
    import numpy as np

    import sklearn_afm

    base = Path(sys.argv[1])
    for name in sys.argv[2:]:
        with open(base / f"{name}.X.pkl", "rb") as f:
            X = pickle.load(f)
        for fmt, model in [
            ("joblib", joblib.load(base / f"{name}.joblib")),
            ("afm", sklearn_afm.load(base / f"{name}.afm")),
        ]:
            out = model.predict_proba(X) if hasattr(model, "predict_proba") else model.predict(X)
            np.save(base / f"{name}.{fmt}.npy", out)
"""


def test_round_trip_in_a_fresh_process_predicts_identically(tmp_path, run_python):
    expected = {}
    for estimator, kind in CASES:
        name = f"{estimator}-{kind}"
        model, X = _fit(estimator, kind)
        expected[name] = _output(model, X)
        model.save(tmp_path / f"{name}.afm")
        joblib.dump(model, tmp_path / f"{name}.joblib")
        with open(tmp_path / f"{name}.X.pkl", "wb") as f:
            pickle.dump(X, f)
    run_python(_LOAD_IN_FRESH_PROCESS, tmp_path, *expected)
    for name, output in expected.items():
        for fmt in ("joblib", "afm"):
            np.testing.assert_array_equal(np.load(tmp_path / f"{name}.{fmt}.npy"), output)


@pytest.mark.parametrize("estimator, kind", CASES)
def test_loaded_estimator_is_the_same_estimator(tmp_path, estimator, kind):
    model, X = _fit(estimator, kind)
    model.save(tmp_path / "model.afm")
    loaded = sklearn_afm.load(tmp_path / "model.afm")
    assert type(loaded) is type(model)
    assert loaded.get_params() == model.get_params()
    for attribute in ("n_features_in_", "n_iter_", "loss_curve_", "best_loss_", "device_"):
        assert getattr(loaded, attribute) == getattr(model, attribute)
    np.testing.assert_array_equal(loaded.attention_weights_, model.attention_weights_)
    if estimator == "classifier":
        np.testing.assert_array_equal(loaded.classes_, model.classes_)
        assert loaded.classes_.dtype == model.classes_.dtype
    if kind == "categorical":
        np.testing.assert_array_equal(loaded.feature_names_in_, model.feature_names_in_)
        for got, want in zip(loaded.categories_, model.categories_):
            if want is None:  # a numeric column
                assert got is None
            else:
                assert list(got) == list(want)
                assert [type(v) for v in got] == [type(v) for v in want]
        # Unseen and missing categories still go to their own embeddings.
        odd = X.head(3).copy()
        odd.loc[0, "city"] = "Lima"
        odd.loc[1, "grade"] = None
        np.testing.assert_array_equal(_output(loaded, odd), _output(model, odd))
    np.testing.assert_array_equal(_output(loaded, X), _output(model, X))


@pytest.mark.parametrize("estimator", ["classifier", "regressor"])
def test_loaded_estimator_continues_training_exactly(tmp_path, estimator):
    # Optimizer moments and the partial_fit random generator are part of the
    # file: a loaded model and the original go on in lockstep.
    model, X = _fit(estimator, "categorical")
    y = np.asarray(model.classes_)[np.arange(X.shape[0]) % 3] if estimator == "classifier" else (
        np.arange(X.shape[0]) / 50.0
    )
    model.save(tmp_path / "model.afm")
    loaded = sklearn_afm.load(tmp_path / "model.afm")
    for _ in range(2):
        model.partial_fit(X, y)
        loaded.partial_fit(X, y)
    np.testing.assert_array_equal(_output(loaded, X), _output(model, X))
    np.testing.assert_array_equal(loaded.attention_weights_, model.attention_weights_)
    model.set_params(warm_start=True, max_iter=1).fit(X, y)
    loaded.set_params(warm_start=True, max_iter=1).fit(X, y)
    np.testing.assert_array_equal(_output(loaded, X), _output(model, X))


def test_parameters_that_are_data_round_trip(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 3))
    y = np.where(X[:, 0] > 0, 7, 3)
    model = AFMClassifier(
        max_iter=1, class_weight={3: 1.0, 7: 2.5}, random_state=np.random.RandomState(5),
        categorical_features=np.array([False, False, False]), device="cpu",
    ).fit(X, y)
    model.save(tmp_path / "model.afm")
    loaded = sklearn_afm.load(tmp_path / "model.afm")
    assert loaded.class_weight == {3: 1.0, 7: 2.5}
    np.testing.assert_array_equal(loaded.categorical_features, model.categorical_features)
    # A RandomState parameter is stored as its state: it draws the same numbers.
    assert isinstance(loaded.random_state, np.random.RandomState)
    assert loaded.random_state.randint(1000) == model.random_state.randint(1000)


def test_unfitted_estimator_round_trips(tmp_path):
    AFMRegressor(embedding_size=3).save(tmp_path / "model.afm")
    loaded = sklearn_afm.load(tmp_path / "model.afm")
    assert loaded.get_params() == AFMRegressor(embedding_size=3).get_params()
    assert not hasattr(loaded, "n_features_in_")


def test_file_objects_are_accepted():
    model, X = _fit("regressor", "dense")
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(sklearn_afm.load(buffer).predict(X), model.predict(X))


def test_saving_a_parameter_that_is_not_data_fails_and_keeps_the_old_file(tmp_path):
    model, _ = _fit("regressor", "dense")
    path = tmp_path / "model.afm"
    model.save(path)
    before = path.read_bytes()
    model.random_state = np.random.default_rng(0)
    with pytest.raises(TypeError, match="parameter random_state is a numpy.random.*Generator"):
        model.save(path)
    # The failed save neither replaced the file nor left a temporary one.
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.afm"]


def test_categories_that_are_not_numbers_or_strings_cannot_be_saved(tmp_path):
    rng = np.random.RandomState(0)
    days = pd.to_datetime(rng.choice(["2024-01-01", "2024-02-01"], 40))
    frame = pd.DataFrame({"day": days, "v": rng.normal(size=40)})
    model = AFMRegressor(max_iter=1, device="cpu").fit(frame, rng.normal(size=40))
    with pytest.raises(TypeError, match=r"categories_\[0\] is an object array holding a Timesta"):
        model.save(tmp_path / "model.afm")
    assert not list(tmp_path.iterdir())


def test_loading_does_not_import_tensorflow(tmp_path, run_python):
    model, X = _fit("classifier", "categorical")
    model.save(tmp_path / "model.afm")
    out = run_python(
        """
        import sys
        import sklearn_afm
        sklearn_afm.load(sys.argv[1])
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras")))
        """,
        tmp_path / "model.afm",
    )
    assert out.strip().splitlines()[-1] == "[]"


# -- what loading refuses -----------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(path of a saved classifier, its manifest as a dict, its arrays by name)."""
    model, _ = _fit("classifier", "categorical")
    path = tmp_path_factory.mktemp("saved") / "model.afm"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("estimator.json"))
        arrays = {n: archive.read(n) for n in archive.namelist() if n != "estimator.json"}
    return path, manifest, arrays


def _write(path, manifest, arrays):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("estimator.json", json.dumps(manifest))
        for name, data in arrays.items():
            archive.writestr(name, data)
    return path


class _RunsCode:
    """Unpickling this object creates a marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_plain_pickle_is_refused_and_recognised(tmp_path, saved):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.afm"
    path.write_bytes(pickle.dumps(_RunsCode(marker)))
    with pytest.raises(ValueError, match="not a sklearn_afm model file.*looks like a pickle"):
        sklearn_afm.load(path)
    assert not marker.exists()
    # joblib's files are pickles too.
    joblib.dump(_fit("regressor", "dense")[0], path)
    with pytest.raises(ValueError, match="looks like a pickle.*trusted"):
        sklearn_afm.load(path)


def test_an_array_that_needs_pickle_is_refused(tmp_path, saved):
    _, manifest, arrays = saved
    marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    np.save(buffer, np.array([_RunsCode(marker)], dtype=object), allow_pickle=True)
    arrays = {**arrays, "arrays/0.npy": buffer.getvalue()}
    with pytest.raises(ValueError, match="arrays/0.npy.*cannot be read without pickle"):
        sklearn_afm.load(_write(tmp_path / "evil.afm", manifest, arrays))
    assert not marker.exists()


def _edited(manifest, edit):
    manifest = json.loads(json.dumps(manifest))
    edit(manifest)
    return manifest


def _set_encoder_class(name):
    def edit(manifest):
        manifest["fitted"]["_encoder"]["class"] = name

    return edit


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.update(estimator="Pipeline"), "holds a 'Pipeline'; only AFMClassifier"),
        (lambda m: m.update(format="joblib"), "does not declare format 'sklearn_afm'"),
        (lambda m: m.update(format_version=99), "format version 99.*upgrade sklearn_afm"),
        (_set_encoder_class("builtins.eval"), "class 'builtins.eval', which is not allowed"),
        (_set_encoder_class("os.system"), "class 'os.system', which is not allowed"),
        (
            lambda m: m["fitted"].update(loss_curve_={"__kind__": "call", "fn": "os.system"}),
            "unknown kind of value 'call'",
        ),
        (
            lambda m: m["fitted"].update(_weights=[{"__kind__": "ndarray", "file": "../x.npy"}]),
            "outside the archive's arrays/",
        ),
        (
            lambda m: m["fitted"].update(
                loss_curve_={"__kind__": "scalar", "dtype": "|O", "value": 1}
            ),
            "dtype object, which this format does not allow",
        ),
        (lambda m: m["fitted"].update(__class__="dict"), r"not allowed: \['__class__'\]"),
        (lambda m: m["fitted"].pop("_weights"), "incomplete fitted AFMClassifier: _weights"),
        (lambda m: m["params"].update(ensemble=3), "parameters do not fit AFMClassifier"),
        (lambda m: m["params"].update(embedding_size="big"), "embedding_size"),
        (lambda m: m.pop("fitted"), "lacks 'fitted'"),
    ],
    ids=[
        "class-not-allowed",
        "other-format",
        "newer-format",
        "helper-eval",
        "helper-os-system",
        "unknown-kind",
        "path-outside-arrays",
        "object-scalar",
        "dunder-attribute",
        "incomplete-state",
        "unknown-parameter",
        "invalid-parameter",
        "no-fitted-section",
    ],
)
def test_crafted_files_are_refused(tmp_path, saved, edit, message):
    _, manifest, arrays = saved
    with pytest.raises(ValueError, match=message):
        sklearn_afm.load(_write(tmp_path / "crafted.afm", _edited(manifest, edit), arrays))


def test_truncated_or_corrupted_files_are_refused(tmp_path, saved):
    path, _, _ = saved
    data = path.read_bytes()
    for size in (0, 10, len(data) // 2, len(data) - 30):
        (tmp_path / "cut.afm").write_bytes(data[:size])
        with pytest.raises(ValueError, match="not a sklearn_afm model file.*truncated"):
            sklearn_afm.load(tmp_path / "cut.afm")
    # Flipped bytes inside a stored member fail its checksum.
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("arrays/0.npy")
    corrupted = bytearray(data)
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    corrupted[start : start + 8] = bytes(255 - b for b in corrupted[start : start + 8])
    (tmp_path / "corrupted.afm").write_bytes(bytes(corrupted))
    with pytest.raises(ValueError, match="truncated or corrupted"):
        sklearn_afm.load(tmp_path / "corrupted.afm")


def test_a_zip_that_is_not_ours_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("weights.npy", b"")
    with pytest.raises(ValueError, match="zip archive but not a sklearn_afm model file"):
        sklearn_afm.load(tmp_path / "other.zip")


# -- versions -----------------------------------------------------------------------------


def test_another_package_version_warns_naming_both(tmp_path, monkeypatch):
    model, X = _fit("regressor", "dense")
    monkeypatch.setattr(sklearn_afm, "__version__", "0.0.1")
    model.save(tmp_path / "model.afm")
    payload = pickle.dumps(model)
    monkeypatch.undo()
    for load in (lambda: sklearn_afm.load(tmp_path / "model.afm"), lambda: pickle.loads(payload)):
        with pytest.warns(InconsistentVersionWarning, match=r"saved by sklearn_afm 0\.0\.1 with "
                          rf"sklearn_afm {sklearn_afm.__version__}") as record:
            loaded = load()
        assert record[0].message.original_sklearn_version == "0.0.1"
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_same_version_loads_silently(tmp_path, recwarn):
    model, _ = _fit("regressor", "dense")
    model.save(tmp_path / "model.afm")
    sklearn_afm.load(tmp_path / "model.afm")
    pickle.loads(pickle.dumps(model))
    assert not [w for w in recwarn if issubclass(w.category, InconsistentVersionWarning)]


def test_pickle_missing_fitted_state_is_refused():
    model, _ = _fit("classifier", "dense")
    state = model.__getstate__()
    del state["_optimizer_state"], state["classes_"]
    with pytest.raises(ValueError, match="incomplete fitted AFMClassifier: _optimizer_state, "
                       "classes_ missing"):
        AFMClassifier.__new__(AFMClassifier).__setstate__(state)


_LOAD_DAMAGED_PICKLES = """
    import json, sys, traceback
    import joblib

    errors, frames = [], set()
    for path in sys.argv[1:]:
        try:
            joblib.load(path)
        except Exception as error:
            errors.append(type(error).__name__)
            frames |= {frame.filename for frame in traceback.extract_tb(error.__traceback__)}
        else:
            raise AssertionError(f"{path} loaded")
    tf = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
    ours = sorted(f for f in frames if "sklearn_afm" in f or "tensorflow" in f)
    print(json.dumps({"errors": errors, "ours": ours, "tensorflow": tf}))
"""


def test_truncated_or_corrupted_pickles_fail_in_pickle_not_tensorflow(tmp_path, run_python):
    model, _ = _fit("classifier", "categorical")
    data = pickle.dumps(model)
    paths = []
    for size in (1, len(data) // 3, len(data) // 2, len(data) - 1):
        paths.append(tmp_path / f"cut{size}.pkl")
        paths[-1].write_bytes(data[:size])
    out = run_python(_LOAD_DAMAGED_PICKLES, *paths)
    report = json.loads(out.strip().splitlines()[-1])
    # Each fails in pickle itself (EOFError, UnpicklingError, ...), before any
    # code of ours or of TensorFlow runs.
    assert len(report["errors"]) == len(paths)
    assert report["ours"] == []
    assert report["tensorflow"] == []


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions and links")
def test_save_writes_the_file_as_a_plain_write_would(tmp_path):
    model = AFMRegressor(embedding_size=3)
    umask = os.umask(0o027)
    try:
        model.save(tmp_path / "new.afm")
        (tmp_path / "plain").write_bytes(b"")
    finally:
        os.umask(umask)
    assert _mode(tmp_path / "new.afm") == _mode(tmp_path / "plain") == 0o640
    # An existing file keeps its permissions.
    shared = tmp_path / "shared.afm"
    shared.write_bytes(b"")
    shared.chmod(0o664)
    model.save(shared)
    assert _mode(shared) == 0o664
    # A symbolic link is written through, to its target.
    (tmp_path / "link.afm").symlink_to("target.afm")
    model.save(tmp_path / "link.afm")
    assert (tmp_path / "link.afm").is_symlink()
    assert sklearn_afm.load(tmp_path / "target.afm").embedding_size == 3
    assert not list(tmp_path.glob(".sklearn_afm-*.tmp"))


_SAVE_UNTIL_TERMINATED = """
    import sys
    import numpy as np
    from sklearn_afm import AFMRegressor

    # A parameter of 16 Mi random booleans: a save takes a while.
    bits = np.frombuffer(np.random.RandomState(0).bytes(2**21), dtype=np.uint8)
    model = AFMRegressor(categorical_features=np.unpackbits(bits).astype(bool))
    while True:
        model.save(sys.argv[1])
"""


@pytest.mark.skipif(os.name != "posix", reason="SIGTERM")
def test_sigterm_during_save_removes_the_temporary_file(tmp_path):
    command = [sys.executable, "-c", textwrap.dedent(_SAVE_UNTIL_TERMINATED), tmp_path / "m.afm"]
    process = subprocess.Popen(command, cwd=Path(__file__).resolve().parents[1])
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".sklearn_afm-*.tmp")):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.005)
        process.send_signal(signal.SIGTERM)
        # The process still ends by the signal, as without a save under way.
        assert process.wait(timeout=60) == -signal.SIGTERM
    finally:
        process.kill()
    assert [p.name for p in tmp_path.iterdir()] in ([], ["m.afm"])


def test_save_leaves_the_sigterm_handler_as_it_was(tmp_path):
    model = AFMRegressor(embedding_size=3)
    model.save(tmp_path / "model.afm")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

    def handler(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        model.save(tmp_path / "model.afm")
        assert signal.getsignal(signal.SIGTERM) is handler
    finally:
        signal.signal(signal.SIGTERM, previous)
