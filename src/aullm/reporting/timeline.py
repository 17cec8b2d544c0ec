"""A video's timeline picture (`aullm predict --report`: DIR/<video>_timeline.png).

Top panel: the spotting score over time with the spotted intervals shaded (micro- and macro-expressions in
different colours), the spotting threshold as a dashed line and, when there are few enough events to tell apart,
each event's apex thumbnail above it. Under it, one strip per AU (labelled with its FACS name): each event (or
sliding window) drawn over its time span in the colour of its probability, outlined and dotted where the model
decides the AU is present at the bundle's threshold. The x axis is in seconds, with ticks chosen for the video's
length (every 1 s for a 10-second clip, every minute for a 10-minute interview, shown as m:ss).
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pandas as pd

from aullm.core.figures import DPI, new_figure
from aullm.data.aus import au_title

#: Apex thumbnails are drawn when a video has at most this many events.
MAX_THUMBNAILS = 12
#: Shading of spotted intervals by kind (`clip`: a short input read whole).
KIND_COLOURS = {"micro": "#d62728", "macro": "#1f77b4", "clip": "#7f7f7f"}
#: Tick spacings to choose from, in seconds.
TICK_STEPS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
PROB_CMAP = "viridis"


@dataclass
class TimelineData:
    """What one video's picture shows (plain data: tables and arrays, so any layer can make one)."""

    name: str
    duration_s: float
    aus: list[str]
    thresholds: np.ndarray
    table: pd.DataFrame  # events (t_onset_s, t_offset_s, kind, AU<k>_prob, AU<k>) or windows (t_start_s, t_end_s…)
    mode: str = "events"  # events | windows | clip
    signal: Optional[pd.DataFrame] = None  # time_s, score (spotting)
    threshold: Optional[float] = None
    stills: Mapping[int, np.ndarray] = field(default_factory=dict)  # event number → gray apex thumbnail


def tick_step(duration_s: float, target: int = 10) -> float:
    """The tick spacing giving about `target` ticks (at most) over `duration_s`."""
    for step in TICK_STEPS:
        if duration_s / step <= target:
            return float(step)
    return float(TICK_STEPS[-1])


def format_seconds(value: float, step: float) -> str:
    """Tick labels: seconds for short videos (`2.5`), m:ss from two minutes on (`4:30`), h:mm:ss past an hour."""
    if step >= 60 or (value >= 120 and step >= 1):
        total = int(round(value))
        hours, rest = divmod(total, 3600)
        minutes, seconds = divmod(rest, 60)
        return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
    return f"{value:g}" if step >= 1 else f"{value:.1f}"


def _spans(data: TimelineData) -> tuple[np.ndarray, np.ndarray]:
    """Each row's time span; an event's offset frame is included (its end is one frame later, at least 1 px)."""
    table = data.table
    if data.mode == "windows":  # each window drawn over its own stride around its centre: one continuous strip
        centre = (table["t_start_s"].to_numpy(float) + table["t_end_s"].to_numpy(float)) / 2
        if len(centre) < 2:
            return table["t_start_s"].to_numpy(float), table["t_end_s"].to_numpy(float)
        edges = np.concatenate([[centre[0] - (centre[1] - centre[0]) / 2], (centre[1:] + centre[:-1]) / 2])
        last = centre[-1] + (centre[-1] - centre[-2]) / 2
        return edges, np.append(edges[1:], last)
    start = table["t_onset_s"].to_numpy(float)
    end = table["t_offset_s"].to_numpy(float)
    minimum = max(data.duration_s / 400, 1e-3)
    return start, np.maximum(end, start + minimum)


def _rows(data: TimelineData) -> pd.DataFrame:
    table = data.table
    if data.mode != "windows" and "event" in table:
        table = table[table["event"].notna()]
    return table


