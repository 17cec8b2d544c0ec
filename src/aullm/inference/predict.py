"""Library side of `aullm predict`: AU probabilities and 0/1 decisions for new clips from a model bundle.

Inputs are decoded by the function that decodes training data (`aullm.data.decode`: same frame reader, face crop,
resize) and sampled with the trainer's own test-time sampling (`sample_batch` on a small in-memory
PreparedDataset), so a clip the run has seen gets the same probabilities here as in the run's predictions.csv. A
bad input never stops the others: its row is marked `failed: <reason>` — a clip in which the face crop finds no
face too (`failed: no face found in …`). Over 450 lines because the one decode-and-sample path serves clips,
spotted events and sliding windows alike; splitting it would give each a copy to drift.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import numpy as np
import pandas as pd
import torch

from aullm.config import FaceCrop
from aullm.core.console import logger, track
from aullm.core.errors import UserError, arg, render
from aullm.core.paths import describe
from aullm.data.clips import IMAGE_SUFFIXES, VIDEO_SUFFIXES, FrameError, frame_number, list_frames
from aullm.data.decode import Crop, DecodeSettings, decode_clip
from aullm.data.index import ClipSource

DEFAULT_BATCH = 32
STATUS_OK = "ok"
#: Fewer frames show no motion at all: such a clip is refused rather than predicted from one still frame.
MIN_CLIP_FRAMES = 2


@dataclass
class ClipRequest:
    """One clip to predict: a frames folder, a video, a flow image or frames in memory (`array`, uint8
    [T, H, W] gray or [T, H, W, 3] RGB), with an optional frame range and apex.

    For a frames folder onset/offset/apex are the frame numbers in the file names (`img46.jpg` → 46, as in the
    datasets' coding sheets); for a video or an array they are 0-based frame indices.
    """

    name: str
    path: Optional[Path] = None
    onset: Optional[int] = None
    offset: Optional[int] = None
    apex: Optional[int] = None
    array: Optional[np.ndarray] = None

    @property
    def kind(self) -> Literal["frames", "video", "flow_image", "array"]:
        if self.array is not None or self.path is None:
            return "array"
        if self.path.is_dir():
            return "frames"
        return "flow_image" if self.path.suffix.lower() in IMAGE_SUFFIXES else "video"


@dataclass
class DecodedClip:
    """A request's pixels at the model's size (or the reason they could not be read) and how to re-read them."""

    request: ClipRequest
    clip: Optional[np.ndarray] = None  # uint8 [n, size, size] (clip input)
    flow: Optional[np.ndarray] = None  # float32 [3, size, size] (flow input)
    n_frames: int = 0
    apex_pos: Optional[int] = None  # position of the given apex inside the clip
    source: Optional[ClipSource] = None  # the files (or video range) the clip was read from
    crop: Optional[Crop] = None  # what its onset frame gave: a face box or an alignment
    error: Optional[str] = None
    warning: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.error is None


# ----------------------------------------------------------------------------------------------- inputs


def _int_or_none(value: Any, what: str) -> Optional[int]:
    if value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == "":
        return None
    try:
        return int(float(value))
    except ValueError:
        raise UserError(f"{what}: {value!r} is not a frame number") from None


def read_manifest(path: Path) -> list[ClipRequest]:
    """A CSV of many clips: column `path` (folder or video; relative to the CSV's folder), optional `clip` (name;
    else `subject`/`sample`, else the path), `onset`, `offset`, `apex`. Other columns (e.g. AU labels) are ignored."""
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise UserError(f"cannot read manifest {path}: {err}") from None
    columns = {c.strip().lower(): c for c in df.columns}
    if "path" not in columns:
        raise UserError(f"manifest {path} has no 'path' column (columns: {', '.join(df.columns)})")
    requests: list[ClipRequest] = []
    seen: dict[str, int] = {}
    for i, rec in enumerate(df.to_dict("records")):

        def get(key: str, rec: dict = rec) -> str:
            return str(rec[columns[key]]).strip() if key in columns else ""

        if not get("path"):
            continue
        clip_path = Path(get("path")).expanduser()
        if not clip_path.is_absolute():
            clip_path = path.parent / clip_path
        name = get("clip") or "/".join(x for x in (get("subject"), get("sample")) if x) or Path(get("path")).stem
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name}#{seen[name]}"
        where = f"{path.name} line {i + 2}"
        requests.append(
            ClipRequest(
                name=name,
                path=clip_path,
                onset=_int_or_none(get("onset"), f"{where} onset"),
                offset=_int_or_none(get("offset"), f"{where} offset"),
                apex=_int_or_none(get("apex"), f"{where} apex"),
            )
        )
    if not requests:
        raise UserError(f"manifest {path} lists no clips")
    return requests


def collect_requests(
    input_path: Path, onset: Optional[int] = None, offset: Optional[int] = None, apex: Optional[int] = None
) -> list[ClipRequest]:
    """INPUT → clips: a frames folder or a video is one clip; a CSV is a manifest of many."""
    input_path = Path(input_path).expanduser()
    if not input_path.exists():
        raise UserError(describe(input_path, "input", "file"))
    if onset is not None and offset is not None and onset > offset:
        raise UserError(f"{arg('onset', onset)} is after {arg('offset', offset)}")
    suffix = input_path.suffix.lower()
    if input_path.is_file() and suffix == ".csv":
        if onset is not None or offset is not None or apex is not None:
            raise UserError(
                f"{arg('onset')}, {arg('offset')} and {arg('apex')} apply to one clip; give a manifest's clips "
                "onset/offset/apex columns instead"
            )
        return read_manifest(input_path)
    if input_path.is_dir() or suffix in VIDEO_SUFFIXES:
        return [
            ClipRequest(
                name=input_path.name if input_path.is_dir() else input_path.stem,
                path=input_path,
                onset=onset,
                offset=offset,
                apex=apex,
            )
        ]
    what = "a single image" if suffix in IMAGE_SUFFIXES else f"a {suffix or 'suffix-less'} file"
    raise UserError(
        f"INPUT {input_path} is {what}: give a folder of frames, a video "
        f"({', '.join(sorted(VIDEO_SUFFIXES))}) or a manifest CSV"
    )


# ----------------------------------------------------------------------------------------------- decoding


def _select_frames(req: ClipRequest) -> tuple[list[Path], Optional[int]]:
    """The folder's frames in onset..offset (by the numbers in their names) and the apex's position among them."""
    assert req.path is not None
    paths = list_frames(req.path)
    if not paths:
        raise FrameError(f"no image files in {req.path}")
    numbers = [frame_number(p) for p in paths]
    by_number = all(n is not None for n in numbers)
    if not by_number:  # names without numbers: onset/offset/apex count positions from 0
        numbers = list(range(len(paths)))
    lo = req.onset if req.onset is not None else -math.inf
    hi = req.offset if req.offset is not None else math.inf
    keep = [(p, n) for p, n in zip(paths, numbers) if n is not None and lo <= n <= hi]
    if not keep:
        raise FrameError(f"no frame of {req.path} in {req.onset}..{req.offset} (it has {numbers[0]}..{numbers[-1]})")
    apex_pos = None
    if req.apex is not None:
        apex_pos = next((i for i, (_, n) in enumerate(keep) if n == req.apex), None)
    return [p for p, _ in keep], apex_pos


def clip_source(req: ClipRequest) -> ClipSource:
    """The request as the data layer's clip source: a folder's frames in onset..offset, a video's frame range, or
    a pre-computed flow image, or the requested range of frames in memory."""
    if req.kind == "array":
        if req.array is None:
            raise FrameError("no frames given")
        if len(req.array) == 0:
            raise FrameError(f"the array holds no frame (shape {tuple(np.shape(req.array))})")
        start = req.onset or 0
        stop = len(req.array) - 1 if req.offset is None else req.offset
        if not 0 <= start <= stop < len(req.array):
            raise FrameError(f"frames {start}..{stop} are not in the array's 0..{len(req.array) - 1}")
        apex_pos = None if req.apex is None else req.apex - start
        return ClipSource("array", [], start=start, stop=stop, apex_pos=apex_pos, array=req.array[start : stop + 1])
    assert req.path is not None
    if not req.path.exists():
        raise FrameError(f"not found: {req.path}")
    if req.kind == "frames":
        paths, apex_pos = _select_frames(req)
        return ClipSource("frames", paths, apex_pos=apex_pos)
    if req.kind == "flow_image":
        return ClipSource("flow_image", [req.path])
    if req.path.suffix.lower() not in VIDEO_SUFFIXES:
        raise FrameError(f"{req.path} is neither a frames folder, a video nor an image")
    start = req.onset or 0
    apex_pos = None if req.apex is None else req.apex - start
    return ClipSource("video", [req.path], start=start, stop=req.offset, apex_pos=apex_pos)


def resolve_face_crop(asked: Optional[FaceCrop], trained_with: Optional[str], kind: str) -> FaceCrop:
    """The crop for one clip: what was asked for; else what the model was trained with when that was a crop; else
    `align` for a video or frames in memory (raw footage) and the frames as they are for a folder or a flow image.
    A folder of frames is taken as the model's training data was, so a clip from that data predicts as it did in
    the run."""
    if asked is not None:
        return asked
    if trained_with == "detect":
        return "detect"
    if trained_with == "align" or kind in ("video", "array"):
        return "align"
    return "none"


def decode_request(
    req: ClipRequest, size: int, frames: int, input_kind: str = "clip", face_crop: FaceCrop = "none"
) -> DecodedClip:
    """Decode one clip exactly as `prepare` does (`aullm.data.decode`); any failure is returned as `error`."""
    out = DecodedClip(request=req)
    try:
        out.source = clip_source(req)
        out.apex_pos = out.source.apex_pos
        decoded = decode_clip(out.source, DecodeSettings(input=input_kind, size=size, face_crop=face_crop))
        out.clip, out.flow, out.n_frames, out.crop = decoded.clip, decoded.flow, decoded.n_frames, decoded.crop
    except FrameError as err:
        out.error = str(err)
    except UserError:
        raise
    except Exception as err:
        logger.debug("decoding %s failed", req.path, exc_info=True)
        out.error = f"{type(err).__name__}: {err}"
    if out.ok and out.n_frames < MIN_CLIP_FRAMES and input_kind == "clip":
        out.error = (
            f"clip {req.name} has {out.n_frames} frame(s): a clip needs at least {MIN_CLIP_FRAMES} (its onset and "
            "the frames after it) to show any motion"
        )
    elif out.ok and out.n_frames < frames and input_kind == "clip":
        out.warning = (
            f"clip {req.name} has {out.n_frames} frame(s), fewer than the model's {frames}: interpolated in time"
        )
    return out


def decode_all(
    requests: list[ClipRequest],
    size: int,
    frames: int,
    input_kind: str,
    face_crops: list[FaceCrop],
    workers: Optional[int] = None,
) -> list[DecodedClip]:
    """Decode in threads (Pillow, PyAV and OpenCV release the GIL); `face_crops[i]` is request i's crop."""
    if len(requests) == 1:
        return [decode_request(requests[0], size, frames, input_kind, face_crops[0])]
    import os

    workers = workers or max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(
            pool.map(lambda job: decode_request(job[0], size, frames, input_kind, job[1]), zip(requests, face_crops))
        )


# ----------------------------------------------------------------------------------------------- batching


def model_input(decoded: list[DecodedClip], size: int, frames: int) -> torch.Tensor:
    """The model's input batch, built by the trainer's own `sample_batch` (test-time sampling, interpolation of
    short clips), so prediction and training see identically prepared clips."""
    from aullm.data.clips import PackedClips, sample_batch

    n = len(decoded)
    flows = [d.flow for d in decoded if d.flow is not None]
    clips = [d.clip for d in decoded if d.clip is not None]
    packed = PackedClips.of_flow(np.stack(flows).astype(np.float32), size) if flows else PackedClips.of_clips(clips)
    return sample_batch(packed, np.arange(n), train=False, rng=None, frames=frames)


# ----------------------------------------------------------------------------------------------- prediction


@dataclass
class PredictionResult:
    """One row per clip (`clip, AU<k>_prob…, AU<k>…, status, n_frames`) and the warnings raised on the way."""

    table: pd.DataFrame
    aus: list[str]
    thresholds: dict[str, float]
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return int((self.table["status"] != STATUS_OK).sum())

    def to_json(self) -> dict[str, Any]:
        clips = []
        for rec in self.table.to_dict("records"):
            ok = rec["status"] == STATUS_OK
            clips.append(
                {
                    "clip": rec["clip"],
                    "status": rec["status"],
                    "n_frames": int(rec["n_frames"]),
                    "probs": {au: float(rec[f"{au}_prob"]) for au in self.aus} if ok else None,
                    "active": {au: int(rec[au]) for au in self.aus} if ok else None,
                }
            )
        return {"aus": self.aus, "thresholds": self.thresholds, "clips": clips, "warnings": self.warnings}


def result_table(
    names: list[str], probs: np.ndarray, status: list[str], n_frames: list[int], aus: list[str], thresholds: np.ndarray
) -> pd.DataFrame:
    """The output layout (LibreFace / py-feat style): probabilities, 0/1 decisions at the bundle's thresholds."""
    table = pd.DataFrame({"clip": names})
    for k, au in enumerate(aus):
        table[f"{au}_prob"] = probs[:, k]
    for k, au in enumerate(aus):
        decided = pd.array(np.where(np.isnan(probs[:, k]), 0, probs[:, k] >= thresholds[k]).astype(int), dtype="Int64")
        decided[np.isnan(probs[:, k])] = pd.NA
        table[au] = decided
    table["status"] = status
    table["n_frames"] = n_frames
    return table


@torch.no_grad()
def predict_probs(model: Any, x: torch.Tensor, device: torch.device) -> np.ndarray:
    """Sigmoid of the model's logits for one batch (eval mode). A model already in eval mode is left alone:
    switching modes drops the LLM's cached prompt keys/values, which the next batch would compute again."""
    if model.training:
        model.eval()
    return torch.sigmoid(model(x.to(device)).logits.float()).cpu().numpy()


def long_clip_warning(bundle: Any, decoded: DecodedClip) -> Optional[str]:
    """A warning when a clip is much longer than what the model was trained on: its few sampled frames (6 across a
    whole minute) may all miss a short expression. Measured against the longest training clip a bundle records,
    and, for a video, against LONG_INPUT_S seconds."""
    from aullm.data.stream import LONG_INPUT_S

    longest = (getattr(bundle, "meta", None) or {}).get("trained_on", {}).get("longest_clip_frames")
    seconds = _clip_seconds(decoded)
    too_long = (longest is not None and decoded.n_frames > 2 * int(longest)) or (
        seconds is not None and seconds > LONG_INPUT_S
    )
    if not too_long:
        return None
    length = f"{decoded.n_frames} frames" + (f" ({seconds:.1f} s)" if seconds is not None else "")
    trained = (
        f"the longest clip this model was trained on had {int(longest)} frames"
        if longest is not None
        else f"micro-expressions last at most 0.5 s and long input is over {LONG_INPUT_S:g} s"
    )
    return (
        f"clip {decoded.request.name} spans {length}, read as one clip of {bundle.frames} sampled frames; {trained}: "
        f"a short expression may fall between them. Spot the expressions instead ({arg('spot', True)}; "
        f"Detector.events) or score sliding windows ({arg('windows')}; Detector.timeline)"
    )


def _clip_seconds(decoded: DecodedClip) -> Optional[float]:
    """A video clip's duration from its container's frame rate (None for frames and arrays: no rate known)."""
    source = decoded.source
    if source is None or source.kind != "video" or not decoded.ok:
        return None
    from aullm.data.stream import FrameStream, StreamError

    try:
        return decoded.n_frames / FrameStream(source.paths[0]).info.fps
    except StreamError:
        return None


def predict_clips(
    bundle: Any, requests: list[ClipRequest], face_crop: Optional[FaceCrop] = None, batch_size: int = DEFAULT_BATCH
) -> PredictionResult:
    """Predict every request in batches with a progress bar; failures (no face found among them) become rows
    marked failed. `face_crop` None: each clip's default (`resolve_face_crop`)."""
    trained_with = bundle.cfg.data.face_crop
    crops = [resolve_face_crop(face_crop, trained_with, r.kind) for r in requests]
    aus, k = bundle.aus, len(bundle.aus)
    probs = np.full((len(requests), k), np.nan)
    status = [STATUS_OK] * len(requests)
    n_frames = [0] * len(requests)
    warnings: list[str] = []
    batch_size = max(1, int(batch_size))
    starts = list(range(0, len(requests), batch_size))
    for start in track(starts, f"predicting {len(requests)} clip(s)", total=len(starts)):
        chunk = requests[start : start + batch_size]
        decoded = decode_all(chunk, bundle.size, bundle.frames, bundle.input_kind, crops[start : start + batch_size])
        good = []
        for i, d in enumerate(decoded):
            n_frames[start + i] = d.n_frames
            if not d.ok:
                status[start + i] = f"failed: {d.error}"
                logger.warning("clip %s failed: %s", d.request.name, d.error)
                continue
            for warning in (d.warning, long_clip_warning(bundle, d)):
                if warning:
                    warnings.append(render(warning))
                    logger.warning("%s", warning)
            good.append(i)
        if good:
            x = model_input([decoded[i] for i in good], bundle.size, bundle.frames)
            probs[[start + i for i in good]] = predict_probs(bundle.model, x, bundle.device)
    table = result_table([r.name for r in requests], probs, status, n_frames, aus, bundle.thresholds)
    return PredictionResult(
        table=table,
        aus=list(aus),
        thresholds={au: float(t) for au, t in zip(aus, bundle.thresholds)},
        warnings=warnings,
    )


def predict(
    input_path: Path,
    checkpoint: Path,
    *,
    onset: Optional[int] = None,
    offset: Optional[int] = None,
    face_crop: Optional[FaceCrop] = None,
    batch_size: int = DEFAULT_BATCH,
    device: str = "auto",
    llm: Optional[str] = None,
) -> PredictionResult:
    """`aullm predict`: resolve INPUT into clips, load the bundle, predict."""
    from aullm.inference.bundle import load_bundle

    requests = collect_requests(input_path, onset, offset)
    bundle = load_bundle(checkpoint, device=device, llm=llm)
    return predict_clips(bundle, requests, face_crop=face_crop, batch_size=batch_size)


__all__ = [
    "ClipRequest",
    "DecodedClip",
    "PredictionResult",
    "clip_source",
    "collect_requests",
    "decode_request",
    "long_clip_warning",
    "model_input",
    "predict",
    "predict_clips",
    "read_manifest",
    "resolve_face_crop",
    "result_table",
]
