"""The run directory on disk: what `aullm train` writes and what `evaluate`, `report` and `export` read.

    config.yaml          the fully resolved config (written once every check has passed)
    data.json            fingerprint of the data the run was trained on (a resume on changed data is refused)
                         and the samples it left out (`skipped`, with reasons)
    folds/<name>/        per fold: weights_seed<S>.safetensors, predictions.csv, val_predictions.csv,
                         train_log.csv, and `done` (written last, listing the files with their sizes and sha256,
                         and the data fingerprint the fold was trained on)
    predictions.csv      every finished fold's predictions, concatenated (what metrics are computed on)
    val_predictions.csv  the validation subjects' predictions (for honest threshold tuning), when any

Every file is written atomically (`aullm.core.io`), so machines sharing one run directory never read half a file.
A fold counts as done only when its `done` marker lists files that are all present with the sizes and sha256
written, its predictions are readable and it was trained on the run's data; anything less and the fold is trained
again (and never merged into predictions.csv or exported).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from aullm.config import Config, config_to_dict, load_config, save_config
from aullm.core.console import logger
from aullm.core.errors import UserError, arg
from aullm.core.hashing import sha256_file
from aullm.core.io import check_output_dir, write_bytes, write_csv, write_text
from aullm.core.lock import live_holders, locked, me
from aullm.core.names import check_name
from aullm.training.fold import FoldResult

CONFIG = "config.yaml"
DATA = "data.json"
FOLDS = "folds"
FINAL = "final"  # the final model's folder (every training subject), laid out like a fold's
DONE = "done"
FAILED = "failed"
PREDICTIONS = "predictions.csv"
VAL_PREDICTIONS = "val_predictions.csv"
TRAIN_LOG = "train_log.csv"
#: The lock files of the processes training into the run: `lock` for a run of every fold, `lock.fold-<name>` per
#: fold for machines sharing a run directory (`protocol.folds`), `lock.final` for the final model.
LOCK = "lock"


def weights_name(seed: int) -> str:
    return f"weights_seed{seed}.safetensors"


def read_predictions(path: Path) -> pd.DataFrame:
    """A predictions CSV with the id columns kept as text (subject "01" stays "01")."""
    return pd.read_csv(path, dtype={"subject": str, "fold": str, "sample": str})


# ------------------------------------------------------------------------------------------- the run


def _comparable(cfg: Config) -> dict:
    """The config without the keys that may differ between machines sharing one run (fold subsets)."""
    raw = config_to_dict(cfg)
    raw["protocol"] = {**raw["protocol"], "folds": None}
    # save_final may be added when resuming a run; the thread count may differ between machines sharing one run
    raw["train"] = {**raw["train"], "save_final": None, "threads": None}
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


def is_run_dir(path: Path) -> bool:
    return (Path(path) / CONFIG).is_file()


def _others(out: Path) -> list[Path]:
    """What a folder holds besides lock files."""
    return [p for p in Path(out).iterdir() if p.name != LOCK and not p.name.startswith(LOCK + ".")]


def has_finished_work(out: Path) -> bool:
    """Whether any fold (or the final model) of the run has its `done` marker, or another process trains into it."""
    out = Path(out)
    if any((out / FOLDS).glob(f"*/{DONE}")) or (out / FINAL / DONE).is_file():
        return True
    mine = me()
    return any((h.pid, h.host) != (mine.pid, mine.host) for h in live_holders(_lock_files(out)))


def _lock_files(out: Path) -> list[Path]:
    return sorted(Path(out).glob(LOCK + "*")) if Path(out).is_dir() else []


def check_run_dir(cfg: Config, out: Path) -> None:
    """Refuse, before any work, a run folder that is not usable: a file, not writable, a non-empty folder that is
    not an aullm run directory (the user's files would be overwritten), or a run written by a different config.

    A run in which nothing was trained yet (a start that failed after writing config.yaml) takes the new config:
    there is nothing to protect, and the corrected command must not need another folder."""
    out = Path(out)
    check_output_dir(out, arg("out"))
    if out.is_dir() and not is_run_dir(out) and _others(out):
        raise UserError(
            f"{arg('out', out)} is a folder that is not an aullm run directory and is not empty; refusing to write "
            "into it (choose a new or empty folder)"
        )
    path = out / CONFIG
    if path.is_file():
        try:
            previous = load_config(path, resolved=True)
        except UserError as err:
            raise UserError(f"{out} holds a config.yaml aullm cannot read ({err}); use another {arg('out')}") from None
        differing = _diff_keys(_comparable(previous), _comparable(cfg))
        if differing and not has_finished_work(out):
            logger.warning(
                "%s was started with another config (differs in %s) but nothing was trained in it yet; "
                "it takes the new config",
                out,
                ", ".join(differing[:5]),
            )
        elif differing:
            raise UserError(
                f"{out} was written by a different config (differs in {', '.join(differing[:5])}); "
                f"refusing to resume — use another {arg('out')}"
            )


def init_run_dir(cfg: Config, out: Path) -> None:
    """Write config.yaml into a new run directory, or into one where nothing was trained yet (an existing one was
    already checked by `check_run_dir`)."""
    path = Path(out) / CONFIG
    if path.is_file() and has_finished_work(out):
        return
    if path.is_file():
        with contextlib.suppress(UserError):
            if not _diff_keys(_comparable(load_config(path, resolved=True)), _comparable(cfg)):
                return
    save_config(cfg, path)


@contextlib.contextmanager
def run_lock(cfg: Config, out: Path) -> Iterator[None]:
    """Hold the run directory for this process while it trains (docs/design.md, Run directories): a second run
    into the same folds is refused, naming this process. A run of every fold takes `lock`; a run of some folds
    (`protocol.folds`, machines sharing one run directory) takes `lock.fold-<name>` for each, and the two kinds
    exclude each other; with `train.save_final`, also `lock.final`."""
    out = Path(out)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    whole = cfg.protocol.folds == "all"
    selected = [] if whole else sorted({str(f).lstrip("0") or "0" for f in cfg.protocol.folds})  # as subject_key
    paths = [out / LOCK] if whole else [out / f"{LOCK}.fold-{name}" for name in selected]
    if cfg.train.save_final:
        paths.append(out / f"{LOCK}.final")
    what = f"run directory {out}"
    try:
        with locked(paths, what):
            conflicting = sorted(out.glob(f"{LOCK}.fold-*")) if whole else [out / LOCK]
            mine = me()
            others = [h for h in live_holders(conflicting) if (h.pid, h.host) != (mine.pid, mine.host)]
            if others:
                raise UserError(f"{what} is in use by {others[0].describe()}: wait for it to finish")
            yield
    finally:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()


def check_data(out: Path, fingerprint: dict) -> None:
    """Record the data fingerprint of a new run (or of one where nothing was trained yet); refuse to resume a run
    whose data has changed since.

    Only the `train` and `test` fingerprints are compared: the rest (sizes, the skipped samples) is for people."""
    path = Path(out) / DATA
    if path.exists() and has_finished_work(out):
        try:
            previous = json.loads(path.read_text())
            previous.get("train")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as err:
            raise UserError(
                f"{path} is unreadable ({err}); cannot tell what data the finished folds used — "
                f"use another {arg('out')}"
            ) from None
        if (previous.get("train"), previous.get("test")) != (fingerprint["train"], fingerprint["test"]):
            now = fingerprint.get("samples", {}).get("train", "?")
            then = previous.get("samples", {}).get("train", "?")
            raise UserError(
                f"{out} was trained on different data: the dataset's frames, labels or samples changed since "
                f"(now {now} training samples, then {then}); refusing to resume — use another {arg('out')}"
            )
        return
    write_text(path, json.dumps(fingerprint, indent=1) + "\n")


# ------------------------------------------------------------------------------------------- the folds


def fold_dir(out: Path, name: str) -> Path:
    """`<out>/folds/<name>`; a fold is named after a subject of a sheet, which must not lead out of the run."""
    check_name(name, "fold name", UserError)
    return Path(out) / FOLDS / name


def data_identity(fingerprint: Optional[dict]) -> Optional[dict[str, Any]]:
    """The part of a data fingerprint (`Experiment.fingerprint`, data.json) that says what was trained on."""
    if not isinstance(fingerprint, dict) or "train" not in fingerprint:
        return None
    return {"train": fingerprint.get("train"), "test": fingerprint.get("test")}


def recorded_data(out: Path) -> Optional[dict[str, Any]]:
    """What data.json says the run was trained on (None when it is missing or unreadable)."""
    try:
        return data_identity(json.loads((Path(out) / DATA).read_text()))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def write_fold(folder: Path, result: FoldResult, data: Optional[dict] = None) -> None:
    """Write a trained fold's files atomically, then `done` listing them with their sizes and sha256, and the data
    fingerprint (`data`: train, test) the fold was trained on."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DONE).unlink(missing_ok=True)
    (folder / FAILED).unlink(missing_ok=True)
    written: dict[str, int] = {}
    digests: dict[str, str] = {}

    def put(name: str, payload: bytes) -> None:
        write_bytes(folder / name, payload)
        written[name] = len(payload)
        digests[name] = hashlib.sha256(payload).hexdigest()

    for seed in result.seeds:
        if seed.weights is not None:
            put(weights_name(seed.seed), seed.weights)
    frames = {PREDICTIONS: result.predictions(), VAL_PREDICTIONS: result.validation(), TRAIN_LOG: result.train_log()}
    for name, frame in frames.items():
        if frame is not None:
            put(name, frame.to_csv(index=False).encode("utf-8"))
    marker: dict[str, Any] = {"files": written, "sha256": digests}
    identity = data_identity(data)
    if identity is not None:
        marker["data"] = identity
    write_text(folder / DONE, json.dumps(marker, indent=1) + "\n")


def mark_failed(folder: Path, reason: str) -> None:
    write_text(Path(folder) / FAILED, reason + "\n")


#: sha256 of files already verified in this process, by (path, size, mtime, inode): a run's folds are checked on
#: resume and again on merge; a weights file is hundreds of MB.
_VERIFIED: dict[tuple[str, int, int, int], str] = {}


def _sha256(path: Path) -> str:
    info = path.stat()
    key = (str(path.resolve()), info.st_size, info.st_mtime_ns, info.st_ino)
    if key not in _VERIFIED:
        _VERIFIED[key] = sha256_file(path)
    return _VERIFIED[key]


def fold_problem(folder: Path, data: Optional[dict] = None) -> Optional[str]:
    """Why the fold in `folder` is not done (None when it is): no `done` marker; a file it lists missing, of
    another size or (markers that record it) another sha256; predictions that do not parse; or trained on other
    data than `data` (train, test fingerprints), when both the marker and the caller know."""
    folder = Path(folder)
    marker = folder / DONE
    if not marker.is_file():
        return "not finished (no done marker)"
    try:
        text = marker.read_text()
        content = json.loads(text) if text.strip() != "ok" else {"files": {PREDICTIONS: None, TRAIN_LOG: None}}
        files, digests = content["files"], content.get("sha256", {})
        for name, size in files.items():
            path = folder / name
            if not path.is_file():
                return f"{path} is missing"
            if size is not None and path.stat().st_size != size:
                return f"{path} changed since it was written (its size differs)"
            if name in digests and _sha256(path) != digests[name]:
                return f"{path} changed since it was written (its sha256 differs)"
        read_predictions(folder / PREDICTIONS)
    except (OSError, ValueError, KeyError, TypeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        return f"its files are unreadable ({err})"
    wanted, trained = data_identity(data), data_identity(content.get("data"))
    if wanted is not None and trained is not None and wanted != trained:
        return "it was trained on other data than the run's (data.json)"
    return None


def fold_is_done(folder: Path, data: Optional[dict] = None) -> bool:
    """True when `fold_problem` finds nothing; otherwise says why (a warning) and the fold is trained again. A fold
    whose predictions.csv was deleted, truncated or replaced after `done`, or that was trained on other data than
    `data`, is not done."""
    problem = fold_problem(folder, data)
    if problem is None:
        return True
    if Path(folder, DONE).is_file():
        logger.warning("fold %s: %s; training it again", Path(folder).name, problem)
    return False


def check_fold_folders(out: Path, names: list[str]) -> None:
    """Refuse, before any training, a run directory whose `folds/`, a fold's folder or `final/` is a file (aullm
    would have to write over something it did not write), or whose folds/ holds a folder that is no fold of this
    run (a stray copy: scoring would refuse the run every time, whatever was trained again)."""
    out = Path(out)
    for path in (out / FOLDS, out / FINAL, *(fold_dir(out, n) for n in names)):
        if path.exists() and not path.is_dir():
            raise UserError(
                f"{path} is a file where aullm keeps a fold's folder; move it away and run again (the fold is "
                "trained again)"
            )
    if (out / FOLDS).is_dir():
        stray = sorted(p.name for p in (out / FOLDS).iterdir() if p.name not in set(names) and p.name[:1] != ".")
        if stray:
            raise UserError(
                f"{out / FOLDS} holds {', '.join(stray[:5])}, which {'is' if len(stray) == 1 else 'are'} no fold of "
                f"this run (its folds: {', '.join(names[:8])}{', …' if len(names) > 8 else ''}); move "
                f"{'it' if len(stray) == 1 else 'them'} out of the run directory and run again"
            )


def collect_predictions(out: Path, fold_names: list[str], data: Optional[dict] = None) -> list[str]:
    """Concatenate finished folds' predictions into the run-level CSVs; return the folds still missing. Only folds
    whose files match their `done` marker (and, given `data`, trained on that data) are merged."""
    frames, val_frames, missing = [], [], []
    for name in fold_names:
        folder = fold_dir(out, name)
        if not fold_is_done(folder, data):
            missing.append(name)
            continue
        frames.append(read_predictions(folder / PREDICTIONS))
        if (folder / VAL_PREDICTIONS).exists():
            val_frames.append(read_predictions(folder / VAL_PREDICTIONS))
    if frames:
        # a sample is (subject, sample): names repeat across subjects, so both order the rows
        merged = pd.concat(frames, ignore_index=True).sort_values(["seed", "fold", "subject", "sample"], kind="stable")
        write_csv(merged, Path(out) / PREDICTIONS)
    if val_frames:
        write_csv(pd.concat(val_frames, ignore_index=True), Path(out) / VAL_PREDICTIONS)
    return missing


__all__ = [
    "CONFIG",
    "DONE",
    "FAILED",
    "FINAL",
    "PREDICTIONS",
    "TRAIN_LOG",
    "VAL_PREDICTIONS",
    "check_data",
    "check_fold_folders",
    "check_run_dir",
    "collect_predictions",
    "data_identity",
    "fold_dir",
    "fold_is_done",
    "fold_problem",
    "has_finished_work",
    "init_run_dir",
    "is_run_dir",
    "mark_failed",
    "read_predictions",
    "recorded_data",
    "run_lock",
    "weights_name",
    "write_fold",
]
