"""Data sets of sklearn-afm: Telco churn shipped with it, MovieLens 100k fetched at run time."""

from ._movielens import fetch_movielens_100k
from ._telco import load_telco_churn

__all__ = ["fetch_movielens_100k", "load_telco_churn"]
