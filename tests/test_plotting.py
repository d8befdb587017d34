"""The Displays draw what the estimator learned, labelled with the feature names."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from sklearn_afm import AFMClassifier, AFMRegressor
from sklearn_afm.inspection import AttentionHeatmapDisplay, PairContributionDisplay

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="session")
def churn_model(telco, fast_params):
    """AFMClassifier fitted on the Telco subset as a DataFrame (15 categorical columns)."""
    X, y = telco
    return AFMClassifier(random_state=0, **fast_params).fit(X, y)


@pytest.fixture(scope="session")
def regressor():
    """AFMRegressor fitted on a numpy array (no feature names) with two targets."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6))
    y = np.column_stack([X[:, 0] * X[:, 1], X[:, 2] - X[:, 3] * X[:, 4]])
    return AFMRegressor(max_iter=3, random_state=0).fit(X, y), X


def _labels(ticklabels):
    return [label.get_text() for label in ticklabels]


def test_heatmap_labels_both_axes_with_the_most_attended_columns(churn_model):
    weights = churn_model.attention_weights_
    disp = AttentionHeatmapDisplay.from_estimator(churn_model, max_features=6)

    top = np.sort(np.argsort(-weights.sum(axis=1))[:6])
    expected = list(churn_model.feature_names_in_[top])
    assert _labels(disp.ax_.get_xticklabels()) == expected
    assert _labels(disp.ax_.get_yticklabels()) == expected
    image = disp.im_.get_array()
    assert image.shape == (6, 6)
    # The diagonal (a column with itself) is blank, the rest is the attention.
    assert np.all(np.ma.getmaskarray(image).diagonal())
    off_diagonal = ~np.eye(6, dtype=bool)
    np.testing.assert_allclose(image[off_diagonal], weights[np.ix_(top, top)][off_diagonal])
    assert disp.figure_ is disp.ax_.figure
    assert disp.colorbar_ is not None


def test_heatmap_selected_features_by_name_in_given_order(churn_model):
    features = ["Contract", "tenure", "InternetService"]
    disp = AttentionHeatmapDisplay.from_estimator(churn_model, features=features, colorbar=False)
    assert _labels(disp.ax_.get_yticklabels()) == features
    assert disp.colorbar_ is None
    names = list(churn_model.feature_names_in_)
    i, j = names.index("Contract"), names.index("tenure")
    assert disp.im_.get_array()[0, 1] == pytest.approx(churn_model.attention_weights_[i, j])


def test_heatmap_without_feature_names_uses_x_indices(regressor):
    model, _ = regressor
    disp = AttentionHeatmapDisplay.from_estimator(model)
    assert _labels(disp.ax_.get_xticklabels()) == [f"x{j}" for j in range(6)]


def test_heatmap_bad_features_raise(churn_model):
    with pytest.raises(ValueError, match="not fitted on"):
        AttentionHeatmapDisplay.from_estimator(churn_model, features=["tenure", "nope"])
    with pytest.raises(ValueError, match="outside"):
        AttentionHeatmapDisplay.from_estimator(churn_model, features=[0, 99])
    with pytest.raises(ValueError, match="max_features"):
        AttentionHeatmapDisplay.from_estimator(churn_model, max_features=1)


def test_pair_contributions_sorted_and_labelled(churn_model, telco):
    X, _ = telco
    row = X.iloc[[3]]
    disp = PairContributionDisplay.from_estimator(churn_model, row, n_pairs=7)

    widths = np.array([bar.get_width() for bar in disp.bars_])
    tops = np.array([bar.get_y() for bar in disp.bars_])
    assert len(widths) == 7
    # Largest absolute contribution first and drawn on top.
    assert np.all(np.diff(np.abs(widths)) <= 0)
    assert np.all(np.diff(tops) < 0)

    explanation = churn_model.explain(row)
    names = churn_model.feature_names_in_
    by_name = {
        f"{names[i]} x {names[j]}": (explanation.interactions[0, p, 0], explanation.attention[0, p])
        for p, (i, j) in enumerate(explanation.pairs)
    }
    largest = np.sort(np.abs(explanation.interactions[0, :, 0]))[::-1][:7]
    np.testing.assert_allclose(np.abs(widths), largest, rtol=1e-6)
    # Each bar sits at the tick labelled with its pair.
    label_at = {
        tick: label.get_text()
        for tick, label in zip(disp.ax_.get_yticks(), disp.ax_.get_yticklabels())
    }
    for bar in disp.bars_:
        label = label_at[bar.get_y() + bar.get_height() / 2]
        assert by_name[label][0] == pytest.approx(bar.get_width(), rel=1e-6)
    # Each bar is annotated with its pair's attention.
    texts = [t.get_text() for t in disp.ax_.texts]
    assert texts == [f"a={by_name[name][1]:.3g}" for name in disp.pair_names]


