"""A video's answer as events: each spotted interval with its AU probabilities (`Detector.events`), or an AU
timeline over sliding windows (`Detector.timeline`).

Spotting (`aullm.spotting`) finds where something happens; the AU model then reads each interval exactly as it
read a training clip: the same decoding (`aullm.data.stream_clips` gives `decode_clip`'s pixels from a streamed,
seeking pass over a video file; a frames folder's ranges go through `decode_clip` itself), the same face crop found
on the interval's own onset frame, and the trainer's test-time sampling (`model_input`). Frame numbers are the
video's own (0-based for a video file, the file names' numbers for a frames folder); times are seconds from the
first frame, `(frame − first) / fps`.

A video with no interval gives one row saying so (`status: no expression spotted`), not an empty table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import numpy as np
import pandas as pd

from aullm.config import FaceCrop
from aullm.core.console import logger
from aullm.core.errors import UserError, arg
from aullm.data.decode import DecodeSettings, read_frame
from aullm.data.stream import FrameStream, StreamInfo
from aullm.data.stream_clips import FrameRange, RangeClip, decode_ranges
from aullm.inference.predict import (
    DEFAULT_BATCH,
    STATUS_OK,
    ClipRequest,
    DecodedClip,
    decode_request,
    model_input,
    predict_probs,
    resolve_face_crop,
)
from aullm.spotting.settings import SpotSettings, check_kind
from aullm.spotting.spotter import spot_stream

#: Columns of an events table, in order (then AU<k>_prob, AU<k>, status).
EVENT_COLUMNS = ("video", "event", "onset", "apex", "offset", "t_onset_s", "t_offset_s", "spot_score", "kind")
#: Columns of a timeline table before the AU columns (frame numbers and status follow them).
WINDOW_COLUMNS = ("video", "t_start_s", "t_end_s")
STATUS_NONE = "no expression spotted"
#: Side in pixels of the apex thumbnails (timeline picture, report).
STILL_SIZE = 96
#: A window's default stride is this fraction of its length.
DEFAULT_STRIDE_FRACTION = 0.5

Mode = Literal["events", "windows", "clip"]


@dataclass
class RangeResult:
    """The model's answer for each range: probabilities [n, K] (NaN where it failed), status, stills, clips."""

    probs: np.ndarray
    status: list[str]
    n_frames: list[int]
    stills: dict[int, np.ndarray] = field(default_factory=dict)
    clips: dict[int, DecodedClip] = field(default_factory=dict)


@dataclass
class VideoResult:
    """One video's table (events, windows or the whole input as one clip) and what the pictures need."""

    info: StreamInfo
    mode: Mode
    table: pd.DataFrame
    aus: list[str]
    thresholds: np.ndarray
    signal: Optional[pd.DataFrame] = None  # spotting score per analysed frame (events)
    threshold: Optional[float] = None  # the spotting threshold
    stills: dict[int, np.ndarray] = field(default_factory=dict)  # event number → apex thumbnail
    clips: dict[int, DecodedClip] = field(default_factory=dict)  # event number → decoded clip (explain)
    warnings: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.info.name


# ----------------------------------------------------------------------------------------------- helpers


def stream_of(path: Path, fps: Optional[float] = None) -> FrameStream:
    """The stream of a video file or frames folder (a UserError naming it when it cannot be read)."""
    return FrameStream(Path(path), fps)


def is_long(info: StreamInfo) -> bool:
    """More than LONG_INPUT_S of video (a stream that does not state its length counts as long)."""
    return info.is_long


def video_face_crop(bundle: Any, asked: Optional[FaceCrop]) -> FaceCrop:
    """The crop for clips of a long input: asked, else the model's training crop, else `align` (raw footage, a
    frames folder included: long frames folders are uncropped recordings, not dataset clips)."""
    return resolve_face_crop(asked, bundle.cfg.data.face_crop, "video")


def _seconds(frame: np.ndarray | int, info: StreamInfo) -> np.ndarray | float:
    return np.round((np.asarray(frame) - info.first_number) / info.fps, 4)


