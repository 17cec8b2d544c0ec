"""A long video as a stream of frames: decoded one at a time, in order, never held whole.

Spotting and per-event prediction read interviews that last minutes; holding them would make memory grow with
their length. A stream yields `(number, gray frame)` pairs, where `number` is the video's own frame number: the
0-based index for a video file, the number in the file name for a frames folder (`img001.jpg` → 1,
`006_1_00012.jpg` → 12), so every table aullm writes points at the frame a person would open.

A frames folder has no frame rate of its own, so one must be given; a video's comes from its container unless
given. A frames folder with a short gap (a dropped frame or two, as in some released datasets) is read with the
previous frame repeated and a warning naming the missing numbers; a longer gap is refused, since intervals
across it would be measured in time that was never recorded.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

import numpy as np

from aullm.core.console import logger
from aullm.core.errors import UserError, arg
from aullm.data.clips import IMAGE_SUFFIXES, MIN_FRAME_SIDE, VIDEO_SUFFIXES, FrameError, frame_number, list_frames

#: Frame rates outside this range are taken for a mistake (a typo, or a container with a broken header).
MIN_FPS, MAX_FPS = 1.0, 1000.0
#: The longest gap in a frames folder filled by repeating the frame before it, in seconds.
MAX_GAP_S = 0.2
#: Input longer than this is "long": several micro-expression lengths (≤ 0.5 s each) and longer than the clips of
#: the datasets the AU models train on. `predict` spots long input instead of reading it as one clip.
LONG_INPUT_S = 2.0


class StreamError(UserError):
    """A video or frames folder that cannot be streamed (unreadable, empty, no frame rate, a long gap)."""


class Picture:
    """One frame of a stream, decoded to gray or to colour only when asked: every frame is needed in gray, a
    few (where a face is looked for) in colour, which face detectors are trained on."""

    def __init__(
        self,
        number: int,
        source: object,
        read: Callable[[object, bool], np.ndarray],
        gray: Optional[np.ndarray] = None,
    ) -> None:
        self.number = number
        self._source, self._read = source, read
        self._gray = gray

    def renumbered(self, number: int) -> Picture:
        return Picture(number, self._source, self._read, self._gray)

    @property
    def gray(self) -> np.ndarray:
        """uint8 [H, W]."""
        if self._gray is None:
            self._gray = self._read(self._source, False)
        return self._gray

    @property
    def bgr(self) -> np.ndarray:
        """uint8 [H, W, 3] in OpenCV's channel order."""
        return self._read(self._source, True)

    def detached(self) -> Picture:
        """The same frame holding arrays only, nothing of the decoder's: the form in which a frame may be handed to
        another thread. A decoded video frame released in a thread other than the decoding one is not reused: the
        spotter, which decodes ahead in a thread, grew by ~15 KB a frame (250 MB over a 10-minute 640×480 video);
        handing over arrays, it stays flat. A frames folder's picture (a file path) is already detached."""
        if isinstance(self._source, (str, Path)):
            return self
        return Picture(self.number, self.bgr, _held, self.gray)


def _held(source: object, colour: bool) -> np.ndarray:
    """The colour array a detached picture holds (its gray one is given to it at creation)."""
    assert colour and isinstance(source, np.ndarray)
    return source


@dataclass(frozen=True)
class StreamInfo:
    """What is known of a stream before it is decoded."""

    path: Path
    name: str  # the video's key in every table: the file's stem or the folder's name
    kind: Literal["video", "frames"]
    fps: float
    frame_count: Optional[int]  # None when a video's container does not say
    first_number: int  # the number of the first frame (0 for a video file)
    width: int
    height: int

    @property
    def duration_s(self) -> Optional[float]:
        return None if self.frame_count is None else self.frame_count / self.fps

    @property
    def is_long(self) -> bool:
        """More than LONG_INPUT_S of video (a video that does not state its length counts as long)."""
        return self.duration_s is None or self.duration_s > LONG_INPUT_S


def is_stream_source(path: Path) -> bool:
    """A video file, or a folder holding frame images (not a folder of videos)."""
    path = Path(path)
    if path.is_file():
        return path.suffix.lower() in VIDEO_SUFFIXES
    return path.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir())


def check_fps(fps: float, where: object) -> float:
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and MIN_FPS <= fps <= MAX_FPS):
        raise StreamError(
            f"{where}: frame rate {fps!r} is not usable ({arg('fps')} must lie in {MIN_FPS:g}..{MAX_FPS:g})"
        )
    return float(fps)


