"""`aullm predict` on videos: every video of the inputs → its events (or windows) → DIR/<video>.csv, DIR/index.csv
and, with a report, DIR/<video>_timeline.png and DIR/report.html; with explain, each event's Grad-CAM in
DIR/<video>_explain/event<N>/.

A video that fails (unreadable, no face, no frame rate for a frames folder) is marked in index.csv (and in its own
CSV) and the others go on. Every file is written whole, as soon as its video is done, so an interrupted run leaves
complete files for the videos it finished. How a video is read (docs/video.md):

- `spot` (the default for input longer than `LONG_INPUT_S`): spotted, then each interval predicted as a clip;
- `windows`: sliding windows over the whole video;
- short input in `auto`: read whole as one clip, as `predict` reads a clip (one row of kind `clip`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import pandas as pd

from aullm.config import FaceCrop
from aullm.core.console import logger
from aullm.core.errors import UserError, arg
from aullm.core.io import write_bytes, write_csv, write_text
from aullm.core.multibar import items_progress
from aullm.core.outputs import mark_output_folder
from aullm.data.clips import resize_gray
from aullm.inference.events import (
    EVENT_COLUMNS,
    STATUS_NONE,
    STILL_SIZE,
    VideoResult,
    is_long,
    stream_of,
    video_clip,
    video_events,
    video_windows,
    window_ranges,
)
from aullm.inference.predict import DEFAULT_BATCH, STATUS_OK
from aullm.spotting.settings import SpotSettings
from aullm.workflows.predict_plan import Mode

if TYPE_CHECKING:
    from aullm.reporting.video_report import VideoPage
from aullm.spotting.spotter import unique_names

#: The apex frames explain draws on (`aullm.inference.explain.DISPLAY_SIZE`, kept here so that a run without
#: explain does not import it; a test checks they agree).
INDEX_FILE, REPORT_FILE = "index.csv", "report.html"
COMMAND = "predict"
EXPLAIN_SIZE = 256
INDEX_COLUMNS = (
    "video", "path", "status", "mode", "fps", "frames", "duration_s", "events", "micro", "macro", "csv", "seconds",
)  # fmt: skip


@dataclass
class VideoOptions:
    """How every video of a run is read and what is written for it."""

    mode: Mode = "auto"
    window_s: float = 1.0
    stride_s: Optional[float] = None
    fps: Optional[float] = None
    kind: str = "both"
    spot: SpotSettings = field(default_factory=SpotSettings)
    face_crop: Optional[FaceCrop] = None
    batch_size: int = DEFAULT_BATCH
    report: bool = False
    explain: bool = False


@dataclass
class VideoOutcome:
    """One video of a run: its result, or why it failed."""

    name: str
    path: Path
    result: Optional[VideoResult] = None
    error: Optional[str] = None
    seconds: float = 0.0
    files: list[Path] = field(default_factory=list)
    explained: dict[int, str] = field(default_factory=dict)  # event → relative link to its Grad-CAM picture

    @property
    def status(self) -> str:
        if self.error is not None:
            return f"failed: {self.error}"
        assert self.result is not None
        statuses = set(self.result.table["status"].astype(str))
        if statuses == {STATUS_NONE}:
            return STATUS_NONE
        failed = [s for s in self.result.table["status"].astype(str) if s.startswith("failed")]
        if not failed:
            return STATUS_OK
        what = "windows" if self.result.mode == "windows" else "events"
        if len(failed) == len(self.result.table):
            return f"failed: all {len(failed)} {what} ({failed[0].removeprefix('failed: ')})"
        return f"ok, {len(failed)} of {len(self.result.table)} {what} failed ({failed[0].removeprefix('failed: ')})"


@dataclass
class VideosRun:
    """What a run over videos wrote: the output folder, one outcome per video, index.csv's rows, the report."""

    out: Optional[Path]
    videos: list[VideoOutcome]
    index: pd.DataFrame
    report: Optional[Path] = None

    @property
    def failed(self) -> int:
        return sum(v.error is not None for v in self.videos)

    def events(self) -> pd.DataFrame:
        """Every video's table, one after the other."""
        tables = [v.result.table for v in self.videos if v.result is not None]
        return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


# ----------------------------------------------------------------------------------------------- one video


