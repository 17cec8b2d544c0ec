"""Scoring a run directory: its config's settings, its finished folds and prediction files, checked against each
other, scored into metrics.json (written atomically; NaN refused)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd

from aullm.core.console import logger
from aullm.core.errors import UserError, arg
from aullm.core.io import check_output_dir, write_text
from aullm.core.lock import live_holders
from aullm.core.paths import describe
from aullm.core.provenance import reconstruction_note
from aullm.evaluation.predictions import prediction_aus, read_predictions
from aullm.evaluation.scores import score_predictions
from aullm.evaluation.validate import check_predictions


def run_info(run_dir: Path) -> dict[str, Any]:
    """What the report needs to know about a run, read from its config.yaml (defaults when it has none)."""
    from aullm.config import Config, load_config

    path = Path(run_dir) / "config.yaml"
    if path.is_file():
        cfg = load_config(path, resolved=True)
    else:
        logger.warning("%s has no config.yaml; scoring with the default settings (threshold 0.5)", run_dir)
        cfg = Config(name=Path(run_dir).resolve().name)
    target = cfg.protocol.target.dataset if cfg.protocol.target is not None else None
    return {
        "name": cfg.name,
        "dir": str(run_dir),
        "dataset": cfg.data.dataset,
        "protocol": cfg.protocol.name,
        "target": target if cfg.protocol.name == "cross_domain" else None,
        "model": cfg.model.name,
        "variant": cfg.model.variant_label,
        "llm": cfg.llm.name,
        "input": cfg.data.input,
        "threshold": cfg.eval.threshold,
        "validation_subjects": cfg.eval.validation_subjects,
        "bootstrap": cfg.eval.bootstrap,
        "bootstrap_seed": cfg.eval.bootstrap_seed,
        "llm_init": cfg.llm.init if cfg.model.needs_llm else None,
        "reasoner": getattr(cfg.model, "reasoner", None),
        "config_seeds": list(cfg.seeds),
        "aus": list(cfg.data.aus),
    }


def unfinished_folds(run_dir: Path) -> list[str]:
    """Fold folders without their `done` marker or predictions (a run still going, stopped, or damaged)."""
    folds = Path(run_dir) / "folds"
    if not folds.is_dir():
        return []
    return sorted(
        p.name
        for p in folds.iterdir()
        if p.is_dir() and not ((p / "done").exists() and (p / "predictions.csv").is_file())
    )


def finished_fold_rows(run_dir: Path) -> Optional[dict[str, int]]:
    """Rows per seed in each finished fold's own predictions.csv (None for a run without fold folders)."""
    folds = Path(run_dir) / "folds"
    if not folds.is_dir():
        return None
    rows: dict[str, int] = {}
    unfinished = unfinished_folds(run_dir)
    for folder in sorted(p for p in folds.iterdir() if p.is_dir() and p.name not in unfinished):
        frame = read_predictions(folder / "predictions.csv")
        rows[folder.name] = len(frame) // max(1, frame["seed"].nunique())
    return rows


def read_run(run_dir: Path) -> tuple[dict[str, Any], list[str], pd.DataFrame, Optional[pd.DataFrame]]:
    """A run's info, AUs, test predictions and validation predictions (None when it held none out), checked
    against the run's config and finished folds: what scoring and paired comparisons read."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(describe(run_dir, "run directory", "folder"))
    pred_path = run_dir / "predictions.csv"
    if not pred_path.is_file():
        raise no_predictions(run_dir)
    info = run_info(run_dir)
    test = read_predictions(pred_path)
    aus = prediction_aus(test, pred_path)
    if (run_dir / "config.yaml").is_file():
        check_predictions(
            test, pred_path, aus=info["aus"], seeds=info["config_seeds"], fold_rows=finished_fold_rows(run_dir)
        )
    val = None
    val_path = run_dir / "val_predictions.csv"
    if val_path.is_file():
        val = read_predictions(val_path)
        if prediction_aus(val, val_path) != aus:
            raise UserError(f"{val_path} and {pred_path} name different AUs")
    return info, aus, test, val


def no_predictions(run_dir: Path) -> UserError:
    """Why a folder has no predictions.csv: a run still training (naming the process), an interrupted run (how far
    it got, and how to finish it), or not a run directory at all."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        return UserError(f"{run_dir} is not a run directory: no predictions.csv (written by aullm train)")
    folds = run_dir / "folds"
    done = sorted(p.parent.name for p in folds.glob("*/done")) if folds.is_dir() else []
    started = sorted(p.name for p in folds.iterdir() if p.is_dir()) if folds.is_dir() else []
    progress = f"{len(done)} fold(s) finished, {len(set(started) - set(done))} started"
    holders = live_holders(sorted(run_dir.glob("lock*")))
    if holders:
        return UserError(
            f"{run_dir} is a run still training ({progress}), by {holders[0].describe()}: it has no predictions.csv "
            "until a fold is done; wait for it"
        )
    return UserError(
        f"{run_dir} is a run that was interrupted before its predictions were written ({progress}): run aullm "
        f"train again with {arg('out', run_dir)} to finish it"
    )


