"""What the model looks at (paper Fig. 3): Grad-CAM per AU, SE channel weights over time, the learned LED matrix.

Grad-CAM (Selvaraju et al.) is taken on the backbone's last conv block — the SE-attended map `x_att`
[C, T', H', W'] after the second 3D conv, the last layer that still has spatial layout. For AU k:
α_c = mean over (t, h, w) of ∂logit_k/∂A_c, CAM = ReLU(Σ_c α_c A_c), averaged over time. The map is placed on the
input grid through the layers' receptive-field geometry (each cell's centre in input pixels), not stretched over
the whole frame, so a peak lands where the evidence is. The gradient flows through the frozen LLM: the map explains
the full model's decision, not a proxy.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from aullm.config import FaceCrop
from aullm.core.console import logger, track
from aullm.core.errors import UserError
from aullm.data.aus import AU_NAMES, au_title
from aullm.data.clips import frame_number
from aullm.data.decode import read_frame
from aullm.data.stream import FrameStream
from aullm.inference.predict import ClipRequest, DecodedClip, decode_request, model_input, resolve_face_crop
from aullm.models.blocks.backbone import AUBackbone, FrameSqueezeExcitation

#: Pixels of the longer side of the frame the heatmaps are drawn on.
DISPLAY_SIZE = 256


@dataclass
class Explanation:
    """Everything the PNGs show for one clip, as arrays (also useful without plotting)."""

    clip: str
    aus: list[str]
    probs: np.ndarray  # [K]
    thresholds: np.ndarray  # [K]
    cams: np.ndarray  # [K, size, size] on the model's input grid, ≥ 0, not normalised
    cams_time: np.ndarray  # [K, T'] mean CAM per time step (where in the clip the evidence is)
    apex_pos: int  # position of the shown frame in the clip
    apex_estimated: bool
    frame: np.ndarray  # gray uint8 [D, D]: the apex frame at display size (cropped like the model's input)
    se_weights: Optional[np.ndarray]  # [C, T'] or None (a backbone without SE)
    time_labels: list[str]  # one per T'
    led_matrix: Optional[np.ndarray]  # [T, T] learned, or None (flow input)
    led_initial: Optional[np.ndarray]
    led_params: dict[str, float]
    #: Which frame of which video the heatmaps are drawn on, in the video's own numbers (and time, when known).
    frame_label: str = ""


def find_backbone(model: Any) -> AUBackbone:
    """The LED/3D-CNN backbone Grad-CAM hooks into (au_llm, aullmpp, sssnet_led have one)."""
    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, AUBackbone):
        raise UserError(
            f"explain needs a model with the LED 3D-CNN backbone (au_llm, aullmpp, sssnet_led); "
            f"this bundle holds {type(model).__name__}"
        )
    return backbone


def _geometry(backbone: Any) -> tuple[float, float]:
    """(offset, stride) in input pixels of the last conv block's cells: cell i is centred on offset + stride·i."""
    k1 = backbone.conv1.kernel_size[-1]
    p1, s1 = backbone.pool1.kernel_size[-1], backbone.pool1.stride[-1]
    k2 = backbone.conv2.kernel_size[-1]
    return (k1 - 1) / 2 + (p1 - 1) / 2 + s1 * (k2 - 1) / 2, float(s1)


def cam_to_input(cam: np.ndarray, offset: float, stride: float, size: int) -> np.ndarray:
    """A [H', W'] map → [size, size]: bilinear between cell centres, edge cells extended to the border."""
    cells = np.arange(cam.shape[0]) * stride + offset
    pixels = np.arange(size, dtype=np.float64)
    rows = np.stack([np.interp(pixels, cells, row) for row in cam])  # [H', size]
    return np.stack([np.interp(pixels, cells, col) for col in rows.T]).T  # [size, size]


def _time_labels(backbone: Any, steps: int, frames: int) -> list[str]:
    """Which sampled input frames (1-based) each time step of the map covers (LED output frame 0 is dropped)."""
    if backbone.input_kind != "clip":
        return ["flow"] * steps
    k2 = backbone.conv2.kernel_size[0]
    labels = []
    for t in range(steps):
        first, last = t + 2, min(frames, t + 1 + k2)
        labels.append(f"f{first}" if first == last else f"f{first}–{last}")
    return labels


