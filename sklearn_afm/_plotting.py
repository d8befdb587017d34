"""scikit-learn style Displays of what an AFM learned: attention and pair contributions.

Each Display follows scikit-learn's visualization API: ``from_estimator``
computes what to draw from a fitted estimator (or a
:class:`~sklearn.pipeline.Pipeline` ending in one) and calls ``plot``, which
draws on the given matplotlib axes and stores the artists, ``ax_`` and
``figure_``.  matplotlib is imported only by ``plot``.
"""

import numpy as np
from sklearn.base import is_classifier
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import _num_samples, check_is_fitted


def _check_matplotlib(caller):
    try:
        import matplotlib  # noqa: F401
    except ImportError as error:
        raise ImportError(
            f"{caller} requires matplotlib: install it with `pip install \"sklearn-afm[plot]\"` "
            "(or `pip install matplotlib`)."
        ) from error


def _axes(ax):
    """Return (figure, axes), creating both when ``ax`` is None."""
    import matplotlib.pyplot as plt

    if ax is None:
        return plt.subplots()
    return ax.figure, ax


def _final_estimator(estimator):
    """Return the AFM estimator at the end of ``estimator``, checked fitted."""
    from ._base import BaseAFM

    afm = estimator[-1] if isinstance(estimator, Pipeline) else estimator
    if not isinstance(afm, BaseAFM):
        raise TypeError(
            "estimator must be an AFMClassifier or AFMRegressor, or a Pipeline ending in "
            f"one; got {type(afm).__name__}."
        )
    check_is_fitted(afm)
    return afm


class AttentionHeatmapDisplay:
    """Heatmap of the mean attention an AFM gives to each pair of columns.

    Use :meth:`from_estimator` to create one from a fitted estimator; the
    constructor only stores what to draw.

    Parameters
    ----------
    attention : ndarray of shape (n_columns, n_columns)
        Symmetric mean attention per pair of columns (the diagonal is drawn
        only where it is not 0: for multi-valued columns, whose values pair
        with each other).
    feature_names : array-like of str of shape (n_columns,)
        Labels of the rows and columns of ``attention``.

    Attributes
    ----------
    im_ : matplotlib AxesImage
        The heatmap.
    colorbar_ : matplotlib Colorbar or None
        The colorbar, if drawn.
    ax_ : matplotlib Axes
        Axes with the heatmap.
    figure_ : matplotlib Figure
        Figure containing the heatmap.

    See Also
    --------
    PairContributionDisplay : What each pair contributes to one prediction.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from sklearn_afm import AFMClassifier, load_telco_churn
    >>> from sklearn_afm.inspection import AttentionHeatmapDisplay
    >>> X, y = load_telco_churn(return_X_y=True)
    >>> clf = AFMClassifier(max_iter=3, random_state=0).fit(X[:500], y[:500])
    >>> disp = AttentionHeatmapDisplay.from_estimator(clf, max_features=8)
    >>> len(disp.feature_names)
    8
    >>> plt.show()  # doctest: +SKIP
    """

    def __init__(self, attention, feature_names):
        self.attention = attention
        self.feature_names = feature_names

    @classmethod
    def from_estimator(
        cls,
        estimator,
        *,
        features=None,
        max_features=20,
        ax=None,
        cmap="viridis",
        colorbar=True,
        xticks_rotation="vertical",
        im_kw=None,
    ):
        """Draw the ``attention_weights_`` of a fitted AFM estimator.

        Parameters
        ----------
        estimator : AFMClassifier, AFMRegressor or Pipeline
            Fitted estimator, or a fitted Pipeline ending in one (its columns
            are those the AFM sees, after the preprocessing steps).
        features : array-like of {int, str}, default=None
            Columns to show, by index or by name.  None shows the
            ``max_features`` columns with the largest total attention.
        max_features : int, default=20
            How many columns to show when ``features`` is None; wider data is
            restricted to its most attended columns so the labels stay legible.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure and axes are created when None.
        cmap : str or matplotlib Colormap, default="viridis"
            Colormap of the heatmap.
        colorbar : bool, default=True
            Whether to add a colorbar.
        xticks_rotation : {"vertical", "horizontal"} or float, default="vertical"
            Rotation of the column labels.
        im_kw : dict, default=None
            Keyword arguments passed to :meth:`matplotlib.axes.Axes.imshow`.

        Returns
        -------
        display : AttentionHeatmapDisplay
        """
        _check_matplotlib(f"{cls.__name__}.from_estimator")
        afm = _final_estimator(estimator)
        weights = afm.attention_weights_
        if weights is None:
            raise ValueError(
                "attention_weights_ is None: the estimator had more than 4096 columns. Use "
                "categorical_features (one column per field) or explain(X) on rows of interest."
            )
        names = np.asarray(afm._column_names(), dtype=object)
        if features is None:
            if not (isinstance(max_features, (int, np.integer)) and max_features >= 2):
                raise ValueError(f"max_features must be an integer >= 2, got {max_features!r}.")
            # The most attended columns, kept in their input order.
            selected = np.sort(np.argsort(-weights.sum(axis=1), kind="stable")[:max_features])
        else:
            selected = _column_indices(features, names)
        display = cls(weights[np.ix_(selected, selected)], names[selected])
        return display.plot(
            ax=ax, cmap=cmap, colorbar=colorbar, xticks_rotation=xticks_rotation, im_kw=im_kw
        )

    def plot(
        self, ax=None, *, cmap="viridis", colorbar=True, xticks_rotation="vertical", im_kw=None
    ):
        """Draw the heatmap.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure and axes are created when None.
        cmap : str or matplotlib Colormap, default="viridis"
            Colormap of the heatmap.
        colorbar : bool, default=True
            Whether to add a colorbar.
        xticks_rotation : {"vertical", "horizontal"} or float, default="vertical"
            Rotation of the column labels.
        im_kw : dict, default=None
            Keyword arguments passed to :meth:`matplotlib.axes.Axes.imshow`.

        Returns
        -------
        display : AttentionHeatmapDisplay
            This object, with ``im_``, ``colorbar_``, ``ax_`` and ``figure_`` set.
        """
        _check_matplotlib(f"{type(self).__name__}.plot")
        fig, ax = _axes(ax)
        attention = np.array(self.attention, dtype=float)
        # Only a multi-valued column pairs with itself: leave the other
        # diagonal cells blank rather than a 0 that reads as "no attention".
        diagonal = np.diag(attention)
        np.fill_diagonal(attention, np.where(diagonal != 0, diagonal, np.nan))
        im_kw = {"cmap": cmap, "interpolation": "nearest", **(im_kw or {})}
        self.im_ = ax.imshow(attention, **im_kw)
        self.colorbar_ = fig.colorbar(self.im_, ax=ax, label="mean attention") if colorbar else None
        ticks = np.arange(len(self.feature_names))
        ax.set_xticks(ticks, labels=self.feature_names, rotation=xticks_rotation)
        ax.set_yticks(ticks, labels=self.feature_names)
        ax.set_title("Mean attention per pair of columns")
        self.ax_, self.figure_ = ax, fig
        return self


