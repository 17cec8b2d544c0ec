"""Training on a Ray cluster: one Ray task per (config, seed, fold), results returned as data.

The only module of aullm that imports Ray (`pip install 'aullm[ray]'`). The driver prepares each config's data
once and puts it in Ray's object store; a task trains one seed of one fold with the requested CPUs/GPUs and
returns its `SeedResult` (predictions, losses, safetensors bytes), so the driver writes every fold folder itself
and the cluster needs no shared file system (only the LLM's files on each node, as for a local run).

A worker process keeps the last `Session` it opened (data, LLM, model), so its next task of the same config
skips loading; Ray reuses worker processes across tasks (also GPU tasks: `max_calls=0`). A task that raises, or
whose worker dies, is retried `max_retries` times; after that it is reported with its fold's name and every
other task still runs. A diverged loss or a bad input is not retried (it would fail the same way again).
Ctrl-C cancels every outstanding task.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Optional

import numpy as np
import ray
from ray.exceptions import RayError, RayTaskError

from aullm.config import Config, config_to_dict
from aullm.core.console import RunProgress, logger
from aullm.core.errors import UserError, arg
from aullm.data.cache import PreparedDataset
from aullm.training.execution import (
    FoldJob,
    Outcome,
    OutcomeSink,
    RunPlan,
    Task,
    TaskFailure,
    torch_threads,
    train_task,
)
from aullm.training.session import Experiment, Session

#: Test-only fault injection, read by the driver and handed to each task: "<mode>:<fold>:<folder>", mode one of
#: raise_once (the fold's first attempt raises), raise_always (every attempt raises), hang_once (the first attempt
#: writes its process id to <folder>/fault-<fold> and sleeps, for a test to kill the worker). Attempts are counted
#: one line each in that file.
FAULT_ENV = "AULLM_TEST_FAULT"
DEFAULT_MAX_RETRIES = 2
#: How long each check of a cluster's address may wait (a TCP connection, then a gRPC handshake with its GCS).
CONNECT_TIMEOUT_S = 10.0


@dataclass
class TaskStats:
    """Where and how a task ran: for the load-time report and the overhead benchmark."""

    label: str
    pid: int
    node: str
    started: float  # time.time() when the task function began
    ended: float
    session_seconds: float  # spent opening the session (0 when the worker reused one)
    llm_seconds: float  # of which loading the LLM (0 when reused, or when the process already held it)
    reused_session: bool
    received: float = 0.0  # time.time() when the driver had the result


# ------------------------------------------------------------------------------------------- worker side


def _pack(data: PreparedDataset) -> dict[str, Any]:
    """A dataset's fields without `clips` (views into `frames`, rebuilt on arrival instead of copied)."""
    return {f.name: getattr(data, f.name) for f in fields(data) if f.name != "clips"}


def pack_experiment(experiment: Experiment) -> dict[str, Any]:
    same = experiment.test_data is experiment.train_data
    return {
        "train": _pack(experiment.train_data),
        "test": None if same else _pack(experiment.test_data),
        "folds": experiment.folds,
        "names": experiment.all_fold_names,
    }


def _unpack(fields_: dict[str, Any]) -> PreparedDataset:
    """Arrays from the object store are read-only views of shared memory: the pixels stay so (only gathered from),
    the small per-sample arrays are copied so torch may wrap them."""
    small = {k: np.array(v) for k, v in fields_.items() if k in ("labels", "subjects", "offsets", "lengths")}
    return PreparedDataset(**{**fields_, **small})


def unpack_experiment(packed: dict[str, Any]) -> Experiment:
    train = _unpack(packed["train"])
    test = train if packed["test"] is None else _unpack(packed["test"])
    return Experiment(train, test, packed["folds"], packed["names"])


_SESSION: dict[str, Session] = {}  # this worker's last session, by config and data; one at a time bounds memory
_LLMS_SEEN: set[int] = set()  # LLMs this worker has used (models/llm/loading.py keeps them loaded for the process)