def gradcam(model: Any, x: torch.Tensor, device: torch.device) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """(probs [K], cams [K, T', H', W'], SE weights [C, T'] or None) for one clip x [1, ...]."""
    backbone = find_backbone(model)
    model.eval()
    backbone.capture_activations = True
    try:
        with torch.enable_grad():
            logits = model(x.to(device)).logits.float()[0]
            acts = backbone.last_activations
            if acts is None or not acts.requires_grad:
                raise UserError("the backbone's activations carry no gradient; cannot compute Grad-CAM")
            cams = []
            for k in range(logits.shape[0]):
                (grad,) = torch.autograd.grad(logits[k], acts, retain_graph=k + 1 < logits.shape[0])
                weights = grad[0].float().mean(dim=(1, 2, 3))
                cams.append(F.relu((weights[:, None, None, None] * acts[0].float()).sum(0)).detach().cpu().numpy())
        se = backbone.se.last_weights if isinstance(backbone.se, FrameSqueezeExcitation) else None
        se_weights = se[0].float().cpu().numpy() if se is not None else None
        probs = torch.sigmoid(logits.detach()).cpu().numpy()
    finally:
        backbone.capture_activations = False
        backbone.last_activations = None
    return probs, np.stack(cams), se_weights


def estimate_apex(clip: np.ndarray) -> int:
    """The frame that differs most from the first after removing the global brightness change (a stand-in for
    the annotated apex when none is given)."""
    if len(clip) < 2:
        return 0
    diff = clip.astype(np.float32) - clip[:1].astype(np.float32)
    diff -= diff.mean(axis=(1, 2), keepdims=True)
    return int(np.abs(diff).mean(axis=(1, 2)).argmax())


def _display_frame(decoded: DecodedClip, pos: int) -> np.ndarray:
    """The frame the heatmaps are drawn on, read and cropped as the model's input was, at DISPLAY_SIZE."""
    assert decoded.source is not None
    return read_frame(decoded.source, pos, DISPLAY_SIZE, decoded.crop)


def _led(model: Any, frames: int) -> tuple[Optional[np.ndarray], Optional[np.ndarray], dict[str, float]]:
    led = find_backbone(model).led
    if led is None:
        return None, None, {}
    from aullm.models.blocks.led import led_matrix

    with torch.no_grad():
        learned = led.matrix(frames).float().cpu().numpy()
        a0, r10, r20 = (torch.tensor(v, dtype=torch.float64) for v in led.init_values)
        initial = led_matrix(a0, r10, r20, frames).float().numpy()
        params = {
            "alpha": led.alpha.item(),
            "r1": led.r1.item(),
            "r2": led.r2.item(),
            "alpha_init": led.init_values[0],
            "r1_init": led.init_values[1],
            "r2_init": led.init_values[2],
        }
    return learned, initial, params


def frame_label(decoded: DecodedClip, pos: int, estimated: bool) -> str:
    """The shown frame in the video's own numbering: `frame 1234 of interview.mp4 (41.13 s)` for a video, the
    file's number for a frames folder, the index for frames in memory; then whether it is the given apex."""
    source = decoded.source
    what = "estimated apex" if estimated else "apex"
    if source is None or source.kind == "flow_image":
        return f"frame {pos + 1} of the clip ({what})"
    if source.kind == "array":
        return f"frame {source.start + pos} of the array ({what})"
    if source.kind == "frames":
        path = source.paths[min(pos, len(source.paths) - 1)]
        number = frame_number(path)
        shown = path.name if number is None else str(number)
        return f"frame {shown} of {path.parent.name} ({what})"
    number = source.start + pos
    try:
        fps = FrameStream(source.paths[0]).info.fps
    except UserError:
        return f"frame {number} of {source.paths[0].name} ({what})"
    return f"frame {number} of {source.paths[0].name} ({number / fps:.2f} s, {what})"


