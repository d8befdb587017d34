"""init="fm": the AFM is pre-trained as a factorization machine, as in the paper's code."""

import numpy as np
import pytest

import sklearn_afm._base as afm_base
from sklearn_afm import AFMClassifier, AFMRegressor
from sklearn_afm._network import engine_class

# The weights an AFM takes from its FM, by name; the others keep their initialisation.
SHARED = ("embeddings/embeddings", "linear/embeddings", "projection/bias")


def named(engine):
    return {v.path.split("/", 1)[1]: w for v, w in zip(engine.network.weights,
                                                       engine.get_weights())}


@pytest.fixture
def trainings(monkeypatch):
    """Record each training run of a fit: its network's kind and weights before and after."""
    runs = []
    train = afm_base.train

    def recording(engine, data, *args, **kwargs):
        run = {"attention": engine.network.use_attention, "start": named(engine),
               "validation": data.validation}
        history = train(engine, data, *args, **kwargs)
        run.update(end=named(engine), n_iter=history.n_iter)
        runs.append(run)
        return history

    monkeypatch.setattr(afm_base, "train", recording)
    return runs


def test_afm_starts_from_the_trained_fm(telco, fast_params, trainings):
    X, y = telco
    AFMClassifier(random_state=0, **fast_params).fit(X, y)
    # alpha="auto" trains two AFMs, each from the FM.
    fm, *afms = trainings
    afm = afms[0]
    assert [run["attention"] for run in trainings] == [False, True, True]
    for name in SHARED:
        for run in afms:
            np.testing.assert_array_equal(run["start"][name], fm["end"][name])
        # The FM did train them.
        assert not np.array_equal(fm["end"][name], fm["start"][name])
    # The attention network and the projection start as without pre-training.
    trainings.clear()
    AFMClassifier(init="random", random_state=0, **fast_params).fit(X, y)
    fresh = trainings[0]
    for name in ("attention_hidden/kernel", "attention_score/kernel", "projection/kernel"):
        np.testing.assert_array_equal(afm["start"][name], fresh["start"][name])
    np.testing.assert_array_equal(afm["start"]["embeddings/embeddings"].shape,
                                  fresh["start"]["embeddings/embeddings"].shape)


def test_fm_uses_the_afm_validation_set_and_stopping(telco, trainings):
    X, y = telco
    AFMClassifier(random_state=0, max_iter=40, n_iter_no_change=2, tol=0.0).fit(
        X[:1000], y[:1000], X_val=X[1000:], y_val=y[1000:]
    )
    # All monitor the 500 given rows, and early stopping on them ended all before max_iter.
    assert all(run["validation"] is trainings[0]["validation"] for run in trainings)
    assert trainings[0]["validation"].y.shape[0] == 500
    assert all(run["n_iter"] < 40 for run in trainings)


@pytest.mark.parametrize(
    "params, fit",
    [
        ({"init": "random"}, "fit"),
        ({"use_attention": False}, "fit"),
        ({}, "partial_fit"),
    ],
    ids=["init-random", "fm-itself", "partial_fit"],
)
def test_one_training_run_without_pre_training(telco, fast_params, trainings, params, fit):
    X, y = telco
    # A fixed alpha: "auto" would add a run per candidate value.
    model = AFMClassifier(random_state=0, alpha=1e-3, **fast_params, **params)
    if fit == "fit":
        model.fit(X, y)
    else:
        model.partial_fit(X, y, classes=[0, 1])
    assert len(trainings) == 1


def test_warm_start_continues_without_pre_training(telco, fast_params, trainings):
    X, y = telco
    model = AFMClassifier(random_state=0, warm_start=True, alpha=1e-3, **fast_params).fit(X, y)
    assert len(trainings) == 2
    trained = trainings[-1]["end"]
    model.fit(X, y)
    assert len(trainings) == 3
    np.testing.assert_array_equal(trainings[-1]["start"]["embeddings/embeddings"],
                                  trained["embeddings/embeddings"])


def test_fm_ignores_init(telco, fast_params):
    X, y = telco
    fits = [AFMClassifier(use_attention=False, init=init, random_state=0, **fast_params).fit(X, y)
            for init in ("fm", "random")]
    np.testing.assert_array_equal(fits[0].predict_proba(X), fits[1].predict_proba(X))


def test_pre_trained_fit_is_reproducible(telco, fast_params):
    X, y = telco
    fits = [AFMRegressor(random_state=3, **fast_params).fit(X.drop(columns="tenure"),
                                                            X["tenure"] / 72)
            for _ in range(2)]
    predictions = [model.predict(X.drop(columns="tenure")) for model in fits]
    np.testing.assert_allclose(predictions[0], predictions[1], rtol=1e-6)


def test_verbose_names_both_phases(telco, capsys):
    X, y = telco
    AFMClassifier(random_state=0, max_iter=2, alpha=1e-3, verbose=1).fit(X, y)
    out = capsys.readouterr().out
    fm, _, afm = out.partition(
        "Training the AFM from the factorization machine's embeddings with alpha=0.001:"
    )
    assert fm.startswith("Pre-training a factorization machine (init='fm'):")
    assert fm.count("Iteration") == 2 and afm.count("Iteration") == 2


def test_failed_pre_training_keeps_the_previous_model(telco, fast_params, monkeypatch):
    X, y = telco
    model = AFMClassifier(random_state=0, **fast_params).fit(X, y)
    before = model.predict_proba(X)

    def broken(self, fm):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine_class(), "start_from_fm", broken)
    with pytest.raises(KeyboardInterrupt):
        model.set_params(random_state=1).fit(X, y)
    np.testing.assert_array_equal(model.predict_proba(X), before)


def test_init_is_validated(telco):
    X, y = telco
    with pytest.raises(ValueError, match="'init' parameter"):
        AFMClassifier(init="glorot").fit(X, y)
