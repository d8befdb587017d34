"""alpha="auto": the attention's L2 penalty chosen on the validation set early stopping monitors."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import sklearn_afm._base as afm_base
from sklearn_afm import AFMClassifier, AFMRegressor
from sklearn_afm._base import AUTO_ALPHA_UNVALIDATED, AUTO_ALPHAS

FAST = {"max_iter": 5, "batch_size": 256, "learning_rate_init": 0.05, "random_state": 0}


@pytest.fixture
def runs(monkeypatch):
    """The attention L2 of each AFM training run of a fit (the FM pre-training left out)."""
    penalties = []
    train = afm_base.train

    def recording(engine, *args, **kwargs):
        if engine.network.use_attention:
            penalties.append(engine.network.attention_l2)
        return train(engine, *args, **kwargs)

    monkeypatch.setattr(afm_base, "train", recording)
    return penalties


@pytest.fixture(scope="module")
def fits(telco):
    """AFMClassifier fits of the 1500-row Telco subset (early stopping on) by alpha."""
    X, y = telco
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return {alpha: AFMClassifier(alpha=alpha, **FAST).fit(X, y)
                for alpha in ("auto", *AUTO_ALPHAS)}


def test_auto_keeps_the_fit_with_the_better_validation_score(telco, fits):
    X, _ = telco
    auto = fits["auto"]
    scores = {alpha: fits[alpha].best_validation_score_ for alpha in AUTO_ALPHAS}
    # The two runs differ, so the choice is a real one.
    assert scores[AUTO_ALPHAS[0]] != scores[AUTO_ALPHAS[1]]
    best = max(scores, key=scores.get)
    assert auto.alpha_ == best
    assert auto.best_validation_score_ == scores[best]
    # Each run is the fit its alpha gives alone: the same FM start, shuffles and dropout.
    np.testing.assert_allclose(auto.predict_proba(X), fits[best].predict_proba(X), rtol=1e-5)
    assert auto.validation_scores_ == fits[best].validation_scores_
    assert auto.n_iter_ == fits[best].n_iter_


def test_auto_trains_once_per_candidate_with_a_validation_set(telco, runs):
    X, y = telco
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        AFMRegressor(**FAST).fit(X.drop(columns="tenure"), X["tenure"] / 72)
    assert runs == list(AUTO_ALPHAS)


@pytest.mark.parametrize(
    "params, fit",
    [({"early_stopping": False}, "fit"), ({}, "small fit"), ({}, "partial_fit")],
)
def test_auto_without_a_validation_set_is_one_run_of_the_middle_value(telco, runs, params, fit):
    X, y = telco
    model = AFMClassifier(**FAST, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if fit == "partial_fit":
            model.partial_fit(X, y, classes=[0, 1])
        else:
            # early_stopping="auto" holds nothing out below 1000 rows.
            model.fit(*((X[:500], y[:500]) if fit == "small fit" else (X, y)))
    assert runs == [AUTO_ALPHA_UNVALIDATED]
    assert model.alpha_ == AUTO_ALPHA_UNVALIDATED


def test_fixed_alpha_and_fm_train_once(telco, runs):
    X, y = telco
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert AFMClassifier(alpha=0.02, **FAST).fit(X, y).alpha_ == 0.02
        AFMClassifier(use_attention=False, **FAST).fit(X, y)
    assert runs == [0.02]


def test_warm_start_keeps_the_chosen_value(telco, runs):
    X, y = telco
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = AFMClassifier(warm_start=True, **FAST).fit(X, y)
        chosen = model.alpha_
        runs.clear()
        model.fit(X, y)
    assert runs == [chosen] and model.alpha_ == chosen
    # An explicit other value cannot continue that network.
    with pytest.raises(ValueError, match="attention_l2"):
        model.set_params(alpha=chosen * 3).fit(X, y)


def test_verbose_names_each_run_and_the_choice(telco, capsys):
    X, y = telco
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = AFMClassifier(**{**FAST, "max_iter": 2}, verbose=1).fit(X, y)
    out = capsys.readouterr().out
    for alpha in AUTO_ALPHAS:
        assert f"with alpha={alpha:g}:" in out
    assert f"Kept alpha={model.alpha_:g}: validation log-loss = " in out


def test_alpha_is_validated(telco):
    X, y = telco
    with pytest.raises(ValueError, match="'alpha' parameter"):
        AFMClassifier(alpha="strong").fit(X, y)
    with pytest.raises(AttributeError, match="fit it first"):
        AFMClassifier().alpha_
