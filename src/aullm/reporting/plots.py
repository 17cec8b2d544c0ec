"""PNG plots for reports: per-AU F1 bars, the Fig. 2-style ablation chart, training-loss curves, conventions.

Uses matplotlib's object API (`Figure` + Agg canvas) instead of pyplot, so importing this module never switches a
global backend or opens a window, and it works on headless machines. Every function takes plain data (dicts of
numbers) and a path. The figure primitives are in `aullm.core.figures`, shared with `aullm explain`'s pictures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from aullm.core.console import logger
from aullm.core.figures import new_figure, save_figure

#: A value with an optional error bar: (mean, std), or (mean, std, low, high) where [low, high] is a 95% interval
#: (drawn instead of ± std when present).
Stat = tuple[Optional[float], ...]


def _value(stat: Stat | float | None) -> tuple[float, float, float]:
    """(value, error below, error above); errors are 0 when there is no bar."""
    if stat is None:
        return np.nan, 0.0, 0.0
    if isinstance(stat, tuple):
        mean = np.nan if stat[0] is None else float(stat[0])
        if len(stat) >= 4 and stat[2] is not None and stat[3] is not None:
            return mean, max(0.0, mean - float(stat[2])), max(0.0, float(stat[3]) - mean)
        std = 0.0 if len(stat) < 2 or stat[1] is None else float(stat[1])
        return mean, std, std
    return float(stat), 0.0, 0.0


def grouped_bars(
    ax,
    groups: Sequence[str],
    series: Mapping[str, Mapping[str, Stat | float | None]],
    hatched: Sequence[str] = (),
    label_values: bool = False,
    colors: Optional[Mapping[str, str]] = None,
) -> None:
    """Bars of several series side by side in each group; a missing value leaves a gap. Values in %.

    `colors` pins a colour per series name, so the same series looks the same in every panel."""
    names = list(series)
    width = 0.8 / max(1, len(names))
    x = np.arange(len(groups))
    for i, name in enumerate(names):
        vals = [_value(series[name].get(g)) for g in groups]
        means = np.array([v[0] for v in vals])
        errors = np.array([[v[1] for v in vals], [v[2] for v in vals]])
        offset = (i - (len(names) - 1) / 2) * width
        has_bar = errors.sum(axis=0) > 0
        bars = ax.bar(
            x + offset,
            means,
            width,
            yerr=np.where(has_bar, errors, np.nan),
            capsize=2,
            label=name,
            hatch="//" if name in hatched else None,
            edgecolor="black",
            linewidth=0.4,
            color=(colors or {}).get(name, f"C{i % 10}"),
        )
        if label_values:
            ax.bar_label(bars, labels=["" if np.isnan(m) else f"{m:.1f}" for m in means], fontsize=7, padding=1)
    ax.set_xticks(x, groups)


def plot_per_au(
    series: Mapping[str, Mapping[str, Stat | float | None]],
    aus: Sequence[str],
    path: Path,
    title: str,
    hatched: Sequence[str] = (),
    ylabel: str = "F1 (%)",
) -> Path:
    """Per-AU F1 bars across runs (plus an 'Avg.' group); `hatched` names reference series (e.g. the paper)."""
    groups = [*aus, "Avg."]
    fig = new_figure(min(16.0, max(7.0, 3.0 + 0.4 * len(groups) * max(1, len(series)))), 4.8)
    ax = fig.add_subplot()
    grouped_bars(ax, groups, series, hatched=hatched)
    ax.set_ylim(0, 100)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return save_figure(fig, path)


def plot_differences(
    series: Mapping[str, Mapping[str, Optional[tuple[float, float, float]]]],
    groups: Sequence[str],
    path: Path,
    title: str,
) -> Path:
    """Paired differences (points) with their 95% intervals: one marker per run and group, a line at zero."""
    names = list(series)
    fig = new_figure(min(16.0, max(7.0, 2.0 + 0.6 * len(groups) * max(1, len(names)))), 4.5)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(names))
    x = np.arange(len(groups))
    for i, name in enumerate(names):
        cells = [series[name].get(g) for g in groups]
        diff = np.array([np.nan if c is None else c[0] for c in cells])
        below = np.array([0.0 if c is None else c[0] - c[1] for c in cells])
        above = np.array([0.0 if c is None else c[2] - c[0] for c in cells])
        ax.errorbar(
            x + (i - (len(names) - 1) / 2) * width,
            diff,
            yerr=np.vstack([below, above]),
            fmt="o",
            capsize=3,
            color=f"C{i % 10}",
            label=name,
        )
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(x, list(groups))
    ax.set_ylabel("difference (percentage points)")
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return save_figure(fig, path)


def plot_ablation(
    panels: Mapping[str, Mapping[str, Mapping[str, float | Stat | None]]],
    variants: Sequence[str],
    path: Path,
    title: str = "Ablation (average F1, %)",
) -> Path:
    """Fig. 2 of the paper: per panel (e.g. 'CASME II (paper)', 'SynME (ours)'), groups = LLMs, bars = variants.

    panels: {panel: {group: {variant: value}}}. Value labels are printed because the differences are small.
    """
    fig = new_figure(5.5 * len(panels) + 1.0, 5.0)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    colors = {v: f"C{i % 10}" for i, v in enumerate(variants)}
    for ax, (panel, data) in zip(axes, panels.items()):
        groups = list(data)
        series = {v: {g: data[g].get(v) for g in groups} for v in variants}  # fixed slots, gaps where missing
        grouped_bars(ax, groups, series, label_values=True, colors=colors)
        present = [_value(s)[0] for d in data.values() for s in d.values()]
        present = [p for p in present if not np.isnan(p)]
        low = max(0.0, (min(present) if present else 0.0) - 10.0)
        ax.set_ylim(np.floor(low / 5) * 5, min(100.0, (max(present) if present else 100.0) + 5.0))
        ax.set_title(panel)
        ax.set_ylabel("Avg. F1 (%)")
        ax.grid(axis="y", alpha=0.3)
    handles = [Patch(facecolor=colors[v], edgecolor="black", linewidth=0.4, label=v) for v in variants]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(variants), fontsize=8)
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_conventions(
    series: Mapping[str, Mapping[str, Stat | float | None]],
    conventions: Mapping[str, str],
    path: Path,
    title: str = "Average over AUs under every convention (%)",
    hatched: Sequence[str] = (),
) -> Path:
    """Average score of each run and each trivial row under each metric convention (labels say which is
    optimistic), so the distance to chance is visible at a glance."""
    fig = new_figure(max(8.0, 2.2 * len(conventions) + 2), 4.8)
    ax = fig.add_subplot()
    keys = list(conventions)
    grouped_bars(ax, keys, series, hatched=hatched)
    ax.set_xticks(np.arange(len(keys)), [conventions[k] for k in keys], fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("%")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return save_figure(fig, path)


def read_train_logs(run_dir: Path) -> pd.DataFrame:
    """All folds' train_log.csv (`seed, epoch, loss`) with a `fold` column; empty when there are none."""
    frames = []
    for log in sorted(Path(run_dir).glob("folds/*/train_log.csv")):
        try:
            frame = pd.read_csv(log)
        except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            logger.warning("%s is unreadable (%s); its loss curve is left out of the report", log, err)
            continue
        if not {"seed", "epoch", "loss"} <= set(frame.columns):
            logger.warning("%s is unreadable (no seed, epoch, loss columns); its loss curve is left out", log)
        elif not frame.empty:
            frames.append(frame.assign(fold=log.parent.name))
    if not frames:
        return pd.DataFrame(columns=["seed", "epoch", "loss", "fold"])
    return pd.concat(frames, ignore_index=True)


def plot_loss_curves(logs: pd.DataFrame, path: Path, title: str = "Training loss") -> Optional[Path]:
    """Loss per epoch: one thin line per fold and the mean over folds in bold, one colour per seed.

    Returns None (and writes nothing) when there is no log.
    """
    if logs.empty:
        return None
    fig = new_figure(8.0, 4.5)
    ax = fig.add_subplot()
    colors = [f"C{i}" for i in range(10)]
    many = logs["fold"].nunique() > 40
    for i, (seed, frame) in enumerate(logs.groupby("seed")):
        color = colors[i % len(colors)]
        if not many:
            for _, fold in frame.groupby("fold"):
                ax.plot(fold["epoch"], fold["loss"], color=color, alpha=0.15, linewidth=0.7)
        mean = frame.groupby("epoch")["loss"].mean()
        ax.plot(
            mean.index,
            mean.to_numpy(),
            color=color,
            linewidth=2.0,
            label=f"seed {seed}: mean of {frame['fold'].nunique()} fold(s)",
        )
    losses = logs["loss"].to_numpy(dtype=float)
    positive = losses[np.isfinite(losses) & (losses > 0)]
    if positive.size and positive.max() / positive.min() > 100:
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)
