"""Workflows: the steps a command chains — run the protocol, train and bundle the final model, score, report.

Training, evaluation, reporting and bundling know nothing of one another; the functions here put them in order.
The public API (`aullm.api`, re-exported by `aullm`) and through it the command line call these functions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from safetensors.torch import load_file

from aullm.bundle import write_bundle
from aullm.config import Config, config_to_dict, load_config
from aullm.errors import UserError
from aullm.evaluation.metrics import read_predictions, score_run
from aullm.evaluation.thresholds import run_thresholds
from aullm.io import check_output_dir
from aullm.models.llm import LoadedLLM, load_llm
from aullm.reporting.tables import write_report
from aullm.runtime import resolve_device
from aullm.tracking import Trackers, open_trackers
from aullm.training import run_dir as rd
from aullm.training.execution import Executor, LocalExecutor, execute
from aullm.training.final import FINAL, final_dir, train_final
from aullm.training.protocols import (
    Experiment,
    RunFailed,
    Session,
    build_experiment,
    default_run_dir,
    finish_run,
    plan_run,
    subject_key,
)


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
        _check_bundle_target(out / "bundle")
    trackers = open_trackers(track)
    executor = executor or LocalExecutor()
    # In this process the session (LLM, model) is loaded once and reused for the final bundle; elsewhere only the
    # data is prepared here and the tasks load what they need.
    session = Session.open(cfg) if isinstance(executor, LocalExecutor) else None
    plan = plan_run(cfg, out, session)
    trackers.start(plan.cfg, plan.out)
    try:
        outcome = execute([plan], executor, on_fold=trackers.log_fold)[0]
        status = finish_run(plan, outcome)
        if status.complete:
            _finish(out, cfg, session, trackers)
    finally:
        trackers.end()
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
            _check_bundle_target(runs[cfg.name] / "bundle")
    report_dir = Path(report_dir) if report_dir is not None else out_root
    check_output_dir(report_dir, "report folder")
    experiments: dict[str, Experiment] = {}  # configs on the same data and folds share one prepared copy
    plans = [
        plan_run(cfg, runs[cfg.name], experiment=_shared_experiment(cfg, experiments), label=cfg.name) for cfg in cfgs
    ]
    trackers = {plan.out: open_trackers(track) for plan in plans}
    result = SweepResult(runs)
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
    finally:
        for tracker in trackers.values():
            tracker.end()
    if result.complete:
        result.report = write_report([runs[name] for name in result.complete], report_dir)
    return result


def _shared_experiment(cfg: Config, experiments: dict[str, Experiment]) -> Experiment:
    raw = config_to_dict(cfg)
    key = json.dumps([raw["data"], raw["protocol"]], sort_keys=True, default=str)
    if key not in experiments:
        experiments[key] = build_experiment(cfg)
    return experiments[key]


def make_executor(
    kind: str = "local",
    *,
    address: Optional[str] = None,
    cpus_per_task: Optional[float] = None,
    gpus_per_task: Optional[float] = None,
    max_retries: Optional[int] = None,
) -> Executor:
    """`local` (this process) or `ray` (one Ray task per seed and fold); resources apply to Ray only."""
    if kind == "local":
        given = [
            name
            for name, value in (
                ("--address", address),
                ("--cpus-per-task", cpus_per_task),
                ("--gpus-per-task", gpus_per_task),
                ("--max-retries", max_retries),
            )
            if value is not None
        ]
        if given:
            raise UserError(f"{', '.join(given)} only apply with --executor ray")
        return LocalExecutor()
    if kind != "ray":
        raise UserError(f"--executor {kind!r}: choose local or ray")
    try:
        from aullm.training.ray_executor import DEFAULT_MAX_RETRIES, RayExecutor
    except ImportError:
        raise UserError("--executor ray needs Ray: pip install 'aullm[ray]'") from None
    return RayExecutor(
        address=address,
        cpus_per_task=1.0 if cpus_per_task is None else cpus_per_task,
        gpus_per_task=gpus_per_task,
        max_retries=DEFAULT_MAX_RETRIES if max_retries is None else max_retries,
    )


def _check_bundle_target(path: Path) -> None:
    check_output_dir(path, "bundle folder")
    if path.exists() and any(path.iterdir()) and not (path / "manifest.json").is_file():
        raise UserError(f"{path} exists and is not a model bundle; refusing to overwrite it")


def _run_config(run: Path) -> Config:
    path = Path(run) / rd.CONFIG
    if not path.is_file():
        raise UserError(f"{run} is not a run directory: no config.yaml (written by aullm train)")
    return load_config(path, resolved=True)


def _bundle_seed(cfg: Config, seed: Optional[int], run: Path) -> int:
    chosen = int(cfg.seeds[0] if seed is None else seed)
    if chosen not in cfg.seeds:
        raise UserError(f"--seed {chosen} was not trained in {run} (seeds: {cfg.seeds})")
    return chosen


def _validation_predictions(path: Path) -> Any:
    return read_predictions(path) if path.is_file() else None


def _base_llm(cfg: Config, session: Optional[Session]) -> Optional[LoadedLLM]:
    """The run's base LLM (a bundle records its name, source and sha256); None for models without an LLM."""
    if session is not None:
        return session.llm
    return load_llm(cfg.llm, resolve_device(cfg.train.device)) if cfg.model.needs_llm else None


