"""Run directories of an experiment: plan the folds a run still lacks (resuming where it stopped), and gather the
finished folds' predictions. Which folds exist is the `Experiment`'s business (`session.py`); where they train is
the executor's (`execution.py`); scoring, reporting and bundling are chained by `aullm.workflows` once the run is
complete. Why resuming gives the same numbers: docs/design.md, Run directories.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from aullm.config import Config
from aullm.core.console import logger
from aullm.core.errors import RunFailed
from aullm.training import run_dir
from aullm.training.execution import FoldJob, RunOutcome, RunPlan
from aullm.training.fold import Fold
from aullm.training.session import Experiment, Session, build_experiment


@dataclass
class RunStatus:
    """Where a run stands after `run_experiment`: which folds are still missing (other machines may be training
    them), and whether every fold is done so the run can be scored."""

    out: Path
    all_folds: list[str]
    missing: list[str]

    @property
    def complete(self) -> bool:
        return not self.missing


def plan_run(
    cfg: Config, out: Path, session: Optional[Session] = None, experiment: Optional[Experiment] = None, label: str = ""
) -> RunPlan:
    """Check and set up the run directory, and list the folds (and the final model, with `train.save_final`) it
    still lacks. Only the data is prepared here; the LLM and model are loaded where the tasks run.

    A failed start (bad --out, missing data, unknown LLM) leaves nothing behind, so the corrected command can use
    the same --out.
    """
    out = Path(out)
    run_dir.check_run_dir(cfg, out)
    if session is not None:
        experiment = session.experiment
    elif experiment is None:
        experiment = build_experiment(cfg)
    fingerprint = experiment.fingerprint()
    run_dir.check_fold_folders(out, experiment.all_fold_names)
    run_dir.init_run_dir(cfg, out)
    run_dir.check_data(out, fingerprint)
    folds = experiment.folds
    todo = [f for f in folds if not run_dir.fold_is_done(run_dir.fold_dir(out, f.name), fingerprint)]
    if len(todo) < len(folds):
        logger.info("resuming %s: %d fold(s) already done, %d to run", out, len(folds) - len(todo), len(todo))
    warn_unlearnable(experiment, todo)
    seeds = tuple(int(s) for s in cfg.seeds)
    jobs = [FoldJob(f, run_dir.fold_dir(out, f.name), seeds, cfg.eval.validation_subjects) for f in todo]
    if cfg.train.save_final and cfg.model.bundleable:
        jobs += _final_job(cfg, out, experiment, fingerprint)
    prepared = experiment
    return RunPlan(cfg, out, experiment, jobs, lambda: Session.open(cfg, prepared), session, label, fingerprint)


def warn_unlearnable(experiment: Experiment, folds: list[Fold]) -> None:
    """Name the folds whose training clips hold no positive of some AU: the model cannot learn that AU there, so
    its predictions for the held-out subject are a guess (the run goes on: the AU has positives elsewhere)."""
    data = experiment.train_data
    for fold in folds:
        present = data.labels[fold.train_rows].any(axis=0) if len(fold.train_rows) else np.zeros(len(data.aus), bool)
        absent = [au for au, there in zip(data.aus, present) if not there]
        if absent:
            logger.warning(
                "fold %s: %s %s no positive among its %d training clips; the model cannot learn %s in this fold",
                fold.name,
                ", ".join(absent),
                "has" if len(absent) == 1 else "have",
                len(fold.train_rows),
                "it" if len(absent) == 1 else "them",
            )


def _final_job(cfg: Config, out: Path, experiment: Experiment, fingerprint: dict) -> list[FoldJob]:
    """The final model (every training subject, the first seed) as one more job, unless it is already done."""
    folder = Path(out) / run_dir.FINAL
    seed = int(cfg.seeds[0])
    if run_dir.fold_is_done(folder, fingerprint) and (folder / run_dir.weights_name(seed)).is_file():
        return []
    rows = np.arange(len(experiment.train_data.index))
    return [FoldJob(Fold(run_dir.FINAL, rows, rows), folder, (seed,), 0)]


def finish_run(plan: RunPlan, outcome: RunOutcome) -> RunStatus:
    """Concatenate the finished folds' predictions; raise RunFailed when some fold could not be trained."""
    names = plan.experiment.all_fold_names
    missing = run_dir.collect_predictions(plan.out, names, plan.data)
    if outcome.failed:
        failed = ", ".join(outcome.failed)
        raise RunFailed(
            f"{len(outcome.failed)} fold(s) failed ({failed}); see folds/<fold>/failed. "
            "Finished folds are kept; run again into the same run directory after fixing the cause"
        )
    if missing:
        logger.info(
            "%d of %d folds done in %s; metrics are written once every fold is done",
            len(names) - len(missing),
            len(names),
            plan.out,
        )
    return RunStatus(plan.out, list(names), missing)


def default_run_dir(cfg: Config, out: Optional[Path]) -> Path:
    return Path(out) if out is not None else Path("runs") / cfg.name


__all__ = ["RunFailed", "RunStatus", "default_run_dir", "finish_run", "plan_run"]
