"""partial_fit of AFMClassifier and AFMRegressor: the SGDClassifier contract,
training chunk by chunk (a pandas ``read_csv(chunksize=...)`` loop included),
the categorical vocabulary of a stream, the running attention summary and
failed calls that leave the model as it was.

Data and epochs are kept small so that the file runs quickly on two cores.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.preprocessing import StandardScaler

from sklearn_afm import AFMClassifier, AFMRegressor, load_telco_churn

# fit calls below stop at max_iter on purpose, to stay fast.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# Bit-for-bit reproducibility is promised on CPU only.
CPU = {"device": "cpu"}


@pytest.fixture(scope="module")
def xor_chunks():
    """Four 100-row chunks of a pure interaction, labels x0 * x1 > 0, and a test set."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(600, 4))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    chunks = [(X[i : i + 100], y[i : i + 100]) for i in range(0, 400, 100)]
    return chunks, (X[400:], y[400:])


def _state(est, X):
    """What a failed call must leave alone."""
    return {
        "n_iter_": est.n_iter_,
        "loss_curve_": list(est.loss_curve_),
        "attention_weights_": est.attention_weights_.copy(),
        "predictions": est.predict(X).copy(),
    }


def _assert_same_state(before, after):
    assert after["n_iter_"] == before["n_iter_"]
    assert after["loss_curve_"] == before["loss_curve_"]
    np.testing.assert_array_equal(after["attention_weights_"], before["attention_weights_"])
    np.testing.assert_array_equal(after["predictions"], before["predictions"])


# -- 1. the classes argument and labels ------------------------------------------------------


def test_first_call_requires_classes(xor_chunks):
    chunks, _ = xor_chunks
    X, y = chunks[0]
    clf = AFMClassifier(**CPU)
    with pytest.raises(ValueError, match="classes must be passed on the first call to partial_fit"):
        clf.partial_fit(X, y)
    with pytest.raises(NotFittedError):
        clf.predict(X)
    # Passing them makes the same call work.
    clf.partial_fit(X, y, classes=[0, 1])
    np.testing.assert_array_equal(clf.classes_, [0, 1])


def test_classes_on_later_calls_must_match_the_first(xor_chunks):
    chunks, _ = xor_chunks
    (X0, y0), (X1, y1) = chunks[:2]
    clf = AFMClassifier(batch_size=50, random_state=0, **CPU).partial_fit(X0, y0, classes=[0, 1])
    before = _state(clf, X1)
    with pytest.raises(ValueError, match="not the same as on the first call"):
        clf.partial_fit(X1, y1, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="not the same as on the first call"):
        clf.partial_fit(X1, y1, classes=[1])
    _assert_same_state(before, _state(clf, X1))
    # The same classes, in any order, or none at all, are fine.
    clf.partial_fit(X1, y1, classes=np.array([1, 0]))
    clf.partial_fit(X1, y1)
    assert clf.n_iter_ == 3
    np.testing.assert_array_equal(clf.classes_, [0, 1])


def test_labels_outside_classes_raise(xor_chunks):
    chunks, _ = xor_chunks
    (X0, y0), (X1, y1) = chunks[:2]
    # On the first call, against the classes given ...
    clf = AFMClassifier(**CPU)
    with pytest.raises(ValueError, match=r"labels \[2\] that are not in classes"):
        clf.partial_fit(X0, np.where(y0 == 1, 2, 0), classes=[0, 1])
    assert not hasattr(clf, "classes_")
    # ... and on later calls, against the classes of the first.
    clf.partial_fit(X0, y0, classes=[0, 1])
    before = _state(clf, X1)
    with pytest.raises(ValueError, match=r"labels \['a', 'b'\] that are not among the classes"):
        clf.partial_fit(X1, np.where(y1 == 1, "b", "a").astype(object))
    with pytest.raises(ValueError, match=r"labels \[7\]"):
        clf.partial_fit(X1, np.where(np.arange(len(y1)) == 3, 7, y1))
    _assert_same_state(before, _state(clf, X1))