def _batches(items: Iterator[RangeClip], size: int) -> Iterator[list[RangeClip]]:
    batch: list[RangeClip] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _folder_clips(
    stream: FrameStream, ranges: list[FrameRange], settings: DecodeSettings, still_size: Optional[int]
) -> Iterator[RangeClip]:
    """A frames folder's ranges through `decode_clip` itself (Pillow's draft-mode decoding, as in training)."""
    for i, r in enumerate(ranges):
        req = ClipRequest(name=f"{stream.info.name}:{r.start}-{r.stop}", path=stream.path, onset=r.start, offset=r.stop)
        req.apex = r.apex
        decoded = decode_request(req, settings.size, 0, settings.input, settings.face_crop)
        if not decoded.ok or decoded.source is None:
            yield RangeClip(i, r, error=decoded.error)
            continue
        if decoded.n_frames != r.stop - r.start + 1 and stream.info.frame_count is not None:
            logger.debug("%s: %d files in %d..%d", stream.path, decoded.n_frames, r.start, r.stop)
        pos = r.apex_pos if r.apex_pos is not None and 0 <= r.apex_pos < decoded.n_frames else decoded.n_frames // 2
        still = read_frame(decoded.source, pos, still_size, decoded.crop) if still_size else None
        from aullm.data.decode import Decoded

        yield RangeClip(
            i,
            r,
            decoded=Decoded(clip=decoded.clip, flow=decoded.flow, n_frames=decoded.n_frames, crop=decoded.crop),
            still=still,
        )


def predict_ranges(
    bundle: Any,
    stream: FrameStream,
    ranges: list[FrameRange],
    face_crop: FaceCrop,
    *,
    batch_size: int = DEFAULT_BATCH,
    still_size: Optional[int] = STILL_SIZE,
    keep_clips: bool = False,
    on_range: Optional[Callable[[int], None]] = None,
) -> RangeResult:
    """The model's probabilities for each frame range of one video, in batches as the ranges are decoded; a
    range that cannot be read (no face on its onset frame, beyond the end) gets `failed: reason`."""
    settings = DecodeSettings(input=bundle.input_kind, size=bundle.size, face_crop=face_crop)
    k = len(bundle.aus)
    result = RangeResult(np.full((len(ranges), k), np.nan), [STATUS_OK] * len(ranges), [0] * len(ranges))
    if stream.info.kind == "frames":
        items = _folder_clips(stream, ranges, settings, still_size)
    else:
        items = decode_ranges(stream, ranges, settings, still_size=still_size)
    for batch in _batches(items, max(1, int(batch_size))):
        good: list[DecodedClip] = []
        rows: list[int] = []
        for item in batch:
            if on_range is not None:
                on_range(1)
            if item.decoded is None:
                result.status[item.index] = f"failed: {item.error}"
                continue
            r = item.range
            request = ClipRequest(name=f"{stream.info.name}:{r.start}-{r.stop}", path=stream.path)
            request.onset, request.offset, request.apex = r.start, r.stop, r.apex
            clip = DecodedClip(
                request=request,
                clip=item.decoded.clip,
                flow=item.decoded.flow,
                n_frames=item.decoded.n_frames,
                apex_pos=r.apex_pos,
                crop=item.decoded.crop,
            )
            result.n_frames[item.index] = clip.n_frames
            if item.still is not None:
                result.stills[item.index] = item.still
            if keep_clips:
                result.clips[item.index] = clip
            good.append(clip)
            rows.append(item.index)
        if good:
            result.probs[rows] = predict_probs(
                bundle.model, model_input(good, bundle.size, bundle.frames), bundle.device
            )
    return result


def au_columns(table: pd.DataFrame, probs: np.ndarray, aus: list[str], thresholds: np.ndarray) -> pd.DataFrame:
    """AU<k>_prob then AU<k> (0/1 at the bundle's thresholds, empty where the row failed) appended to `table`."""
    for k, au in enumerate(aus):
        table[f"{au}_prob"] = np.round(probs[:, k], 6)
    for k, au in enumerate(aus):
        decided = pd.array((probs[:, k] >= thresholds[k]).astype(int), dtype="Int64")
        decided[np.isnan(probs[:, k])] = pd.NA
        table[au] = decided
    return table


# ----------------------------------------------------------------------------------------------- events


