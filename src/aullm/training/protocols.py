"""Experiment protocols (DESIGN §4–§6): Leave-One-Subject-Out and cross-domain, resumable, several seeds.

A run directory holds the resolved config, one folder per fold (weights, predictions, loss log, `done` written
last) and the concatenated predictions that metrics and reports read. Each (fold, seed) starts from a model reset
with a seed derived from the seed and the fold's name only, so results do not depend on fold order and a resumed
run ends with the same numbers as an uninterrupted one.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import torch
from safetensors.torch import save_file

from aullm.config import Config, DataConfig, config_to_dict, load_config, save_config
from aullm.console import logger
from aullm.data.cache import PreparedDataset, data_fingerprint, prepare_dataset
from aullm.errors import UserError
from aullm.models.llm import load_llm
from aullm.models.registry import build_model, model_needs_llm
from aullm.models.summary import log_parameter_report
from aullm.runtime import resolve_device, seed_everything
from aullm.training.trainer import TrainingDiverged, predict_model, train_model

DONE = "done"
FAILED = "failed"


class RunFailed(RuntimeError):
    """Some folds could not be trained (e.g. the loss diverged); finished folds are kept on disk."""


@dataclass
class Fold:
    """One train/test split. Rows index `train_data` and `test_data` respectively."""

    name: str
    train_rows: np.ndarray
    test_rows: np.ndarray


@dataclass
class Experiment:
    """The data of one run: what is trained on, what is tested on, and the folds between them."""

    train_data: PreparedDataset
    test_data: PreparedDataset
    folds: list[Fold]
    all_fold_names: list[str] = field(default_factory=list)


def fold_seed(seed: int, fold: str) -> int:
    """A per-(seed, fold) seed that depends on nothing else, so fold order cannot change results."""
    return (seed * 1_000_003 + zlib.crc32(fold.encode("utf-8"))) % (2**31 - 1)


def _subject_key(subject: str) -> str:
    """`01`, `1` and `001` name the same subject when given in protocol.folds."""
    return subject.lstrip("0") or "0"


def _select_folds(names: list[str], wanted: object) -> list[str]:
    if wanted == "all":
        return names
    by_key = {_subject_key(n): n for n in names}
    chosen = []
    for w in wanted:  # type: ignore[union-attr]
        key = _subject_key(str(w))
        if key not in by_key:
            raise UserError(f"protocol.folds names subject {w!r}, which is not in the dataset ({', '.join(names)})")
        chosen.append(by_key[key])
    return chosen


def build_experiment(cfg: Config) -> Experiment:
    """Prepare the data and cut it into the protocol's folds."""
    train_data = prepare_dataset(cfg.data)
    if cfg.protocol.name == "loso":
        subjects = train_data.subjects
        names = sorted(set(subjects.tolist()), key=lambda s: (len(s.lstrip("0")), s))
        if len(names) < 2:
            raise UserError(f"LOSO needs at least two subjects; {cfg.data.dataset} has {len(names)}")
        folds = [
            Fold(name, np.flatnonzero(subjects != name), np.flatnonzero(subjects == name))
            for name in _select_folds(names, cfg.protocol.folds)
        ]
        return Experiment(train_data, train_data, folds, names)
    target_cfg = _target_config(cfg)
    test_data = prepare_dataset(target_cfg)
    name = f"{cfg.data.dataset}_to_{target_cfg.dataset}"
    fold = Fold(name, np.arange(len(train_data.index)), np.arange(len(test_data.index)))
    return Experiment(train_data, test_data, [fold], [name])


def _target_config(cfg: Config) -> DataConfig:
    """The cross-domain test data, scored on the training data's AUs (e.g. 2, 4, 7, 12)."""
    assert cfg.protocol.target is not None
    target = DataConfig(**{**config_to_dict(cfg)["protocol"]["target"], "aus": list(cfg.data.aus)})
    missing = [au for au in cfg.data.aus if au not in set(target.aus)]
    if missing:
        raise UserError(f"cross-domain target lacks {missing}")
    return target