def test_classes_may_include_labels_absent_from_a_chunk(xor_chunks):
    chunks, (X_test, _) = xor_chunks
    X0, y0 = chunks[0]
    labels = np.array(["no", "yes", "maybe"], dtype=object)
    # A first chunk holding one class only: the SGDClassifier contract.
    only_no = y0 == 0
    clf = AFMClassifier(batch_size=50, random_state=0, **CPU)
    clf.partial_fit(X0[only_no], labels[y0[only_no]], classes=labels)
    np.testing.assert_array_equal(clf.classes_, ["maybe", "no", "yes"])
    assert clf.predict_proba(X_test).shape == (len(X_test), 3)
    clf.partial_fit(X0, labels[y0])
    assert set(clf.predict(X_test)) <= set(labels)


# -- 2. one epoch per call ----------------------------------------------------------------------


def test_each_call_is_one_epoch(xor_chunks):
    chunks, (X_test, _) = xor_chunks
    # early_stopping and max_iter do not apply to partial_fit.
    clf = AFMClassifier(batch_size=50, max_iter=3, early_stopping=True, random_state=0, **CPU)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # in particular no ConvergenceWarning
        for call, (X, y) in enumerate(chunks * 2, start=1):
            assert clf.partial_fit(X, y, classes=[0, 1]) is clf
            assert clf.n_iter_ == call
            assert len(clf.loss_curve_) == call
            assert clf.validation_scores_ is None and clf.best_validation_score_ is None
            assert clf.best_loss_ == min(clf.loss_curve_)
    assert all(np.isfinite(clf.loss_curve_))
    assert np.mean(clf.loss_curve_[-4:]) < np.mean(clf.loss_curve_[:4])


def test_partial_fit_after_fit_continues(xor_chunks):
    chunks, (X_test, y_test) = xor_chunks
    X = np.vstack([c[0] for c in chunks])
    y = np.concatenate([c[1] for c in chunks])
    clf = AFMClassifier(max_iter=3, batch_size=50, early_stopping=False, random_state=0, **CPU)
    clf.fit(X, y)
    curve, proba, weights = list(clf.loss_curve_), clf.predict_proba(X_test), clf._network.weights

    # A chunk holding only class 1: classes_ is kept, not re-learned.
    X1, y1 = chunks[1]
    clf.partial_fit(X1[y1 == 1], y1[y1 == 1])
    np.testing.assert_array_equal(clf.classes_, [0, 1])
    assert clf.n_iter_ == 4
    assert clf.loss_curve_[:3] == curve and len(clf.loss_curve_) == 4
    assert not np.allclose(clf.predict_proba(X_test), proba)
    # Continued from the fitted weights, not from a fresh initialisation:
    # one epoch on a small chunk moves them only a little.
    fresh = AFMClassifier(batch_size=50, random_state=0, **CPU).partial_fit(
        X1[y1 == 1], y1[y1 == 1], classes=[0, 1]
    )
    moved = sum(np.abs(a - b).sum() for a, b in zip(clf._network.weights, weights))
    fresh_distance = sum(np.abs(a - b).sum() for a, b in zip(fresh._network.weights, weights))
    assert moved < fresh_distance / 5


# -- 3. chunked training vs fit on the whole -------------------------------------------------


def test_chunked_training_matches_fit_on_the_whole(telco_split, numeric_columns):
    X_train, X_test, y_train, y_test = telco_split
    # 1024 rows: four chunks of 256, each two whole batches of 128, so that
    # both ways take the same number of equal-sized steps per epoch.
    X_train, y_train = X_train[numeric_columns][:1024], y_train.to_numpy()[:1024]
    scaler = StandardScaler().fit(X_train)
    A, B = scaler.transform(X_train), scaler.transform(X_test[numeric_columns])
    params = dict(batch_size=128, learning_rate_init=0.05, random_state=0, **CPU)

    whole = AFMClassifier(max_iter=5, early_stopping=False, **params).fit(A, y_train)
    chunked = AFMClassifier(**params)
    for _ in range(5):
        for rows in np.array_split(np.arange(len(A)), 4):
            chunked.partial_fit(A[rows], y_train[rows], classes=[0, 1])
    assert chunked.n_iter_ == 20

    auc_whole = roc_auc_score(y_test, whole.predict_proba(B)[:, 1])
    auc_chunked = roc_auc_score(y_test, chunked.predict_proba(B)[:, 1])
    assert auc_whole > 0.75 and auc_chunked > 0.75, (auc_whole, auc_chunked)
    assert abs(auc_whole - auc_chunked) < 0.03, (auc_whole, auc_chunked)


