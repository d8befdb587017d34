"""Progress of a fit: scikit-learn's callback API (1.9 on) and the ``verbose`` lines.

The callback tests run where ``sklearn.callback`` exists; the fallback tests
simulate a scikit-learn without it (1.6 to 1.8), where everything else must
work as before.
"""

import importlib
import io
import re
import sys
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

import sklearn_afm
from sklearn_afm import AFMClassifier, AFMRegressor, _callbacks

needs_callback_api = pytest.mark.skipif(
    not _callbacks.HAS_CALLBACK_API, reason="scikit-learn's callback API needs scikit-learn >= 1.9"
)

# No early stop: every test knows how many epochs run.
EPOCHS = {"early_stopping": False, "n_iter_no_change": 1000, "random_state": 0}


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 4))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    return X, y


class Recorder:
    """A callback that records each hook call: (hook, task name, path of task ids)."""

    def __init__(self, stop_after=None):
        self.calls = []
        self.snapshots = []
        self.stop_after = stop_after

    def setup(self, estimator, context):
        self.calls.append(("setup", context.task_name, None))

    def on_fit_task_begin(self, estimator, context):
        self.calls.append(("begin", context.task_name, _path(context)))

    def on_fit_task_end(self, estimator, context, *, X=None, fitted_estimator=None):
        self.calls.append(("end", context.task_name, _path(context)))
        if fitted_estimator is not None and context.task_name == "epoch":
            self.snapshots.append((fitted_estimator, fitted_estimator.decision_function(X)))
        return self.stop_after is not None and len(self.snapshots) == self.stop_after

    def teardown(self, estimator, context):
        self.calls.append(("teardown", context.task_name, None))


def _path(context):
    path = []
    while context is not None:
        path.insert(0, context.task_id)
        context = context.parent
    return tuple(path)


@needs_callback_api
def test_each_epoch_is_a_subtask_of_the_fit(data):
    X, y = data
    recorder = Recorder()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        AFMClassifier(max_iter=3, **EPOCHS).set_callbacks(recorder).fit(X, y)
    epochs = [("begin", "epoch", (0, i)) for i in range(3)]
    assert recorder.calls == [
        ("setup", "fit", None),
        ("begin", "fit", (0,)),
        *[call for begin in epochs for call in (begin, ("end", *begin[1:]))],
        ("end", "fit", (0,)),
        ("teardown", "fit", None),
    ]


@needs_callback_api
def test_an_epoch_task_hands_over_the_model_of_that_epoch(data):
    # Each epoch's fitted_estimator predicts with that epoch's weights, and
    # keeps predicting so once training has moved on.
    X, y = data
    recorder = Recorder()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = AFMClassifier(max_iter=3, **EPOCHS).set_callbacks(recorder).fit(X, y)
    (first, at_first), _, (last, at_last) = recorder.snapshots
    np.testing.assert_allclose(first.decision_function(X), at_first, rtol=1e-6)
    assert not np.allclose(at_first, at_last)
    np.testing.assert_allclose(at_last, clf.decision_function(X), rtol=1e-6)


@needs_callback_api
def test_a_callback_can_stop_the_fit(data):
    X, y = data
    with warnings.catch_warnings():
        # Stopped by the callback: no "maximum iterations reached" warning.
        warnings.simplefilter("error", ConvergenceWarning)
        clf = AFMClassifier(max_iter=10, **EPOCHS).set_callbacks(Recorder(stop_after=2))
        clf.fit(X, y)
    assert clf.n_iter_ == 2


@needs_callback_api
def test_partial_fit_is_a_task_of_one_epoch(data):
    X, y = data
    recorder = Recorder()
    clf = AFMClassifier(random_state=0).set_callbacks(recorder)
    clf.partial_fit(X, y, classes=[0, 1])
    assert [call[:2] for call in recorder.calls] == [
        ("setup", "partial_fit"), ("begin", "partial_fit"), ("begin", "epoch"),
        ("end", "epoch"), ("end", "partial_fit"), ("teardown", "partial_fit"),
    ]


@needs_callback_api
def test_callbacks_are_torn_down_when_fit_fails(data):
    X, y = data
    recorder = Recorder()
    clf = AFMClassifier(max_iter=2).set_callbacks(recorder)
    with pytest.raises(ValueError):
        clf.fit(X, y[:-1])
    assert recorder.calls[-1][0] == "teardown"
    assert "_callback_fit_ctx" not in vars(clf)
    assert not hasattr(clf, "n_iter_")


@needs_callback_api
def test_progress_bar(data, capsys):
    pytest.importorskip("rich", reason="ProgressBar draws with rich")
    from sklearn.callback import ProgressBar

    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        AFMClassifier(max_iter=3, **EPOCHS).set_callbacks(ProgressBar()).fit(X, y)
    out = capsys.readouterr().out
    assert "AFMClassifier - fit" in out
    assert "100%" in out


