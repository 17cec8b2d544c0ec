"""The final model: after the folds, one model trained on every training subject (`--save-final`, `aullm export`).

One seed (the config's first unless given), reset from `fold_seed(seed, "final")` and trained exactly like a fold
by `fold.train_seed`. `<run>/final/` holds its weights, train log and its own predictions on the training clips
(test sampling), in the fold folder layout; a rerun reuses finished weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from aullm.training import run_dir
from aullm.training.fold import FoldResult, train_seed
from aullm.training.session import Session

FINAL = run_dir.FINAL


def final_dir(out: Path) -> Path:
    return Path(out) / FINAL


def train_final(session: Session, out: Path, seed: Optional[int] = None) -> Path:
    """Train (unless already done) the final model of `seed` on all training clips; returns its weights file."""
    cfg = session.cfg
    seed = int(cfg.seeds[0] if seed is None else seed)
    folder = final_dir(out)
    weights = folder / run_dir.weights_name(seed)
    fingerprint = session.experiment.fingerprint()
    if run_dir.fold_is_done(folder, fingerprint) and weights.is_file():
        return weights
    data = session.experiment.train_data
    rows = np.arange(len(data.index))
    result = train_seed(
        session.model, cfg, data, rows, data, rows, seed=seed, fold=FINAL, device=session.device, validation_subjects=0
    )
    if result.weights is None:
        raise RuntimeError(f"model {cfg.model.name} produced no weights to save")
    run_dir.write_fold(folder, FoldResult(FINAL, [result]), fingerprint)
    return weights


__all__ = ["FINAL", "final_dir", "train_final"]