def metrics_target(run_dir: Path, out: Optional[Path] = None) -> Path:
    """Where metrics.json goes: `out` (a folder) or the run directory, checked writable before any scoring; a run
    directory that cannot be written (read-only file system, no permission) is one line that offers `out`."""
    if out is not None:
        check_output_dir(Path(out), arg("out"))
        return Path(out) / "metrics.json"
    run_dir = Path(run_dir)
    if run_dir.is_dir() and not os.access(run_dir, os.W_OK | os.X_OK):
        raise UserError(
            f"cannot write metrics.json into {run_dir}: the run directory is not writable (read-only file system "
            f"or no permission); pass {arg('out', 'DIR')} to write it elsewhere"
        )
    return run_dir / "metrics.json"


def score_run(run_dir: Path, out: Optional[Path] = None, *, write: bool = True) -> dict[str, Any]:
    """Score a run directory from its CSVs, write metrics.json next to them (or into the folder `out`; nowhere
    with `write=False`), and return its content."""
    run_dir = Path(run_dir)
    target = metrics_target(run_dir, out) if write else None
    info, aus, test, val = read_run(run_dir)
    scores = score_predictions(
        test, val, info["threshold"], aus, bootstrap=info["bootstrap"], bootstrap_seed=info["bootstrap_seed"]
    )
    metrics = {"schema": 1, "run": info, **scores}
    unfinished = unfinished_folds(run_dir)
    metrics["run"]["unfinished_folds"] = unfinished
    note = reconstruction_note(info["model"])
    metrics["run"]["reconstruction"] = note is not None
    if note is not None:
        metrics["notes"]["reconstruction"] = note
    if unfinished:
        metrics["notes"]["incomplete"] = (
            f"{len(unfinished)} fold(s) not finished ({', '.join(unfinished[:8])}"
            f"{', ...' if len(unfinished) > 8 else ''}); scores cover finished folds"
        )
    if target is not None:
        write_json(metrics, target)
    return metrics


def load_metrics(run_dir: Path) -> dict[str, Any]:
    """Re-score a run when its predictions are there (always current), else read its metrics.json."""
    run_dir = Path(run_dir)
    if (run_dir / "predictions.csv").is_file():  # a run on a read-only disk is scored without writing there
        return score_run(run_dir, write=os.access(run_dir, os.W_OK | os.X_OK))
    path = run_dir / "metrics.json"
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise UserError(f"cannot read {path}: {err}") from None
    if not run_dir.is_dir():
        raise UserError(describe(run_dir, "run directory", "folder"))
    raise no_predictions(run_dir)


def write_json(data: dict[str, Any], path: Path) -> None:
    """Atomic write; NaN would not be valid JSON, so it is refused rather than written."""
    text = json.dumps(_check_finite(data), indent=2, allow_nan=False)
    write_text(path, text + "\n")


def _check_finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _check_finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_check_finite(v) for v in value]
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError("non-finite metric value")
        return value
    if isinstance(value, np.integer):
        return int(value)
    return value


__all__ = [
    "finished_fold_rows",
    "load_metrics",
    "no_predictions",
    "read_run",
    "run_info",
    "score_run",
    "unfinished_folds",
    "write_json",
]
