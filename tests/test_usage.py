"""End-to-end usage scenarios of AFMClassifier, one test per scenario.

Each test checks behaviour that a trivial estimator (say, one predicting the
majority class) would fail: held-out ranking quality, agreement between
processes, per-sample attention that matches the fitted summary, and so on.
Data and epochs are kept small so that the file runs quickly on two cores.
"""

import json
import os
import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from sklearn_afm import AFMClassifier

# The fits below stop at max_iter on purpose, to stay fast.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# Bit-for-bit reproducibility is promised on CPU only.
CPU = {"device": "cpu"}


# -- 1. numeric pipeline ------------------------------------------------------------


def test_numeric_pipeline_fit_predict_score(telco_split, numeric_columns):
    X_train, X_test, y_train, y_test = telco_split
    X_train, X_test = X_train[numeric_columns], X_test[numeric_columns]
    model = make_pipeline(
        StandardScaler(),
        AFMClassifier(
            max_iter=10, learning_rate_init=0.1, early_stopping=False, random_state=0
        ),
    )
    assert model.fit(X_train, y_train) is model

    afm = model[-1]
    np.testing.assert_array_equal(afm.classes_, [0, 1])
    assert afm.n_features_in_ == len(numeric_columns)
    assert afm.n_iter_ == len(afm.loss_curve_) == 10
    assert afm.loss_curve_[-1] < afm.loss_curve_[0]

    pred = model.predict(X_test)
    assert pred.shape == (len(X_test),)
    assert set(np.unique(pred)) <= {0, 1}
    # Not a constant predictor: it finds some churners.
    assert set(np.unique(pred)) == {0, 1}

    proba = model.predict_proba(X_test)
    assert proba.shape == (len(X_test), 2)
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(pred, afm.classes_[proba.argmax(axis=1)])
    decision = model.decision_function(X_test)
    assert decision.shape == (len(X_test),)
    np.testing.assert_array_equal(pred, (decision > 0).astype(int))

    auc = roc_auc_score(y_test, proba[:, 1])
    assert auc > 0.75, auc
    assert model.score(X_test, y_test) == pytest.approx(accuracy_score(y_test, pred))


# -- 2. sparse ColumnTransformer output -------------------------------------------------


def test_column_transformer_sparse_pipeline(
    telco_split, make_preprocessor, fast_params, monkeypatch
):
    X_train, X_test, y_train, y_test = telco_split
    transformed = make_preprocessor().fit_transform(X_train)
    assert sp.issparse(transformed)
    n_columns = transformed.shape[1]
    assert n_columns > X_train.shape[1]  # the one-hot columns

    seen = []
    original_fit = AFMClassifier.fit

    def spy_fit(self, X, y, sample_weight=None):
        seen.append((sp.issparse(X), X.shape))
        return original_fit(self, X, y, sample_weight=sample_weight)

    monkeypatch.setattr(AFMClassifier, "fit", spy_fit)
    model = make_pipeline(make_preprocessor(), AFMClassifier(random_state=0, **fast_params))
    model.fit(X_train, y_train)
    assert seen == [(True, (len(X_train), n_columns))]

    afm = model[-1]
    assert afm.n_features_in_ == n_columns
    proba = model.predict_proba(X_test)
    assert proba.shape == (len(X_test), 2)
    auc = roc_auc_score(y_test, proba[:, 1])
    assert auc > 0.75, auc

    # Sparse input gives a sparse per-sample attention; every Telco row has
    # at least 15 non-zero (one-hot) features, so each row sums to 1.
    attention, pairs = afm.pair_attention(model[0].transform(X_test))
    assert sp.issparse(attention)
    assert attention.shape == (len(X_test), len(pairs))
    np.testing.assert_allclose(np.asarray(attention.sum(axis=1)).ravel(), 1.0, rtol=1e-5)


# -- 3. grid search, sequential and in worker processes ---------------------------------