def export_final(
    run: Path, out: Optional[Path] = None, seed: Optional[int] = None, session: Optional[Session] = None
) -> Path:
    """Bundle the final model of a run (trained on every training subject now if the run lacks it)."""
    run = Path(run)
    cfg = session.cfg if session is not None else _run_config(run)
    seed = _bundle_seed(cfg, seed, run)
    target = Path(out) if out is not None else run / "bundle"
    _check_bundle_target(target)
    if not cfg.model.bundleable:
        raise UserError(f"a model bundle holds torch weights; {cfg.model.name!r} cannot be saved as one")
    folder = final_dir(run)
    weights = folder / rd.weights_name(seed)
    if not (rd.fold_is_done(folder) and weights.is_file()):
        session = session or Session.open(cfg)
        train_final(session, run, seed)
    trained = rd.read_predictions(folder / rd.PREDICTIONS)
    thresholds = run_thresholds(
        _validation_predictions(run / rd.VAL_PREDICTIONS), cfg.data.aus, cfg.eval.threshold, seed=seed
    )
    trained_on = {"fold": FINAL, "clips": int(len(trained)), "subjects": sorted(set(trained["subject"].tolist()))}
    return _write_run_bundle(target, run, cfg, weights, thresholds, trained_on, seed, _base_llm(cfg, session))


def export_fold(run: Path, fold: str, out: Optional[Path] = None, seed: Optional[int] = None) -> Path:
    """Bundle one fold's model of a finished fold (thresholds from that fold's own validation subjects)."""
    run = Path(run)
    cfg = _run_config(run)
    seed = _bundle_seed(cfg, seed, run)
    folds = run / rd.FOLDS
    names = sorted(p.name for p in folds.iterdir()) if folds.is_dir() else []
    match = next((n for n in names if subject_key(n) == subject_key(fold)), None)
    if match is None:
        raise UserError(f"fold {fold!r} not found in {run} (folds: {', '.join(names) or 'none'})")
    folder = rd.fold_dir(run, match)
    weights = folder / rd.weights_name(seed)
    if not rd.fold_is_done(folder) or not weights.is_file():
        raise UserError(f"fold {match} of {run} has no finished weights for seed {seed} ({weights.name})")
    target = Path(out) if out is not None else run / f"bundle_fold{match}_seed{seed}"
    _check_bundle_target(target)
    val_path = folder / rd.VAL_PREDICTIONS
    thresholds = run_thresholds(
        _validation_predictions(val_path if val_path.is_file() else run / rd.VAL_PREDICTIONS),
        cfg.data.aus,
        cfg.eval.threshold,
        seed=seed,
        fold=match,
    )
    test_subjects = sorted(set(rd.read_predictions(folder / rd.PREDICTIONS)["subject"].tolist()))
    trained_on = {"fold": match, "held_out_subjects": test_subjects}
    return _write_run_bundle(target, run, cfg, weights, thresholds, trained_on, seed, _base_llm(cfg, None))


def _write_run_bundle(
    target: Path,
    run: Path,
    cfg: Config,
    weights: Path,
    thresholds: tuple[dict[str, float], str],
    trained_on: dict[str, Any],
    seed: int,
    llm: Optional[LoadedLLM],
) -> Path:
    """A bundle of one trained model of `run`: its weights file, thresholds (and where they came from), what it was
    trained on, and the base LLM it needs (referenced, and its LoRA adapter again in PEFT's format)."""
    return write_bundle(
        target,
        cfg,
        load_file(str(weights)),
        llm_reference=llm.reference if llm is not None else None,
        thresholds=thresholds[0],
        threshold_source=thresholds[1],
        trained_on={"run_dir": str(run.resolve()), "seed": seed, "dataset": cfg.data.dataset, **trained_on},
        adapter_llm=llm,
    )


def export(run: Path, out: Optional[Path] = None, fold: Optional[str] = None, seed: Optional[int] = None) -> Path:
    """`aullm export`: one fold's model with `fold`, else the final model."""
    if fold is None:
        return export_final(run, out, seed)
    return export_fold(run, fold, out, seed)


__all__ = ["SweepResult", "export", "export_final", "export_fold", "make_executor", "sweep", "train"]