# -- 4. a read_csv(chunksize=...) loop with categorical columns ------------------------------

# Fixed scales of the numeric columns: a stream cannot be standardised up front.
TELCO_SCALES = {
    "SeniorCitizen": 1.0,
    "tenure": 72.0,
    "MonthlyCharges": 120.0,
    "TotalCharges": 9000.0,
}


def _telco_features(chunk):
    X = chunk.drop(columns="Churn")
    for column, scale in TELCO_SCALES.items():
        X[column] = X[column] / scale
    return X, chunk["Churn"]


def test_read_csv_chunks_with_categories_up_front(tmp_path):
    frame = load_telco_churn().frame.sample(n=2000, random_state=0).reset_index(drop=True)
    categorical = [c for c in frame.columns if c not in TELCO_SCALES and c != "Churn"]
    assert len(categorical) == 15
    train, test = frame.iloc[:1500], frame.iloc[1500:]
    # "Mailed check" only turns up in the last chunks of the stream, and the
    # vocabulary given up front leaves it out: it maps to the unknown slot.
    late = "Mailed check"
    train = pd.concat(
        [train[train["PaymentMethod"] != late], train[train["PaymentMethod"] == late]]
    )
    assert (train["PaymentMethod"].iloc[:500] != late).all()
    path = tmp_path / "telco.csv"
    train.to_csv(path, index=False)

    categories = [np.sort(frame[c].unique()) for c in categorical]
    payment = categorical.index("PaymentMethod")
    categories[payment] = categories[payment][categories[payment] != late]
    clf = AFMClassifier(
        categories=categories, batch_size=250, learning_rate_init=0.05, random_state=0, **CPU
    )
    n_chunks = 0
    for _ in range(3):
        for chunk in pd.read_csv(path, chunksize=500):
            X, y = _telco_features(chunk)
            clf.partial_fit(X, y, classes=[0, 1])
            n_chunks += 1
    assert n_chunks == clf.n_iter_ == 9

    # String columns of the chunks were found categorical, with the
    # vocabulary given, not the one of the first chunk.
    np.testing.assert_array_equal(clf.is_categorical_, [c in categorical for c in X.columns])
    learned = [c for c in clf.categories_ if c is not None]
    assert len(learned) == len(categories)
    for got, given in zip(learned, categories):
        np.testing.assert_array_equal(got, given)

    X_test, y_test = _telco_features(test)
    auc = roc_auc_score(y_test, clf.predict_proba(X_test)[:, 1])
    assert auc > 0.8, auc
    # Rows with the left-out category are scored like rows with any other
    # category never declared: both use the column's unknown embedding.
    rows = X_test[X_test["PaymentMethod"] == late]
    assert len(rows) > 20
    other = rows.assign(PaymentMethod="Paid in gold")
    np.testing.assert_array_equal(clf.predict_proba(rows), clf.predict_proba(other))
    # ... which was trained on them, so it differs from a known category.
    known = rows.assign(PaymentMethod=categories[payment][0])
    assert not np.allclose(clf.predict_proba(rows), clf.predict_proba(known))


def _color_stream(seed=0):
    """Two chunks with a string column; "teal" only turns up in the second."""
    rng = np.random.RandomState(seed)

    def chunk(colors, n):
        X = pd.DataFrame({"color": rng.choice(colors, n), "x": rng.normal(size=n)})
        y = ((X["color"] == "teal") ^ (X["x"] > 0)).astype(int)
        return X, y

    return chunk(["red", "blue"], 200), chunk(["red", "blue", "teal"], 300)


