"""Spot the expressions of one video, or of many: stream → region motion → score → intervals, in the video's own
frame numbers and seconds.

A video that cannot be read, holds no face or has no usable frame rate fails alone: it is reported in one line
and listed with its reason, and the other videos go on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from aullm.core.console import logger, progress_bar
from aullm.core.errors import UserError
from aullm.data.stream import FrameStream, StreamInfo, stream_sources
from aullm.spotting.intervals import Interval, detect, frame_scores, kind_of, region_scores
from aullm.spotting.motion import Motion, measure_motion
from aullm.spotting.settings import SpotSettings, check_kind
from aullm.spotting.speech import mouth_oscillation, speech_ratio

#: The columns of `spots.csv` (docs/design.md, Spotting), in order.
SPOT_COLUMNS = ("video", "onset", "apex", "offset", "duration_s", "score", "kind")
#: The columns of the per-frame signal table (the timeline's score curve).
SIGNAL_COLUMNS = ("frame", "time_s", "score", "threshold", "tracked")


class NoFaceFound(UserError):
    """A video in which no face was found on any frame."""


@dataclass
class VideoSpots:
    """What spotting found in one video: its intervals (spots.csv rows), the per-frame score, and how it went."""

    info: StreamInfo
    intervals: pd.DataFrame
    signal: pd.DataFrame
    threshold: float
    face_source: str
    seconds: float
    frames_read: int
    speech: int = 0  # intervals dropped as speech

    @property
    def name(self) -> str:
        return self.info.name


@dataclass
class SpotRun:
    """Every video of a spotting run: the finished ones, and the failed ones with their reasons."""

    videos: list[VideoSpots] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def intervals(self) -> pd.DataFrame:
        frames = [v.intervals for v in self.videos if len(v.intervals)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(SPOT_COLUMNS))

    def summary(self) -> pd.DataFrame:
        """One row per video: what was read and found, or why it failed."""
        rows = [
            {
                "video": v.name,
                "path": str(v.info.path),
                "fps": v.info.fps,
                "frames": v.frames_read,
                "duration_s": round(v.frames_read / v.info.fps, 3),
                "face": v.face_source,
                "micro": int((v.intervals["kind"] == "micro").sum()),
                "macro": int((v.intervals["kind"] == "macro").sum()),
                "speech": v.speech,
                "threshold": round(v.threshold, 4),
                "seconds": round(v.seconds, 2),
                "status": "ok",
            }
            for v in self.videos
        ]
        rows += [{"video": name, "status": f"failed: {reason}"} for name, reason in self.failed.items()]
        return pd.DataFrame(rows)


def spot_stream(
    stream: FrameStream,
    settings: SpotSettings,
    kind: str = "both",
    on_frame: Optional[Callable[[int], None]] = None,
) -> VideoSpots:
    """Spot one opened stream (see the module's docstring)."""
    start = time.perf_counter()
    motion = measure_motion(stream, settings, on_frame)
    if not motion.tracked.any():
        raise NoFaceFound(f"{stream.path}: no face found on any of its {len(motion.numbers)} analysed frames")
    scores = frame_scores(region_scores(motion.trajectory, motion.tracked, motion.fps, settings))
    found, level = detect(scores, motion.fps, settings)
    speech = 0
    energy = mouth_oscillation(motion.trajectory, motion.tracked, motion.fps) if settings.speech_ratio > 0 else None
    if energy is not None:
        kept = [item for item in found if speech_ratio(item, energy, motion.fps) < settings.speech_ratio]
        found, speech = kept, len(found) - len(kept)
    rows = [_row(stream.info, motion, item, kind_of(item, motion.fps, settings)) for item in found]
    intervals = pd.DataFrame(rows, columns=list(SPOT_COLUMNS))
    if kind != "both":
        intervals = intervals[intervals["kind"] == kind].reset_index(drop=True)
    signal = pd.DataFrame(
        {
            "frame": motion.numbers,
            "time_s": np.round((motion.numbers - stream.info.first_number) / stream.info.fps, 4),
            "score": np.round(scores, 4),
            "threshold": round(level, 4),
            "tracked": motion.tracked.astype(int),
        },
        columns=list(SIGNAL_COLUMNS),
    )
    frames_read = int(motion.numbers[-1] - stream.info.first_number + 1) if len(motion.numbers) else 0
    seconds = time.perf_counter() - start
    return VideoSpots(stream.info, intervals, signal, level, motion.face_source, seconds, frames_read, speech)


def _row(info: StreamInfo, motion: Motion, item: Interval, kind: str) -> dict[str, object]:
    onset, apex, offset = (int(motion.numbers[i]) for i in (item.onset, item.apex, item.offset))
    return {
        "video": info.name,
        "onset": onset,
        "apex": apex,
        "offset": offset,
        "duration_s": round((offset - onset) / info.fps, 4),
        "score": round(item.score, 4),
        "kind": kind,
    }


def spot_videos(
    inputs: Sequence[Path],
    settings: Optional[SpotSettings] = None,
    *,
    fps: Optional[float] = None,
    kind: str = "both",
    on_video: Optional[Callable[[VideoSpots, SpotRun], None]] = None,
) -> SpotRun:
    """Spot every video and frames folder named by `inputs` (folders are searched); a failing video is recorded
    and the others go on. `on_video` hears of each finished video (to write results as they come)."""
    settings = settings or SpotSettings()
    check_kind(kind)
    sources = stream_sources(list(inputs))
    names = unique_names(sources)
    run = SpotRun()
    for number, (source, name) in enumerate(zip(sources, names), start=1):
        try:
            stream = FrameStream(source, fps)
            if name != stream.info.name:
                stream.info = _renamed(stream.info, name)
            total = stream.info.frame_count
            with progress_bar(f"spotting {name} ({number}/{len(sources)})", total) as advance:
                result = spot_stream(stream, settings, kind, advance)
        except UserError as err:
            run.failed[name] = str(err)
            logger.error("%s: %s", name, err)
            continue
        run.videos.append(result)
        micro = int((result.intervals["kind"] == "micro").sum())
        logger.info(
            "%s: %d micro, %d macro in %.1f s of video (%.0f frames/s)",
            name,
            micro,
            len(result.intervals) - micro,
            result.frames_read / result.info.fps,
            result.frames_read / max(result.seconds, 1e-9),
        )
        if on_video is not None:
            on_video(result, run)
    return run


def unique_names(sources: list[Path]) -> list[str]:
    """Each source's name (stem or folder name); sources sharing one are told apart by their parent folders."""
    names = [p.stem if p.is_file() else p.name for p in sources]
    depth = 1
    while len(set(names)) < len(names) and depth < 8:
        counts = {n: names.count(n) for n in names}
        names = [
            "/".join([*p.parts[-1 - depth : -1], p.stem if p.is_file() else p.name]) if counts[n] > 1 else n
            for p, n in zip(sources, names)
        ]
        depth += 1
    return names


def _renamed(info: StreamInfo, name: str) -> StreamInfo:
    import dataclasses

    return dataclasses.replace(info, name=name)


__all__ = [
    "SIGNAL_COLUMNS",
    "SPOT_COLUMNS",
    "NoFaceFound",
    "SpotRun",
    "VideoSpots",
    "spot_stream",
    "spot_videos",
    "unique_names",
]