def _grid_search(n_jobs, telco_small, make_preprocessor, cache):
    if n_jobs not in cache:
        X, y = telco_small
        search = GridSearchCV(
            make_pipeline(
                make_preprocessor(),
                AFMClassifier(max_iter=4, batch_size=256, random_state=0, **CPU),
            ),
            param_grid={
                "afmclassifier__embedding_size": [4, 8],
                "afmclassifier__learning_rate_init": [0.03, 0.1],
            },
            cv=3,
            scoring="roc_auc",
            n_jobs=n_jobs,
        )
        cache[n_jobs] = search.fit(X, y)
    return cache[n_jobs]


@pytest.fixture(scope="module")
def grid_cache():
    return {}


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_grid_search(n_jobs, telco_small, make_preprocessor, grid_cache):
    X, y = telco_small
    search = _grid_search(n_jobs, telco_small, make_preprocessor, grid_cache)

    assert set(search.best_params_) == {
        "afmclassifier__embedding_size",
        "afmclassifier__learning_rate_init",
    }
    scores = np.asarray(search.cv_results_["mean_test_score"])
    assert scores.shape == (4,)
    assert np.all(np.isfinite(scores))
    for split in range(3):
        assert np.all(np.isfinite(search.cv_results_[f"split{split}_test_score"]))
    assert search.best_score_ == scores.max()
    assert search.best_score_ > 0.7, search.best_score_
    # The refitted best model is a usable classifier.
    assert roc_auc_score(y, search.predict_proba(X)[:, 1]) > 0.75

    # Worker processes reproduce the sequential search exactly.
    reference = _grid_search(1, telco_small, make_preprocessor, grid_cache)
    np.testing.assert_allclose(scores, reference.cv_results_["mean_test_score"], rtol=1e-12)
    assert search.best_params_ == reference.best_params_
    np.testing.assert_allclose(search.predict_proba(X), reference.predict_proba(X), rtol=1e-6)


# -- 4. cross-validation ---------------------------------------------------------------


def test_cross_val_score(telco, make_preprocessor, fast_params):
    X, y = telco
    model = make_pipeline(make_preprocessor(), AFMClassifier(random_state=0, **fast_params))
    scores = cross_val_score(model, X, y, cv=5, scoring="roc_auc")
    assert scores.shape == (5,)
    assert np.all(np.isfinite(scores))
    assert scores.mean() > 0.75, scores
    assert scores.min() > 0.7, scores


# -- 5. persistence ----------------------------------------------------------------------

_LOAD_AND_PREDICT = """
    import json, pickle, sys
    from pathlib import Path

    import joblib
    import numpy as np

    base, names = Path(sys.argv[1]), sys.argv[2:]
    models = {name: joblib.load(base / name / "model.joblib") for name in names}
    tf_after_load = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
    for name, model in models.items():
        with open(base / "inputs" / f"{name}.pkl", "rb") as f:
            X = pickle.load(f)
        np.save(base / "outputs" / f"{name}.npy", model.predict_proba(X))
    print(json.dumps({"tf_after_load": tf_after_load}))
"""


