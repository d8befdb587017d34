"""sklearn-afm: Attentional Factorization Machines as scikit-learn estimators.

Importing this package does not import TensorFlow; fitting or predicting does.
"""

from ._estimators import AFMClassifier, AFMRegressor
from .datasets import load_telco_churn

__version__ = "0.1.0"

__all__ = ["AFMClassifier", "AFMRegressor", "load_telco_churn", "__version__"]