@pytest.mark.parametrize("declared", [True, False])
def test_category_first_seen_in_a_later_chunk(declared):
    (X0, y0), (X1, y1) = _color_stream()
    params = dict(batch_size=100, random_state=0, **CPU)
    if declared:
        params["categories"] = [np.array(["blue", "red", "teal"], dtype=object)]
    clf = AFMClassifier(**params)
    clf.partial_fit(X0, y0, classes=[0, 1])
    clf.partial_fit(X1, y1)
    assert clf.n_iter_ == 2

    probe = pd.DataFrame({"color": ["teal", "mauve"], "x": [0.5, 0.5]})
    teal, unknown = clf.predict_proba(probe)
    if declared:
        # Declared up front, "teal" has an embedding of its own.
        np.testing.assert_array_equal(clf.categories_[0], ["blue", "red", "teal"])
        assert not np.allclose(teal, unknown)
    else:
        # The vocabulary is that of the first call; "teal" is unknown there.
        np.testing.assert_array_equal(clf.categories_[0], ["blue", "red"])
        np.testing.assert_array_equal(teal, unknown)


def test_missing_values_are_not_the_unknown_category():
    (X0, y0), (X1, y1) = _color_stream()
    X0 = X0.copy()
    X0.loc[:49, "color"] = np.nan
    clf = AFMClassifier(
        categories=[np.array(["blue", "red", "teal"], dtype=object)],
        batch_size=100,
        random_state=0,
        **CPU,
    )
    clf.partial_fit(X0, y0, classes=[0, 1]).partial_fit(X1, y1)
    probe = pd.DataFrame({"color": [np.nan, "mauve"], "x": [0.5, 0.5]})
    missing, unknown = clf.predict_proba(probe)
    # NaN is a category of its own, trained on the 50 NaN rows; "mauve" is
    # unknown, an embedding no row trained.
    assert not np.allclose(missing, unknown)


# -- 5. the running attention summary ----------------------------------------------------------


def test_attention_weights_are_the_running_mean_over_chunks():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 4))
    # Exact zeros are absent features: the pairs are present in different
    # numbers of rows in the two chunks, so the mean is count-weighted.
    X[:150, 3] = np.where(rng.uniform(size=150) < 0.7, 0.0, X[:150, 3])
    X[150:, 2] = np.where(rng.uniform(size=150) < 0.3, 0.0, X[150:, 2])
    y = X[:, 0] * X[:, 1]
    A, B = X[:150], X[150:]
    reg = AFMRegressor(batch_size=64, random_state=0, **CPU)

    reg.partial_fit(A, y[:150])
    # The attention each row of A got from the model right after the update.
    att_a, pairs_a = reg.pair_attention(A)
    reg.partial_fit(B, y[150:])
    att_b, pairs_b = reg.pair_attention(B)

    expected = np.zeros((4, 4))
    for att, pairs, rows in ((att_a, pairs_a, A), (att_b, pairs_b, B)):
        present = rows != 0
        for p, (i, j) in enumerate(pairs):
            held = present[:, i] & present[:, j]
            expected[i, j] += att[held, p].sum()
    counts = np.zeros((4, 4))
    for rows in (A, B):
        present = (rows != 0).astype(float)
        counts += np.triu(present.T @ present, 1)
    expected = np.divide(expected, counts, out=np.zeros_like(expected), where=counts > 0)
    expected = expected + expected.T

    weights = reg.attention_weights_
    np.testing.assert_allclose(weights, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(weights, weights.T)
    np.testing.assert_array_equal(np.diag(weights), 0.0)
    # Not just the last chunk's summary, nor the first's.
    only_b = np.zeros((4, 4))
    present_b = B != 0
    for p, (i, j) in enumerate(pairs_b):
        only_b[i, j] = att_b[present_b[:, i] & present_b[:, j], p].mean()
    assert not np.allclose(weights, only_b + only_b.T, rtol=1e-4)


# -- 6. the regressor -----------------------------------------------------------------------------


def test_regressor_partial_fit_improves_over_calls():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(1400, 4))
    y = 1000 * (X[:, 0] * X[:, 1] + 0.5 * X[:, 2]) + 5000 + 10 * rng.normal(size=1400)
    X_train, X_test, y_train, y_test = X[:1000], X[1000:], y[:1000], y[1000:]
    reg = AFMRegressor(batch_size=125, learning_rate_init=0.02, random_state=0, **CPU)
    scores = []
    for _ in range(6):
        for rows in np.array_split(np.arange(1000), 4):
            reg.partial_fit(X_train[rows], y_train[rows])
        scores.append(reg.score(X_test, y_test))
    assert reg.n_iter_ == len(reg.loss_curve_) == 24
    assert scores[-1] > scores[0] + 0.1, scores
    assert scores[-1] > 0.7, scores
    pred = reg.predict(X_test)
    assert pred.shape == (len(X_test),)
    assert scores[-1] == pytest.approx(r2_score(y_test, pred))
    assert abs(pred.mean() - y_test.mean()) < 300