def test_displays_draw_on_given_axes(churn_model, telco):
    X, _ = telco
    fig, (left, right) = plt.subplots(1, 2)
    heatmap = AttentionHeatmapDisplay.from_estimator(churn_model, ax=left, max_features=4)
    bars = PairContributionDisplay.from_estimator(churn_model, X.iloc[[0]], ax=right, n_pairs=3)
    assert heatmap.ax_ is left and bars.ax_ is right
    assert heatmap.figure_ is fig and bars.figure_ is fig
    # A display can be drawn again elsewhere.
    other_fig, other_ax = plt.subplots()
    assert bars.plot(ax=other_ax).figure_ is other_fig


def test_pair_contributions_of_a_pipeline_use_the_transformed_row(churn_model, telco):
    X, y = telco
    identity = FunctionTransformer(feature_names_out="one-to-one").set_output(transform="pandas")
    identity.fit(X)
    pipe = make_pipeline(identity, churn_model)
    through_pipe = PairContributionDisplay.from_estimator(pipe, X.iloc[[5]], n_pairs=4)
    direct = PairContributionDisplay.from_estimator(churn_model, X.iloc[[5]], n_pairs=4)
    assert through_pipe.pair_names == direct.pair_names
    np.testing.assert_allclose(through_pipe.contributions, direct.contributions)


def test_pair_contributions_of_one_target_of_a_regressor(regressor):
    model, X = regressor
    first = PairContributionDisplay.from_estimator(model, X[:1], n_pairs=15)
    second = PairContributionDisplay.from_estimator(model, X[:1], n_pairs=15, output=1)
    assert len(first.pair_names) == 15  # all pairs of 6 dense columns
    assert first.pair_names[0].count(" x ") == 1 and first.pair_names[0].startswith("x")
    assert not np.allclose(np.sort(first.contributions), np.sort(second.contributions))
    with pytest.raises(ValueError, match="target index"):
        PairContributionDisplay.from_estimator(model, X[:1], output=2)


def test_pair_contributions_of_a_multiclass_model_default_to_the_predicted_class():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    y = np.array(["a", "b", "c"])[(X[:, 0] * X[:, 1] > 0).astype(int) + (X[:, 2] > 1)]
    clf = AFMClassifier(max_iter=3, random_state=0).fit(X, y)
    row = X[7:8]
    predicted = clf.predict(row)[0]
    other = next(c for c in clf.classes_ if c != predicted)
    k = list(clf.classes_).index(other)

    assert PairContributionDisplay.from_estimator(clf, row).output_name == f"class {predicted}"
    disp = PairContributionDisplay.from_estimator(clf, row, output=other, n_pairs=10)
    assert disp.output_name == f"class {other}"
    np.testing.assert_allclose(
        np.sort(disp.contributions), np.sort(clf.explain(row).interactions[0, :, k]), rtol=1e-6
    )


def test_pair_contributions_reject_unknown_class(churn_model, telco):
    X, _ = telco
    with pytest.raises(ValueError, match="output must be one of"):
        PairContributionDisplay.from_estimator(churn_model, X.iloc[[0]], output="maybe")


@pytest.mark.parametrize("n_rows", [0, 2])
def test_pair_contributions_need_exactly_one_row(churn_model, telco, n_rows):
    X, _ = telco
    with pytest.raises(ValueError, match="exactly one sample"):
        PairContributionDisplay.from_estimator(churn_model, X.iloc[:n_rows])


def test_unfitted_or_foreign_estimator_is_rejected(telco):
    X, _ = telco
    with pytest.raises(NotFittedError):
        AttentionHeatmapDisplay.from_estimator(AFMClassifier())
    with pytest.raises(NotFittedError):
        PairContributionDisplay.from_estimator(AFMRegressor(), X.iloc[[0]])
    with pytest.raises(TypeError, match="AFMClassifier or AFMRegressor"):
        AttentionHeatmapDisplay.from_estimator(LogisticRegression())


def test_matplotlib_is_imported_only_to_plot_and_its_absence_names_the_extra(run_python):
    out = run_python(
        """
        import sys
        from sklearn_afm import AttentionHeatmapDisplay
        print("imported:", "matplotlib" in sys.modules)
        sys.modules["matplotlib"] = None  # as if not installed
        try:
            AttentionHeatmapDisplay([[0, 1], [1, 0]], ["a", "b"]).plot()
        except ImportError as error:
            print(error)
        """
    )
    assert "imported: False" in out
    assert "sklearn-afm[plot]" in out
