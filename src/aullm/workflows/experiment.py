"""An experiment from start to finish: run the protocol, bundle the final model, score, report — for one config
(`train`) or several as one batch of fold tasks (`sweep`).

Training, evaluation, reporting and bundling know nothing of one another; the functions here put them in order.
The public API (`aullm.api`, re-exported by `aullm`) and through it the command line call these functions.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from aullm.config import Config, config_to_dict
from aullm.core.console import logger
from aullm.core.errors import UserError
from aullm.core.io import check_output_dir
from aullm.evaluation.run_scores import score_run
from aullm.reporting.report import write_report
from aullm.training import run_dir as rd
from aullm.training.execution import Executor, LocalExecutor, execute
from aullm.training.protocols import RunFailed, default_run_dir, finish_run, plan_run
from aullm.training.session import Experiment, Session, build_experiment
from aullm.workflows.export import check_bundle_target, export_final
from aullm.workflows.tracking import Trackers, open_trackers


def train(
    cfg: Config,
    out: Optional[Path] = None,
    *,
    executor: Optional[Executor] = None,
    track: Sequence[str] = (),
) -> Path:
    """Run (or resume) the config's protocol into `out`; once every fold is done, bundle the final model
    (`train.save_final`), score every metric and write the report. Returns the run directory.

    `executor` decides where the folds train (default: in this process); `track` names experiment trackers
    (`mlflow`, `tensorboard`) that mirror the run as it goes."""
    out = default_run_dir(cfg, out)
    rd.check_run_dir(cfg, out)
    if cfg.train.save_final:
        check_bundle_target(out / "bundle")
    with rd.run_lock(cfg, out):  # a second run into the same folds is refused while this one runs
        trackers = open_trackers(track)
        executor = executor or LocalExecutor()
        # In this process the session (LLM, model) is loaded once and reused for the final bundle; elsewhere only
        # the data is prepared here and the tasks load what they need.
        session = Session.open(cfg) if isinstance(executor, LocalExecutor) else None
        plan = plan_run(cfg, out, session)
        trackers.start(plan.cfg, plan.out)
        ending = "FAILED"
        try:
            outcome = execute([plan], executor, on_fold=trackers.log_fold)[0]
            status = finish_run(plan, outcome)
            if status.complete:
                _finish(out, cfg, session, trackers)
            elif cfg.train.save_final:
                logger.warning(
                    "the model bundle is written once every fold is done (%d of %d missing: %s); the final model "
                    "is trained, and the run that finishes the last fold writes the bundle (or aullm export %s)",
                    len(status.missing),
                    len(status.all_folds),
                    ", ".join(status.missing[:8]),
                    out,
                )
            ending = "FINISHED"
        except KeyboardInterrupt:
            ending = "KILLED"
            raise
        finally:
            trackers.end(ending)
    return out


def _finish(out: Path, cfg: Config, session: Optional[Session], trackers: Trackers) -> None:
    """A complete run: bundle the final model (when asked), score, report, and send the metrics to the trackers."""
    if cfg.train.save_final:
        export_final(out, session=session)
    metrics = score_run(out)
    write_report([out], out)
    trackers.log_metrics(metrics)


@dataclass
class SweepResult:
    """Where each config of a sweep ran, which runs are complete, which failed (and why), and the report."""

    runs: dict[str, Path]
    complete: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    report: Optional[Path] = None


def sweep(
    cfgs: Sequence[Config],
    out_root: Path,
    *,
    executor: Optional[Executor] = None,
    track: Sequence[str] = (),
    report_dir: Optional[Path] = None,
) -> SweepResult:
    """Run several configs as one batch of tasks: each into `out_root/<config name>/` (the same run directory as
    `train`), so on a cluster the whole sweep takes about as long as its slowest fold. Every run directory and
    dataset is checked before any training; a run whose folds failed does not stop the others. Complete runs are
    scored and reported one by one, then together in `report_dir` (default `out_root`)."""
    names = [cfg.name for cfg in cfgs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"the sweep names {', '.join(twice)} more than once: config names must be unique")
    out_root = Path(out_root)
    runs = {cfg.name: out_root / cfg.name for cfg in cfgs}
    for cfg in cfgs:
        rd.check_run_dir(cfg, runs[cfg.name])
        if cfg.train.save_final:
            check_bundle_target(runs[cfg.name] / "bundle")
    report_dir = Path(report_dir) if report_dir is not None else out_root
    check_output_dir(report_dir, "report folder")
    with contextlib.ExitStack() as locks:
        for cfg in cfgs:  # every run directory is held for the sweep's life, as `train` holds its own
            locks.enter_context(rd.run_lock(cfg, runs[cfg.name]))
        return _sweep(cfgs, runs, executor, track, report_dir)


def _sweep(
    cfgs: Sequence[Config], runs: dict[str, Path], executor: Optional[Executor], track: Sequence[str], report_dir: Path
) -> SweepResult:
    experiments: dict[str, Experiment] = {}  # configs on the same data and folds share one prepared copy
    plans = [
        plan_run(cfg, runs[cfg.name], experiment=_shared_experiment(cfg, experiments), label=cfg.name) for cfg in cfgs
    ]
    trackers = {plan.out: open_trackers(track) for plan in plans}
    result = SweepResult(runs)
    ending = "FAILED"
    try:
        for plan in plans:
            trackers[plan.out].start(plan.cfg, plan.out)
        outcomes = execute(
            plans, executor or LocalExecutor(), on_fold=lambda plan, fold: trackers[plan.out].log_fold(plan, fold)
        )
        for plan, outcome in zip(plans, outcomes):
            try:
                status = finish_run(plan, outcome)
            except RunFailed as err:
                result.failed[plan.cfg.name] = str(err)
                continue
            if status.complete:
                _finish(plan.out, plan.cfg, None, trackers[plan.out])
                result.complete.append(plan.cfg.name)
        ending = "FINISHED"
    except KeyboardInterrupt:
        ending = "KILLED"
        raise
    finally:
        failed = {runs[name] for name in result.failed}
        for out, tracker in trackers.items():
            tracker.end("FAILED" if out in failed else ending)
    if result.complete:
        result.report = write_report([runs[name] for name in result.complete], report_dir)
    return result


def _shared_experiment(cfg: Config, experiments: dict[str, Experiment]) -> Experiment:
    raw = config_to_dict(cfg)
    key = json.dumps([raw["data"], raw["protocol"]], sort_keys=True, default=str)
    if key not in experiments:
        experiments[key] = build_experiment(cfg)
    return experiments[key]


__all__ = ["SweepResult", "sweep", "train"]