class FrameStream:
    """Frames of one video file or frames folder, in order (see the module's docstring)."""

    def __init__(self, path: Path, fps: Optional[float] = None) -> None:
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise StreamError(f"video not found: {self.path}")
        if self.path.is_dir():
            self._files, self._numbers = self._frame_files()
            self.info = self._folder_info(fps)
        elif self.path.suffix.lower() in VIDEO_SUFFIXES:
            self._files, self._numbers = [], []
            self.info = self._video_info(fps)
        else:
            videos = ", ".join(sorted(VIDEO_SUFFIXES))
            raise StreamError(f"{self.path} is neither a video ({videos}) nor a frames folder")

    # --- frames folders ----------------------------------------------------------------------------------------

    def _frame_files(self) -> tuple[list[Path], list[int]]:
        files = list_frames(self.path)
        if not files:
            raise StreamError(f"{self.path} holds no frame images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        numbers = [frame_number(p) for p in files]
        unnumbered = [p.name for p, n in zip(files, numbers) if n is None]
        if unnumbered:
            raise StreamError(f"{self.path}: frame file {unnumbered[0]!r} has no frame number in its name")
        ints = [int(n) for n in numbers if n is not None]
        repeated = sorted({n for n, m in itertools.pairwise(ints) if n == m})
        if repeated:
            raise StreamError(f"{self.path}: frame number {repeated[0]} appears in two file names")
        return files, ints

    def _folder_info(self, fps: Optional[float]) -> StreamInfo:
        if fps is None:
            raise StreamError(f"{self.path} is a frames folder, which has no frame rate of its own: give {arg('fps')}")
        rate = check_fps(fps, self.path)
        gaps = [(a, b) for a, b in itertools.pairwise(self._numbers) if b - a > 1]
        longest = max((b - a - 1 for a, b in gaps), default=0)
        if longest / rate > MAX_GAP_S:
            a, b = next((a, b) for a, b in gaps if b - a - 1 == longest)
            raise StreamError(
                f"{self.path}: frames {a + 1}..{b - 1} are missing ({longest / rate:.2f} s; at most {MAX_GAP_S:g} s "
                "is filled by repeating the frame before)"
            )
        if gaps:
            shown = ", ".join(f"{a + 1}..{b - 1}" if b - a > 2 else str(a + 1) for a, b in gaps[:5])
            logger.warning("%s: missing frame(s) %s filled with the frame before", self.path, shown)
        first = self._read_file(self._files[0])
        count = self._numbers[-1] - self._numbers[0] + 1
        return StreamInfo(
            self.path, self.path.name, "frames", rate, count, self._numbers[0], first.shape[1], first.shape[0]
        )

    def _read_file(self, path: object, colour: bool = False) -> np.ndarray:
        import cv2

        image = cv2.imread(str(path), cv2.IMREAD_COLOR if colour else cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise StreamError(f"unreadable frame {path}")
        if min(image.shape[:2]) < MIN_FRAME_SIDE:
            raise StreamError(f"frame {path} is {image.shape[1]}×{image.shape[0]} px: too small to hold a face")
        return image

    @staticmethod
    def _convert(frame: object, colour: bool) -> np.ndarray:
        return frame.to_ndarray(format="bgr24" if colour else "gray")  # type: ignore[attr-defined]

    # --- video files -------------------------------------------------------------------------------------------

    def _video_info(self, fps: Optional[float]) -> StreamInfo:
        import av

        try:
            with av.open(str(self.path)) as container:
                if not container.streams.video:
                    raise StreamError(f"{self.path} has no video stream")
                stream = container.streams.video[0]
                rate = stream.average_rate or stream.guessed_rate
                count = int(stream.frames) or None
                first = next(container.decode(video=0), None)
        except (av.error.FFmpegError, OSError, ValueError) as err:
            raise StreamError(f"unreadable video {self.path}: {err}") from None
        if first is None:
            raise StreamError(f"{self.path} holds no frames")
        if fps is None:
            if not rate:
                raise StreamError(f"{self.path} does not state its frame rate: give {arg('fps')}")
            fps = float(rate)
        rate_used = check_fps(fps, self.path)
        if min(first.width, first.height) < MIN_FRAME_SIDE:
            raise StreamError(f"{self.path} is {first.width}×{first.height} px: too small to hold a face")
        return StreamInfo(self.path, self.path.stem, "video", rate_used, count, 0, first.width, first.height)

    def _video_frames(self, start: int) -> Iterator[Picture]:
        import av

        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"  # frame-threaded decoding: the other core decodes ahead
                if start > 0:
                    self._seek(container, stream, start)
                for frame in container.decode(stream):
                    index = self._index_of(frame, stream)
                    if index < start:
                        continue
                    yield Picture(index, frame, self._convert)
        except (av.error.FFmpegError, OSError) as err:
            raise StreamError(f"unreadable video {self.path}: {err}") from None

    def _seek(self, container: object, stream: object, start: int) -> None:
        """Seek to the keyframe at or before frame `start` (decoding then walks forward to it)."""
        seconds = start / self.info.fps
        time_base = stream.time_base  # type: ignore[attr-defined]
        if time_base:
            container.seek(int(seconds / time_base), stream=stream, backward=True)  # type: ignore[attr-defined]
        self._seeked = True

    def _index_of(self, frame: object, stream: object) -> int:
        """A decoded frame's 0-based index, from its timestamp (after a seek) or by counting (from the start)."""
        if getattr(self, "_seeked", False) and frame.pts is not None:  # type: ignore[attr-defined]
            seconds = float(frame.pts * stream.time_base)  # type: ignore[attr-defined]
            start_time = float((stream.start_time or 0) * stream.time_base)  # type: ignore[attr-defined]
            return int(round((seconds - start_time) * self.info.fps))
        self._count = getattr(self, "_count", -1) + 1
        return self._count

    # --- reading -----------------------------------------------------------------------------------------------

    def pictures(self, start: Optional[int] = None, stop: Optional[int] = None) -> Iterator[Picture]:
        """Frames start..stop (inclusive, the stream's own numbers; default all), each decoded when asked."""
        first = self.info.first_number if start is None else max(start, self.info.first_number)
        if self.info.kind == "video":
            self._count, self._seeked = -1, False
            for picture in self._video_frames(first):
                if stop is not None and picture.number > stop:
                    return
                yield picture
            return
        previous: Optional[Picture] = None
        expected = self.info.first_number
        for path, number in zip(self._files, self._numbers):
            if stop is not None and number > stop:
                return
            if number < first:
                expected = number + 1
                continue
            picture = Picture(number, path, self._read_file)
            while previous is not None and expected < number:  # a short gap: repeat the frame before
                yield previous.renumbered(expected)
                expected += 1
            yield picture
            previous, expected = picture, number + 1

    def frames(self, start: Optional[int] = None, stop: Optional[int] = None) -> Iterator[tuple[int, np.ndarray]]:
        """(number, gray uint8 [H, W]) for frames start..stop (inclusive, the stream's own numbers; default all)."""
        for picture in self.pictures(start, stop):
            yield picture.number, picture.gray

    def clip(self, start: int, stop: int) -> np.ndarray:
        """Frames start..stop (inclusive) as gray uint8 [n, H, W]; a range beyond the stream is a FrameError."""
        frames = [gray for _, gray in self.frames(start, stop)]
        if len(frames) != stop - start + 1:
            raise FrameError(
                f"{self.path} has frames {len(frames)} of {start}..{stop}"
                + (f" (it has {self.info.frame_count} frames)" if self.info.frame_count else "")
            )
        return np.stack(frames)


def stream_sources(inputs: list[Path]) -> list[Path]:
    """The videos and frames folders named by `inputs`: each a video, a frames folder, or a folder searched
    recursively for both (a folder holding frame images is one frames folder, not searched further)."""
    found: list[Path] = []
    for given in inputs:
        path = Path(given).expanduser()
        if not path.exists():
            raise StreamError(f"input not found: {path}")
        if path.is_file():
            if path.suffix.lower() not in VIDEO_SUFFIXES:
                raise StreamError(f"{path} is not a video ({', '.join(sorted(VIDEO_SUFFIXES))})")
            found.append(path)
            continue
        found.extend(_search(path))
    if not found:
        raise StreamError(f"no video or frames folder in {', '.join(str(p) for p in inputs)}")
    return found


def _search(folder: Path) -> list[Path]:
    if is_stream_source(folder):
        return [folder]
    found: list[Path] = []
    for child in sorted(folder.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_file() and child.suffix.lower() in VIDEO_SUFFIXES:
            found.append(child)
        elif child.is_dir() and not child.is_symlink():
            found.extend(_search(child))
    return found


__all__ = [
    "LONG_INPUT_S",
    "MAX_FPS",
    "MAX_GAP_S",
    "MIN_FPS",
    "FrameStream",
    "Picture",
    "StreamError",
    "StreamInfo",
    "check_fps",
    "is_stream_source",
    "stream_sources",
]