def _session(cfg: Config, packed_ref: ray.ObjectRef, on_open: Any = None) -> tuple[Session, float, bool]:
    """This worker's session for the config and data (opened now, calling `on_open()` first, unless it has it)."""
    text = json.dumps(config_to_dict(cfg), sort_keys=True, default=str)
    key = hashlib.sha256(text.encode()).hexdigest() + packed_ref.hex()
    if key in _SESSION:
        return _SESSION[key], 0.0, True
    if on_open is not None:
        on_open()
    _SESSION.clear()
    start = time.perf_counter()
    session = Session.open(cfg, unpack_experiment(ray.get(packed_ref)))
    _SESSION[key] = session
    return session, time.perf_counter() - start, False


def _injected_fault(spec: Optional[str], fold: str) -> None:
    if not spec:
        return
    mode, target, folder = spec.split(":", 2)
    if fold != target:
        return
    marker = Path(folder) / f"fault-{fold}"
    first = not marker.exists()
    with marker.open("a") as fh:
        fh.write(f"{os.getpid()}\n")
    if mode == "raise_always" or (mode == "raise_once" and first):
        raise RuntimeError(f"injected test fault in fold {fold}")
    if mode == "hang_once" and first:
        time.sleep(600)


def _run_task(
    cfg: Config,
    packed: list[ray.ObjectRef],
    job: FoldJob,
    seed: int,
    label: str,
    threads: int,
    board: Any,
    fault: Optional[str],
) -> tuple[Outcome, TaskStats]:
    """One (seed, fold) on a worker. `packed` wraps the data's object reference in a list so Ray hands over the
    reference (fetched only when this worker has no session for it) rather than the data itself."""
    started = time.time()
    _injected_fault(fault, job.fold.name)
    if cfg.train.device == "auto" and not ray.get_gpu_ids():
        # Ray leaves every GPU visible to a task that asked for none: `auto` must not take one unasked.
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, device="cpu"))
    reused, session_seconds, llm_seconds = False, 0.0, 0.0
    loading = "loading data and LLM" if cfg.model.needs_llm else "loading data and model"
    try:
        session, session_seconds, reused = _session(cfg, packed[0], lambda: board.set_phase.remote(label, loading))
        board.set_phase.remote(label, "training")
        if session.llm is not None and id(session.llm) not in _LLMS_SEEN:  # loaded now, not from the process cache
            _LLMS_SEEN.add(id(session.llm))
            llm_seconds = session.llm.load_seconds

        def on_epoch(epoch: int, epochs: int, _loss: float) -> None:
            board.set.remote(label, epoch, epochs)

        with torch_threads(threads):
            outcome = train_task(session, job, seed, on_epoch)
    except UserError as err:  # the same on every attempt: report, do not retry
        outcome = TaskFailure(str(err))
    node = ray.get_runtime_context().get_node_id()[:8]
    stats = TaskStats(label, os.getpid(), node, started, time.time(), session_seconds, llm_seconds, reused)
    return outcome, stats


class EpochBoard:
    """Where running tasks post their phase ("loading data and LLM", "training") and epoch; the driver takes the
    latest posts for its progress bar."""

    def __init__(self) -> None:
        self.epochs: dict[str, tuple[int, int]] = {}
        self.phases: dict[str, str] = {}

    def set(self, label: str, epoch: int, epochs: int) -> None:
        self.epochs[label] = (epoch, epochs)

    def set_phase(self, label: str, phase: str) -> None:
        self.phases[label] = phase

    def take(self) -> tuple[dict[str, str], dict[str, tuple[int, int]]]:
        taken = (self.phases, self.epochs)
        self.phases, self.epochs = {}, {}
        return taken


# ------------------------------------------------------------------------------------------- driver side


