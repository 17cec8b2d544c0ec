"""Experiment tracking: mirror a run into MLflow and/or TensorBoard while it trains (`--track`).

The run directory stays the source of truth; a tracker only copies what it holds: the resolved config at the
start, each fold's per-epoch losses as the fold is written (folds already done when a run resumes are read back
from their `train_log.csv`, so every tracked run is complete), and the final metrics. Both libraries are optional
(`pip install 'aullm[track]'`) and imported only when asked for.

- MLflow: one MLflow run per aullm run, in the experiment `aullm`, named after the config; the store is
  `MLFLOW_TRACKING_URI` when set, else a local `mlruns/` folder (MLflow's file store).
- TensorBoard: event files in `<run dir>/tensorboard/`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional, Protocol

import pandas as pd
import yaml

from aullm.config import Config, config_to_dict
from aullm.core.console import logger
from aullm.core.errors import UserError, arg
from aullm.training import run_dir as rd
from aullm.training.execution import RunPlan
from aullm.training.fold import FoldResult

TRACKERS = ("mlflow", "tensorboard")
MLFLOW_EXPERIMENT = "aullm"
TENSORBOARD_DIR = "tensorboard"


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
    def log_losses(self, fold: str, seed: int, losses: Sequence[float]) -> None: ...
    def log_metrics(self, values: dict[str, float]) -> None: ...
    def end(self) -> None: ...


class MLflowTracker:
    """One MLflow run per aullm run (client API: no process-wide active run, so several runs can be tracked)."""

    def __init__(self) -> None:
        try:
            import mlflow
        except ImportError:
            raise UserError(f"{arg('track', 'mlflow')} needs MLflow: pip install 'aullm[track]' (or mlflow)") from None
        uri = os.environ.get("MLFLOW_TRACKING_URI") or (Path.cwd() / "mlruns").as_uri()
        if "://" not in uri or uri.startswith("file:"):
            # MLflow 3 keeps its file store (a local folder, no server) in maintenance mode behind this switch.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.uri = uri
        self.client = mlflow.MlflowClient(tracking_uri=uri)
        self.run_id: Optional[str] = None

    def start(self, cfg: Config, out: Path) -> None:
        experiment = self.client.get_experiment_by_name(MLFLOW_EXPERIMENT)
        experiment_id = (
            experiment.experiment_id if experiment is not None else self.client.create_experiment(MLFLOW_EXPERIMENT)
        )
        run = self.client.create_run(experiment_id, run_name=cfg.name, tags={"aullm.run_dir": str(Path(out).resolve())})
        self.run_id = run.info.run_id
        from mlflow.entities import Param

        params = [Param(k, v[:6000]) for k, v in flat_config(cfg).items()]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 parameters per batch
            self.client.log_batch(self.run_id, params=params[i : i + 100])
        self.client.log_text(self.run_id, yaml.safe_dump(config_to_dict(cfg), sort_keys=False), "config.yaml")
        logger.info("tracking in MLflow (%s), run %s", self.uri, self.run_id)

    def log_losses(self, fold: str, seed: int, losses: Sequence[float]) -> None:
        from mlflow.entities import Metric

        assert self.run_id is not None
        key = loss_key(fold, seed)
        metrics = [Metric(key, float(loss), 0, epoch) for epoch, loss in enumerate(losses, start=1)]
        for i in range(0, len(metrics), 1000):  # MLflow takes at most 1000 metrics per batch
            self.client.log_batch(self.run_id, metrics=metrics[i : i + 1000])

    def log_metrics(self, values: dict[str, float]) -> None:
        from mlflow.entities import Metric

        assert self.run_id is not None
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, 0, 0) for k, v in values.items()])

    def end(self) -> None:
        if self.run_id is not None:
            self.client.set_terminated(self.run_id)
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

    def start(self, cfg: Config, out: Path) -> None:
        self.writer = self._writer_class(log_dir=str(Path(out) / TENSORBOARD_DIR))
        text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
        self.writer.add_text("config", "\n".join("    " + line for line in text.splitlines()))
        logger.info("tracking in TensorBoard (%s)", Path(out) / TENSORBOARD_DIR)

    def log_losses(self, fold: str, seed: int, losses: Sequence[float]) -> None:
        for epoch, loss in enumerate(losses, start=1):
            self.writer.add_scalar(loss_key(fold, seed), float(loss), epoch)
        self.writer.flush()

    def log_metrics(self, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.writer.add_scalar(f"metrics/{key}", value, 0)
        self.writer.flush()

    def end(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class Trackers:
    """Every tracker asked for, fed together (no tracker: every call does nothing)."""

    def __init__(self, trackers: Sequence[Tracker] = ()) -> None:
        self.trackers = list(trackers)

    def start(self, cfg: Config, out: Path) -> None:
        for tracker in self.trackers:
            tracker.start(cfg, out)
        if self.trackers:
            for fold, log in _done_fold_logs(out):
                for seed in sorted(set(log["seed"].tolist())):
                    rows = log[log["seed"] == seed].sort_values("epoch")
                    self._losses(fold, int(seed), rows["loss"].tolist())

    def log_fold(self, plan: Optional[RunPlan], result: FoldResult) -> None:
        """A fold just written (the executor's callback; `plan` is unused: one Trackers object per run)."""
        for seed in result.seeds:
            self._losses(result.name, seed.seed, seed.losses)

    def _losses(self, fold: str, seed: int, losses: Sequence[float]) -> None:
        for tracker in self.trackers:
            tracker.log_losses(fold, seed, losses)

    def log_metrics(self, metrics: dict[str, Any]) -> None:
        """metrics.json's content, once the run is scored."""
        values = metric_values(metrics)
        for tracker in self.trackers:
            tracker.log_metrics(values)

    def end(self) -> None:
        for tracker in self.trackers:
            tracker.end()


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


__all__ = ["TRACKERS", "MLflowTracker", "TensorBoardTracker", "Tracker", "Trackers", "metric_values", "open_trackers"]
