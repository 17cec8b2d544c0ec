"""`aullm explain`'s pictures show what the numbers hold: SE weights coloured over their own range (not one flat
block on a fixed 0–1 scale), and Grad-CAM maps also drawn on one shared scale so AUs can be compared."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aullm.inference import explain_plots


@pytest.fixture
def figures(monkeypatch) -> list:
    """The figures the plot functions make, kept for inspection (and still saved)."""
    kept: list = []
    save = explain_plots.save_figure

    def keep(fig, path):
        kept.append(fig)
        return save(fig, path)

    monkeypatch.setattr(explain_plots, "save_figure", keep)
    return kept


def test_se_weights_are_coloured_over_their_own_range(tmp_path: Path, figures) -> None:
    rng = np.random.default_rng(0)
    weights = 0.5 + 0.01 * rng.standard_normal((32, 4))  # a trained SE layer: sigmoid outputs close together
    path = explain_plots.plot_se_weights(weights, ["1-2", "2-3", "3-4", "4-6"], tmp_path / "se_weights.png")
    assert path.is_file()
    (image,) = figures[0].axes[0].images
    assert image.norm.vmin == pytest.approx(weights.min()) and image.norm.vmax == pytest.approx(weights.max())
    colours = {tuple(np.round(c, 3)) for c in image.to_rgba(weights).reshape(-1, 4)}
    assert len(colours) > 50  # on 0–1 these 128 weights took a handful of colours: one flat block
    equal = explain_plots.plot_se_weights(np.full((8, 2), 0.5), ["a", "b"], tmp_path / "flat.png")
    assert equal.is_file()  # all equal: no zero-width scale


def test_gradcam_has_a_shared_scale_view_where_a_weak_map_looks_weak(tmp_path: Path, figures) -> None:
    frame = np.full((64, 64), 128, np.uint8)
    strong = np.zeros((64, 64))
    strong[10, 10] = 1.0
    weak = np.zeros((64, 64))
    weak[40, 40] = 0.1
    heats, titles = {"AU1": strong, "AU4": weak}, {"AU1": "AU1", "AU4": "AU4"}
    explain_plots.plot_gradcam_grid(frame, heats, titles, tmp_path / "own.png")
    explain_plots.plot_gradcam_grid(frame, heats, titles, tmp_path / "shared.png", shared=True)
    own, shared = (fig.axes[1].images[0].get_array() for fig in figures)  # axes[1]: AU4's panel
    # on its own scale the weak map's peak is drawn in the top colour (jet's red), as the strong map's; on the
    # shared scale at a tenth of it (jet's blue)
    assert np.allclose(own[40, 40], figures[0].axes[0].images[0].get_array()[10, 10])
    assert own[40, 40, 0] > shared[40, 40, 0] + 0.15 and shared[40, 40, 2] > own[40, 40, 2] + 0.3
    label = figures[1].axes[-1].get_ylabel()
    assert "largest map" in label and "one scale" in label