def check_reachable(address: str, timeout: Optional[float] = None) -> None:
    """Refuse, in one line and within seconds, an `address` with no Ray cluster behind it: `ray.init` itself retries
    for many minutes against an unused port, an unknown host or something that is not Ray. Each of the two checks
    (a TCP connection, then a gRPC handshake with the head's GCS) waits at most `timeout` (CONNECT_TIMEOUT_S)."""
    timeout = CONNECT_TIMEOUT_S if timeout is None else timeout
    given = arg("address", address)
    if address.startswith("ray://"):
        target = address[len("ray://") :]
    else:
        from ray._private.services import canonicalize_bootstrap_address

        try:  # `auto` becomes the cluster `ray start` recorded on this machine; localhost the node's address
            target = canonicalize_bootstrap_address(address) or address
        except ConnectionError:
            raise UserError(
                f"{given}: no Ray cluster was started on this machine (ray start); give HOST:PORT"
            ) from None
        except ValueError:
            raise UserError(f"{given}: not an address; use auto or HOST:PORT (the Ray head's GCS port)") from None
    match = re.fullmatch(r"\[?(.+?)\]?:(\d+)", target)
    if match is None:
        raise UserError(f"{given}: not an address; use auto or HOST:PORT (the Ray head's GCS port)")
    host, port = match.group(1), int(match.group(2))
    try:
        socket.getaddrinfo(host, port)
    except (socket.gaierror, UnicodeError):
        raise UserError(f"{given}: unknown host {host}; check the Ray head node's name or IP") from None
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise UserError(
            f"{given}: nothing answers at {host}:{port} ({reason}); check that Ray runs on that node (ray start) "
            "and that the port is its head's GCS port (6379 by default)"
        ) from None
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("0", "false", ""):
        import grpc

        channel = grpc.insecure_channel(f"{host}:{port}")
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise UserError(
                f"{given}: {host}:{port} accepts connections but is not a Ray cluster (no gRPC answer within "
                f"{timeout:g}s); check the port: the Ray head's GCS port, 6379 by default"
            ) from None
        finally:
            channel.close()


def _failure_reason(err: RayError) -> str:
    if isinstance(err, RayTaskError) and err.cause is not None:
        return f"{type(err.cause).__name__}: {err.cause}"
    first = str(err).strip().splitlines()
    return f"{type(err).__name__}: {first[0] if first else ''}"


