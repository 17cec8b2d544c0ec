"""`aullm explain`'s pictures (as the paper's Fig. 3): Grad-CAM heatmaps over the apex frame, SE channel weights
over time, and the learned LED temporal matrix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Optional

import numpy as np

from aullm.core.figures import new_figure, save_figure


def _overlay(ax, frame: np.ndarray, heat: np.ndarray, alpha: float = 0.45, peak: Optional[float] = None):
    """Gray frame under a jet heatmap scaled to `peak` (default: the map's own maximum), blended in numpy (one
    image to draw, not two to composite); returns a mappable for the colourbar."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    if peak is None:
        peak = float(np.max(heat)) if heat.size else 0.0
    scaled = heat / peak if peak > 0 else np.zeros_like(heat, dtype=float)
    gray = np.repeat((np.asarray(frame, dtype=float) / 255.0)[..., None], 3, axis=2)
    colour = colormaps["jet"](np.clip(scaled, 0.0, 1.0))[..., :3]
    ax.imshow((1.0 - alpha) * gray + alpha * colour, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    return ScalarMappable(norm=Normalize(0.0, 1.0), cmap="jet")


def plot_gradcam(frame: np.ndarray, heat: np.ndarray, path: Path, title: str = "Grad-CAM") -> Path:
    """One Grad-CAM map over its frame (both [H, W], same size); the colour scale is relative to the map's max."""
    fig = new_figure(5.2, 5.6)
    ax = fig.add_subplot()
    image = _overlay(ax, frame, heat)
    ax.set_title(title, fontsize=9)
    bar = fig.colorbar(image, ax=ax, shrink=0.8)
    bar.set_label("Grad-CAM (fraction of this map's max)", fontsize=8)
    return save_figure(fig, path)


def plot_gradcam_grid(
    frame: np.ndarray,
    heats: Mapping[str, np.ndarray],
    titles: Mapping[str, str],
    path: Path,
    title: str = "Grad-CAM per AU",
    shared: bool = False,
) -> Path:
    """All AUs' Grad-CAM maps over the same frame, side by side: each scaled to its own max (where each map
    looks), or with `shared` all on one scale, the largest map's max (how strong each AU's evidence is, comparable
    between AUs)."""
    names = list(heats)
    common = max((float(np.max(h)) for h in heats.values() if h.size), default=0.0) if shared else None
    cols = min(4, max(1, len(names)))
    rows = int(np.ceil(len(names) / cols))
    fig = new_figure(3.0 * cols + 0.8, 3.3 * rows + 0.6)
    axes = fig.subplots(rows, cols, squeeze=False)
    image = None
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    for ax, name in zip(axes.ravel(), names):
        image = _overlay(ax, frame, heats[name], peak=common)
        ax.set_title(titles.get(name, name), fontsize=8)
    if image is not None:
        bar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6)
        label = f"fraction of the largest map's max ({common:.3g}), one scale for all" if shared else None
        bar.set_label(label or "fraction of each map's max", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def plot_se_weights(
    weights: np.ndarray, time_labels: Sequence[str], path: Path, title: str = "SE channel weights over time"
) -> Path:
    """The SE layer's channel weights [C, T'] as a heatmap (paper Fig. 3d): which channels it amplifies when.

    The colour scale spans the weights' own range: sigmoid outputs of a trained SE layer often sit within a few
    hundredths of one another, which a fixed 0–1 scale shows as one flat block."""
    weights = np.asarray(weights, dtype=float)
    channels, steps = weights.shape
    low, high = (float(weights.min()), float(weights.max())) if weights.size else (0.0, 1.0)
    if high - low < 1e-9:  # all equal: a small band around the value, so the one colour is the middle one
        low, high = low - 1e-3, high + 1e-3
    fig = new_figure(max(5.5, 1.5 + 0.9 * steps), 6.0)
    ax = fig.add_subplot()
    image = ax.imshow(weights, aspect="auto", cmap="viridis", vmin=low, vmax=high, interpolation="nearest")
    ax.set_xticks(np.arange(steps), list(time_labels), fontsize=8)
    tick = max(1, channels // 8)
    ax.set_yticks(np.arange(0, channels, tick))
    ax.set_xlabel("time step (sampled input frames it covers)")
    ax.set_ylabel("channel")
    ax.set_title(title, fontsize=9)
    bar = fig.colorbar(image, ax=ax)
    bar.set_label(f"SE weight (sigmoid; colours span this clip's {low:.3f}–{high:.3f})")
    return save_figure(fig, path)


def plot_led_matrix(matrices: Mapping[str, np.ndarray], path: Path, title: str = "LED filter matrix") -> Path:
    """T×T LED matrices side by side (e.g. learned vs initial), values printed in each cell; row i = input
    frame, column j = output frame; a symmetric diverging colour scale so the sign reads at a glance."""
    fig = new_figure(4.6 * len(matrices) + 0.6, 4.8)
    axes = fig.subplots(1, len(matrices), squeeze=False)[0]
    for ax, (name, matrix) in zip(axes, matrices.items()):
        matrix = np.asarray(matrix, dtype=float)
        t = matrix.shape[0]
        limit = float(np.abs(matrix).max()) or 1.0
        image = ax.imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit)
        for i in range(t):
            for j in range(t):
                value = matrix[i, j]
                ax.text(
                    j,
                    i,
                    f"{value:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7 if t <= 8 else 5,
                    color="white" if abs(value) > 0.6 * limit else "black",
                )
        ax.set_xticks(np.arange(t), [str(j + 1) for j in range(t)])
        ax.set_yticks(np.arange(t), [str(i + 1) for i in range(t)])
        ax.set_xlabel("output frame j")
        ax.set_ylabel("input frame i")
        ax.set_title(name, fontsize=9)
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)
