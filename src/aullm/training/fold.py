"""Training one fold: the single place where a model is reset, trained and asked for predictions.

LOSO folds, the cross-domain fold and the final model (trained on every subject) all go through `train_seed`:
seed → reset → fold hook (training labels only) → train → predict → loss log → trained weights. The result is
held in memory (`FoldResult`, weights as safetensors bytes) and written by `run_dir.write_fold`, so a fold
trained in another process or on another machine comes back as data and is written by the driver alone.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pandas as pd
import torch
from safetensors.torch import save as safetensors_bytes

from aullm.config import Config
from aullm.core.console import logger
from aullm.core.errors import UserError
from aullm.core.runtime import seed_everything
from aullm.data.cache import PreparedDataset
from aullm.models.base import FoldModel
from aullm.training.trainer import EpochCallback, predict_model, train_model


@dataclass
class Fold:
    """One train/test split. Rows index the experiment's `train_data` and `test_data` respectively."""

    name: str
    train_rows: np.ndarray
    test_rows: np.ndarray


@dataclass
class SeedResult:
    """What one seed of one fold produced: predictions on the held-out rows (and on validation subjects, when the
    config holds some out), the mean loss per epoch, and the trained weights as safetensors bytes."""

    seed: int
    predictions: pd.DataFrame
    validation: Optional[pd.DataFrame]
    losses: list[float]
    weights: Optional[bytes]
    trained_clips: int
    seconds: float


@dataclass
class FoldResult:
    """Every seed of one fold, ready to be written as the fold's folder."""

    name: str
    seeds: list[SeedResult] = field(default_factory=list)

    def predictions(self) -> pd.DataFrame:
        return pd.concat([s.predictions for s in self.seeds], ignore_index=True)

    def validation(self) -> Optional[pd.DataFrame]:
        frames = [s.validation for s in self.seeds if s.validation is not None]
        return pd.concat(frames, ignore_index=True) if frames else None

    def train_log(self) -> pd.DataFrame:
        return pd.concat(
            [
                pd.DataFrame({"seed": s.seed, "epoch": np.arange(1, len(s.losses) + 1), "loss": s.losses})
                for s in self.seeds
            ],
            ignore_index=True,
        )


def fold_seed(seed: int, fold: str) -> int:
    """A per-(seed, fold) seed that depends on nothing else, so fold order cannot change results."""
    return (seed * 1_000_003 + zlib.crc32(fold.encode("utf-8"))) % (2**31 - 1)


def validation_split(data: PreparedDataset, rows: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hold out `count` training subjects (chosen from the fold's seed) for honest threshold tuning."""
    if count <= 0:
        return rows, rows[:0]
    subjects = sorted(set(data.subjects[rows].tolist()))
    if count >= len(subjects):
        raise UserError(f"eval.validation_subjects={count} leaves no training subject ({len(subjects)} available)")
    held = set(np.random.default_rng(seed).choice(subjects, size=count, replace=False).tolist())
    is_val = np.isin(data.subjects[rows], list(held))
    return rows[~is_val], rows[is_val]


def prediction_frame(
    data: PreparedDataset, rows: np.ndarray, probs: np.ndarray, seed: int, fold: str, aus: list[str]
) -> pd.DataFrame:
    """The predictions.csv layout: seed, fold, subject, sample, prob_<AU>…, label_<AU>…."""
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


def weights_bytes(model: FoldModel, fold: str, seed: int) -> Optional[bytes]:
    """The model's trained tensors as safetensors bytes (None when it has none)."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.trainable_state_dict().items()}
    if not state:
        return None
    return safetensors_bytes(state, metadata={"fold": fold, "seed": str(seed)})


def train_seed(
    model: FoldModel,
    cfg: Config,
    train_data: PreparedDataset,
    train_rows: np.ndarray,
    test_data: PreparedDataset,
    test_rows: np.ndarray,
    *,
    seed: int,
    fold: str,
    device: torch.device,
    validation_subjects: int = 0,
    on_epoch: Optional[EpochCallback] = None,
) -> SeedResult:
    """Reset `model` from (seed, fold), train it on `train_rows` and predict `test_rows`."""
    aus = list(cfg.data.aus)
    s = fold_seed(seed, fold)
    seed_everything(s)
    model.reset(s)
    fit_rows, val_rows = validation_split(train_data, train_rows, validation_subjects, s)
    model.on_fold_start(train_data.labels[fit_rows])
    history = train_model(model, train_data, fit_rows, cfg, s, device, f"fold {fold} seed {seed}", on_epoch)
    probs = predict_model(model, test_data, test_rows, cfg, device)
    predictions = prediction_frame(test_data, test_rows, probs, seed, fold, aus)
    validation = None
    if len(val_rows):
        val_probs = predict_model(model, train_data, val_rows, cfg, device)
        validation = prediction_frame(train_data, val_rows, val_probs, seed, fold, aus)
    logger.info("fold %s seed %d: trained %d clips in %.1fs", fold, seed, len(fit_rows), history.seconds)
    return SeedResult(
        seed=seed,
        predictions=predictions,
        validation=validation,
        losses=list(history.losses),
        weights=weights_bytes(model, fold, seed),
        trained_clips=int(len(fit_rows)),
        seconds=history.seconds,
    )


__all__ = [
    "Fold",
    "FoldResult",
    "SeedResult",
    "fold_seed",
    "prediction_frame",
    "train_seed",
    "validation_split",
    "weights_bytes",
]