def events_table(
    info: StreamInfo, intervals: pd.DataFrame, result: Optional[RangeResult], aus: list[str], thresholds: np.ndarray
) -> pd.DataFrame:
    """The events layout (EVENT_COLUMNS, AU<k>_prob, AU<k>, status); one `no expression spotted` row if none."""
    if len(intervals) == 0 or result is None:
        row: dict[str, Any] = {c: pd.NA for c in EVENT_COLUMNS}
        row["video"] = info.name
        row["event"] = pd.NA
        table = pd.DataFrame([row], columns=list(EVENT_COLUMNS))
        table = au_columns(table, np.full((1, len(aus)), np.nan), aus, thresholds)
        table["status"] = STATUS_NONE
        return _typed(table)
    table = pd.DataFrame(
        {
            "video": info.name,
            "event": np.arange(1, len(intervals) + 1),
            "onset": intervals["onset"].to_numpy(int),
            "apex": intervals["apex"].to_numpy(int),
            "offset": intervals["offset"].to_numpy(int),
            "t_onset_s": _seconds(intervals["onset"].to_numpy(int), info),
            "t_offset_s": _seconds(intervals["offset"].to_numpy(int), info),
            "spot_score": intervals["score"].to_numpy(float),
            "kind": intervals["kind"].to_numpy(str),
        },
        columns=list(EVENT_COLUMNS),
    )
    table = au_columns(table, result.probs, aus, thresholds)
    table["status"] = result.status
    return _typed(table)


def _typed(table: pd.DataFrame) -> pd.DataFrame:
    for column in ("event", "onset", "apex", "offset"):
        table[column] = table[column].astype("Int64")
    return table


def video_events(
    bundle: Any,
    path: Path,
    *,
    fps: Optional[float] = None,
    settings: Optional[SpotSettings] = None,
    kind: str = "both",
    face_crop: Optional[FaceCrop] = None,
    batch_size: int = DEFAULT_BATCH,
    keep_clips: bool = False,
    on_frame: Optional[Callable[[int], None]] = None,
    stream: Optional[FrameStream] = None,
    still_size: int = STILL_SIZE,
) -> VideoResult:
    """Spot one video, then predict the AUs of every interval (see the module's docstring). `still_size`: the side
    of the apex frames kept (thumbnails; explain's display size when the clips are kept for it)."""
    check_kind(kind)
    stream = stream or stream_of(path, fps)
    spots = spot_stream(stream, settings or SpotSettings(), kind, on_frame)
    found = spots.intervals
    ranges = [
        FrameRange(int(on), int(off), int(apex))
        for on, apex, off in zip(found["onset"].tolist(), found["apex"].tolist(), found["offset"].tolist())
    ]
    result = None
    if ranges:
        result = predict_ranges(
            bundle,
            stream,
            ranges,
            video_face_crop(bundle, face_crop),
            batch_size=batch_size,
            keep_clips=keep_clips,
            still_size=still_size,
        )
    table = events_table(stream.info, spots.intervals, result, list(bundle.aus), bundle.thresholds)
    out = VideoResult(stream.info, "events", table, list(bundle.aus), bundle.thresholds, spots.signal, spots.threshold)
    if result is not None:
        out.stills = {i + 1: still for i, still in result.stills.items()}
        out.clips = {i + 1: clip for i, clip in result.clips.items()}
    return out


def interval_events(
    bundle: Any,
    path: Path,
    intervals: pd.DataFrame,
    *,
    fps: Optional[float] = None,
    face_crop: Optional[FaceCrop] = None,
    batch_size: int = DEFAULT_BATCH,
) -> VideoResult:
    """The events layout for intervals given rather than spotted (`onset, offset` and optional `apex`, `kind`,
    `score`, in the video's own frame numbers): an annotation's expressions, say, predicted exactly as spotted
    ones are (the oracle of `aullm.evaluation.events`)."""
    stream = stream_of(path, fps)
    given = intervals.reset_index(drop=True).copy()
    if "apex" not in given:
        given["apex"] = (given["onset"] + given["offset"]) // 2
    if "score" not in given:
        given["score"] = np.nan
    given["kind"] = given["kind"].astype(str) if "kind" in given else "given"
    ranges = [
        FrameRange(int(on), int(off), int(apex) if not pd.isna(apex) else None)
        for on, apex, off in zip(given["onset"], given["apex"], given["offset"])
    ]
    result = None
    if ranges:
        result = predict_ranges(
            bundle, stream, ranges, video_face_crop(bundle, face_crop), batch_size=batch_size, still_size=None
        )
    table = events_table(stream.info, given, result, list(bundle.aus), bundle.thresholds)
    return VideoResult(stream.info, "events", table, list(bundle.aus), bundle.thresholds)


# ----------------------------------------------------------------------------------------------- windows


