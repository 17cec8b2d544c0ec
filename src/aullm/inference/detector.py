"""`aullm.Detector`: a trained model bundle, ready to predict AUs on new clips from Python.

    >>> detector = aullm.Detector.load("runs/c2")          # a bundle, or a run directory with bundle/
    >>> detector.predict("my_clip_frames/")                 # a frames folder, a video, a manifest CSV,
    >>> detector.predict(frames)                            # or frames in memory: uint8 [T, H, W] or [T, H, W, 3]

Every input goes through the same decoding and sampling as `aullm predict` (and as the training data), so a clip
gives the same probabilities from Python, from the command line and in the run's predictions.csv.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Union, cast

import numpy as np
import pandas as pd

from aullm.config import FaceCrop
from aullm.core.errors import UserError, arg
from aullm.core.outputs import check_output_folder, mark_output_folder
from aullm.inference.bundle import Bundle, load_bundle
from aullm.inference.predict import (
    DEFAULT_BATCH,
    ClipRequest,
    PredictionResult,
    collect_requests,
    predict_clips,
    read_manifest,
)

if TYPE_CHECKING:
    from aullm.inference.events import VideoResult

#: One input: a path (frames folder, video, manifest CSV) or frames in memory.
ClipInput = Union[str, Path, np.ndarray]
CROPS = ("none", "detect", "align")


class Detector:
    """A loaded model bundle: its AUs, per-AU decision thresholds, and `predict` / `explain` for new clips."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle

    @classmethod
    def load(cls, path: Union[str, Path], device: str = "auto", llm: Optional[str] = None) -> Detector:
        """Load and verify a bundle (`aullm train --save-final` or `aullm export`; a run directory stands for its
        bundle/). `llm` points at another local copy of the bundle's base LLM (its sha256 is checked).

        >>> detector = Detector.load("runs/demo/bundle", device="cpu")
        """
        return cls(load_bundle(Path(path), device=device, llm=llm))

    @property
    def aus(self) -> list[str]:
        return list(self.bundle.aus)

    @property
    def thresholds(self) -> dict[str, float]:
        """The decision threshold of each AU (validation-tuned when the run held out validation subjects)."""
        return {au: float(t) for au, t in zip(self.bundle.aus, self.bundle.thresholds)}

    def requests(
        self,
        inputs: Union[ClipInput, Sequence[ClipInput]],
        onset: Optional[int] = None,
        offset: Optional[int] = None,
        apex: Optional[int] = None,
    ) -> list[ClipRequest]:
        """The clips `inputs` stand for: one per frames folder, video or array, many for a manifest CSV."""
        many = isinstance(inputs, (list, tuple))
        items: list[ClipInput] = list(inputs) if isinstance(inputs, (list, tuple)) else [cast(ClipInput, inputs)]
        if not items:
            raise UserError("predict needs at least one input")
        if (onset is not None or offset is not None or apex is not None) and len(items) > 1:
            raise UserError("onset/offset/apex apply to one clip; predict the clips one by one to give each its own")
        requests: list[ClipRequest] = []
        for i, item in enumerate(items):
            if isinstance(item, np.ndarray):
                name = f"array{i}" if many else "array"
                requests.append(ClipRequest(name=name, array=item, onset=onset, offset=offset, apex=apex))
            elif isinstance(item, (str, Path)):
                requests.extend(collect_requests(Path(item), onset, offset, apex))
            else:
                raise UserError(f"input {i}: a path or a NumPy array of frames, not {type(item).__name__}")
        return requests

    def predict(
        self,
        inputs: Union[ClipInput, Sequence[ClipInput]],
        *,
        onset: Optional[int] = None,
        offset: Optional[int] = None,
        crop: Optional[FaceCrop] = None,
        batch_size: int = DEFAULT_BATCH,
    ) -> pd.DataFrame:
        """One row per clip: `clip`, `AU<k>_prob`, `AU<k>` (0/1 at the bundle's thresholds), `status` (`ok` or
        `failed: reason`; a failed clip never stops the others) and `n_frames`.

        `onset`/`offset` pick a frame range (file-name frame numbers for a folder, 0-based indices for a video or
        an array). `crop`: `none` (frames as they are), `detect` (face box) or `align` (MEB's crop-and-align); by
        default the model's own training crop, else `align` for videos and arrays and none for frames folders.

        >>> table = detector.predict(np.zeros((12, 240, 320, 3), np.uint8), crop="none")
        >>> table[["clip", "AU12_prob", "AU12", "status"]]
        """
        return self.predict_result(inputs, onset=onset, offset=offset, crop=crop, batch_size=batch_size).table

    def predict_result(
        self,
        inputs: Union[ClipInput, Sequence[ClipInput]],
        *,
        onset: Optional[int] = None,
        offset: Optional[int] = None,
        crop: Optional[FaceCrop] = None,
        batch_size: int = DEFAULT_BATCH,
    ) -> PredictionResult:
        """`predict` with the warnings raised on the way and a JSON form (what `aullm predict --json` prints)."""
        self._check(crop, batch_size)
        requests = self.requests(inputs, onset, offset)
        return predict_clips(self.bundle, requests, face_crop=crop, batch_size=batch_size)

    def explain(
        self,
        inputs: Union[ClipInput, Sequence[ClipInput]],
        out: Union[str, Path],
        *,
        onset: Optional[int] = None,
        offset: Optional[int] = None,
        apex: Optional[int] = None,
        crop: Optional[FaceCrop] = None,
        force: bool = False,
    ) -> dict[str, Union[list[Path], str]]:
        """Grad-CAM per AU on the apex frame, SE channel weights over time and the LED matrix, as PNGs in `out`
        (one subfolder per clip for several inputs or a manifest). Returns {clip: written files, or "failed:
        reason"}.

        >>> detector.explain("my_clip_frames/", out="explain/")

        `out` is never an input nor inside one; a folder of files aullm did not write is refused unless `force`.
        """
        check_explain_output(Path(out), inputs, force=force)
        requests = self.requests(inputs, onset, offset, apex)
        items = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        manifest = any(isinstance(i, (str, Path)) and Path(i).suffix.lower() == ".csv" for i in items)
        from aullm.inference.explain import explain_requests

        results = explain_requests(
            self.bundle, requests, Path(out), face_crop=crop, per_clip_folders=manifest or len(requests) > 1
        )
        mark_output_folder(Path(out), "explain")
        return results

    def events(
        self,
        video: Union[str, Path],
        *,
        fps: Optional[float] = None,
        kind: str = "both",
        crop: Optional[FaceCrop] = None,
        spot: Optional[Mapping[str, Union[float, str]]] = None,
        batch_size: int = DEFAULT_BATCH,
    ) -> pd.DataFrame:
        """Spot the expressions of a video (or frames folder), then predict the AUs of each: one row per event,
        `video, event, onset, apex, offset, t_onset_s, t_offset_s, spot_score, kind, AU<k>_prob, AU<k>, status`.
        Frame numbers are the video's own (0-based for a file, the file names' numbers for a frames folder), times
        in seconds from its first frame. No event: one row with an empty `event` and `status` `no expression
        spotted`. `fps` is required for a frames folder; `kind` micro, macro or both; `spot` overrides spotting
        settings by name (`aullm.spotting.settings.SpotSettings`); `crop` as in `predict` (default: the model's
        training crop, else `align`).

        >>> events = detector.events("interview.mp4")
        >>> events[events["AU12"] == 1][["t_onset_s", "t_offset_s", "AU12_prob"]]
        """
        return self.video_events(video, fps=fps, kind=kind, crop=crop, spot=spot, batch_size=batch_size).table

    def video_events(
        self,
        video: Union[str, Path],
        *,
        fps: Optional[float] = None,
        kind: str = "both",
        crop: Optional[FaceCrop] = None,
        spot: Optional[Mapping[str, Union[float, str]]] = None,
        batch_size: int = DEFAULT_BATCH,
        keep_clips: bool = False,
    ) -> VideoResult:
        """`events` with what the pictures need: the spotting score over time, apex thumbnails, decoded clips."""
        from aullm.inference.events import video_events
        from aullm.spotting.settings import settings_from

        self._check(crop, batch_size)
        return video_events(
            self.bundle,
            Path(video),
            fps=fps,
            settings=settings_from(dict(spot or {})),
            kind=kind,
            face_crop=crop,
            batch_size=batch_size,
            keep_clips=keep_clips,
        )

    def timeline(
        self,
        video: Union[str, Path],
        window_s: float = 1.0,
        stride_s: Optional[float] = None,
        *,
        fps: Optional[float] = None,
        crop: Optional[FaceCrop] = None,
        batch_size: int = DEFAULT_BATCH,
    ) -> pd.DataFrame:
        """AU probabilities over sliding windows of `window_s` seconds every `stride_s` (default half a window)
        over the whole video: `video, t_start_s, t_end_s, AU<k>_prob`, then `AU<k>` (0/1), `start_frame`,
        `end_frame` (the video's own numbers, inclusive; t_end_s is the window's end, exclusive) and `status`.
        Every moment scored, not only the spotted ones; windows are decoded in one streamed pass and batched.

        >>> detector.timeline("interview.mp4", window_s=1.0, stride_s=0.5)
        """
        from aullm.inference.events import video_windows

        self._check(crop, batch_size)
        result = video_windows(
            self.bundle,
            Path(video),
            window_s=window_s,
            stride_s=stride_s,
            fps=fps,
            face_crop=crop,
            batch_size=batch_size,
        )
        return result.table

    @staticmethod
    def _check(crop: Optional[str], batch_size: int) -> None:
        if crop is not None and crop not in CROPS:
            raise UserError(f"crop must be one of {', '.join(CROPS)}, got {crop!r}")
        if batch_size < 1:
            raise UserError(f"batch_size must be at least 1, got {batch_size}")

    def __repr__(self) -> str:
        return f"Detector({self.bundle.path}, model={self.bundle.cfg.model.name}, aus={self.aus})"


def check_explain_output(out: Path, inputs: Union[ClipInput, Sequence[ClipInput]], *, force: bool = False) -> None:
    """explain's output folder: never an input (a manifest, a clip it lists) nor inside one; new, empty, or one
    explain wrote (its explain.json), unless `force`."""
    items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    paths = [Path(i) for i in items if isinstance(i, (str, Path))]
    listed: list[Path] = []
    for path in paths:
        if path.suffix.lower() == ".csv" and path.is_file():
            with contextlib.suppress(UserError):
                listed += [r.path for r in read_manifest(path) if r.path is not None]

    def explained(folder: Path) -> bool:  # written by an aullm from before the marker
        return (folder / "explain.json").is_file() or any(folder.glob("*/explain.json"))

    check_output_folder(Path(out), "explain", [*paths, *listed], force=force, what=arg("out"), also_ours=explained)


__all__ = ["ClipInput", "Detector", "check_explain_output"]
