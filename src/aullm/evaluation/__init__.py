"""Scoring: pure functions of prediction files (docs/design.md, Run directories), so any run can be re-scored without
retraining."""

from aullm.evaluation.metrics import LABELS, METRICS, OPTIMISTIC
from aullm.evaluation.run_scores import load_metrics, score_run
from aullm.evaluation.scores import score_predictions
from aullm.evaluation.thresholds import THRESHOLD_GRID
from aullm.evaluation.trivial import TRIVIAL

__all__ = [
    "LABELS",
    "METRICS",
    "OPTIMISTIC",
    "THRESHOLD_GRID",
    "TRIVIAL",
    "load_metrics",
    "score_predictions",
    "score_run",
]
