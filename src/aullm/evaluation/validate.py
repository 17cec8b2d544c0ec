"""Checks that a run's predictions are what its config and folds say they should be, before anything is scored.

A hand-edited or half-copied predictions.csv (a `prob_` column gone, rows pasted twice, a seed missing) would
otherwise be scored without a word and overwrite the run's metrics.json; here it is refused with one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import pandas as pd

from aullm.core.errors import UserError, arg


def check_predictions(
    frame: pd.DataFrame,
    path: Path,
    *,
    aus: Optional[Sequence[str]] = None,
    seeds: Optional[Sequence[int]] = None,
    fold_rows: Optional[dict[str, int]] = None,
) -> None:
    """Refuse predictions that do not match the run: the config's AUs (`aus`), one block of samples per seed
    (`seeds`; each sample exactly once per seed, the same samples for every seed), and the finished folds' own
    prediction files (`fold_rows`: fold → rows per seed)."""
    have = [c[len("prob_") :] for c in frame.columns if c.startswith("prob_")]
    if aus is not None:
        missing = [au for au in aus if au not in have]
        extra = [au for au in have if au not in aus]
        if missing or extra:
            what = "; ".join(
                part
                for part in (
                    f"lacks {', '.join('prob_' + a for a in missing)}" if missing else "",
                    f"has {', '.join('prob_' + a for a in extra)} the run did not train" if extra else "",
                )
                if part
            )
            raise UserError(f"{path} {what} (the run's config lists {', '.join(aus)}); refusing to score it")
    duplicated = frame.duplicated(subset=["seed", "subject", "sample"], keep=False)
    if duplicated.any():
        first = frame.loc[duplicated].iloc[0]
        raise UserError(
            f"{path} holds {int(duplicated.sum())} duplicated rows (e.g. seed {first['seed']}, sample "
            f"{first['subject']}/{first['sample']}): every sample must appear once per seed; refusing to score it"
        )
    present = sorted(int(s) for s in frame["seed"].astype(int).unique())
    if seeds is not None and present != sorted(int(s) for s in seeds):
        raise UserError(f"{path} holds seeds {present}, the run's config {sorted(seeds)}; refusing to score it")
    samples = {int(str(seed)): set(zip(block["subject"], block["sample"])) for seed, block in frame.groupby("seed")}
    reference = next(iter(samples.values()))
    for seed, found in samples.items():
        if found != reference:
            raise UserError(f"{path}: seed {seed} covers {len(found)} samples, another seed {len(reference)}")
    if fold_rows is not None:
        counts = frame.groupby("fold").size()
        per_seed = {str(fold): int(n) // max(1, len(samples)) for fold, n in counts.items()}
        wrong = [f for f in sorted(set(per_seed) | set(fold_rows)) if per_seed.get(f) != fold_rows.get(f)]
        if wrong:
            fold = wrong[0]
            if fold not in per_seed:
                raise UserError(
                    f"{path} does not match the run's finished folds: it lacks fold {fold}, which folds/{fold} holds "
                    "finished: if it is a fold of this run, "
                    f"train again into the same {arg('out')} to merge it; if not (a stray or copied folder), move "
                    f"folds/{fold} out of the run directory"
                )
            raise UserError(
                f"{path} does not match the run's finished folds: fold {fold} has {per_seed.get(fold, 0)} rows per "
                f"seed there, {fold_rows.get(fold, 0)} in folds/{fold}/predictions.csv; refusing to score it "
                f"(train again into the same {arg('out')} to rebuild it)"
            )


__all__ = ["check_predictions"]