def read_video(
    bundle: Any,
    path: Path,
    name: str,
    options: VideoOptions,
    progress: Optional[Callable[[Optional[int]], Callable[[int], None]]] = None,
) -> VideoResult:
    """One video's result in the mode chosen (see the module's docstring); `progress(total)` opens its bar."""
    stream = stream_of(path, options.fps)
    if name != stream.info.name:
        import dataclasses

        stream.info = dataclasses.replace(stream.info, name=name)
    mode = options.mode
    if mode == "windows":
        windows = window_ranges(stream.info, options.window_s, options.stride_s or options.window_s / 2)
        advance = progress(len(windows)) if progress is not None else None
        return video_windows(
            bundle,
            path,
            window_s=options.window_s,
            stride_s=options.stride_s,
            face_crop=options.face_crop,
            batch_size=options.batch_size,
            on_window=advance,
            stream=stream,
        )
    if mode == "spot" or is_long(stream.info):
        advance = progress(stream.info.frame_count) if progress is not None else None
        return video_events(
            bundle,
            path,
            settings=options.spot,
            kind=options.kind,
            face_crop=options.face_crop,
            batch_size=options.batch_size,
            keep_clips=options.explain,
            on_frame=advance,
            stream=stream,
            still_size=EXPLAIN_SIZE if options.explain else STILL_SIZE,
        )
    return video_clip(bundle, path, face_crop=options.face_crop, keep_clips=options.explain, stream=stream)


def failed_table(name: str, reason: str, aus: Sequence[str]) -> pd.DataFrame:
    """A failed video's CSV: one row in the events layout saying why."""
    row: dict[str, Any] = dict.fromkeys(EVENT_COLUMNS, pd.NA)
    row["video"] = name
    for au in aus:
        row[f"{au}_prob"] = np.nan
    for au in aus:
        row[au] = pd.NA
    row["status"] = f"failed: {reason}"
    return pd.DataFrame([row])


def output_path(out: Path, name: str, suffix: str) -> Path:
    """DIR/<video><suffix>; a name with folders in it (two videos of one name) keeps them, inside DIR only."""
    parts = Path(name).parts
    if not parts or any(p in ("", ".", "..") for p in parts) or Path(name).is_absolute():
        raise UserError(f"video name {name!r} cannot name a file inside {out}")
    return Path(out) / f"{name}{suffix}"


def _explain_events(bundle: Any, outcome: VideoOutcome, out: Path) -> None:
    """Grad-CAM pictures of every predicted event, titled with the video's frame numbers and times."""
    from aullm.inference.explain import explain_decoded, write_explanation

    result = outcome.result
    assert result is not None
    table = result.table.set_index("event", drop=False) if "event" in result.table else None
    for event, clip in sorted(result.clips.items()):
        folder = output_path(out, outcome.name, "_explain") / f"event{event}"
        frame = result.stills.get(event)
        label = None
        if table is not None and result.mode != "windows":
            rec = table.loc[event]
            apex = rec["apex"] if not pd.isna(rec["apex"]) else (int(rec["onset"]) + int(rec["offset"])) // 2
            t_apex = (int(apex) - result.info.first_number) / result.info.fps
            label = (
                f"frame {int(apex)} of {outcome.name} ({t_apex:.2f} s), event {event}: {rec['kind']} "
                f"{int(rec['onset'])}–{int(rec['offset'])} ({rec['t_onset_s']:.2f}–{rec['t_offset_s']:.2f} s)"
            )
        explanation = explain_decoded(bundle, clip, frame=frame, label=label)
        files = write_explanation(explanation, folder)
        outcome.files.extend(files)
        grid = folder / "gradcam_all.png"
        outcome.explained[event] = grid.relative_to(out).as_posix()
    result.clips.clear()  # the decoded clips are not needed any longer


def _thumbnails(result: VideoResult) -> None:
    """Stills read at the explain size are shrunk for the thumbnails."""
    for event, still in list(result.stills.items()):
        if still.shape[0] != STILL_SIZE:
            result.stills[event] = resize_gray(still, STILL_SIZE)


def _timeline(result: VideoResult) -> bytes:
    from aullm.reporting.timeline import TimelineData, plot_timeline

    info = result.info
    duration = (info.frame_count or 0) / info.fps
    return plot_timeline(
        TimelineData(
            name=result.name,
            duration_s=duration,
            aus=result.aus,
            thresholds=np.asarray(result.thresholds),
            table=result.table,
            mode=result.mode,
            signal=result.signal,
            threshold=result.threshold,
            stills=result.stills,
        )
    )


# ----------------------------------------------------------------------------------------------- the run


def index_row(outcome: VideoOutcome, out: Optional[Path]) -> dict[str, Any]:
    """One video's row of index.csv (`csv`: its file, relative to the output folder)."""
    row: dict[str, Any] = dict.fromkeys(INDEX_COLUMNS, None)
    row.update(video=outcome.name, path=str(outcome.path), status=outcome.status, seconds=round(outcome.seconds, 2))
    if out is not None:
        row["csv"] = output_path(out, outcome.name, ".csv").relative_to(out).as_posix()
    if outcome.result is not None:
        info, table = outcome.result.info, outcome.result.table
        events = table[table["event"].notna()] if "event" in table else table
        kinds = events["kind"].astype(str) if "kind" in events else pd.Series(dtype=str)
        row.update(
            mode=outcome.result.mode,
            fps=round(info.fps, 4),
            frames=info.frame_count,
            duration_s=None if info.duration_s is None else round(info.duration_s, 3),
            events=len(events),
            micro=int((kinds == "micro").sum()),
            macro=int((kinds == "macro").sum()),
        )
    return row


