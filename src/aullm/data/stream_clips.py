"""Many clips of one long video (its spotted events, or sliding windows), decoded from a streamed pass.

`decode_clip` reads a video clip by decoding the video from its first frame up to the clip's onset: fine for one
clip, quadratic for the dozens of events of a 10-minute interview. Here the ranges are sorted and read in passes:
ranges close together share one pass (windows overlap: every frame is decoded once and cropped for each window it
belongs to), and a pass seeks to the keyframe before its first range (`FrameStream.frames`). Each clip's pixels
are exactly `decode_clip`'s for the same video range: the face is located on the clip's own onset frame at full
resolution (`face_in_frame`), every frame is cropped and resized by `crop_frame`, and the frames become the clip or
its onset→apex flow by `decoded_frames` (tests/test_video_events.py checks the equality).

Only cropped frames are held (the model's size, e.g. 64×64), never the video's own: memory does not grow with the
video's length, nor with a macro-expression's. A range's apex frame is also kept at `still_size` (a thumbnail, or
the frame explain draws its heatmaps on), cropped like the clip.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from aullm.data.clips import FrameError
from aullm.data.decode import Crop, Decoded, DecodeSettings, crop_frame, decoded_frames, face_in_frame, frame_size
from aullm.data.stream import FrameStream

#: Ranges closer than this are read in one pass rather than by seeking (a keyframe interval or two of decoding).
SEEK_GAP_S = 4.0


@dataclass(frozen=True)
class FrameRange:
    """Frames start..stop of a video (inclusive, the video's own numbers) and the apex among them, if known."""

    start: int
    stop: int
    apex: Optional[int] = None

    @property
    def apex_pos(self) -> Optional[int]:
        return None if self.apex is None else self.apex - self.start


@dataclass
class RangeClip:
    """One range's clip as `decode_clip` decodes it, or why it could not be; `still`: its apex frame (the middle
    one when the apex is not known) at the still size, cropped as the clip is."""

    index: int
    range: FrameRange
    decoded: Optional[Decoded] = None
    error: Optional[str] = None
    still: Optional[np.ndarray] = None


@dataclass
class _Open:
    """A range being read: its crop (found on its first frame) and its cropped frames so far."""

    index: int
    range: FrameRange
    crop: Optional[Crop] = None
    frames: list[np.ndarray] = field(default_factory=list)
    still: Optional[np.ndarray] = None
    still_at: int = 0

    def __post_init__(self) -> None:
        r = self.range
        self.still_at = r.apex if r.apex is not None and r.start <= r.apex <= r.stop else (r.start + r.stop) // 2


def _passes(ranges: Sequence[FrameRange], gap: int) -> list[list[int]]:
    """Range indices sorted by start, grouped into passes: a range starting within `gap` frames of the furthest
    frame the pass reads so far joins it."""
    order = sorted(range(len(ranges)), key=lambda i: (ranges[i].start, ranges[i].stop))
    passes: list[list[int]] = []
    reach = None
    for i in order:
        if reach is None or ranges[i].start > reach + gap:
            passes.append([])
            reach = ranges[i].stop
        passes[-1].append(i)
        reach = max(reach, ranges[i].stop)
    return passes


def decode_ranges(
    stream: FrameStream,
    ranges: Sequence[FrameRange],
    settings: DecodeSettings,
    *,
    still_size: Optional[int] = None,
    seek_gap_s: float = SEEK_GAP_S,
) -> Iterator[RangeClip]:
    """Every range's clip, yielded as soon as its last frame is read (in order of their ends); a range that
    cannot be decoded (no face on its onset frame, beyond the video's end) comes back with its `error`."""
    for bad in (i for i, r in enumerate(ranges) if r.stop < r.start):
        raise FrameError(f"frames {ranges[bad].start}..{ranges[bad].stop}: the range ends before it starts")
    side = frame_size(settings)
    gap = max(1, int(round(seek_gap_s * stream.info.fps)))
    for members in _passes(ranges, gap):
        yield from _read_pass(stream, ranges, members, settings, side, still_size)


def _read_pass(
    stream: FrameStream,
    ranges: Sequence[FrameRange],
    members: list[int],
    settings: DecodeSettings,
    side: int,
    still_size: Optional[int],
) -> Iterator[RangeClip]:
    waiting = list(members)  # sorted by start
    active: list[_Open] = []
    first = ranges[members[0]].start
    last = max(ranges[i].stop for i in members)
    seen: Optional[int] = None
    for picture in stream.pictures(first, last):
        number, gray = picture.number, picture.gray
        seen = number
        while waiting and ranges[waiting[0]].start <= number:
            i = waiting.pop(0)
            opened = _Open(i, ranges[i])
            if ranges[i].start < number:  # the video starts after the range does
                yield _beyond(stream, opened, number)
                continue
            try:
                onset = np.ascontiguousarray(picture.bgr[:, :, ::-1])  # RGB: the detector finds more faces in colour
                opened.crop = face_in_frame(onset, settings.face_crop, f"frame {number} of {stream.path}")
            except FrameError as err:
                yield RangeClip(i, ranges[i], error=str(err))
                continue
            active.append(opened)
        for item in active:
            item.frames.append(crop_frame(gray, side, item.crop))
            if still_size and number == item.still_at:
                item.still = crop_frame(gray, still_size, item.crop)
        for item in [a for a in active if a.range.stop <= number]:
            active.remove(item)
            yield _finished(item, settings)
    for item in [*active, *(_Open(i, ranges[i]) for i in waiting)]:
        yield _beyond(stream, item, seen)


def _finished(item: _Open, settings: DecodeSettings) -> RangeClip:
    decoded = decoded_frames(np.stack(item.frames), settings, item.range.apex_pos, item.crop)
    return RangeClip(item.index, item.range, decoded=decoded, still=item.still)


def _beyond(stream: FrameStream, item: _Open, seen: Optional[int]) -> RangeClip:
    """A range the video does not hold whole: the message says what the video holds."""
    info = stream.info
    if info.frame_count is not None:
        holds = f"{info.frame_count} frames, {info.first_number}..{info.first_number + info.frame_count - 1}"
    else:
        holds = f"frames up to {seen}" if seen is not None else "no frame in that range"
    r = item.range
    return RangeClip(item.index, r, error=f"frames {r.start}..{r.stop} are not all in {stream.path} ({holds})")


__all__ = ["SEEK_GAP_S", "FrameRange", "RangeClip", "decode_ranges"]
