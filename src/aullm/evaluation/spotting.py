"""The MEGC spotting evaluation (docs/metrics.md, Spotting; DESIGN §11): predicted intervals against the ground
truth of long videos.

Per kind (micro, macro), predictions of that kind are matched to truths of that kind in the same video. A truth
is a true positive when a prediction overlaps it with IoU ≥ 0.5, inclusive frame counts as the MEGC2020 baseline
computes it (`inter = min(e1, e2) − max(s1, s2) + 1`, `union = len1 + len2 − inter`), each prediction matched at
most once. The matching is a maximum bipartite matching on the IoU ≥ threshold graph (SciPy's
`linear_sum_assignment`), so the TP count is the best possible whatever the order of the rows, and among equally
many matches the one with the largest total IoU is taken. FP = predictions − TP, FN = truths − TP; precision,
recall and F1 are computed from the counts summed over the whole set (not averaged per video), for micro, macro
and overall (the sums of both). Each F1 gets a subject-level bootstrap 95% interval: subjects are resampled with
replacement and their counts summed (percentile interval, as the run metrics' intervals).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from aullm.config import MAX_BOOTSTRAP
from aullm.core.console import logger
from aullm.core.errors import DataError, UserError, arg
from aullm.data.longvideo import read_truth
from aullm.data.longvideo.truth import KINDS, subject_of
from aullm.evaluation.bootstrap import DEFAULT_REPLICATES, draw_multiplicities, percentile_interval

PREDICTED_COLUMNS: tuple[str, ...] = ("video", "onset", "offset", "kind")
#: What `aullm spot` writes (spots.csv); only PREDICTED_COLUMNS are needed here.
SPOTS_COLUMNS: tuple[str, ...] = ("video", "onset", "apex", "offset", "duration_s", "score", "kind")
COUNTS: tuple[str, ...] = ("tp", "fp", "fn")


def interval_iou(s1: int, e1: int, s2: int, e2: int) -> float:
    """IoU of two inclusive frame intervals (0 when they do not overlap)."""
    inter = min(e1, e2) - max(s1, s2) + 1
    if inter <= 0:
        return 0.0
    return inter / ((e1 - s1 + 1) + (e2 - s2 + 1) - inter)


def match_intervals(
    truths: Sequence[tuple[int, int]], predictions: Sequence[tuple[int, int]], iou: float = 0.5
) -> list[tuple[int, int, float]]:
    """The maximum matching of truths to predictions with IoU ≥ `iou`: [(truth index, prediction index, IoU)].

    Edge weights are 1 + IoU / (n + 1) with n = min(len(truths), len(predictions)), so any larger matching
    outweighs any smaller one and, among the largest, the total IoU decides (deterministic)."""
    if not truths or not predictions:
        return []
    overlap = np.array([[interval_iou(ts, te, ps, pe) for ps, pe in predictions] for ts, te in truths])
    edge = overlap >= iou - 1e-12
    if not edge.any():
        return []
    weight = np.where(edge, 1.0 + overlap / (min(overlap.shape) + 1), 0.0)
    rows, cols = linear_sum_assignment(weight, maximize=True)
    return [(int(r), int(c), float(overlap[r, c])) for r, c in zip(rows, cols) if edge[r, c]]


def _scores(tp: float, fp: float, fn: float) -> dict[str, Optional[float]]:
    precision = tp / (tp + fp) if tp + fp > 0 else None
    recall = tp / (tp + fn) if tp + fn > 0 else None
    f1 = 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn > 0 else None
    return {"precision": precision, "recall": recall, "f1": f1}


def _frames(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """`onset, offset` as ints; one clear error for a non-number or a negative frame (`apex` is not used)."""
    out = frame.copy()
    for column in ("onset", "offset"):
        values = pd.to_numeric(out[column], errors="coerce")
        bad = values.isna() | (values != values.round())
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"{where} row {i + 2}: {column} {out[column].iloc[i]!r} is not a whole frame number")
        if (values < 0).any():
            i = int(np.flatnonzero((values < 0).to_numpy())[0])
            raise DataError(f"{where} row {i + 2}: negative frame number, {column} {int(values.iloc[i])}")
        out[column] = values.astype("int64")
    return out


def read_predictions(source: Union[pd.DataFrame, str, Path]) -> pd.DataFrame:
    """Predicted intervals (spots.csv of `aullm spot`, or the folder holding it: video, onset, apex, offset,
    duration_s, score, kind), checked: the needed columns, whole non-negative frames, onset ≤ offset and kind micro
    or macro, else one DataError."""
    if isinstance(source, pd.DataFrame):
        frame, where = source.reset_index(drop=True), "predictions"
    else:
        path = Path(source).expanduser()
        if path.is_dir() and (path / "spots.csv").is_file():  # the folder `aullm spot --out` wrote
            path = path / "spots.csv"
        where = path.name
        if path.is_dir():
            raise DataError(f"predictions {path} is a folder without spots.csv: give spots.csv of `aullm spot`")
        if not path.is_file():
            raise DataError(f"predictions file {path} does not exist or is not a file")
        try:
            frame = pd.read_csv(path, dtype={"video": str}, keep_default_na=False)
        except pd.errors.EmptyDataError:
            raise DataError(
                f"predictions file {path} is empty: expected the columns {', '.join(SPOTS_COLUMNS)}"
            ) from None
        except (OSError, UnicodeDecodeError, pd.errors.ParserError) as err:
            raise DataError(f"cannot read predictions file {path}: {err}") from None
    lacking = [c for c in PREDICTED_COLUMNS if c not in frame.columns]
    if lacking:
        raise DataError(
            f"{where} is missing column(s) {', '.join(lacking)} (expected {', '.join(SPOTS_COLUMNS)}, as spots.csv)"
        )
    frame = _frames(frame, where)
    frame["video"] = frame["video"].astype(str).str.strip()
    frame["kind"] = frame["kind"].astype(str).str.strip().str.lower()
    wrong = ~frame["kind"].isin(KINDS)
    if wrong.any():
        i = int(np.flatnonzero(wrong.to_numpy())[0])
        raise DataError(f"{where} row {i + 2}: kind {frame['kind'].iloc[i]!r} is neither micro nor macro")
    backwards = frame["onset"] > frame["offset"]
    if backwards.any():
        i = int(np.flatnonzero(backwards.to_numpy())[0])
        raise DataError(
            f"{where} row {i + 2}: onset {frame['onset'].iloc[i]} after offset {frame['offset'].iloc[i]} "
            f"({frame['video'].iloc[i]})"
        )
    return frame


def _truth_table(source: Union[pd.DataFrame, str, Path]) -> pd.DataFrame:
    if not isinstance(source, pd.DataFrame):
        return read_truth(Path(source))
    lacking = [c for c in ("video", "onset", "offset", "kind") if c not in source.columns]
    if lacking:
        raise DataError(f"the truth table is missing column(s) {', '.join(lacking)}")
    frame = _frames(source.reset_index(drop=True), "truth")
    frame["video"] = frame["video"].astype(str).str.strip()
    frame["kind"] = frame["kind"].astype(str).str.strip().str.lower()
    if "subject" not in frame.columns:
        frame["subject"] = [subject_of(v) for v in frame["video"]]
    frame["subject"] = frame["subject"].astype(str)
    unknown = sorted(set(frame["kind"]) - set(KINDS))
    if unknown:
        raise DataError(f"the truth table has kind(s) {unknown}: expected micro or macro")
    return frame


def match_video(name: str, keys: Sequence[str]) -> Optional[str]:
    """The truth video a predicted video name stands for: the same key, or a key followed by a non-digit
    (`15_0101disgustingteeth`, `15_0101.mp4` → `15_0101`; `006_10` is not `006_1`); a path's last part is tried
    too. The longest such key wins; None when there is none."""
    known = set(keys)
    for candidate in (name, re.split(r"[\\/]", name)[-1]):
        if candidate in known:
            return candidate
        hits = [k for k in keys if candidate.startswith(k) and not candidate[len(k) :][:1].isdigit()]
        if hits:
            return max(hits, key=len)
    return None


def spot_eval(
    predicted: Union[pd.DataFrame, str, Path],
    truth: Union[pd.DataFrame, str, Path],
    iou: float = 0.5,
    bootstrap: int = DEFAULT_REPLICATES,
    seed: int = 0,
) -> dict[str, Any]:
    """Score predicted intervals against the truth (MEGC; see the module docstring).

    Returns {"micro" | "macro" | "overall": {tp, fp, fn, precision, recall, f1, ci95}, "videos": [{video,
    subject, truths, micro: {tp, fp, fn}, macro: {...}}], "unknown_videos": [...], "iou", "bootstrap"}.
    precision / recall / F1 are None where undefined (no prediction / no truth / neither); `ci95` is [low, high]
    or None (bootstrap 0, or F1 undefined). Predictions for a video the truth does not have count as FPs and are
    named in a warning; truth videos without predictions count their FNs.
    """
    if not 0.0 < iou <= 1.0:
        raise UserError(f"{arg('iou', iou)} must be in (0, 1]")
    if not 0 <= bootstrap <= MAX_BOOTSTRAP:
        raise UserError(f"{arg('bootstrap', bootstrap)} must be 0 (off) to {MAX_BOOTSTRAP:,}")
    if seed < 0:
        raise UserError(f"{arg('seed', seed)}: a bootstrap seed is a non-negative integer")
    truth_frame = _truth_table(truth)
    pred_frame = read_predictions(predicted)
    keys = sorted(set(truth_frame["video"]))
    subjects_of = dict(zip(truth_frame["video"], truth_frame["subject"]))
    mapped = [match_video(v, keys) for v in pred_frame["video"]]
    pred_frame = pred_frame.assign(truth_video=[m if m is not None else "" for m in mapped])
    unknown = sorted(set(pred_frame.loc[pred_frame["truth_video"] == "", "video"]))
    if unknown:
        shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        logger.warning(
            "predictions for %d video(s) not in the truth, counted as false positives: %s", len(unknown), shown
        )
    videos: list[dict[str, Any]] = []
    for video in keys:
        truths = truth_frame[truth_frame["video"] == video]
        preds = pred_frame[pred_frame["truth_video"] == video]
        entry: dict[str, Any] = {"video": video, "subject": subjects_of[video], "known": True}
        for kind in KINDS:
            t = truths[truths["kind"] == kind]
            p = preds[preds["kind"] == kind]
            matches = match_intervals(
                list(zip(t["onset"].tolist(), t["offset"].tolist())),
                list(zip(p["onset"].tolist(), p["offset"].tolist())),
                iou,
            )
            entry[kind] = {"tp": len(matches), "fp": len(p) - len(matches), "fn": len(t) - len(matches)}
        videos.append(entry)
    for video in unknown:
        preds = pred_frame[pred_frame["video"] == video]
        entry = {"video": video, "subject": subject_of(video), "known": False}
        for kind in KINDS:
            entry[kind] = {"tp": 0, "fp": int((preds["kind"] == kind).sum()), "fn": 0}
        videos.append(entry)
    result: dict[str, Any] = {}
    subjects = sorted({v["subject"] for v in videos})
    position = {s: i for i, s in enumerate(subjects)}
    # counts[subject, kind (micro, macro, overall), tp/fp/fn]
    counts = np.zeros((len(subjects), 3, 3))
    for v in videos:
        for k, kind in enumerate(KINDS):
            counts[position[v["subject"]], k] += [v[kind][c] for c in COUNTS]
    counts[:, 2] = counts[:, 0] + counts[:, 1]
    intervals = _bootstrap(counts, bootstrap, seed) if bootstrap and len(subjects) else [None, None, None]
    for k, name in enumerate((*KINDS, "overall")):
        tp, fp, fn = (int(x) for x in counts[:, k].sum(axis=0))
        result[name] = {"tp": tp, "fp": fp, "fn": fn, **_scores(tp, fp, fn), "ci95": intervals[k]}
    result["videos"] = videos
    result["unknown_videos"] = unknown
    result["iou"] = iou
    result["bootstrap"] = bootstrap
    result["subjects"] = len(subjects)
    return result


def _bootstrap(counts: np.ndarray, replicates: int, seed: int) -> list[Optional[list[float]]]:
    """95% percentile interval of each kind's F1 when subjects are resampled with replacement ([S, 3, 3] counts)."""
    weights = draw_multiplicities(counts.shape[0], replicates, seed)  # [B, S]
    summed = np.tensordot(weights, counts, axes=(1, 0))  # [B, 3 kinds, tp/fp/fn]
    tp, fp, fn = summed[..., 0], summed[..., 1], summed[..., 2]
    denominator = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denominator > 0, 2 * tp / np.where(denominator > 0, denominator, 1), np.nan)
    return [percentile_interval(f1[:, k]) for k in range(3)]


__all__ = [
    "PREDICTED_COLUMNS",
    "SPOTS_COLUMNS",
    "interval_iou",
    "match_intervals",
    "match_video",
    "read_predictions",
    "spot_eval",
]