def _column_indices(features, names):
    """Indices of ``features`` (column indices or names) among ``names``."""
    features = np.asarray(features)
    if features.ndim != 1 or features.size < 2:
        raise ValueError("features must list at least two columns.")
    if features.dtype.kind in "iu":
        if features.min() < 0 or features.max() >= len(names):
            raise ValueError(f"features holds column indices outside [0, {len(names)}).")
        return features
    position = {name: j for j, name in enumerate(names)}
    unknown = [f for f in features if f not in position]
    if unknown:
        raise ValueError(f"features holds names the estimator was not fitted on: {unknown}.")
    return np.array([position[f] for f in features])


class PairContributionDisplay:
    """Bar chart of the largest pair contributions to one prediction of an AFM.

    The contribution of a pair ``(i, j)`` is ``a_ij p^T (v_i * v_j) x_i x_j``:
    what the pair adds to the decision function (classifier) or prediction
    (regressor), attention included.  A pair can receive much attention and
    still contribute little, or push the prediction down.

    Use :meth:`from_estimator` to create one from a fitted estimator; the
    constructor only stores what to draw.

    Parameters
    ----------
    contributions : ndarray of shape (n_pairs,)
        Contribution of each pair shown, largest in absolute value first.
    attention : ndarray of shape (n_pairs,)
        Attention each pair received.
    pair_names : array-like of str of shape (n_pairs,)
        Labels of the pairs, such as ``"tenure x Contract"``.
    output_name : str, default=None
        The output explained, such as "class 1" or "y", shown in the axis
        label.

    Attributes
    ----------
    bars_ : matplotlib BarContainer
        The bars, one per pair, the largest contribution on top.
    ax_ : matplotlib Axes
        Axes with the bar chart.
    figure_ : matplotlib Figure
        Figure containing the bar chart.

    See Also
    --------
    AttentionHeatmapDisplay : Mean attention per pair of columns.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from sklearn_afm import AFMClassifier, load_telco_churn
    >>> from sklearn_afm.inspection import PairContributionDisplay
    >>> X, y = load_telco_churn(return_X_y=True)
    >>> clf = AFMClassifier(max_iter=3, random_state=0).fit(X[:500], y[:500])
    >>> disp = PairContributionDisplay.from_estimator(clf, X.iloc[[0]], n_pairs=5)
    >>> len(disp.pair_names)
    5
    >>> plt.show()  # doctest: +SKIP
    """

    def __init__(self, contributions, attention, pair_names, output_name=None):
        self.contributions = contributions
        self.attention = attention
        self.pair_names = pair_names
        self.output_name = output_name

    @classmethod
    def from_estimator(cls, estimator, X_row, *, n_pairs=10, output=None, ax=None, bar_kw=None):
        """Draw the pairs that contribute most to the prediction for one sample.

        Parameters
        ----------
        estimator : AFMClassifier, AFMRegressor or Pipeline
            Fitted estimator, or a fitted Pipeline ending in one (``X_row`` is
            transformed by the preprocessing steps first).
        X_row : {array-like, sparse matrix, DataFrame} of shape (1, n_features)
            The sample to explain, as one row (for example ``X.iloc[[k]]``).
        n_pairs : int, default=10
            How many pairs to show: those with the largest absolute
            contribution.
        output : class label or int, default=None
            The output to explain: a class label of a classifier (default: the
            predicted class; a binary classifier has one output, for
            ``classes_[1]``) or a target index of a multi-output regressor
            (default: 0).
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure and axes are created when None.
        bar_kw : dict, default=None
            Keyword arguments passed to :meth:`matplotlib.axes.Axes.barh`.

        Returns
        -------
        display : PairContributionDisplay
        """
        _check_matplotlib(f"{cls.__name__}.from_estimator")
        if not (isinstance(n_pairs, (int, np.integer)) and n_pairs >= 1):
            raise ValueError(f"n_pairs must be a positive integer, got {n_pairs!r}.")
        afm = _final_estimator(estimator)
        n_rows = _num_samples(X_row)
        if n_rows != 1:
            raise ValueError(
                f"X_row must hold exactly one sample, got {n_rows}; select one row "
                "as a 2-D slice, for example X.iloc[[k]] or X[k:k + 1]."
            )
        if isinstance(estimator, Pipeline):
            X_row = estimator[:-1].transform(X_row)
        explanation = afm.explain(X_row)
        column = _output_column(afm, explanation, output)
        contributions = explanation.interactions[0, :, column]
        # Most contributing pairs first; pairs with an absent feature add 0.
        order = np.argsort(-np.abs(contributions), kind="stable")[:n_pairs]
        order = order[contributions[order] != 0]
        names = explanation.feature_names
        pair_names = [f"{names[i]} x {names[j]}" for i, j in explanation.pairs[order]]
        output_name = str(explanation.output_names[column])
        if is_classifier(afm):
            output_name = f"class {output_name}"
        display = cls(
            contributions[order], explanation.attention[0, order], pair_names, output_name
        )
        return display.plot(ax=ax, bar_kw=bar_kw)

    def plot(self, ax=None, *, bar_kw=None):
        """Draw the bar chart.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure and axes are created when None.
        bar_kw : dict, default=None
            Keyword arguments passed to :meth:`matplotlib.axes.Axes.barh`.

        Returns
        -------
        display : PairContributionDisplay
            This object, with ``bars_``, ``ax_`` and ``figure_`` set.
        """
        _check_matplotlib(f"{type(self).__name__}.plot")
        fig, ax = _axes(ax)
        contributions = np.asarray(self.contributions, dtype=float)
        positions = np.arange(len(contributions))[::-1]  # first pair on top
        colors = np.where(contributions >= 0, "tab:red", "tab:blue")
        self.bars_ = ax.barh(positions, contributions, **{"color": colors, **(bar_kw or {})})
        ax.bar_label(self.bars_, labels=[f"a={a:.3g}" for a in self.attention], padding=3)
        ax.set_yticks(positions, labels=self.pair_names)
        ax.axvline(0, color="black", linewidth=0.8)
        # Room for the attention labels beyond the longest bars, on both sides.
        if np.any(contributions):
            low, high = min(contributions.min(), 0), max(contributions.max(), 0)
            pad = 0.3 * (high - low)
            ax.set_xlim(low - pad * (low < 0), high + pad * (high > 0))
        output = "" if self.output_name is None else f" ({self.output_name})"
        ax.set_xlabel(f"contribution to the output{output}")
        ax.set_title("Largest pair contributions (a = attention)")
        self.ax_, self.figure_ = ax, fig
        return self


def _output_column(afm, explanation, output):
    """Index into the explanation's outputs of the output to explain."""
    output_names = list(explanation.output_names)
    if output is None:
        if is_classifier(afm) and len(output_names) > 1:
            # The predicted class: the largest decision value of the row.
            decision = (
                explanation.bias
                + explanation.linear[0].sum(axis=0)
                + explanation.interactions[0].sum(axis=0)
            )
            return int(np.argmax(decision))
        return 0
    if is_classifier(afm):
        matches = [k for k, name in enumerate(output_names) if name == output]
        if not matches:
            raise ValueError(
                f"output must be one of {output_names} (the classes with an output of their "
                f"own), got {output!r}."
            )
        return matches[0]
    if not (isinstance(output, (int, np.integer)) and 0 <= output < len(output_names)):
        raise ValueError(
            f"output must be a target index in [0, {len(output_names)}), got {output!r}."
        )
    return int(output)
