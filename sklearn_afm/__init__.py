"""sklearn-afm: Attentional Factorization Machines as scikit-learn estimators.

Importing this package is cheap: the estimators (and scikit-learn with them)
are imported on first access, and TensorFlow only when a model is fitted or
used for prediction.
"""

import importlib

__version__ = "0.1.0"

# Public name -> module that defines it, imported on first access (PEP 562).
_LAZY = {
    "AFMClassifier": "._estimators",
    "AFMRegressor": "._estimators",
    "load_telco_churn": ".datasets",
    "fetch_movielens_100k": ".datasets",
    "load": "._persistence",
    "InconsistentVersionWarning": "._state",
    "AttentionHeatmapDisplay": ".inspection",
    "PairContributionDisplay": ".inspection",
}

__all__ = [
    "AFMClassifier",
    "AFMRegressor",
    "AttentionHeatmapDisplay",
    "PairContributionDisplay",
    "InconsistentVersionWarning",
    "fetch_movielens_100k",
    "load",
    "load_telco_churn",
    "__version__",
]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
