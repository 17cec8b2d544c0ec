"""What a run trains on and what a process loads for it: the `Experiment` (prepared data cut into the protocol's
folds: Leave-One-Subject-Out or cross-domain) and the `Session` (that experiment, the device, the LLM and the model,
built once per process; every fold re-initialises the model's trainable parts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch

from aullm.config import Config, DataConfig, config_to_dict
from aullm.core.console import logger
from aullm.core.errors import UserError
from aullm.core.runtime import resolve_device
from aullm.data.cache import PreparedDataset, data_fingerprint, prepare_dataset
from aullm.data.index import au_columns
from aullm.models.base import AUModel, FoldModel
from aullm.models.factory import build_model
from aullm.models.llm.loading import LoadedLLM, load_llm
from aullm.models.summary import log_parameter_report
from aullm.training.fold import Fold


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
        lengths = np.asarray(self.train_data.lengths)
        return {
            "train": train,
            "test": test,
            "samples": {"train": len(self.train_data), "test": len(self.test_data)},
            "skipped": skipped,
            # the longest training clip, in frames: a bundle records it, and predict warns on much longer input
            "longest_clip_frames": int(lengths.max()) if lengths.size else None,
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


__all__ = ["Experiment", "Session", "build_experiment", "check_labels", "subject_key", "target_config"]