def test_persistence_joblib_fresh_process(
    tmp_path, run_python, telco_split, telco_small, numeric_columns, make_preprocessor, fast_params
):
    X_train, X_test, y_train, _ = telco_split
    scaler = StandardScaler().fit(X_train[numeric_columns])
    X_num_train = scaler.transform(X_train[numeric_columns])
    X_num_test = scaler.transform(X_test[numeric_columns])
    X_small, y_small = telco_small

    cases = {
        "estimator": (
            AFMClassifier(random_state=0, **fast_params).fit(X_num_train, y_train),
            X_num_test,
        ),
        "pipeline": (
            make_pipeline(make_preprocessor(), AFMClassifier(random_state=0, **fast_params)).fit(
                X_train, y_train
            ),
            X_test,
        ),
        "grid_search": (
            GridSearchCV(
                make_pipeline(make_preprocessor(), AFMClassifier(random_state=0, **fast_params)),
                {"afmclassifier__embedding_size": [4, 8]},
                cv=2,
            ).fit(X_small, y_small),
            X_test,
        ),
    }

    (tmp_path / "inputs").mkdir()
    (tmp_path / "outputs").mkdir()
    expected = {}
    for name, (model, X) in cases.items():
        expected[name] = model.predict_proba(X)

        # In-process round trip: the pickle carries no TensorFlow state.
        payload = pickle.dumps(model)
        assert b"tensorflow" not in payload and b"keras" not in payload
        clone_ = pickle.loads(payload)
        np.testing.assert_array_equal(clone_.predict_proba(X), expected[name])
        # Pickling left the original usable and unchanged.
        np.testing.assert_array_equal(model.predict_proba(X), expected[name])

        model_dir = tmp_path / name
        model_dir.mkdir()
        written = joblib.dump(model, model_dir / "model.joblib")
        assert [os.path.basename(p) for p in written] == ["model.joblib"]
        assert os.listdir(model_dir) == ["model.joblib"]  # self-contained
        with open(tmp_path / "inputs" / f"{name}.pkl", "wb") as f:
            pickle.dump(X, f)

    out = run_python(_LOAD_AND_PREDICT, tmp_path, *cases)
    report = json.loads(out.strip().splitlines()[-1])
    # Unpickling alone must not need TensorFlow; it is imported on first predict.
    assert report["tf_after_load"] == []
    for name in cases:
        loaded = np.load(tmp_path / "outputs" / f"{name}.npy")
        assert loaded.shape == expected[name].shape
        np.testing.assert_allclose(loaded, expected[name], rtol=1e-6, atol=0)


# -- 6. multiclass with string labels ------------------------------------------------------


def test_multiclass_string_labels(telco, make_preprocessor, fast_params):
    X, _ = telco
    y = X["Contract"].to_numpy()
    X = X.drop(columns="Contract")
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=0
    )
    model = make_pipeline(make_preprocessor(), AFMClassifier(random_state=0, **fast_params))
    model.fit(X_train, y_train)

    classes = ["Month-to-month", "One year", "Two year"]
    np.testing.assert_array_equal(model.classes_, classes)
    assert list(model[-1].classes_) == classes

    proba = model.predict_proba(X_test)
    assert proba.shape == (len(X_test), 3)
    assert np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert model.decision_function(X_test).shape == (len(X_test), 3)

    pred = model.predict(X_test)
    assert set(pred) <= set(classes)
    assert len(set(pred)) >= 2
    np.testing.assert_array_equal(pred, np.asarray(classes, dtype=object)[proba.argmax(axis=1)])

    majority = pd.Series(y_test).value_counts(normalize=True).max()  # ~0.56
    accuracy = accuracy_score(y_test, pred)
    assert accuracy > majority + 0.08, (accuracy, majority)
    assert model.score(X_test, y_test) == pytest.approx(accuracy)


# -- 7. attention inspection -------------------------------------------------------------