def plot_timeline(data: TimelineData) -> bytes:
    """The picture as PNG bytes (see the module's docstring)."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    rows = _rows(data)
    shown = dataclasses.replace(data, table=rows)
    thumbs = data.mode != "windows" and 0 < len(rows) <= MAX_THUMBNAILS and bool(data.stills)
    n_aus = len(data.aus)
    score_panel = data.mode != "windows" or data.signal is not None
    score_height = 2.2 if data.signal is not None else 0.7
    heights = ([0.75] if thumbs else []) + ([score_height] if score_panel else []) + [0.28 * n_aus + 0.2]
    fig = new_figure(11.0, 0.6 + sum(heights))
    grid = fig.add_gridspec(len(heights), 2, height_ratios=heights, width_ratios=[1, 0.015])
    thumb_ax = fig.add_subplot(grid[0, 0]) if thumbs else None
    strips = fig.add_subplot(grid[-1, 0])
    top = fig.add_subplot(grid[-2, 0], sharex=strips) if score_panel else None
    bar_ax = fig.add_subplot(grid[-1, 1])
    duration = max(float(data.duration_s), 1e-3)
    step = tick_step(duration)

    starts, ends = _spans(shown)
    if top is not None:
        _score_panel(top, data, rows, starts, ends)
    fig.suptitle(_title(data, rows), fontsize=10, x=0.01, ha="left")
    if thumb_ax is not None and top is not None:
        _thumbnails(thumb_ax, top, rows, starts, ends, data.stills)

    # --- one strip per AU
    cmap = colormaps[PROB_CMAP]
    norm = Normalize(0.0, 1.0)
    for k, au in enumerate(data.aus):
        y = n_aus - 1 - k
        probs = rows[f"{au}_prob"].to_numpy(float) if len(rows) else np.zeros(0)
        decided = rows[au].to_numpy(dtype=float, na_value=np.nan) if len(rows) else np.zeros(0)
        for s, e, p, d in zip(starts, ends, probs, decided):
            if not np.isfinite(p):
                continue
            strips.add_patch(_rect(s, y, e - s, cmap(norm(p)), active=bool(d == 1), windows=data.mode == "windows"))
            if d == 1 and data.mode != "windows":
                strips.plot([(s + e) / 2], [y + 0.5], marker="o", ms=3, color="white", mec="black", mew=0.6)
    strips.set_ylim(0, n_aus)
    strips.set_yticks(np.arange(n_aus) + 0.5)
    labels = [f"{au_title(au)}  ≥{t:.2f}" for au, t in zip(data.aus, data.thresholds)]
    strips.set_yticklabels(labels[::-1], fontsize=7)
    strips.set_xlim(0, duration)
    strips.xaxis.set_major_locator(MultipleLocator(step))
    strips.xaxis.set_major_formatter(FuncFormatter(lambda v, _: format_seconds(v, step)))
    strips.tick_params(labelsize=7)
    unit = "m:ss" if step >= 60 or (duration >= 120 and step >= 1) else "s"
    strips.set_xlabel(f"time ({unit}); outlined/dotted: AU present at the bundle's threshold", fontsize=8)
    strips.grid(axis="x", color="0.85", lw=0.5)
    strips.set_axisbelow(True)
    from matplotlib.cm import ScalarMappable

    colourbar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=bar_ax)
    colourbar.set_label("AU probability", fontsize=7)
    colourbar.ax.tick_params(labelsize=6)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _score_panel(top, data: TimelineData, rows: pd.DataFrame, starts: np.ndarray, ends: np.ndarray) -> None:
    """The spotting score, its threshold and the spotted intervals shaded by kind."""
    from matplotlib.patches import Patch

    if data.signal is not None and len(data.signal):
        top.plot(data.signal["time_s"], data.signal["score"], color="black", lw=0.8, label="spotting score")
    if data.threshold is not None and np.isfinite(data.threshold):
        top.axhline(data.threshold, color="0.4", ls="--", lw=0.8, label=f"threshold {data.threshold:.2f}")
    kinds = rows["kind"].astype(str).tolist() if "kind" in rows else []
    if data.mode != "windows":
        for s, e, kind in zip(starts, ends, kinds):
            top.axvspan(s, e, color=KIND_COLOURS.get(kind, "#7f7f7f"), alpha=0.3, lw=0)
    handles, _ = top.get_legend_handles_labels()
    for kind in ("micro", "macro", "clip"):
        if kind in kinds:
            label = {"micro": "micro-expression", "macro": "macro-expression", "clip": "whole input (one clip)"}[kind]
            handles.append(Patch(color=KIND_COLOURS[kind], alpha=0.3, label=label))
    if handles:
        top.legend(handles=handles, loc="upper right", fontsize=7, ncol=len(handles), frameon=False)
    if data.signal is None:
        top.set_yticks([])
    else:
        top.set_ylabel("spotting\nscore", fontsize=8)
    top.tick_params(labelbottom=False, labelsize=7)


def _title(data: TimelineData, rows: pd.DataFrame) -> str:
    length = (
        format_seconds(data.duration_s, tick_step(data.duration_s))
        if data.duration_s >= 120
        else f"{data.duration_s:.1f} s"
    )
    if data.mode == "windows":
        return f"{data.name} — {length}, {len(rows)} windows"
    if data.mode == "clip":
        return f"{data.name} — {length}, read whole as one clip"
    kinds = rows["kind"].astype(str).value_counts() if len(rows) else pd.Series(dtype=int)
    found = ", ".join(f"{int(kinds[k])} {k}" for k in ("micro", "macro") if k in kinds) or "no expression spotted"
    return f"{data.name} — {length}, {found}"


def _rect(x: float, y: float, width: float, colour: Sequence[float], *, active: bool, windows: bool):
    from matplotlib.patches import Rectangle

    if windows:  # overlapping windows: the later one is drawn over the earlier, outline only where present
        return Rectangle((x, y + 0.1), width, 0.8, facecolor=colour, edgecolor="black" if active else "none", lw=0.4)
    return Rectangle(
        (x, y + 0.08), width, 0.84, facecolor=colour, edgecolor="black" if active else "0.6", lw=0.9 if active else 0.3
    )


def _thumbnails(
    ax, top, rows: pd.DataFrame, starts: np.ndarray, ends: np.ndarray, stills: Mapping[int, np.ndarray]
) -> None:
    """Each event's apex thumbnail in a row of its own above the score panel, spread evenly (close events do not
    cover each other) and joined to its interval by a line."""
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage
    from matplotlib.patches import ConnectionPatch

    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    events = rows["event"].astype(int).tolist()
    for i, (event, s, e) in enumerate(zip(events, starts, ends)):
        still = stills.get(event)
        if still is None:
            continue
        slot = (i + 0.5) / len(events)
        image = OffsetImage(np.repeat(still[..., None], 3, axis=2), zoom=40 / max(still.shape))
        ax.add_artist(AnnotationBbox(image, (slot, 0.6), frameon=True, pad=0.1))
        ax.text(slot, 0.02, f"#{event}", fontsize=6, ha="center", va="bottom", color="0.3")
        link = ConnectionPatch(
            xyA=(slot, 0.0),
            coordsA=ax.transAxes,
            xyB=((s + e) / 2, 1.0),
            coordsB=top.get_xaxis_transform(),
            color="0.5",
            lw=0.6,
        )
        fig = ax.get_figure()
        fig.add_artist(link)


__all__ = ["MAX_THUMBNAILS", "TimelineData", "format_seconds", "plot_timeline", "tick_step"]
