"""How `aullm predict` reads its inputs, decided before the model is loaded (docs/video.md). Light on purpose: the
command imports it for every prediction, a one-clip one included."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

from aullm.core.errors import UserError, arg
from aullm.data.clips import VIDEO_SUFFIXES
from aullm.data.stream import FrameStream, stream_sources

Mode = Literal["auto", "spot", "windows"]


@dataclass
class PredictPlan:
    """What `aullm predict` does with its inputs: `clips` (one row per clip, as before videos), `video` (one
    video's events or windows as one table) or `videos` (a folder of outputs, one CSV per video)."""

    kind: Literal["clips", "video", "videos"]
    sources: list[Path] = field(default_factory=list)


def plan_predict(
    inputs: Sequence[Path],
    *,
    mode: Mode = "auto",
    fps: Optional[float] = None,
    report: bool = False,
    explain: bool = False,
    onset: Optional[int] = None,
    offset: Optional[int] = None,
    out: Optional[Path] = None,
) -> PredictPlan:
    """Decide, before loading the model, how the inputs are read (docs/video.md):

    - a manifest CSV, or a frame range (`onset`/`offset`): clips, as always;
    - one video or frames folder, given alone, with no report or explain and no output folder: its events when it
      is long or `mode` asks for spotting or windows (a frames folder needs `fps` for that), else one clip;
    - anything else (several inputs, a folder of videos, a report, explain, an existing output folder): videos.
    """
    paths = [Path(p).expanduser() for p in inputs]
    if not paths:
        raise UserError("predict needs at least one INPUT")
    video_only = mode != "auto" or report or explain
    manifests = [p for p in paths if p.suffix.lower() == ".csv"]
    if manifests:
        if len(paths) > 1:
            raise UserError(f"{manifests[0]} is a manifest of clips: give it as the only INPUT")
        if video_only:
            raise UserError(
                f"{manifests[0]} is a manifest of clips; {arg('spot', True)}, {arg('windows')}, {arg('report', True)} "
                f"and {arg('explain', True)} apply to videos (give the videos or their folder instead)"
            )
        return PredictPlan("clips")
    if onset is not None or offset is not None:
        if len(paths) > 1:
            raise UserError(f"{arg('onset')} and {arg('offset')} apply to one clip; give one INPUT")
        if mode != "auto":
            raise UserError(
                f"{arg('onset')}/{arg('offset')} read one clip; {arg('spot', True)} and {arg('windows')} read the "
                "whole video: give one or the other"
            )
        return PredictPlan("clips")
    if len(paths) == 1 and paths[0].is_file() and paths[0].suffix.lower() not in VIDEO_SUFFIXES:
        return PredictPlan("clips")  # a single image or another file: predict's own message names what it is
    sources = stream_sources(paths)
    given_alone = len(paths) == 1 and len(sources) == 1 and sources[0] == paths[0]
    out_is_folder = out is not None and Path(out).is_dir()
    if given_alone and sources[0].is_dir() and fps is None and not (report or explain):
        if mode != "auto":
            raise UserError(f"{sources[0]} is a frames folder, which has no frame rate of its own: give {arg('fps')}")
        return PredictPlan("clips", sources)  # a dataset clip; a long one is warned about by predict
    if given_alone and not (report or explain or out_is_folder):
        source = sources[0]
        if mode != "auto" or FrameStream(source, fps).info.is_long:
            return PredictPlan("video", sources)
        return PredictPlan("clips", sources)
    if fps is None and any(s.is_dir() for s in sources):
        folder = next(s for s in sources if s.is_dir())
        raise UserError(f"{folder} is a frames folder, which has no frame rate of its own: give {arg('fps')}")
    if out is None:
        raise UserError(
            f"{len(sources)} video(s) give a folder of results (one CSV per video, index.csv): give {arg('out')} DIR"
        )
    if Path(out).suffix.lower() in (".csv", ".json") and not Path(out).is_dir():
        raise UserError(f"{arg('out', out)}: several videos, a report or explain write a folder; give a folder name")
    return PredictPlan("videos", sources)


__all__ = ["Mode", "PredictPlan", "plan_predict"]
