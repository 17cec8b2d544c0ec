"""Experiment tracking: mirror a run into MLflow and/or TensorBoard while it trains (`--track`).

The run directory stays the source of truth; a tracker only copies what it holds: the resolved config at the
start, each fold's per-epoch losses as the fold is written (folds already done when a run resumes are read back
from their `train_log.csv` unless the tracker has them already, so every tracked run is complete and nothing is
logged twice), and the final metrics. Both libraries are optional (`pip install 'aullm[track]'`) and imported only
when asked for. A tracker that fails mid-run is dropped with a warning; the training goes on.

- MLflow: one MLflow run per aullm run, in the experiment `aullm`, named after the config, continued when the run
  resumes; the store is `MLFLOW_TRACKING_URI` when set, else MLflow's own default, `sqlite:///mlflow.db` in the
  current folder (what `mlflow ui` opens there). An unreachable store is refused at once, in one line.
- TensorBoard: event files in `<run dir>/tensorboard/`.

What each tracker has logged is kept in `<run dir>/tracking.json` (the MLflow store and run id, the TensorBoard
series written).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Optional, Protocol

import pandas as pd
import yaml

from aullm.config import Config, config_to_dict
from aullm.core.console import logger
from aullm.core.errors import UserError, arg
from aullm.core.io import write_text
from aullm.training import run_dir as rd
from aullm.training.execution import RunPlan
from aullm.training.fold import FoldResult

TRACKERS = ("mlflow", "tensorboard")
MLFLOW_EXPERIMENT = "aullm"
TENSORBOARD_DIR = "tensorboard"
TRACKING_STATE = "tracking.json"
#: MLflow's own default store (MLflow 3): a SQLite file in the current folder, which `mlflow ui` opens there.
DEFAULT_MLFLOW_URI = "sqlite:///mlflow.db"
#: How long the first request to an MLflow server may take before the store counts as unreachable.
PROBE_TIMEOUT_S = 10.0


def read_tracking_state(out: Path) -> dict[str, Any]:
    path = Path(out) / TRACKING_STATE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, or unreadable: start afresh (the trackers' stores are not the truth)
        return {}
    return state if isinstance(state, dict) else {}


def update_tracking_state(out: Path, tracker: str, value: Any) -> None:
    state = read_tracking_state(out)
    state[tracker] = value
    write_text(Path(out) / TRACKING_STATE, json.dumps(state, indent=1) + "\n")


@contextlib.contextmanager
def _mlflow_env(**values: str) -> Iterator[None]:
    """MLflow reads its HTTP settings from the environment at each request: set some for a few requests."""
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """MLflow and alembic log INFO lines (creating a store's tables, …) that would break into the progress bar."""
    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic")]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(max(log.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)


def _reason(err: BaseException) -> str:
    """The useful part of an MLflow / requests / SQLAlchemy error: `Connection refused`, `Failed to resolve …`."""
    text = str(err)
    for pattern in (r"Failed to resolve '[^']+'", r"\[Errno -?\d+\] ([^\"')(]+)", r"(Read timed out|timed out)"):
        found = re.search(pattern, text)
        if found:
            return (found.group(1) if found.groups() else found.group(0)).strip()
    first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
    return first if len(first) <= 200 else first[:200] + "…"


def loss_key(fold: str, seed: int) -> str:
    return f"loss/fold_{fold}/seed_{seed}"


def flat_config(cfg: Config) -> dict[str, str]:
    """The resolved config as `section.key` → value text (MLflow parameters are flat strings)."""
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        else:
            flat[prefix] = str(value)

    walk("", config_to_dict(cfg))
    return flat


def metric_values(metrics: dict[str, Any]) -> dict[str, float]:
    """metrics.json's summary as flat keys: `<metric>/avg`, `<metric>/avg_std`, `<metric>/<AU>` (means over seeds)."""
    values: dict[str, float] = {}
    for metric, entry in (metrics.get("summary") or {}).items():
        if not entry:
            continue
        for name, stat in [("avg", entry["avg"]), *entry["per_au"].items()]:
            if stat.get("mean") is not None:
                values[f"{metric}/{name}"] = float(stat["mean"])
        if entry["avg"].get("std") is not None:
            values[f"{metric}/avg_std"] = float(entry["avg"]["std"])
    return values


def _done_fold_logs(out: Path) -> list[tuple[str, pd.DataFrame]]:
    """train_log.csv of every fold already done in `out` (a resumed run), read back for the tracker."""
    logs = []
    for folder in sorted((Path(out) / rd.FOLDS).glob("*/")):
        path = folder / rd.TRAIN_LOG
        if rd.fold_is_done(folder) and path.is_file():
            logs.append((folder.name, pd.read_csv(path)))
    return logs


class Tracker(Protocol):
    def start(self, cfg: Config, out: Path) -> None: ...
    def has_losses(self, fold: str, seed: int) -> bool: ...
    def log_losses(self, fold: str, seed: int, losses: Sequence[float]) -> None: ...
    def log_metrics(self, values: dict[str, float]) -> None: ...
    def end(self, status: str = "FINISHED") -> None: ...


class MLflowTracker:
    """One MLflow run per aullm run (client API: no process-wide active run, so several runs can be tracked); a
    resumed aullm run continues its MLflow run (its id is kept in the run directory's tracking.json)."""

    def __init__(self, probe_timeout: float = PROBE_TIMEOUT_S) -> None:
        try:
            import mlflow
        except ImportError:
            raise UserError(f"{arg('track', 'mlflow')} needs MLflow: pip install 'aullm[track]' (or mlflow)") from None
        uri = os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_MLFLOW_URI
        if uri == DEFAULT_MLFLOW_URI:  # the file in this folder, named in full in messages and in tracking.json
            uri = f"sqlite:///{Path.cwd() / 'mlflow.db'}"
        if "://" not in uri or uri.startswith("file:"):
            # A file store is the user's explicit choice here; MLflow 3 keeps it in maintenance mode behind this switch.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.uri = uri
        self.client = mlflow.MlflowClient(tracking_uri=uri)
        self.run_id: Optional[str] = None
        self.out: Optional[Path] = None
        self._probe(probe_timeout)

    def _probe(self, timeout: float) -> None:
        """Reach the store once, now, with no retries and a short timeout: MLflow itself retries an unreachable
        server for minutes, then fails with a traceback. Also creates a new SQLite store's tables."""
        with _mlflow_env(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT=f"{timeout:g}"), _quiet():
            try:
                self.client.search_experiments(max_results=1)
            except Exception as err:  # MlflowException, SQLAlchemy's, OSError: all mean the same to the user
                raise UserError(
                    f"{arg('track', 'mlflow')}: the MLflow tracking store {self.uri} cannot be used "
                    f"({_reason(err)}); check that its server runs and that MLFLOW_TRACKING_URI names it"
                ) from None

    def start(self, cfg: Config, out: Path) -> None:
        self.out = Path(out)
        with _quiet():
            previous = self._previous_run(self.out)
            if previous is not None:
                self.run_id = previous
                self.client.update_run(previous, status="RUNNING")
                logger.info("tracking in MLflow (%s), continuing run %s", self.uri, previous)
                return
            experiment = self.client.get_experiment_by_name(MLFLOW_EXPERIMENT)
            experiment_id = (
                experiment.experiment_id if experiment is not None else self.client.create_experiment(MLFLOW_EXPERIMENT)
            )
            tags = {"aullm.run_dir": str(self.out.resolve())}
            run = self.client.create_run(experiment_id, run_name=cfg.name, tags=tags)
            self.run_id = run.info.run_id
            from mlflow.entities import Param

            params = [Param(k, v[:6000]) for k, v in flat_config(cfg).items()]
            for i in range(0, len(params), 100):  # MLflow takes at most 100 parameters per batch
                self.client.log_batch(self.run_id, params=params[i : i + 100])
            self.client.log_text(self.run_id, yaml.safe_dump(config_to_dict(cfg), sort_keys=False), "config.yaml")
        update_tracking_state(self.out, "mlflow", {"tracking_uri": self.uri, "run_id": self.run_id})
        logger.info("tracking in MLflow (%s), run %s", self.uri, self.run_id)

    def _previous_run(self, out: Path) -> Optional[str]:
        """The MLflow run an earlier start of this aullm run made in the same store, if it is still there."""
        state = read_tracking_state(out).get("mlflow") or {}
        if state.get("tracking_uri") != self.uri or not state.get("run_id"):
            return None
        try:
            run = self.client.get_run(state["run_id"])
        except Exception:  # deleted from the store since: start a new MLflow run
            return None
        return None if run.info.lifecycle_stage == "deleted" else str(run.info.run_id)

    def has_losses(self, fold: str, seed: int) -> bool:
        assert self.run_id is not None
        with _quiet():
            return bool(self.client.get_metric_history(self.run_id, loss_key(fold, seed)))

    def log_losses(self, fold: str, seed: int, losses: Sequence[float]) -> None:
        from mlflow.entities import Metric

        assert self.run_id is not None
        key = loss_key(fold, seed)
        metrics = [Metric(key, float(loss), 0, epoch) for epoch, loss in enumerate(losses, start=1)]
        with _quiet():
            for i in range(0, len(metrics), 1000):  # MLflow takes at most 1000 metrics per batch
                self.client.log_batch(self.run_id, metrics=metrics[i : i + 1000])

    def log_metrics(self, values: dict[str, float]) -> None:
        from mlflow.entities import Metric

        assert self.run_id is not None
        with _quiet():
            self.client.log_batch(self.run_id, metrics=[Metric(k, v, 0, 0) for k, v in values.items()])

    def end(self, status: str = "FINISHED") -> None:
        if self.run_id is not None:
            with _quiet():
                self.client.set_terminated(self.run_id, status=status)
            self.run_id = None


class TensorBoardTracker:
    """Event files in `<run dir>/tensorboard/`: the config as text, losses per fold and seed, final metrics."""

    def __init__(self) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UserError(
                f"{arg('track', 'tensorboard')} needs TensorBoard: pip install 'aullm[track]' (or tensorboard)"
            ) from None
        self._writer_class = SummaryWriter
        self.writer: Any = None
        self.out: Optional[Path] = None
        self.logged: set[str] = set()  # the loss series already in the event files (tracking.json)

    def start(self, cfg: Config, out: Path) -> None:
        self.out = Path(out)
        state = read_tracking_state(self.out).get("tensorboard") or {}
        self.logged = set(state.get("logged") or [])
        self.writer = self._writer_class(log_dir=str(self.out / TENSORBOARD_DIR))
        if not state:  # the config once per run, not once per resume
            text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
            self.writer.add_text("config", "\n".join("    " + line for line in text.splitlines()))
            self.writer.flush()
            self._save()
        logger.info("tracking in TensorBoard (%s)", self.out / TENSORBOARD_DIR)

    def _save(self) -> None:
        assert self.out is not None
        update_tracking_state(self.out, "tensorboard", {"logged": sorted(self.logged)})

    def has_losses(self, fold: str, seed: int) -> bool:
        return loss_key(fold, seed) in self.logged

    def log_losses(self, fold: str, seed: int, losses: Sequence[float]) -> None:
        for epoch, loss in enumerate(losses, start=1):
            self.writer.add_scalar(loss_key(fold, seed), float(loss), epoch)
        self.writer.flush()
        self.logged.add(loss_key(fold, seed))
        self._save()

    def log_metrics(self, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.writer.add_scalar(f"metrics/{key}", value, 0)
        self.writer.flush()

    def end(self, status: str = "FINISHED") -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class Trackers:
    """Every tracker asked for, fed together (no tracker: every call does nothing). A tracker that raises is
    dropped with a warning naming it: the run directory has everything, so the training goes on."""

    def __init__(self, trackers: Sequence[Tracker] = ()) -> None:
        self.trackers = list(trackers)

    def _each(self, action: str, call: Any) -> None:
        for tracker in list(self.trackers):
            try:
                call(tracker)
            except Exception as err:  # a tracking store that fails mid-run must not stop the training
                self.trackers.remove(tracker)
                name = type(tracker).__name__.removesuffix("Tracker")
                logger.warning(
                    "%s tracking stopped (%s failed: %s); the run directory has everything", name, action, _reason(err)
                )

    def start(self, cfg: Config, out: Path) -> None:
        self._each("start", lambda tracker: tracker.start(cfg, out))
        if not self.trackers:
            return
        for fold, log in _done_fold_logs(out):  # a resumed run: what the trackers do not have yet
            for seed in sorted(set(log["seed"].tolist())):
                losses = log[log["seed"] == seed].sort_values("epoch")["loss"].tolist()
                self._each(
                    "logging losses",
                    lambda tracker, f=fold, s=int(seed), values=losses: (
                        None if tracker.has_losses(f, s) else tracker.log_losses(f, s, values)
                    ),
                )

    def log_fold(self, plan: Optional[RunPlan], result: FoldResult) -> None:
        """A fold just written (the executor's callback; `plan` is unused: one Trackers object per run)."""
        for seed in result.seeds:
            self._each("logging losses", lambda tracker, s=seed: tracker.log_losses(result.name, s.seed, s.losses))

    def log_metrics(self, metrics: dict[str, Any]) -> None:
        """metrics.json's content, once the run is scored."""
        values = metric_values(metrics)
        self._each("logging metrics", lambda tracker: tracker.log_metrics(values))

    def end(self, status: str = "FINISHED") -> None:
        """`status`: FINISHED (complete), FAILED (folds failed), KILLED (interrupted); a resume reopens the run."""
        self._each("ending", lambda tracker: tracker.end(status))


def open_trackers(names: Sequence[str]) -> Trackers:
    """The trackers named by `track` (each at most once); an unknown name is a usage error."""
    trackers: list[Tracker] = []
    for name in dict.fromkeys(names):
        if name == "mlflow":
            trackers.append(MLflowTracker())
        elif name == "tensorboard":
            trackers.append(TensorBoardTracker())
        else:
            raise UserError(f"{arg('track', repr(name))}: choose from {', '.join(TRACKERS)}")
    return Trackers(trackers)


__all__ = [
    "DEFAULT_MLFLOW_URI",
    "TRACKERS",
    "TRACKING_STATE",
    "MLflowTracker",
    "TensorBoardTracker",
    "Tracker",
    "Trackers",
    "metric_values",
    "open_trackers",
]
