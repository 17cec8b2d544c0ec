"""Figure primitives shared by report plots and `aullm explain` pictures.

matplotlib's object API (`Figure` + Agg canvas) instead of pyplot: creating a figure never switches a global
backend or opens a window, and it works on headless machines.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 120


def new_figure(width: float = 8.0, height: float = 4.5) -> Figure:
    """A figure bound to the Agg canvas (no pyplot state)."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: Path) -> Path:
    """Write a PNG (folders created) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)
    return path


__all__ = ["DPI", "new_figure", "save_figure"]