class RayExecutor:
    """Every (config, seed, fold) as a Ray task with `cpus_per_task` CPUs and `gpus_per_task` GPUs (fractions
    allowed; None: one GPU per task when the cluster has GPUs, else none).

    `address`: None starts a local Ray instance with this machine's resources; `auto` or `HOST:PORT` joins a
    running cluster. When Ray is already initialised in this process (tests, notebooks), that connection is used
    and left open.
    """

    def __init__(
        self,
        address: Optional[str] = None,
        cpus_per_task: float = 1.0,
        gpus_per_task: Optional[float] = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        poll_seconds: float = 0.5,
    ) -> None:
        if cpus_per_task <= 0:
            raise UserError(f"{arg('cpus_per_task')} must be > 0 (got {cpus_per_task})")
        if gpus_per_task is not None and gpus_per_task < 0:
            raise UserError(f"{arg('gpus_per_task')} must be >= 0 (got {gpus_per_task})")
        if max_retries < 0:
            raise UserError(f"{arg('max_retries')} must be >= 0 (got {max_retries})")
        if address is not None and not ray.is_initialized():
            check_reachable(address)  # now, before any data is prepared
        self.address = address
        self.cpus_per_task = float(cpus_per_task)
        self.gpus_per_task = gpus_per_task
        self.max_retries = max_retries
        self.poll_seconds = poll_seconds
        self.stats: list[TaskStats] = []
        self.submitted: list[str] = []
        self.submitted_at = 0.0  # time.time() once every task was submitted

    # --- connection and resources -------------------------------------------------------------------------

    def _connect(self) -> bool:
        """Initialise Ray unless it already is; True when this call started the connection."""
        if ray.is_initialized():
            return False
        try:
            ray.init(address=self.address, include_dashboard=False, logging_level=logging.WARNING)
        except ConnectionError as err:
            raise UserError(f"{arg('address', self.address)}: cannot connect to a Ray cluster ({err})") from None
        return True

    def _resources(self) -> tuple[float, float]:
        """(CPUs, GPUs) per task, checked against what one node of the cluster can hold."""
        nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
        most_cpus = max((n.get("CPU", 0.0) for n in nodes), default=0.0)
        most_gpus = max((n.get("GPU", 0.0) for n in nodes), default=0.0)
        gpus = self.gpus_per_task if self.gpus_per_task is not None else (1.0 if most_gpus > 0 else 0.0)
        if self.cpus_per_task > most_cpus:
            raise UserError(
                f"{arg('cpus_per_task', f'{self.cpus_per_task:g}')}: no Ray node has that many CPUs "
                f"(at most {most_cpus:g})"
            )
        if gpus > most_gpus:
            raise UserError(
                f"{arg('gpus_per_task', f'{gpus:g}')}: no Ray node has that many GPUs (at most {most_gpus:g})"
            )
        return self.cpus_per_task, gpus

    # --- the run ------------------------------------------------------------------------------------------

    def run(self, plans: Sequence[RunPlan], sink: OutcomeSink, progress: RunProgress) -> None:
        progress.set_status("starting Ray" if self.address is None else f"connecting to Ray at {self.address}")
        started_here = self._connect()
        board: Any = None
        outstanding: dict[ray.ObjectRef, Task] = {}
        try:
            cpus, gpus = self._resources()
            remote = ray.remote(
                num_cpus=cpus, num_gpus=gpus, max_retries=self.max_retries, retry_exceptions=True, max_calls=0
            )(_run_task)
            board = ray.remote(num_cpus=0)(EpochBoard).remote()
            fault = os.environ.get(FAULT_ENV)
            shipped: dict[int, ray.ObjectRef] = {}  # configs of a sweep on the same data share one copy
            for index, plan in enumerate(plans):
                tasks = plan.tasks(index)
                if not tasks:
                    continue
                if id(plan.experiment) not in shipped:
                    shipped[id(plan.experiment)] = ray.put(pack_experiment(plan.experiment))
                packed = shipped[id(plan.experiment)]
                threads = plan.cfg.train.threads or max(1, int(cpus))
                for task in tasks:
                    job = plan.jobs[task.job]
                    ref = remote.remote(plan.cfg, [packed], job, task.seed, task.label, threads, board, fault)
                    outstanding[ref] = task
                    self.submitted.append(task.label)
            self.submitted_at = time.time()
            progress.set_status("starting workers")
            logger.info(
                "ray: %d task(s) submitted (%g CPU%s per task), cluster %s",
                len(outstanding),
                cpus,
                f", {gpus:g} GPU" if gpus else "",
                _describe(ray.cluster_resources()),
            )
            self._wait(outstanding, board, sink, progress)
        except KeyboardInterrupt:
            for ref in outstanding:
                ray.cancel(ref, force=True)
            logger.warning(
                "interrupted: cancelled %d outstanding Ray task(s); finished folds are kept", len(outstanding)
            )
            raise
        finally:
            if board is not None:
                ray.kill(board)
            if started_here:
                ray.shutdown()
        self._log_session_reuse()

    def _wait(
        self, outstanding: dict[ray.ObjectRef, Task], board: Any, sink: OutcomeSink, progress: RunProgress
    ) -> None:
        while outstanding:
            ready, _ = ray.wait(list(outstanding), num_returns=1, timeout=self.poll_seconds)
            for ref in ready:
                task = outstanding.pop(ref)
                try:
                    outcome, stats = ray.get(ref)
                    stats.received = time.time()
                    self.stats.append(stats)
                except RayError as err:
                    outcome = TaskFailure(f"{_failure_reason(err)} (after {self.max_retries} retries)")
                sink(task, outcome)
            running = {task.label for task in outstanding.values()}
            phases, epochs = ray.get(board.take.remote())
            for label, phase in phases.items():
                if label in running:
                    progress.phase(label, phase)
            for label, (epoch, total) in epochs.items():
                if label in running:
                    progress.epoch(label, epoch, total)

    def _log_session_reuse(self) -> None:
        loads = [s for s in self.stats if not s.reused_session]
        reused = sum(s.reused_session for s in self.stats)
        if not loads:
            return
        mean = sum(s.session_seconds for s in loads) / len(loads)
        llm = sum(s.llm_seconds for s in loads) / len(loads)
        logger.info(
            "ray: %d task(s) on %d worker process(es); sessions (data, LLM, model) opened %d time(s), %.1fs each "
            "on average (LLM load %.1fs); %d task(s) reused an open one (~%.1fs of loading saved)",
            len(self.stats),
            len({(s.node, s.pid) for s in self.stats}),
            len(loads),
            mean,
            llm,
            reused,
            reused * mean,
        )


def _describe(resources: dict[str, float]) -> str:
    return ", ".join(f"{resources.get(k, 0):g} {k}" for k in ("CPU", "GPU") if k in resources or k == "CPU")


__all__ = [
    "CONNECT_TIMEOUT_S",
    "DEFAULT_MAX_RETRIES",
    "FAULT_ENV",
    "RayExecutor",
    "TaskStats",
    "pack_experiment",
    "unpack_experiment",
]