def explain_decoded(
    bundle: Any, decoded: DecodedClip, *, frame: Optional[np.ndarray] = None, label: Optional[str] = None
) -> Explanation:
    """Grad-CAM, SE weights and LED matrix for one decoded clip. `frame`: the frame to draw on at DISPLAY_SIZE
    (default: read again from the clip's source at its apex); `label`: what that frame is (default: its number in
    the video, `frame_label`)."""
    backbone = find_backbone(bundle.model)
    x = model_input([decoded], bundle.size, bundle.frames)
    probs, cams, se_weights = gradcam(bundle.model, x, bundle.device)
    offset, stride = _geometry(backbone)
    on_input = np.stack([cam_to_input(c.mean(axis=0), offset, stride, bundle.size) for c in cams])
    n = decoded.n_frames
    given = decoded.apex_pos if decoded.apex_pos is not None and 0 <= decoded.apex_pos < n else None
    # No apex given: estimated from the motion (or the middle, for optical-flow input).
    apex = int(given) if given is not None else estimate_apex(decoded.clip) if decoded.clip is not None else n // 2
    estimated = given is None
    learned, initial, params = _led(bundle.model, bundle.frames)
    return Explanation(
        clip=decoded.request.name,
        aus=list(bundle.aus),
        probs=probs,
        thresholds=np.asarray(bundle.thresholds),
        cams=on_input,
        cams_time=cams.mean(axis=(2, 3)),
        apex_pos=apex,
        apex_estimated=estimated,
        frame=frame if frame is not None else _display_frame(decoded, apex),
        se_weights=se_weights,
        time_labels=_time_labels(backbone, cams.shape[1], bundle.frames),
        led_matrix=learned,
        led_initial=initial,
        led_params=params,
        frame_label=label if label is not None else frame_label(decoded, apex, estimated),
    )


def _peak(cam: np.ndarray) -> tuple[float, float]:
    """(x, y) of the map's maximum as fractions of the frame's width and height."""
    y, x = np.unravel_index(int(cam.argmax()), cam.shape)
    return (float(x) + 0.5) / cam.shape[1], (float(y) + 0.5) / cam.shape[0]


def write_explanation(ex: Explanation, out: Path) -> list[Path]:
    """The PNGs (gradcam_<AU>.png, gradcam_all.png with each map on its own scale, gradcam_all_shared.png with all
    on one, se_weights.png, led_matrix.png) and explain.json."""
    from aullm.inference.explain_plots import plot_led_matrix, plot_se_weights

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = _write_gradcams(ex, out)
    if ex.se_weights is not None:
        written.append(
            plot_se_weights(
                ex.se_weights, ex.time_labels, out / "se_weights.png", title=f"SE channel weights over time — {ex.clip}"
            )
        )
    if ex.led_matrix is not None and ex.led_initial is not None:
        p = ex.led_params
        written.append(
            plot_led_matrix(
                {
                    f"learned (α={p['alpha']:.3g}, r1={p['r1']:.3g}, r2={p['r2']:.3g})": ex.led_matrix,
                    f"initial (α={p['alpha_init']:.3g}, r1={p['r1_init']:.3g}, r2={p['r2_init']:.3g})": ex.led_initial,
                },
                out / "led_matrix.png",
                title="LED temporal filter W (Eq. 1): input frame i → output frame j",
            )
        )
    (out / "explain.json").write_text(json.dumps(_summary(ex, written), indent=2) + "\n", encoding="utf-8")
    return written


def _write_gradcams(ex: Explanation, out: Path) -> list[Path]:
    """One Grad-CAM picture per AU and the two grids (each map on its own scale; all on one scale)."""
    from aullm.inference.explain_plots import plot_gradcam, plot_gradcam_grid

    display = ex.frame.shape[0]
    heat = {
        au: np.asarray(
            Image.fromarray(ex.cams[k].astype(np.float32), mode="F").resize(
                (display, display), Image.Resampling.BILINEAR
            )
        )
        for k, au in enumerate(ex.aus)
    }
    apex_note = ex.frame_label or (
        f"frame {ex.apex_pos + 1} of the clip" + (" (estimated apex)" if ex.apex_estimated else " (apex)")
    )
    titles = {}
    written: list[Path] = []
    for k, au in enumerate(ex.aus):
        verdict = "active" if ex.probs[k] >= ex.thresholds[k] else "not active"
        titles[au] = f"{au_title(au)}\np = {ex.probs[k]:.2f} ({verdict} at {ex.thresholds[k]:.2f})"
        if not ex.cams[k].max() > 0:
            titles[au] += "\nmap is 0: no positive evidence"
        written.append(
            plot_gradcam(
                ex.frame, heat[au], out / f"gradcam_{au}.png", title=f"Grad-CAM {titles[au]}\n{ex.clip}, {apex_note}"
            )
        )
    for name, shared, what in (
        ("gradcam_all.png", False, "Grad-CAM per AU (last conv block)"),
        ("gradcam_all_shared.png", True, "Grad-CAM per AU on one scale (comparable between AUs)"),
    ):
        written.append(
            plot_gradcam_grid(
                ex.frame, heat, titles, out / name, title=f"{what} — {ex.clip}, {apex_note}", shared=shared
            )
        )
    return written