def _comparable(cfg: Config) -> dict:
    """The config without the keys that may differ between machines sharing one run (fold subsets)."""
    raw = config_to_dict(cfg)
    raw["protocol"] = {**raw["protocol"], "folds": None}
    raw["train"] = {**raw["train"], "save_final": None}  # --save-final may be added when resuming a run
    return raw


def _diff_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    keys = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            keys += _diff_keys(va, vb, f"{prefix}{key}.")
        elif va != vb:
            keys.append(f"{prefix}{key}")
    return keys


def open_run_dir(cfg: Config, out: Path) -> None:
    """Create the run directory, or check that an existing one was written by the same config."""
    path = out / "config.yaml"
    if path.exists():
        previous = load_config(path)
        differing = _diff_keys(_comparable(previous), _comparable(cfg))
        if differing:
            raise UserError(
                f"{out} was written by a different config (differs in {', '.join(differing[:5])}); "
                "refusing to resume — use another --out"
            )
        return
    save_config(cfg, path)


DATA_FILE = "data.json"


def check_run_data(experiment: Experiment, out: Path) -> None:
    """Record the data fingerprint of a new run; refuse to resume a run whose data has changed since."""
    train = data_fingerprint(experiment.train_data)
    test = train if experiment.test_data is experiment.train_data else data_fingerprint(experiment.test_data)
    current = {
        "train": train,
        "test": test,
        "samples": {"train": len(experiment.train_data), "test": len(experiment.test_data)},
    }
    path = out / DATA_FILE
    if path.exists():
        previous = json.loads(path.read_text())
        if (previous.get("train"), previous.get("test")) != (train, test):
            then = previous.get("samples", {}).get("train", "?")
            raise UserError(
                f"{out} was trained on different data: the dataset's frames, labels or samples changed since "
                f"(now {len(experiment.train_data)} training samples, then {then}); refusing to resume — use "
                "another --out"
            )
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(current, indent=1) + "\n")
    tmp.replace(path)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(path)


def _prediction_frame(
    data: PreparedDataset, rows: np.ndarray, probs: np.ndarray, seed: int, fold: str, aus: list[str]
) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "seed": seed,
            "fold": fold,
            "subject": data.subjects[rows],
            "sample": data.index["sample"].to_numpy()[rows],
        }
    )
    for k, au in enumerate(aus):
        frame[f"prob_{au}"] = probs[:, k]
    for k, au in enumerate(aus):
        frame[f"label_{au}"] = data.labels[rows, k].astype(int)
    return frame


