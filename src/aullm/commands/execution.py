"""Options shared by `aullm train` and `aullm sweep`: where the folds train (executor and resources), tracking."""

from __future__ import annotations

from typing import Any, Optional

import typer

ExecutorOption = typer.Option(
    "local", "--executor", help="local: train every fold in this process; ray: one Ray task per seed and fold."
)
AddressOption = typer.Option(
    None,
    "--address",
    metavar="auto|HOST:PORT",
    help="Ray cluster to join (auto: the one `ray start` set up on this machine); default: start a local one.",
)
GpusOption = typer.Option(
    None,
    "--gpus-per-task",
    metavar="F",
    help="GPUs per Ray task; fractions share a GPU (e.g. 0.25). Default: 1 when the cluster has GPUs, else 0.",
)
CpusOption = typer.Option(
    None, "--cpus-per-task", metavar="N", help="CPUs per Ray task (default 1); also its torch thread count."
)
RetriesOption = typer.Option(
    None, "--max-retries", metavar="N", help="Retries of a Ray task that raised or whose worker died (default 2)."
)
TrackOption = typer.Option(
    None,
    "--track",
    metavar="mlflow|tensorboard",
    help="Mirror config, per-epoch losses and metrics to MLflow (MLFLOW_TRACKING_URI, else ./mlflow.db: mlflow ui) or "
    "TensorBoard (<run dir>/tensorboard). Repeatable.",
)


def executor_spec(
    executor: str,
    address: Optional[str],
    cpus_per_task: Optional[float],
    gpus_per_task: Optional[float],
    max_retries: Optional[int],
) -> Any:
    """The executor flags as the API's one `ExecutorSpec`."""
    from aullm.api import ExecutorSpec

    return ExecutorSpec(executor, address, cpus_per_task, gpus_per_task, max_retries)