@needs_callback_api
def test_progress_bar_nests_in_a_grid_search(data, capsys):
    pytest.importorskip("rich", reason="ProgressBar draws with rich")
    from sklearn.callback import ProgressBar

    X, y = data
    search = GridSearchCV(AFMClassifier(max_iter=2, **EPOCHS), {"embedding_size": [4, 8]}, cv=2)
    search.set_callbacks(ProgressBar(max_propagation_depth=None))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, y)
    out = capsys.readouterr().out
    for fit in range(4):
        assert re.search(rf"candidate-split-evaluation \| AFMClassifier - fit #{fit}", out)
    assert "refit-with-best-params | AFMClassifier - fit" in out
    assert not re.search(r"\b[0-9]{1,2}%", out), "a bar did not complete"


@needs_callback_api
def test_scoring_monitor_scores_each_epoch(data):
    from sklearn.callback import ScoringMonitor

    X, y = data
    monitor = ScoringMonitor(scoring="neg_log_loss")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = AFMClassifier(max_iter=4, **EPOCHS).set_callbacks(monitor).fit(X, y)
    log = monitor.get_logs().data_as_pandas
    epochs = log[log["task_name"] == "epoch"]
    # One score per epoch, of that epoch's model: the last one is the fitted model.
    assert len(epochs) == clf.n_iter_ == 4
    assert epochs["neg_log_loss"].nunique() == 4
    fit = log[log["task_name"] == "fit"]["neg_log_loss"].item()
    assert epochs["neg_log_loss"].iloc[-1] == pytest.approx(fit, rel=1e-6)


@needs_callback_api
def test_a_saved_model_leaves_its_callbacks_out(data, tmp_path):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = AFMClassifier(max_iter=2, **EPOCHS).set_callbacks(Recorder()).fit(X, y)
    clf.save(tmp_path / "model.afm")
    loaded = sklearn_afm.load(tmp_path / "model.afm")
    assert not hasattr(loaded, "_skl_callbacks")
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X))


# -- scikit-learn without a callback API (1.6 to 1.8) ---------------------------------


def test_import_guard_without_callback_api(monkeypatch):
    # A fresh copy of the module, imported as if sklearn.callback did not exist.
    monkeypatch.setitem(sys.modules, "sklearn.callback", None)
    spec = importlib.util.find_spec("sklearn_afm._callbacks")
    fallback = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fallback)
    assert not fallback.HAS_CALLBACK_API
    assert not hasattr(fallback.CallbackSupportMixin, "set_callbacks")

    def method():
        pass

    assert fallback.with_callbacks(method) is method
    assert fallback.start_fit_task(AFMClassifier(), "fit", 3, None, None, None) is None


@pytest.mark.parametrize("Estimator", [AFMClassifier, AFMRegressor])
def test_fit_without_callback_api_is_unchanged(Estimator, data, monkeypatch, capsys):
    X, y = data
    params = {"max_iter": 3, "verbose": 1, **EPOCHS}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        expected = Estimator(**params).fit(X, y).predict(X)
        with_api = capsys.readouterr().out
        monkeypatch.setattr(_callbacks, "HAS_CALLBACK_API", False)
        est = Estimator(**params).fit(X, y)
        np.testing.assert_allclose(est.predict(X), expected)
        # The verbose lines, but for their timings.
        assert re.sub(r"\(.*\)", "", capsys.readouterr().out) == re.sub(r"\(.*\)", "", with_api)
        est.partial_fit(X, y)
    assert est.n_iter_ == 4
    assert not hasattr(est, "_callback_fit_ctx")


# -- verbose ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "Estimator, named", [(AFMClassifier, "validation log-loss"), (AFMRegressor, "validation R^2")]
)
def test_verbose_names_the_monitored_score(Estimator, named, data, capsys):
    X, y = data
    # One training run (no FM pre-training, a fixed alpha): a line per epoch of
    # validation_scores_.
    est = Estimator(max_iter=3, early_stopping=True, n_iter_no_change=1000, random_state=0,
                    verbose=1, init="random", alpha=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    shown = [float(re.search(rf"{re.escape(named)} = (-?[0-9.]+)", line).group(1))
             for line in lines]
    # The classifier's score is the negative log-loss; its lines show the log-loss.
    sign = -1 if Estimator is AFMClassifier else 1
    np.testing.assert_allclose(shown, sign * np.asarray(est.validation_scores_), atol=1e-6)


def test_verbose_2_adds_throughput(data, capsys):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        AFMClassifier(max_iter=2, batch_size=64, verbose=1, init="random", **EPOCHS).fit(X, y)
        one = capsys.readouterr().out.splitlines()
        AFMClassifier(max_iter=2, batch_size=64, verbose=2, init="random", **EPOCHS).fit(X, y)
        two = capsys.readouterr().out.splitlines()
    assert len(one) == len(two) == 2
    assert not any("rows/s" in line for line in one)
    for line in two:
        match = re.search(r"updates ([0-9.]+) s, ([0-9,]+) rows/s, ([0-9,.]+) batches/s", line)
        assert match, line
        rows, batches = (float(match.group(i).replace(",", "")) for i in (2, 3))
        # 200 rows in 4 batches of up to 64 rows.
        assert rows / batches == pytest.approx(50, rel=0.05)