def predict_videos(
    bundle: Any,
    sources: Sequence[Path],
    out: Optional[Path],
    options: VideoOptions,
    *,
    inputs: Sequence[Path] = (),
) -> VideosRun:
    """Every video named by `sources` (already found: video files and frames folders) into `out` (see the module's
    docstring; the caller checked the folder with `check_output_folder`). `out` None: nothing is written, the
    tables come back in memory."""
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        mark_output_folder(out, COMMAND)
    names = unique_names(list(sources))
    outcomes: list[VideoOutcome] = []
    pages: list[VideoPage] = []
    index = pd.DataFrame(columns=list(INDEX_COLUMNS))
    with items_progress(len(sources), f"predicting {len(sources)} video(s)") as bars:
        for number, (source, name) in enumerate(zip(sources, names), start=1):
            outcome = VideoOutcome(name=name, path=Path(source))
            start = time.perf_counter()
            label = f"{name} ({number}/{len(sources)})"

            def bar(total: Optional[int], label: str = label) -> Callable[[int], None]:
                return bars.item(label, total)

            try:
                outcome.result = read_video(bundle, Path(source), name, options, bar)
            except UserError as err:
                outcome.error = str(err)
                logger.error("%s: %s", name, err)
            outcome.seconds = time.perf_counter() - start
            if out is not None:
                _write_video(bundle, outcome, out, options, pages)
            bars.done()
            outcomes.append(outcome)
            index = pd.DataFrame([index_row(o, out) for o in outcomes], columns=list(INDEX_COLUMNS))
            if out is not None:
                write_csv(index, out / INDEX_FILE)
            _log_video(outcome)
    report = None
    if options.report and out is not None:
        report = out / REPORT_FILE
        write_text(report, _render(bundle, pages))
    return VideosRun(out=out, videos=outcomes, index=index, report=report)


def _write_video(bundle: Any, outcome: VideoOutcome, out: Path, options: VideoOptions, pages: list[VideoPage]) -> None:
    csv = output_path(out, outcome.name, ".csv")
    result = outcome.result
    table = result.table if result is not None else failed_table(outcome.name, outcome.error or "", bundle.aus)
    write_csv(table, csv)
    outcome.files.append(csv)
    if result is not None and options.explain and result.clips:
        _explain_events(bundle, outcome, out)
    if result is not None:
        _thumbnails(result)
    if not options.report:
        return
    timeline = None
    if result is not None:
        timeline = _timeline(result)
        path = output_path(out, outcome.name, "_timeline.png")
        write_bytes(path, timeline)
        outcome.files.append(path)
    from aullm.reporting.video_report import VideoPage

    pages.append(
        VideoPage(
            name=outcome.name,
            path=str(outcome.path),
            status=outcome.status,
            mode=result.mode if result is not None else "events",
            table=None if result is None else result.table,
            duration_s=None if result is None else result.info.duration_s,
            fps=None if result is None else result.info.fps,
            timeline_png=timeline,
            stills=dict(result.stills) if result is not None else {},
            explain=dict(outcome.explained),
            csv=csv.relative_to(out).as_posix(),
        )
    )


def _log_video(outcome: VideoOutcome) -> None:
    if outcome.result is None:
        return
    table = outcome.result.table
    found = int(table["event"].notna().sum()) if "event" in table else len(table)
    what = "windows" if outcome.result.mode == "windows" else "event(s)"
    logger.info("%s: %d %s in %.1f s (%s)", outcome.name, found, what, outcome.seconds, outcome.status)


def _render(bundle: Any, pages: list[VideoPage]) -> str:
    from aullm.core.version import __version__
    from aullm.reporting.video_report import render_report

    return render_report(
        pages,
        list(bundle.aus),
        [float(t) for t in bundle.thresholds],
        bundle=str(bundle.path),
        model=f"{bundle.cfg.model.name}, {bundle.cfg.model.variant_label}",
        version=__version__,
    )


def check_video_options(options: VideoOptions) -> None:
    """Bad options, before any work: one line naming the parameter."""
    if options.mode not in ("auto", "spot", "windows"):
        raise UserError(f"mode must be auto, spot or windows, got {options.mode!r}")
    if options.mode == "windows":
        for name, value in (("windows", options.window_s), ("stride", options.stride_s)):
            if value is not None and not (np.isfinite(value) and value > 0):
                raise UserError(f"{arg(name, value)}: give a positive number of seconds")
    if options.batch_size < 1:
        raise UserError(f"{arg('batch_size', options.batch_size)}: at least 1")


__all__ = [
    "INDEX_COLUMNS",
    "INDEX_FILE",
    "REPORT_FILE",
    "VideoOptions",
    "VideoOutcome",
    "VideosRun",
    "check_video_options",
    "predict_videos",
    "read_video",
]
