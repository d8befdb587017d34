"""Plots of what an AFM estimator learned, in scikit-learn's Display style.

Drawing needs matplotlib: ``pip install "sklearn-afm[plot]"``.
"""

from ._plotting import AttentionHeatmapDisplay, PairContributionDisplay

__all__ = ["AttentionHeatmapDisplay", "PairContributionDisplay"]
