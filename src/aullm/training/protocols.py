"""Experiment protocols: Leave-One-Subject-Out and cross-domain, resumable, several seeds.

`Session` holds what a process loads once for a config (the prepared data cut into folds, the LLM, the model);
`run_experiment` trains the folds a run directory still lacks and concatenates their predictions. Each (fold,
seed) starts from a model reset with a seed derived from the seed and the fold's name only, so results do not
depend on fold order and a resumed run ends with the same numbers as an uninterrupted one. Scoring, reporting
and bundling are not done here: the caller (`aullm.workflows`) chains them once the run is complete.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from aullm.config import Config, DataConfig, config_to_dict
from aullm.console import logger
from aullm.data.cache import PreparedDataset, data_fingerprint, prepare_dataset
from aullm.data.index import au_columns
from aullm.errors import RunFailed, UserError
from aullm.models.base import AUModel, FoldModel
from aullm.models.llm import LoadedLLM, load_llm
from aullm.models.registry import build_model
from aullm.models.summary import log_parameter_report
from aullm.runtime import resolve_device
from aullm.training import run_dir
from aullm.training.execution import Executor, FoldJob, LocalExecutor, RunOutcome, RunPlan, execute
from aullm.training.fold import Fold, FoldResult, train_fold


@dataclass
class Experiment:
    """The data of one run: what is trained on, what is tested on, and the folds between them."""

    train_data: PreparedDataset
    test_data: PreparedDataset
    folds: list[Fold]
    all_fold_names: list[str] = field(default_factory=list)

    def fingerprint(self) -> dict[str, Any]:
        """What `data.json` records: the train and test data fingerprints and their sizes, and the samples left
        out of each (so a user can see what a run did not use, even when its data came from the cache). A resume
        compares only the fingerprints."""
        train = data_fingerprint(self.train_data)
        same = self.test_data is self.train_data
        test = train if same else data_fingerprint(self.test_data)
        skipped = {"train": list(self.train_data.skipped)}
        if not same:
            skipped["test"] = list(self.test_data.skipped)
        return {
            "train": train,
            "test": test,
            "samples": {"train": len(self.train_data), "test": len(self.test_data)},
            "skipped": skipped,
        }


def subject_key(subject: str) -> str:
    """`01`, `1` and `001` name the same subject when given in protocol.folds or --fold."""
    return subject.lstrip("0") or "0"


def _select_folds(names: list[str], wanted: object) -> list[str]:
    if wanted == "all":
        return names
    assert isinstance(wanted, list)
    by_key = {subject_key(n): n for n in names}
    chosen = []
    for w in wanted:
        key = subject_key(str(w))
        if key not in by_key:
            raise UserError(f"protocol.folds names subject {w!r}, which is not in the dataset ({', '.join(names)})")
        chosen.append(by_key[key])
    return chosen


def check_labels(data: PreparedDataset) -> None:
    """An AU with no positive sample in the training data cannot be learned: refuse it before training instead of
    fitting all-zero labels and reporting numbers for it."""
    empty = [au for k, au in enumerate(data.aus) if not data.labels[:, k].any()]
    if empty:
        present = [c for c in au_columns(data.index) if int(data.index[c].sum()) > 0]
        raise UserError(
            f"{', '.join(empty)} {'has' if len(empty) == 1 else 'have'} no positive sample among the {len(data)} "
            f"usable {data.dataset} samples: "
            f"nothing to learn; remove it from data.aus (AUs with positives: {', '.join(present) or 'none'})"
        )


def report_cached_skips(data: PreparedDataset) -> None:
    """Data read from the cache decodes nothing now, so nothing warns about the samples its build left out: say
    again what they were, so every run reports what it does not use."""
    if not data.from_cache:
        return
    for item in data.skipped:
        logger.warning("%s: sample %s left out: %s", data.dataset, item["sample"], item["reason"])


def build_experiment(cfg: Config) -> Experiment:
    """Prepare the data and cut it into the protocol's folds."""
    train_data = prepare_dataset(cfg.data)
    report_cached_skips(train_data)
    check_labels(train_data)
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
    target_cfg = target_config(cfg)
    test_data = prepare_dataset(target_cfg)
    report_cached_skips(test_data)
    name = f"{cfg.data.dataset}_to_{target_cfg.dataset}"
    fold = Fold(name, np.arange(len(train_data.index)), np.arange(len(test_data.index)))
    return Experiment(train_data, test_data, [fold], [name])


def target_config(cfg: Config) -> DataConfig:
    """The cross-domain test data, scored on the training data's AUs (e.g. 2, 4, 7, 12)."""
    assert cfg.protocol.target is not None
    target = DataConfig(**{**config_to_dict(cfg)["protocol"]["target"], "aus": list(cfg.data.aus)})
    missing = [au for au in cfg.data.aus if au not in set(target.aus)]
    if missing:
        raise UserError(f"cross-domain target lacks {missing}")
    return target