def _summary(ex: Explanation, written: list[Path]) -> dict:
    """explain.json: the numbers behind the pictures, for scripts."""
    return {
        "clip": ex.clip,
        "apex_position": ex.apex_pos,
        "apex_estimated": ex.apex_estimated,
        "frame": ex.frame_label,
        "aus": {
            au: {
                "prob": float(ex.probs[k]),
                "threshold": float(ex.thresholds[k]),
                "active": bool(ex.probs[k] >= ex.thresholds[k]),
                "cam_max": float(ex.cams[k].max()),
                "cam_peak_xy": list(_peak(ex.cams[k])),
                "cam_by_time": [float(v) for v in ex.cams_time[k]],
            }
            for k, au in enumerate(ex.aus)
        },
        "time_labels": ex.time_labels,
        "led": ex.led_params,
        "files": [p.name for p in written],
    }


def _folder_name(name: str) -> str:
    """A clip's name (from a manifest) as one folder name inside `out`: never `.`, `..` or a path."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")
    return safe if safe.strip(".") else "clip"


def _apex_outside(req: ClipRequest, decoded: DecodedClip) -> Optional[str]:
    """Why a given apex cannot be drawn on (it is not a frame of the clip), or None."""
    if req.apex is None:
        return None
    if decoded.apex_pos is not None and 0 <= decoded.apex_pos < decoded.n_frames:
        return None
    source = decoded.source
    if source is not None and source.kind == "frames" and source.paths:
        span = f"{source.paths[0].name}..{source.paths[-1].name}"
    elif source is not None and source.kind in ("video", "array"):
        span = f"{source.start}..{source.start + decoded.n_frames - 1}"
    else:
        span = f"{decoded.n_frames} frames"
    return f"apex {req.apex} is not a frame of the clip ({span}); give a frame inside it, or none to estimate it"


def explain_requests(
    bundle: Any,
    requests: list[ClipRequest],
    out: Path,
    *,
    face_crop: Optional[FaceCrop] = None,
    per_clip_folders: bool = False,
) -> dict[str, list[Path] | str]:
    """PNGs for each clip into `out` (into out/<clip>/ with `per_clip_folders`); a loaded bundle's model."""
    find_backbone(bundle.model)
    results: dict[str, list[Path] | str] = {}
    many = per_clip_folders
    for req in track(requests, f"explaining {len(requests)} clip(s)"):
        crop = resolve_face_crop(face_crop, bundle.cfg.data.face_crop, req.kind)
        decoded = decode_request(req, bundle.size, bundle.frames, bundle.input_kind, crop)
        if not decoded.ok:
            logger.warning("clip %s failed: %s", req.name, decoded.error)
            results[req.name] = f"failed: {decoded.error}"
            continue
        outside = _apex_outside(req, decoded)
        if outside:
            logger.warning("clip %s failed: %s", req.name, outside)
            results[req.name] = f"failed: {outside}"
            continue
        if decoded.warning:
            logger.warning("%s", decoded.warning)
        target = Path(out) / _folder_name(req.name) if many else Path(out)
        results[req.name] = write_explanation(explain_decoded(bundle, decoded), target)
    return results


__all__ = [
    "AU_NAMES",
    "Explanation",
    "au_title",
    "cam_to_input",
    "estimate_apex",
    "explain_decoded",
    "explain_requests",
    "find_backbone",
    "frame_label",
    "gradcam",
    "write_explanation",
]