def test_attention_weights_and_pair_attention(telco_split, numeric_columns, fast_params):
    X_train, X_test, y_train, _ = telco_split
    # MinMax scaling keeps exact zeros (SeniorCitizen=0, tenure=0, ...),
    # so rows differ in which pairs they hold.
    scaler = MinMaxScaler().set_output(transform="pandas").fit(X_train[numeric_columns])
    X = scaler.transform(X_train[numeric_columns])
    assert isinstance(X, pd.DataFrame)
    clf = AFMClassifier(random_state=0, **fast_params).fit(X, y_train)

    np.testing.assert_array_equal(clf.feature_names_in_, numeric_columns)
    n = clf.n_features_in_
    assert n == len(numeric_columns)

    weights = clf.attention_weights_
    assert isinstance(weights, np.ndarray)
    assert weights.shape == (n, n)
    np.testing.assert_allclose(weights, weights.T)
    np.testing.assert_array_equal(np.diag(weights), 0.0)
    assert np.all(weights >= 0) and np.all(weights <= 1)
    assert np.any(weights > 0)

    # Per-sample attention on the training rows, plus an all-zero row and a
    # row with a single non-zero feature, which have no pair.
    extra = pd.DataFrame([[0.0] * n, [0.0, 0.5, 0.0, 0.0]], columns=numeric_columns)
    X_all = pd.concat([X, extra], ignore_index=True)
    attention, pairs = clf.pair_attention(X_all)
    assert isinstance(attention, np.ndarray)
    assert attention.shape == (len(X_all), len(pairs))
    assert pairs.shape[1] == 2
    assert np.all(pairs[:, 0] < pairs[:, 1])
    assert np.all((pairs >= 0) & (pairs < n))
    assert [tuple(p) for p in pairs] == sorted(set(map(tuple, pairs)))

    values = X_all.to_numpy()
    present = values != 0
    nnz = present.sum(axis=1)
    assert (nnz >= 2).any() and (nnz < 2).any()
    row_sums = attention.sum(axis=1)
    np.testing.assert_allclose(row_sums[nnz >= 2], 1.0, rtol=1e-5)
    np.testing.assert_array_equal(row_sums[nnz < 2], 0.0)
    assert np.all(attention >= 0)

    # A row attends only to the pairs it holds; attention_weights_ is the
    # mean of each pair's attention over the training rows that hold it.
    pair_present = present[:, pairs[:, 0]] & present[:, pairs[:, 1]]
    np.testing.assert_array_equal(attention[~pair_present], 0.0)
    train_att, train_present = attention[: len(X)], pair_present[: len(X)]
    for p, (i, j) in enumerate(pairs):
        mean = train_att[train_present[:, p], p].mean()
        assert weights[i, j] == pytest.approx(mean, rel=1e-5)
    # Pairs never present together get weight 0.
    listed = np.zeros((n, n), dtype=bool)
    listed[pairs[:, 0], pairs[:, 1]] = True
    listed |= listed.T
    np.testing.assert_array_equal(weights[~listed], 0.0)


# -- 8. random_state ------------------------------------------------------------------------


def test_random_state_reproducibility(telco_split, numeric_columns, fast_params):
    X_train, X_test, y_train, _ = telco_split
    scaler = StandardScaler().fit(X_train[numeric_columns])
    X_tr = scaler.transform(X_train[numeric_columns])
    X_te = scaler.transform(X_test[numeric_columns])
    # Dropout and early stopping also draw from random_state.
    params = {**fast_params, **CPU, "dropout": 0.2, "attention_dropout": 0.1}

    global_state = np.random.get_state()
    first = AFMClassifier(random_state=0, **params).fit(X_tr, y_train)
    second = AFMClassifier(random_state=0, **params).fit(X_tr, y_train)
    other = AFMClassifier(random_state=1, **params).fit(X_tr, y_train)
    # An int seed leaves numpy's global random state alone.
    after = np.random.get_state()
    assert global_state[0] == after[0]
    np.testing.assert_array_equal(global_state[1], after[1])
    assert global_state[2:] == after[2:]

    p_first = first.predict_proba(X_te)
    np.testing.assert_array_equal(p_first, second.predict_proba(X_te))
    assert first.loss_curve_ == second.loss_curve_
    np.testing.assert_array_equal(first.attention_weights_, second.attention_weights_)

    p_other = other.predict_proba(X_te)
    assert not np.allclose(p_first, p_other)
    assert first.loss_curve_ != other.loss_curve_


# -- 9. lightweight import -------------------------------------------------------------------

_NO_TENSORFLOW = """
    import json, sys

    import sklearn_afm
    from sklearn.base import clone
    from sklearn_afm import AFMClassifier

    est = AFMClassifier(embedding_size=4, random_state=0)
    params = est.get_params()
    assert params["embedding_size"] == 4 and params["device"] == "auto", params
    assert est.set_params(embedding_size=8, max_iter=3) is est
    assert est.embedding_size == 8 and est.max_iter == 3
    copy = clone(est)
    assert copy is not est and copy.get_params() == est.get_params()
    repr(copy)
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
    print(json.dumps(loaded))
"""


def test_import_and_params_do_not_import_tensorflow(run_python):
    out = run_python(_NO_TENSORFLOW)
    assert json.loads(out.strip().splitlines()[-1]) == []
