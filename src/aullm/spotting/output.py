"""What `aullm spot --out DIR` writes (docs/design.md, Spotting): `spots.csv` (every interval of every video),
`videos.csv` (one row per video: what was read, what was found, or why it failed) and `signals/<video>.csv` (the
per-frame score and threshold, for timelines). Each file is written whole, after each finished video, so an
interrupted run leaves complete files for the videos it finished."""

from __future__ import annotations

from pathlib import Path

from aullm.core.errors import UserError
from aullm.core.io import write_csv
from aullm.spotting.spotter import SpotRun, VideoSpots

SPOTS_FILE, VIDEOS_FILE, SIGNALS_DIR = "spots.csv", "videos.csv", "signals"


def signal_path(out: Path, video: str) -> Path:
    """Where a video's signal goes; names with folders in them (two videos of one name) keep their folders."""
    parts = Path(video).parts
    if not parts or any(p in ("", ".", "..") for p in parts) or Path(video).is_absolute():
        raise UserError(f"video name {video!r} cannot name a file inside {out}")
    return Path(out) / SIGNALS_DIR / f"{video}.csv"


def write_video(out: Path, video: VideoSpots) -> None:
    write_csv(video.signal, signal_path(out, video.name))


def write_run(out: Path, run: SpotRun) -> None:
    write_csv(run.intervals(), Path(out) / SPOTS_FILE)
    write_csv(run.summary(), Path(out) / VIDEOS_FILE)


__all__ = ["SIGNALS_DIR", "SPOTS_FILE", "VIDEOS_FILE", "signal_path", "write_run", "write_video"]
