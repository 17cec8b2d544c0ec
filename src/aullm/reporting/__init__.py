"""Reports: the paper's published numbers (paper.py), report.md tables (tables.py) and PNG plots (plots.py).

Submodules are imported on use so that `aullm.reporting.paper` does not pull in matplotlib.
"""

__all__ = ["paper", "plots", "tables"]
