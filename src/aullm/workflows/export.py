"""Model bundles from a run: the final model on every training subject (trained now if the run lacks it) or one
fold's model, with its decision thresholds, what it was trained on and the base LLM it needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from safetensors.torch import load_file

from aullm.config import Config, load_config
from aullm.core.errors import UserError, arg
from aullm.core.io import check_output_dir
from aullm.core.runtime import resolve_device
from aullm.evaluation.predictions import read_predictions
from aullm.evaluation.thresholds import run_thresholds
from aullm.inference.bundle import write_bundle
from aullm.models.llm.loading import LoadedLLM, load_llm
from aullm.training import run_dir as rd
from aullm.training.final import FINAL, final_dir, train_final
from aullm.training.session import Session, subject_key


def check_bundle_target(path: Path) -> None:
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
        raise UserError(f"{arg('seed', chosen)} was not trained in {run} (seeds: {cfg.seeds})")
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
    check_bundle_target(target)
    if not cfg.model.bundleable:
        raise UserError(f"a model bundle holds torch weights; {cfg.model.name!r} cannot be saved as one")
    folder = final_dir(run)
    weights = folder / rd.weights_name(seed)
    if not (rd.fold_is_done(folder, rd.recorded_data(run)) and weights.is_file()):
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
    if not folder.is_dir():
        raise UserError(f"{folder} is not a fold folder (a file?); train the run again into the same {arg('out')}")
    weights = folder / rd.weights_name(seed)
    problem = rd.fold_problem(folder, rd.recorded_data(run))
    if problem is not None and (folder / rd.DONE).is_file():
        raise UserError(
            f"fold {match} of {run} cannot be exported: {problem}; train it again into the same run directory"
        )
    if problem is not None or not weights.is_file():
        raise UserError(f"fold {match} of {run} has no finished weights for seed {seed} ({weights.name})")
    target = Path(out) if out is not None else run / f"bundle_fold{match}_seed{seed}"
    check_bundle_target(target)
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


def _longest_clip(run: Path) -> Optional[int]:
    """The longest training clip in frames, from the run's data.json (runs started before it was recorded: None)."""
    import json

    try:
        value = json.loads((Path(run) / rd.DATA).read_text(encoding="utf-8")).get("longest_clip_frames")
    except (OSError, ValueError, AttributeError):
        return None
    return int(value) if isinstance(value, (int, float)) and value > 0 else None


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
    longest = _longest_clip(run)
    if longest is not None:
        trained_on = {**trained_on, "longest_clip_frames": longest}
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


__all__ = ["check_bundle_target", "export_final", "export_fold"]
