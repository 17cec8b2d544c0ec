"""Executing a run's work: one task per (config, seed, fold), trained wherever an executor puts it.

The driver (`execute`) owns the run directories: it hands an executor the unfinished folds of one or several runs
(`RunPlan`), receives each task's `SeedResult` as data, assembles the seeds of a fold into one `FoldResult` in the
config's seed order, and writes the fold's folder itself (`run_dir.write_fold`, `done` last). Executors therefore
need no shared file system; why neither the order nor the place in which tasks run changes a number:
docs/design.md, Determinism.

`LocalExecutor` trains every task in this process, one after another;
`aullm.training.ray_executor.RayExecutor` spreads them over a Ray cluster.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Protocol, Union

import torch

from aullm.config import Config
from aullm.core.console import RunProgress, logger
from aullm.training import run_dir
from aullm.training.fold import Fold, FoldResult, SeedResult, train_seed
from aullm.training.session import Experiment, Session
from aullm.training.trainer import EpochCallback, TrainingDiverged


@dataclass(frozen=True)
class FoldJob:
    """One fold folder to produce: the split, where it is written, its seeds and its held-out validation count."""

    fold: Fold
    folder: Path
    seeds: tuple[int, ...]
    validation_subjects: int


@dataclass(frozen=True)
class Task:
    """One (config, seed, fold): the unit an executor trains. `run` indexes the plans handed to the executor."""

    run: int
    job: int
    seed: int
    label: str


@dataclass
class TaskFailure:
    """A task that produced no result: the loss diverged (not worth retrying) or it failed every attempt."""

    reason: str
    diverged: bool = False


Outcome = Union[SeedResult, TaskFailure]
#: What an executor calls once per finished task (in the driver's process).
OutcomeSink = Callable[[Task, Outcome], None]


@dataclass
class RunPlan:
    """One config's work still to do, ready for an executor.

    A local executor trains with `session` (data, LLM, model), opening it with `open_session` when the caller
    has none (and dropping it after the plan, so a sweep holds one model at a time); a remote executor ships
    `experiment` (the prepared data and folds) to its workers instead.
    """

    cfg: Config
    out: Path
    experiment: Experiment
    jobs: list[FoldJob]
    open_session: Callable[[], Session]
    session: Optional[Session] = None
    label: str = ""
    #: the data fingerprint the folds are trained on (`Experiment.fingerprint`), recorded in each `done` marker
    data: Optional[dict] = None

    def tasks(self, run: int) -> list[Task]:
        prefix = f"{self.label} " if self.label else ""
        return [
            Task(run, j, seed, f"{prefix}fold {job.fold.name} seed {seed}")
            for j, job in enumerate(self.jobs)
            for seed in job.seeds
        ]


class Executor(Protocol):
    """Trains every task of `plans` and reports each outcome to `sink` (in the driver's process).

    Ctrl-C (KeyboardInterrupt) cancels whatever is outstanding and is raised again."""

    def run(self, plans: Sequence[RunPlan], sink: OutcomeSink, progress: RunProgress) -> None: ...


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run with `threads` torch CPU threads (0: leave the current setting), restoring the previous count after."""
    before = torch.get_num_threads()
    if threads > 0:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def train_task(session: Session, job: FoldJob, seed: int, on_epoch: Optional[EpochCallback] = None) -> Outcome:
    """Train one (seed, fold) with `session`'s model; a diverged loss is an outcome, not an exception."""
    data = session.experiment
    try:
        return train_seed(
            session.model,
            session.cfg,
            data.train_data,
            job.fold.train_rows,
            data.test_data,
            job.fold.test_rows,
            seed=seed,
            fold=job.fold.name,
            device=session.device,
            validation_subjects=job.validation_subjects,
            on_epoch=on_epoch,
        )
    except TrainingDiverged as err:
        return TaskFailure(str(err), diverged=True)


class LocalExecutor:
    """Every task in this process, in order (the config's seeds within a fold, folds in protocol order)."""

    def run(self, plans: Sequence[RunPlan], sink: OutcomeSink, progress: RunProgress) -> None:
        for index, plan in enumerate(plans):
            tasks = plan.tasks(index)
            if not tasks:
                continue
            if plan.session is None:
                progress.set_status("loading data and LLM" if plan.cfg.model.needs_llm else "loading data and model")
            session = plan.session if plan.session is not None else plan.open_session()
            with torch_threads(plan.cfg.train.threads):
                for task in tasks:
                    progress.started(task.label)

                    def on_epoch(epoch: int, epochs: int, _loss: float, label: str = task.label) -> None:
                        progress.epoch(label, epoch, epochs)

                    sink(task, train_task(session, plan.jobs[task.job], task.seed, on_epoch))


@dataclass
class RunOutcome:
    """What `execute` did for one plan: the folds written and the folds that failed (with why)."""

    written: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


class _Collector:
    """Gathers the seeds of each fold as tasks finish; writes the fold once every seed is back."""

    def __init__(
        self,
        plans: Sequence[RunPlan],
        progress: RunProgress,
        on_fold: Optional[Callable[[RunPlan, FoldResult], None]],
    ) -> None:
        self.plans = plans
        self.progress = progress
        self.on_fold = on_fold
        self.pending: dict[tuple[int, int], dict[int, Outcome]] = {}
        self.outcomes = [RunOutcome() for _ in plans]

    def __call__(self, task: Task, outcome: Outcome) -> None:
        plan = self.plans[task.run]
        job = plan.jobs[task.job]
        if isinstance(outcome, TaskFailure):
            logger.error("%s failed: %s", task.label, outcome.reason)
        self.progress.finished(task.label, ok=not isinstance(outcome, TaskFailure))
        got = self.pending.setdefault((task.run, task.job), {})
        got[task.seed] = outcome
        if len(got) < len(job.seeds):
            return
        del self.pending[(task.run, task.job)]
        failures = [(s, o) for s, o in got.items() if isinstance(o, TaskFailure)]
        if failures:
            reason = "; ".join(f"seed {s}: {o.reason}" for s, o in failures)
            run_dir.mark_failed(job.folder, reason)
            self.outcomes[task.run].failed[job.fold.name] = reason
            return
        results = [o for s in job.seeds if isinstance(o := got[s], SeedResult)]  # none failed (checked above)
        result = FoldResult(job.fold.name, results)
        run_dir.write_fold(job.folder, result, plan.data)
        self.outcomes[task.run].written.append(job.fold.name)
        if self.on_fold is not None:
            self.on_fold(plan, result)


def execute(
    plans: Sequence[RunPlan],
    executor: Executor,
    *,
    progress: Optional[RunProgress] = None,
    on_fold: Optional[Callable[[RunPlan, FoldResult], None]] = None,
) -> list[RunOutcome]:
    """Train every task of `plans` with `executor`; write each finished fold; return what happened per plan.

    `on_fold` hears about every fold as it is written (experiment tracking)."""
    total = sum(len(plan.tasks(i)) for i, plan in enumerate(plans))
    collector = _Collector(plans, progress or RunProgress(total), on_fold)
    if total:
        with collector.progress:
            executor.run(plans, collector, collector.progress)
    return collector.outcomes


__all__ = [
    "Executor",
    "FoldJob",
    "LocalExecutor",
    "Outcome",
    "OutcomeSink",
    "RunOutcome",
    "RunPlan",
    "Task",
    "TaskFailure",
    "execute",
    "torch_threads",
    "train_task",
]
