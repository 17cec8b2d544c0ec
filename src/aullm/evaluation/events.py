"""How well a video's events carry its AUs: the AU decisions of `predict`'s events scored against the annotated
expressions (SynME long, CAS(ME)², SAMM Long Videos truth tables).

Every true expression is one sample. It is matched to at most one predicted event of its video (IoU ≥ 0.5 of the
inclusive frame intervals, the maximum matching of the MEGC evaluation, whatever kind either is called: the
question here is which AUs, not micro or macro), whose AU decisions become the sample's prediction; a true
expression no event matches counts as all-negative (the model said nothing about it). Per-AU F1 over the true
expressions, then their mean over the AUs present in the truth, as the AU papers report it.

Scored the same way, the model run on the true intervals themselves (the oracle: spotting that is never wrong)
gives the ceiling; the difference is what spotting costs the AU decisions. Events that match no true expression
(false spots) do not enter the AU scores; the spotting evaluation (`aullm spot-eval`) counts them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
import pandas as pd

from aullm.data.aus import au_number, parse_au_string
from aullm.evaluation.spotting import match_intervals

#: The IoU at which a predicted event stands for a true expression (MEGC's).
MATCH_IOU = 0.5


def truth_labels(truth: pd.DataFrame, aus: Sequence[str]) -> np.ndarray:
    """0/1 labels [n, K] of the truth's `aus` strings (`4+7`, `R12`, …) for the model's AUs."""
    numbers = [au_number(a) for a in aus]
    labels = np.zeros((len(truth), len(aus)), dtype=np.int64)
    for i, text in enumerate(truth["aus"].astype(str).tolist() if "aus" in truth else [""] * len(truth)):
        present = parse_au_string(text).aus
        labels[i] = [int(n in present) for n in numbers]
    return labels


def matched_decisions(
    events: pd.DataFrame, truth: pd.DataFrame, aus: Sequence[str], iou: float = MATCH_IOU
) -> tuple[np.ndarray, np.ndarray]:
    """(decisions [n_truth, K] — the matched event's AU decisions, zeros where none matched —, matched [n_truth])."""
    decided = np.zeros((len(truth), len(aus)), dtype=np.int64)
    matched = np.zeros(len(truth), dtype=bool)
    found = events[events["event"].notna()] if "event" in events else events
    truth = truth.reset_index(drop=True)
    for video, rows in truth.groupby(truth["video"].astype(str), sort=False):
        mine = found[found["video"].astype(str) == video].reset_index(drop=True)
        pairs = match_intervals(
            [(int(on), int(off)) for on, off in zip(rows["onset"].tolist(), rows["offset"].tolist())],
            [(int(on), int(off)) for on, off in zip(mine["onset"].tolist(), mine["offset"].tolist())],
            iou,
        )
        index = rows.index.to_numpy()
        for t, p, _ in pairs:
            row = mine.iloc[p]
            if str(row.get("status", "ok")).startswith("failed"):
                continue  # decoded nothing: as if missed
            decided[index[t]] = [int(row[a]) if not pd.isna(row[a]) else 0 for a in aus]
            matched[index[t]] = True
    return decided, matched


def au_f1(labels: np.ndarray, decided: np.ndarray, aus: Sequence[str]) -> dict[str, Any]:
    """Per-AU F1 (with its counts) and the mean over AUs with at least one positive label."""
    per_au: dict[str, dict[str, Any]] = {}
    for k, au in enumerate(aus):
        y, d = labels[:, k], decided[:, k]
        tp, fp, fn = (
            int(((y == 1) & (d == 1)).sum()),
            int(((y == 0) & (d == 1)).sum()),
            int(((y == 1) & (d == 0)).sum()),
        )
        f1: Optional[float] = 2 * tp / (2 * tp + fp + fn) if y.sum() > 0 else None
        per_au[au] = {"f1": f1, "tp": tp, "fp": fp, "fn": fn, "support": int(y.sum())}
    defined = [v["f1"] for v in per_au.values() if v["f1"] is not None]
    return {"f1_macro": float(np.mean(defined)) if defined else None, "per_au": per_au}


def score_events(
    events: pd.DataFrame,
    truth: pd.DataFrame,
    aus: Sequence[str],
    *,
    kinds: Optional[Sequence[str]] = None,
    iou: float = MATCH_IOU,
) -> dict[str, Any]:
    """The events' AU decisions against the truth (see the module's docstring). `kinds`: score only true
    expressions of these kinds (`["micro"]`); `events` is `predict`'s events layout (video, onset, offset, AU<k>,
    status), the truth has video, onset, offset, kind and aus."""
    chosen = truth if kinds is None else truth[truth["kind"].astype(str).isin(list(kinds))]
    chosen = chosen.reset_index(drop=True)
    labels = truth_labels(chosen, aus)
    decided, matched = matched_decisions(events, chosen, aus, iou)
    scores = au_f1(labels, decided, aus)
    return {
        "expressions": len(chosen),
        "found": int(matched.sum()),
        "found_share": float(matched.mean()) if len(chosen) else None,
        **scores,
    }


__all__ = ["MATCH_IOU", "au_f1", "matched_decisions", "score_events", "truth_labels"]
