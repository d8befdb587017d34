"""Saving and loading: the pickle-free format, joblib, and what loading refuses."""

import io
import json
import os
import pickle
import re
import signal
import stat
import subprocess
import sys
import textwrap
import time
import warnings
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


def _write(path, manifest, arrays, extra=()):
    """Write a model file: ``manifest`` (a dict, or JSON text), then ``arrays`` and ``extra``.

    ``arrays`` maps member names to bytes or to an iterable of chunks (a
    streamed bomb); ``extra`` is a list of further (name or ZipInfo, bytes)
    members, repeated names allowed.
    """
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile on a repeated name
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            archive.writestr("estimator.json", text)
            for name, data in [*arrays.items(), *extra]:
                with archive.open(name, "w") as member:
                    for chunk in [data] if isinstance(data, bytes) else data:
                        member.write(chunk)
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


# -- untrusted files: what a file may claim, hold and make the loader do ------------------


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _npy_header(shape, dtype="<f4"):
    """The .npy header of an array of ``shape``, without its data."""
    buffer = io.BytesIO()
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def _claiming(shape, n_bytes, dtype="<f4"):
    """A member whose header claims ``shape`` and that holds ``n_bytes`` zeros, streamed."""
    yield _npy_header(shape, dtype)
    for start in range(0, n_bytes, 2**20):
        yield bytes(min(2**20, n_bytes - start))


def _member(manifest, *path):
    """The member name of the array at ``path`` in the fitted section."""
    value = manifest["fitted"]
    for key in path:
        value = value[key]
    return value["file"]