@dataclass
class Session:
    """What one process loads for a config: the experiment's data and folds, the device, the LLM and the model
    (built once; every fold re-initialises its trainable parts)."""

    cfg: Config
    experiment: Experiment
    device: torch.device
    llm: Optional[LoadedLLM]
    model: FoldModel

    @classmethod
    def open(cls, cfg: Config, experiment: Optional[Experiment] = None) -> Session:
        """Load everything for `cfg`; `experiment` (already prepared, e.g. shipped to a Ray worker) is reused."""
        experiment = experiment if experiment is not None else build_experiment(cfg)
        device = resolve_device(cfg.train.device)
        llm = load_llm(cfg.llm, device) if cfg.model.needs_llm else None
        model = build_model(cfg, list(cfg.data.aus), llm)
        if isinstance(model, AUModel):
            model.to(device)
            log_parameter_report(model)
        return cls(cfg, experiment, device, llm, model)

    def train(self, fold: Fold) -> FoldResult:
        data = self.experiment
        return train_fold(self.model, self.cfg, data.train_data, data.test_data, fold, self.device)


@dataclass
class RunStatus:
    """Where a run stands after `run_experiment`: which folds are still missing (other machines may be training
    them), and whether every fold is done so the run can be scored."""

    out: Path
    all_folds: list[str]
    missing: list[str]

    @property
    def complete(self) -> bool:
        return not self.missing


def plan_run(
    cfg: Config, out: Path, session: Optional[Session] = None, experiment: Optional[Experiment] = None, label: str = ""
) -> RunPlan:
    """Check and set up the run directory, and list the folds (and the final model, with `train.save_final`) it
    still lacks. Only the data is prepared here; the LLM and model are loaded where the tasks run.

    A failed start (bad --out, missing data, unknown LLM) leaves nothing behind, so the corrected command can use
    the same --out.
    """
    out = Path(out)
    run_dir.check_run_dir(cfg, out)
    if session is not None:
        experiment = session.experiment
    elif experiment is None:
        experiment = build_experiment(cfg)
    fingerprint = experiment.fingerprint()
    run_dir.init_run_dir(cfg, out)
    run_dir.check_data(out, fingerprint)
    folds = experiment.folds
    todo = [f for f in folds if not run_dir.fold_is_done(run_dir.fold_dir(out, f.name))]
    if len(todo) < len(folds):
        logger.info("resuming %s: %d fold(s) already done, %d to run", out, len(folds) - len(todo), len(todo))
    seeds = tuple(int(s) for s in cfg.seeds)
    jobs = [FoldJob(f, run_dir.fold_dir(out, f.name), seeds, cfg.eval.validation_subjects) for f in todo]
    if cfg.train.save_final and cfg.model.bundleable:
        jobs += _final_job(cfg, out, experiment)
    prepared = experiment
    return RunPlan(cfg, out, experiment, jobs, lambda: Session.open(cfg, prepared), session, label)


def _final_job(cfg: Config, out: Path, experiment: Experiment) -> list[FoldJob]:
    """The final model (every training subject, the first seed) as one more job, unless it is already done."""
    folder = Path(out) / run_dir.FINAL
    seed = int(cfg.seeds[0])
    if run_dir.fold_is_done(folder) and (folder / run_dir.weights_name(seed)).is_file():
        return []
    rows = np.arange(len(experiment.train_data.index))
    return [FoldJob(Fold(run_dir.FINAL, rows, rows), folder, (seed,), 0)]


def finish_run(plan: RunPlan, outcome: RunOutcome) -> RunStatus:
    """Concatenate the finished folds' predictions; raise RunFailed when some fold could not be trained."""
    names = plan.experiment.all_fold_names
    missing = run_dir.collect_predictions(plan.out, names)
    if outcome.failed:
        failed = ", ".join(outcome.failed)
        raise RunFailed(
            f"{len(outcome.failed)} fold(s) failed ({failed}); see folds/<fold>/failed. "
            "Finished folds are kept; rerun with the same --out after fixing the cause"
        )
    if missing:
        logger.info(
            "%d of %d folds done in %s; metrics are written once every fold is done",
            len(names) - len(missing),
            len(names),
            plan.out,
        )
    return RunStatus(plan.out, list(names), missing)


def run_experiment(
    cfg: Config,
    out: Path,
    session: Optional[Session] = None,
    executor: Optional[Executor] = None,
    on_fold: Optional[Callable[[RunPlan, FoldResult], None]] = None,
) -> RunStatus:
    """Run (or resume) the experiment into `out`: every check first, then the run directory, then the folds that
    are not done yet (in this process, or wherever `executor` puts them)."""
    plan = plan_run(cfg, Path(out), session)
    outcome = execute([plan], executor or LocalExecutor(), on_fold=on_fold)[0]
    return finish_run(plan, outcome)


def default_run_dir(cfg: Config, out: Optional[Path]) -> Path:
    return Path(out) if out is not None else Path("runs") / cfg.name


__all__ = [
    "Experiment",
    "Fold",
    "RunFailed",
    "RunStatus",
    "Session",
    "build_experiment",
    "default_run_dir",
    "finish_run",
    "plan_run",
    "run_experiment",
    "subject_key",
    "target_config",
]
