"""The local dashboard over the marts: one self-contained HTML file (see ``build.py``)."""

from netflix_elt.dashboard.build import DashboardResult, build_dashboard
from netflix_elt.dashboard.data import MART_MODELS

__all__ = ["DashboardResult", "MART_MODELS", "build_dashboard"]