_LOAD_UNDER_MEMORY_LIMIT = """
    import json, resource, sys
    import sklearn_afm

    sklearn_afm.load(sys.argv[1])  # imports what loading needs before the limit
    with open("/proc/self/statm") as f:
        mapped = int(f.read().split()[0]) * resource.getpagesize()
    # Loading a small model takes a few MiB; 128 MiB more than is mapped now
    # is far less than any of the crafted members would inflate to.
    resource.setrlimit(resource.RLIMIT_AS, (mapped + 128 * 2**20, resource.RLIM_INFINITY))
    results = []
    for path in sys.argv[1:]:
        try:
            sklearn_afm.load(path)
            results.append(["loaded", ""])
        except Exception as error:
            results.append([type(error).__name__, str(error)[:400]])
    print(json.dumps(results))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc")
def test_array_members_are_checked_before_they_are_read(tmp_path, saved, run_python):
    path, manifest, arrays = saved
    embeddings = _member(manifest, "_weights", 1)
    columns = _member(manifest, "_encoder", "state", "feature_columns_")
    cases = {
        # A 256 MiB deflate bomb of the right dtype in place of the (15, 16) embeddings.
        "bomb": ({embeddings: _claiming((2**26,), 2**28)},
                 r"_weights\[1\] must be a float32 array of shape \(15, 16\), not a float32 "
                 r"array of shape \(67108864,\)"),
        # The same bomb where no exact shape is known: the encoder's feature columns.
        "bomb outside the network": ({columns: _claiming((2**26,), 2**28, "<i4")},
                                     r"its arrays claim \d+ bytes, more than the \d+ that"),
        # Headers that claim 58 TiB, and 4 GiB, over a few bytes of data.
        "58 TiB claimed": ({embeddings: _claiming((2**44,), 1024)},
                           r"claims shape \(17592186044416,\) .* but holds 1024 bytes"),
        "4 GiB claimed": ({embeddings: _claiming((2**30,), 2**20)},
                          r"claims shape \(1073741824,\) .* but holds 1048576 bytes"),
    }
    paths = [path]
    for name, (members, _) in cases.items():
        paths.append(_write(tmp_path / f"{name}.afm", manifest, {**arrays, **members}))
    results = json.loads(run_python(_LOAD_UNDER_MEMORY_LIMIT, *paths).splitlines()[-1])
    assert results[0] == ["loaded", ""]
    for (name, (_, message)), (kind, text) in zip(cases.items(), results[1:]):
        assert kind == "InvalidFile", (name, kind, text)
        assert re.search(message, text), (name, text)


def _set_config(key, value):
    def edit(manifest):
        items = manifest["fitted"]["_network_config"]["items"]
        items[[k for k, _ in items].index(key)][1] = value

    return edit


@pytest.mark.parametrize(
    "edit, message",
    [
        (_set_config("embedding_size", 10**9),
         r"_weights\[1\] must be a float32 array of shape \(15, 1000000000\), not a float32 "
         r"array of shape \(15, 16\)"),
        (_set_config("n_features", 10**10),
         r"n_features must be an integer in \[1, 2147483647\], not 10000000000"),
        (_set_config("n_outputs", 1), r"_weights\[2\] must be a float32 array of shape \(15, 1\)"),
        (_set_config("attention_size", "16"), "attention_size must be an integer"),
        (_set_config("dropout", 1.5), r"dropout must be a number in \[0, 1\), not 1.5"),
        (_set_config("use_attention", 1), "use_attention must be a bool"),
        (_set_config("seed", -1), "seed must be an integer in"),
        (lambda m: m["fitted"]["_network_config"]["items"].append(["depth", 3]),
         "_network_config must map n_features, n_outputs"),
        (lambda m: m["fitted"]["_network_config"]["items"].append([7, 3]),
         "_network_config must map n_features, n_outputs"),
        (lambda m: m["fitted"].update(n_features_in_=16), r"n_features_in_ must be an integer in "
                                                          r"\[1, 15\], not 16"),
        (lambda m: m["fitted"]["_encoder"]["state"].update(n_features_=14),
         "_encoder maps the columns to 14 features, but the network has 15"),
        (lambda m: m["fitted"].update(_optimizer_config={"__kind__": "dict", "items": [
            ["solver", "rmsprop"], ["learning_rate", 0.01]]}), "a solver among adam, adagrad"),
    ],
    ids=["embedding-size", "n-features", "n-outputs", "type", "dropout", "use-attention",
         "seed", "unknown-key", "number-key", "columns", "encoder", "solver"],
)
def test_network_configuration_is_checked_at_load(tmp_path, saved, edit, message):
    _, manifest, arrays = saved
    path = _write(tmp_path / "crafted.afm", _edited(manifest, edit), arrays)
    with pytest.raises(ValueError, match=message):
        sklearn_afm.load(path)


def _replace_array(path, array):
    """Edit: the array at ``path`` of the fitted section becomes ``array``."""

    def edit(manifest, arrays):
        arrays[_member(manifest, *path)] = _npy(array)

    return edit


def _cut_list(name, keep):
    def edit(manifest, arrays):
        for value in manifest["fitted"][name][keep:]:
            arrays.pop(value.get("file"), None)
        del manifest["fitted"][name][keep:]

    return edit


def _add_weight(manifest, arrays):
    manifest["fitted"]["_weights"].append({"__kind__": "ndarray", "file": "arrays/999.npy"})
    arrays["arrays/999.npy"] = _npy(np.zeros(3, np.float32))


def _nan_embedding(value):
    array = np.zeros((15, 16), np.float32)
    array[3, 4] = value
    return _replace_array(("_weights", 1), array)


@pytest.mark.parametrize(
    "edit, message",
    [
        (_replace_array(("_weights", 1), np.zeros((15, 5), np.float32)),
         r"_weights\[1\] must be a float32 array of shape \(15, 16\), not a float32 array "
         r"of shape \(15, 5\)"),
        (_replace_array(("_weights", 1), np.zeros((15, 16))),
         r"_weights\[1\] must be a float32 array .* not a float64 array"),
        (_cut_list("_weights", 7), "_weights must be a list of 8 arrays .* not a list of 7"),
        (_add_weight, "_weights must be a list of 8 arrays .* not a list of 9"),
        (_cut_list("_optimizer_state", 4),
         "_optimizer_state must be a list of 16 arrays .* not a list of 4"),
        (_replace_array(("classes_",), np.array(["a", "b", "c", "d"])),
         "classes_ holds 4 classes, but the network has 3 outputs"),
        (_replace_array(("classes_",), np.array(["a", "a", "b"])), "classes_ repeats labels"),
        (_nan_embedding(np.nan), r"_weights\[1\] holds NaN or infinite values"),
        (_nan_embedding(np.inf), r"_weights\[1\] holds NaN or infinite values"),
        (_replace_array(("attention_weights_",), np.zeros((3, 3))),
         r"attention_weights_ must be a float64 array of shape \(4, 4\)"),
    ],
    ids=["shape", "dtype", "missing", "extra", "cut-optimizer-state", "classes-outputs",
         "repeated-classes", "nan", "inf", "attention"],
)
def test_network_arrays_are_checked_at_load(tmp_path, saved, edit, message):
    _, manifest, arrays = saved
    manifest, arrays = json.loads(json.dumps(manifest)), dict(arrays)
    edit(manifest, arrays)
    with pytest.raises(ValueError, match=message):
        sklearn_afm.load(_write(tmp_path / "crafted.afm", manifest, arrays))


@pytest.mark.parametrize(
    "estimator, params",
    [("classifier", {}), ("regressor", dict(solver="adagrad", use_attention=False)),
     ("classifier", dict(solver="sgd", embedding_size=3, attention_size=5))],
)
def test_expected_shapes_are_those_of_a_fitted_network(estimator, params):
    # load derives the shapes without TensorFlow: they must be the engine's.
    from sklearn_afm._checks import optimizer_shapes, weight_shapes

    model, X = _fit(estimator, "dense")
    model.set_params(**params).fit(X, model.predict(X) if estimator == "regressor" else
                                   np.arange(X.shape[0]) % 2)
    network = model._network
    weights, trainable = weight_shapes(network.config)
    assert [w.shape for w in network.weights] == weights
    state = optimizer_shapes(network.optimizer["solver"], trainable)
    assert [np.shape(v) for v in network.optimizer_state] == state


def _nested(depth):
    """Manifest text whose loss_curve_ nests ``depth`` lists (json.dumps would recurse)."""

    def text(manifest):
        marker = "__nested__"
        manifest = _edited(manifest, lambda m: m["fitted"].update(loss_curve_=marker))
        return json.dumps(manifest).replace(f'"{marker}"', "[" * depth + "]" * depth)

    return text


def _symlink(manifest, arrays):
    info = zipfile.ZipInfo(_member(manifest, "_weights", 0))
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return manifest, {k: v for k, v in arrays.items() if k != info.filename}, [(info, b"/etc")]


def _repeated(manifest, arrays):
    name = _member(manifest, "_weights", 1)
    return manifest, arrays, [(name, _npy(np.ones((15, 16), np.float32)))]


def _repeated_json_key(manifest, arrays):
    text = json.dumps(manifest)
    return text.replace('"n_iter_": ', '"n_iter_": 99, "n_iter_": ', 1), arrays, []


def _edit(edit):
    return lambda manifest, arrays: (_edited(manifest, edit), arrays, [])


def _text(make):
    return lambda manifest, arrays: (make(manifest), arrays, [])


@pytest.mark.parametrize(
    "craft, message",
    [
        (_edit(lambda m: m["fitted"].update(predict="x")),
         "attributes that a fitted AFMClassifier does not have: predict"),
        (_edit(lambda m: m.update(fitted={"best_loss_": 0.5})),
         "attributes that an unfitted AFMClassifier does not have: best_loss_"),
        (_edit(lambda m: m["fitted"]["_encoder"]["state"].update(transform=1)),
         r"would hide FeatureEncoder's: \['transform'\]"),
        (_edit(lambda m: m["fitted"]["classes_"].update(shape=[3])),
         r"has the fields \['__kind__', 'file', 'shape'\]; a ndarray has file"),
        (_edit(lambda m: m.update(comment="hi")), r"keys the format does not have: \['comment'\]"),
        (_edit(lambda m: m.update(format_version=True)), "format version True is not a positive"),
        (_edit(lambda m: m.update(format_version=-7)), "format version -7 is not a positive"),
        (_edit(lambda m: m.update(format_version=1.0)), "format version 1.0 is not a positive"),
        (_edit(lambda m: m.update(sklearn_afm_version=["0.1"])), "not a version"),
        (_text(_nested(500)), "nested more than 32 levels deep"),
        (_text(_nested(100_000)), "nested more than 32 levels deep"),
        (_repeated_json_key, "repeats the key 'n_iter_'"),
        (_repeated, r"holds the members \['arrays/\d+.npy'\] more than once"),
        (_symlink, r"member 'arrays/\d+.npy' is a symbolic link"),
        (lambda m, a: (m, a, [("notes.txt", b"hi")]), "member 'notes.txt' is not part of"),
        (lambda m, a: (m, a, [("arrays/999.npy", _npy(np.zeros(3)))]),
         r"arrays that no value names: \['arrays/999.npy'\]"),
    ],
    ids=["unknown-attribute", "unfitted-attribute", "hides-a-method", "unknown-field",
         "unknown-manifest-key", "version-true", "version-negative", "version-float", "writer-version", "depth-500",
         "depth-100000", "repeated-json-key", "repeated-member", "symlink-member",
         "unknown-member", "unused-member"],
)
def test_only_the_schema_is_accepted(tmp_path, saved, craft, message):
    _, manifest, arrays = saved
    manifest, arrays, extra = craft(manifest, dict(arrays))
    with pytest.raises(ValueError, match=message):
        sklearn_afm.load(_write(tmp_path / "crafted.afm", manifest, arrays, extra))


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m.update(estimator="A" * 10**7),
        lambda m: m["fitted"].update(loss_curve_={"__kind__": "B" * 10**7}),
        lambda m: m["fitted"]["_encoder"].update({"class": "C" * 10**7}),
        lambda m: m["fitted"]["loss_curve_"].append({"__kind__": "scalar", "dtype": "D" * 10**7,
                                                     "value": 1}),
        lambda m: m["params"].update(solver="E" * 10**7),
    ],
    ids=["estimator", "kind", "class", "dtype", "parameter"],
)
def test_messages_cut_what_they_echo_short(tmp_path, saved, edit):
    _, manifest, arrays = saved
    with pytest.raises(ValueError) as error:
        sklearn_afm.load(_write(tmp_path / "crafted.afm", _edited(manifest, edit), arrays))
    assert len(str(error.value)) < 1000


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
