"""Data sets shipped with sklearn-afm."""

from ._telco import load_telco_churn

__all__ = ["load_telco_churn"]