def test_regressor_partial_fit_multi_output_keeps_the_number_of_targets():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 3))
    Y = np.column_stack([X[:, 0] * X[:, 1], X[:, 2]])
    reg = AFMRegressor(batch_size=50, random_state=0, **CPU).partial_fit(X[:100], Y[:100])
    assert reg.predict(X).shape == (200, 2)
    before = reg.predict(X)
    with pytest.raises(ValueError, match=r"y has 1 target\(s\), but the previous fit had 2"):
        reg.partial_fit(X[100:], Y[100:, 0])
    np.testing.assert_array_equal(reg.predict(X), before)
    reg.partial_fit(X[100:], Y[100:])
    assert reg.n_iter_ == 2


# -- 7. failed calls ---------------------------------------------------------------------------


@pytest.mark.parametrize("estimator", ["classifier", "regressor"])
def test_failed_call_leaves_the_model_unchanged(xor_chunks, estimator):
    chunks, (X_test, _) = xor_chunks
    (X0, y0), (X1, y1), (X2, y2) = chunks[:3]
    make = {
        "classifier": lambda: AFMClassifier(batch_size=50, random_state=0, **CPU),
        "regressor": lambda: AFMRegressor(batch_size=50, random_state=0, **CPU),
    }[estimator]
    first = {"classes": [0, 1]} if estimator == "classifier" else {}

    clf = make().partial_fit(X0, y0, **first).partial_fit(X1, y1)
    before = _state(clf, X_test)
    bad = X2.copy()
    bad[5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.partial_fit(bad, y2)
    _assert_same_state(before, _state(clf, X_test))
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X2[:, :3], y2)
    _assert_same_state(before, _state(clf, X_test))

    # Training goes on as if the failed calls had never happened.
    clf.partial_fit(X2, y2)
    reference = make().partial_fit(X0, y0, **first).partial_fit(X1, y1).partial_fit(X2, y2)
    assert clf.n_iter_ == reference.n_iter_ == 3
    assert clf.loss_curve_ == reference.loss_curve_
    np.testing.assert_array_equal(clf.predict(X_test), reference.predict(X_test))
    np.testing.assert_array_equal(clf.attention_weights_, reference.attention_weights_)


def test_stream_resumes_exactly_after_a_pickle_round_trip(xor_chunks):
    """A checkpoint of a half-trained stream carries the optimizer state too."""
    import pickle

    chunks, (X_test, _) = xor_chunks
    clf = AFMClassifier(batch_size=50, random_state=0, **CPU)
    for X, y in chunks[:2]:
        clf.partial_fit(X, y, classes=[0, 1])
    resumed = pickle.loads(pickle.dumps(clf))
    for X, y in chunks[2:]:
        clf.partial_fit(X, y)
        resumed.partial_fit(X, y)
    assert resumed.n_iter_ == clf.n_iter_ == 4
    assert resumed.loss_curve_ == clf.loss_curve_
    np.testing.assert_array_equal(resumed.predict_proba(X_test), clf.predict_proba(X_test))
    np.testing.assert_array_equal(resumed.attention_weights_, clf.attention_weights_)