def window_ranges(info: StreamInfo, window_s: float, stride_s: float) -> list[FrameRange]:
    """Windows of `window_s` every `stride_s` over the whole stream (one window over all of a shorter one; the
    last window ends on the last frame, so the end of the video is scored too)."""
    for name, value in (("window_s", window_s), ("stride_s", stride_s)):
        if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
            raise UserError(f"{arg(name, value)}: give a positive number of seconds")
    if info.frame_count is None:
        raise UserError(f"{info.path} does not state its number of frames; windows need it (re-encode the video)")
    length = max(1, int(round(window_s * info.fps)))
    step = max(1, int(round(stride_s * info.fps)))
    first, last = info.first_number, info.first_number + info.frame_count - 1
    if last - first + 1 <= length:
        return [FrameRange(first, last)]
    starts = list(range(first, last - length + 2, step))
    if starts[-1] + length - 1 < last:
        starts.append(last - length + 1)
    return [FrameRange(s, s + length - 1) for s in starts]


def windows_table(
    info: StreamInfo, ranges: list[FrameRange], result: RangeResult, aus: list[str], thresholds: np.ndarray
) -> pd.DataFrame:
    """The timeline layout: video, t_start_s, t_end_s (the window's span, end exclusive), AU<k>_prob, then AU<k>,
    start_frame, end_frame (inclusive, the video's numbers) and status."""
    starts = np.array([r.start for r in ranges])
    stops = np.array([r.stop for r in ranges])
    table = pd.DataFrame(
        {"video": info.name, "t_start_s": _seconds(starts, info), "t_end_s": _seconds(stops + 1, info)},
        columns=list(WINDOW_COLUMNS),
    )
    table = au_columns(table, result.probs, aus, thresholds)
    table["start_frame"] = starts
    table["end_frame"] = stops
    table["status"] = result.status
    return table


def video_windows(
    bundle: Any,
    path: Path,
    *,
    window_s: float = 1.0,
    stride_s: Optional[float] = None,
    fps: Optional[float] = None,
    face_crop: Optional[FaceCrop] = None,
    batch_size: int = DEFAULT_BATCH,
    on_window: Optional[Callable[[int], None]] = None,
    stream: Optional[FrameStream] = None,
) -> VideoResult:
    """AU probabilities over sliding windows of the whole video, decoded in one streamed pass and batched."""
    stride = window_s * DEFAULT_STRIDE_FRACTION if stride_s is None else stride_s
    stream = stream or stream_of(path, fps)
    ranges = window_ranges(stream.info, window_s, stride)
    result = predict_ranges(
        bundle,
        stream,
        ranges,
        video_face_crop(bundle, face_crop),
        batch_size=batch_size,
        still_size=None,
        on_range=on_window,
    )
    table = windows_table(stream.info, ranges, result, list(bundle.aus), bundle.thresholds)
    return VideoResult(stream.info, "windows", table, list(bundle.aus), bundle.thresholds)


# ----------------------------------------------------------------------------------------------- one clip


def video_clip(
    bundle: Any,
    path: Path,
    *,
    fps: Optional[float] = None,
    face_crop: Optional[FaceCrop] = None,
    keep_clips: bool = False,
    stream: Optional[FrameStream] = None,
) -> VideoResult:
    """A short input read whole as one clip (as `predict` reads a clip), in the events layout: one row of kind
    `clip` spanning it."""
    stream = stream or stream_of(path, fps)
    info = stream.info
    last = info.first_number + (info.frame_count or 1) - 1
    crop = resolve_face_crop(face_crop, bundle.cfg.data.face_crop, "video" if info.kind == "video" else "frames")
    ranges = [FrameRange(info.first_number, last)]
    result = predict_ranges(bundle, stream, ranges, crop, keep_clips=keep_clips)
    intervals = pd.DataFrame(
        {"onset": [ranges[0].start], "apex": [(ranges[0].start + last) // 2], "offset": [last], "score": [np.nan]}
    )
    intervals["kind"] = "clip"
    table = events_table(info, intervals, result, list(bundle.aus), bundle.thresholds)
    table["apex"] = pd.array([pd.NA], dtype="Int64")
    out = VideoResult(info, "clip", table, list(bundle.aus), bundle.thresholds)
    out.stills = {i + 1: s for i, s in result.stills.items()}
    out.clips = {i + 1: c for i, c in result.clips.items()}
    return out


__all__ = [
    "EVENT_COLUMNS",
    "STATUS_NONE",
    "STILL_SIZE",
    "WINDOW_COLUMNS",
    "RangeResult",
    "VideoResult",
    "events_table",
    "interval_events",
    "is_long",
    "predict_ranges",
    "video_clip",
    "video_events",
    "video_face_crop",
    "video_windows",
    "window_ranges",
    "windows_table",
]