def _validation_split(data: PreparedDataset, rows: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hold out `count` training subjects (chosen from the fold's seed) for honest threshold tuning."""
    if count <= 0:
        return rows, rows[:0]
    subjects = sorted(set(data.subjects[rows].tolist()))
    if count >= len(subjects):
        raise UserError(f"eval.validation_subjects={count} leaves no training subject ({len(subjects)} available)")
    held = set(np.random.default_rng(seed).choice(subjects, size=count, replace=False).tolist())
    is_val = np.isin(data.subjects[rows], list(held))
    return rows[~is_val], rows[is_val]


def run_fold(
    model: torch.nn.Module, experiment: Experiment, fold: Fold, cfg: Config, out: Path, device: torch.device
) -> None:
    """Train and predict every seed of one fold; files are written atomically and `done` last."""
    fold_dir = out / "folds" / fold.name
    fold_dir.mkdir(parents=True, exist_ok=True)
    (fold_dir / FAILED).unlink(missing_ok=True)
    aus = list(cfg.data.aus)
    predictions, validation, logs = [], [], []
    for seed in cfg.seeds:
        s = fold_seed(seed, fold.name)
        seed_everything(s)
        model.reset(s)
        train_rows, val_rows = _validation_split(
            experiment.train_data, fold.train_rows, cfg.eval.validation_subjects, s
        )
        if hasattr(model, "on_fold_start"):
            model.on_fold_start(experiment.train_data.labels[train_rows])
        history = train_model(model, experiment.train_data, train_rows, cfg, s, device, f"fold {fold.name} seed {seed}")
        probs = predict_model(model, experiment.test_data, fold.test_rows, cfg, device)
        predictions.append(_prediction_frame(experiment.test_data, fold.test_rows, probs, seed, fold.name, aus))
        if len(val_rows):
            val_probs = predict_model(model, experiment.train_data, val_rows, cfg, device)
            validation.append(_prediction_frame(experiment.train_data, val_rows, val_probs, seed, fold.name, aus))
        logs.append(
            pd.DataFrame({"seed": seed, "epoch": np.arange(1, len(history.losses) + 1), "loss": history.losses})
        )
        state = {k: v.detach().cpu().contiguous() for k, v in model.trainable_state_dict().items()}
        if state:
            tmp = fold_dir / f"weights_seed{seed}.safetensors.tmp"
            save_file(state, str(tmp), metadata={"fold": fold.name, "seed": str(seed)})
            tmp.replace(fold_dir / f"weights_seed{seed}.safetensors")
        logger.info("fold %s seed %d: trained %d clips in %.1fs", fold.name, seed, len(train_rows), history.seconds)
    _write_csv(pd.concat(predictions, ignore_index=True), fold_dir / "predictions.csv")
    if validation:
        _write_csv(pd.concat(validation, ignore_index=True), fold_dir / "val_predictions.csv")
    _write_csv(pd.concat(logs, ignore_index=True), fold_dir / "train_log.csv")
    (fold_dir / DONE).write_text("ok\n")


def collect_predictions(out: Path, fold_names: list[str]) -> list[str]:
    """Concatenate finished folds' predictions into the run-level CSVs; return the folds still missing."""
    frames, val_frames, missing = [], [], []
    for name in fold_names:
        fold_dir = out / "folds" / name
        if not (fold_dir / DONE).exists():
            missing.append(name)
            continue
        frames.append(pd.read_csv(fold_dir / "predictions.csv", dtype={"subject": str, "fold": str, "sample": str}))
        if (fold_dir / "val_predictions.csv").exists():
            val_frames.append(
                pd.read_csv(fold_dir / "val_predictions.csv", dtype={"subject": str, "fold": str, "sample": str})
            )
    if frames:
        merged = pd.concat(frames, ignore_index=True).sort_values(["seed", "fold", "sample"], kind="stable")
        _write_csv(merged, out / "predictions.csv")
    if val_frames:
        _write_csv(pd.concat(val_frames, ignore_index=True), out / "val_predictions.csv")
    return missing


def run_experiment(cfg: Config, out: Path) -> Path:
    """Run (or resume) the experiment into `out`; score and report when every fold is done."""
    out = Path(out)
    open_run_dir(cfg, out)
    experiment = build_experiment(cfg)
    check_run_data(experiment, out)
    device = resolve_device(cfg.train.device)
    llm = load_llm(cfg.llm, device) if model_needs_llm(cfg.model.name) else None
    model = build_model(cfg, list(cfg.data.aus), llm)
    if getattr(model, "is_torch", True):
        model.to(device)
        log_parameter_report(model)
    todo = [f for f in experiment.folds if not (out / "folds" / f.name / DONE).exists()]
    skipped = len(experiment.folds) - len(todo)
    if skipped:
        logger.info("resuming %s: %d fold(s) already done, %d to run", out, skipped, len(todo))
    failed: list[str] = []
    for fold in todo:
        try:
            run_fold(model, experiment, fold, cfg, out, device)
        except TrainingDiverged as err:
            failed.append(fold.name)
            (out / "folds" / fold.name / FAILED).write_text(f"{err}\n")
            logger.error("fold %s stopped: %s", fold.name, err)
    missing = collect_predictions(out, experiment.all_fold_names)
    if failed:
        raise RunFailed(
            f"{len(failed)} fold(s) failed ({', '.join(failed)}); see folds/<fold>/failed. "
            "Finished folds are kept; rerun with the same --out after fixing the cause"
        )
    if missing:
        logger.info(
            "%d of %d folds done in %s; metrics are written once every fold is done",
            len(experiment.all_fold_names) - len(missing),
            len(experiment.all_fold_names),
            out,
        )
        return out
    if cfg.train.save_final:
        train_final(cfg, out, experiment=experiment, model=model, llm=llm, device=device)
    finish_run(out)
    return out


def finish_run(out: Path) -> None:
    """Score the concatenated predictions and write the report."""
    from aullm.evaluation.metrics import score_run
    from aullm.reporting.tables import write_report

    score_run(out)
    write_report([out], out)


def default_run_dir(cfg: Config, out: Optional[Path]) -> Path:
    return Path(out) if out is not None else Path("runs") / cfg.name


FINAL = "final"


def train_final(
    cfg: Config,
    out: Path,
    *,
    bundle_out: Optional[Path] = None,
    seed: Optional[int] = None,
    experiment: Optional[Experiment] = None,
    model: Optional[torch.nn.Module] = None,
    llm: object = None,
    device: Optional[torch.device] = None,
) -> Path:
    """`--save-final` / `aullm export`: after the folds, train one model on every training subject and write the
    model bundle (aullm.bundle) to out/bundle.

    One seed (the config's first unless given), reset from `fold_seed(seed, "final")`, trained exactly like a
    fold. out/final/ holds its weights, train log and its own predictions on the training clips (test sampling);
    a rerun reuses finished weights and only rewrites the bundle.
    """
    from safetensors.torch import load_file

    from aullm.bundle import bundle_thresholds, write_bundle

    out = Path(out)
    seed = int(cfg.seeds[0] if seed is None else seed)
    device = device or resolve_device(cfg.train.device)
    final_dir = out / FINAL
    weights = final_dir / f"weights_seed{seed}.safetensors"
    if llm is None and model_needs_llm(cfg.model.name):
        llm = load_llm(cfg.llm, device)
    if not ((final_dir / DONE).exists() and weights.is_file()):
        experiment = experiment or build_experiment(cfg)
        if model is None:
            model = build_model(cfg, list(cfg.data.aus), llm)  # type: ignore[arg-type]
        if not getattr(model, "is_torch", True):
            raise UserError(f"a model bundle holds torch weights; {cfg.model.name!r} cannot be saved as one")
        model.to(device)
        data, rows, s = experiment.train_data, np.arange(len(experiment.train_data.index)), fold_seed(seed, FINAL)
        final_dir.mkdir(parents=True, exist_ok=True)
        (final_dir / DONE).unlink(missing_ok=True)
        seed_everything(s)
        model.reset(s)
        if hasattr(model, "on_fold_start"):
            model.on_fold_start(data.labels[rows])
        history = train_model(model, data, rows, cfg, s, device, f"final model seed {seed}")
        probs = predict_model(model, data, rows, cfg, device)
        _write_csv(_prediction_frame(data, rows, probs, seed, FINAL, list(cfg.data.aus)), final_dir / "predictions.csv")
        _write_csv(
            pd.DataFrame({"seed": seed, "epoch": np.arange(1, len(history.losses) + 1), "loss": history.losses}),
            final_dir / "train_log.csv",
        )
        state = {k: v.detach().cpu().contiguous() for k, v in model.trainable_state_dict().items()}
        save_file(state, str(weights.with_name(weights.name + ".tmp")), metadata={"fold": FINAL, "seed": str(seed)})
        weights.with_name(weights.name + ".tmp").replace(weights)
        (final_dir / DONE).write_text("ok\n")
        logger.info("final model seed %d: trained on all %d clips in %.1fs", seed, len(rows), history.seconds)
    subjects = pd.read_csv(final_dir / "predictions.csv", dtype={"subject": str})["subject"]
    thresholds, source = bundle_thresholds(out, cfg, seed)
    trained_on = {
        "run_dir": str(out.resolve()),
        "fold": FINAL,
        "seed": seed,
        "dataset": cfg.data.dataset,
        "clips": int(len(subjects)),
        "subjects": sorted(set(subjects.tolist())),
    }
    reference = getattr(llm, "reference", None)
    return write_bundle(
        bundle_out or out / "bundle",
        cfg,
        load_file(str(weights)),
        llm_reference=reference,
        thresholds=thresholds,
        threshold_source=source,
        trained_on=trained_on,
    )
