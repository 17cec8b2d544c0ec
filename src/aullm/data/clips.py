"""Frame discovery, decoding, clip sampling and batching (docs/design.md, Datasets).

Decoding uses Pillow's JPEG draft mode (DCT-domain downscaling inside libjpeg) to no less than twice the target
size, before an anti-aliased resize, so a 2040×1088 SAMM frame is decoded at 1/4 or 1/8 of its size: that is most
of `prepare`'s speed on uncropped data.
Truncated or garbage images raise `FrameError` (the loader skips that sample), never a silently grey frame.
`sample_batch` is called by the trainer every step, so it is a single vectorised gather over one contiguous array.
"""

from __future__ import annotations

import contextlib
import math
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Protocol

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from aullm.core.console import logger

if TYPE_CHECKING:  # pragma: no cover
    import torch

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".mpg", ".mpeg", ".m4v", ".webm"})
#: (x0, y0, x1, y1) in pixels of the original frame.
Box = tuple[int, int, int, int]

#: Frames smaller than this on either side cannot hold a face; they are a decoding or export error.
MIN_FRAME_SIDE = 16
_NUMBER = re.compile(r"(\d+)(?!.*\d)")
ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated JPEG must fail, not decode half grey


class FrameError(Exception):
    """One frame or video that cannot be decoded; the message names the file."""


class ClipStore(Protocol):
    """Clips stored back to back: clip i is `frames[offsets[i] : offsets[i] + lengths[i]]` (or, for optical-flow
    input, one [3, H, W] array per clip in `flow`). A prepared dataset is one; so is a batch of new clips."""

    frames: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray
    flow: Optional[np.ndarray]


@dataclass
class PackedClips:
    """A `ClipStore` for clips held in memory (new clips to predict on)."""

    frames: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray
    flow: Optional[np.ndarray] = None

    @classmethod
    def of_clips(cls, clips: Sequence[np.ndarray]) -> PackedClips:
        """Gray clips [n_i, H, W] stored back to back."""
        lengths = np.array([len(c) for c in clips], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        return cls(np.concatenate(clips), offsets, lengths)

    @classmethod
    def of_flow(cls, flow: np.ndarray, size: int) -> PackedClips:
        """Optical-flow inputs [N, 3, size, size]."""
        n = len(flow)
        empty = np.zeros(n, np.int64)
        return cls(np.zeros((0, size, size), np.uint8), empty, empty.copy(), flow)


def frame_number(path: Path) -> Optional[int]:
    """The frame index in a file name: the last number in the stem (`reg_img46` → 46, `006_05562` → 5562)."""
    match = _NUMBER.search(Path(path).stem)
    return int(match.group(1)) if match else None


def list_frames(folder: Path) -> list[Path]:
    """The images in `folder` ordered by frame number (numberless names last, by name)."""
    folder = Path(folder)
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")]

    def key(p: Path) -> tuple[float, str]:
        number = frame_number(p)
        return (float(number) if number is not None else math.inf, p.name)

    return sorted(files, key=key)


def resize_gray(gray: np.ndarray, size: int) -> np.ndarray:
    """Anti-aliased resize (Pillow's convolution resize widens its kernel when shrinking)."""
    if gray.shape == (size, size):
        return gray
    return np.asarray(Image.fromarray(gray).resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None))


def check_frame_size(width: int, height: int, where: object) -> None:
    """A frame too small to hold a face (e.g. 1×1 px) is an error, not something to upscale and train on."""
    if min(width, height) < MIN_FRAME_SIDE:
        raise FrameError(
            f"{where} is {width}×{height} px: too small to hold a face (at least {MIN_FRAME_SIDE}×{MIN_FRAME_SIDE})"
        )


@contextlib.contextmanager
def open_image(path: Path, *, face: bool = True) -> Iterator[Image.Image]:
    """Open a frame for decoding. Every failure, while opening or while decoding in the `with` body, becomes a
    FrameError naming the file: missing, unreadable, too small to hold a face, or so large that Pillow suspects a
    decompression bomb (its warning is an error here, so no message ever goes out without the file's name).
    `face=False` skips the minimum size, for images that are not frames of a face (pre-computed optical flow)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if face:
                    check_frame_size(im.size[0], im.size[1], f"frame {path}")
                yield im
    except FileNotFoundError:
        raise FrameError(f"frame missing: {path}") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as err:
        raise FrameError(f"image {path} is too large to decode safely ({err})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise FrameError(f"unreadable image {path}: {err}") from None


def read_gray(path: Path, size: int, box: Optional[Box] = None) -> np.ndarray:
    """Decode one image to gray uint8 [size, size], cropped to `box` first; raises FrameError (`open_image`)."""
    return _read_gray(path, size, box)[0]


def _read_gray(path: Path, size: int, box: Optional[Box]) -> tuple[np.ndarray, tuple[int, int]]:
    """`read_gray`, also returning the image's original (width, height)."""
    with open_image(path) as im:
        width, height = im.size
        bx0, by0, bx1, by1 = box if box is not None else (0, 0, width, height)
        bw, bh = max(1, bx1 - bx0), max(1, by1 - by0)
        if im.format == "JPEG":
            # Decode at ≥ 2× the target size: large frames still decode at 1/4–1/8 scale, while the final
            # resize does the anti-aliasing, so a frames folder and a video of the same clip agree.
            im.draft("L", (math.ceil(2 * width * size / bw), math.ceil(2 * height * size / bh)))
        sx, sy = im.size[0] / width, im.size[1] / height
        gray = im.convert("L")
        if box is not None:
            gray = gray.crop((round(bx0 * sx), round(by0 * sy), round(bx1 * sx), round(by1 * sy)))
        if gray.size != (size, size):
            gray = gray.resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(gray, dtype=np.uint8), (width, height)


def load_frames(paths: Sequence[Path], size: int, box: Optional[Box] = None) -> np.ndarray:
    """Decode frames to one gray uint8 array [n, size, size] (used by prepare and by predict).

    Frames of different sizes within one clip are each resized to `size`, with a warning naming the clip: a
    face crop or a camera setting probably changed mid-clip, which the model's input no longer shows."""
    out = np.empty((len(paths), size, size), dtype=np.uint8)
    sizes: set[tuple[int, int]] = set()
    for i, path in enumerate(paths):
        out[i], original = _read_gray(path, size, box)
        sizes.add(original)
    if len(sizes) > 1:
        shown = ", ".join(f"{w}×{h}" for w, h in sorted(sizes)[:4])
        logger.warning(
            "clip %s: its frames have different sizes (%s); each is resized to %d×%d",
            Path(paths[0]).parent,
            shown,
            size,
            size,
        )
    return out


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image from its header, without decoding it; raises FrameError if unreadable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return im.size
    except FileNotFoundError:
        raise FrameError(f"frame missing: {path}") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as err:
        raise FrameError(f"image {path} is too large to decode safely ({err})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise FrameError(f"unreadable image {path}: {err}") from None


def _check_video_stream(container: Any, path: Path) -> None:
    """A file PyAV opens but that holds no video stream (audio only, or a video of no frames whose stream was
    never written) has nothing to decode: PyAV would raise IndexError."""
    if not container.streams.video:
        raise FrameError(f"video {path} has no frames (no video stream in it)")


def read_video(
    path: Path,
    size: int,
    start: int = 0,
    stop: Optional[int] = None,
    box: Optional[Box] = None,
    transform: Optional[Callable[[np.ndarray], np.ndarray]] = None,
) -> np.ndarray:
    """Frames start..stop (0-based, inclusive) of a video as gray uint8 [n, size, size], decoded with PyAV.

    Each full-resolution gray frame is cropped to `box` and resized, or given to `transform` (which returns it at
    size×size) instead.
    """
    import av

    frames: list[np.ndarray] = []
    seen = 0
    try:
        with av.open(str(path)) as container:
            _check_video_stream(container, path)
            for i, frame in enumerate(container.decode(video=0)):
                seen = i + 1
                if i < start:
                    continue
                if stop is not None and i > stop:
                    break
                gray = frame.to_ndarray(format="gray")
                if not frames:
                    check_frame_size(gray.shape[1], gray.shape[0], f"video {path}")
                if transform is not None:
                    frames.append(transform(gray))
                    continue
                if box is not None:
                    gray = gray[box[1] : box[3], box[0] : box[2]]
                frames.append(resize_gray(np.ascontiguousarray(gray), size))
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise FrameError(f"unreadable video {path}: {err}") from None
    expected = None if stop is None else stop - start + 1
    if not frames or (expected is not None and len(frames) < expected):
        holds = f"{seen} frames, 0..{seen - 1}" if seen else "no frame"
        wanted = f"frames {start}..{stop}" if stop is not None else f"frame {start} onwards"
        raise FrameError(f"video {path} holds {holds}: {wanted} are not all in it")
    return np.stack(frames)


def video_first_frame(path: Path, start: int = 0, colour: bool = False) -> np.ndarray:
    """The full-resolution frame `start` of a video, gray or RGB (for face detection)."""
    import av

    seen = 0
    try:
        with av.open(str(path)) as container:
            _check_video_stream(container, path)
            for i, frame in enumerate(container.decode(video=0)):
                seen = i + 1
                if i >= start:
                    return frame.to_ndarray(format="rgb24" if colour else "gray")
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise FrameError(f"unreadable video {path}: {err}") from None
    holds = f"{seen} frames, 0..{seen - 1}" if seen else "no frame"
    raise FrameError(f"video {path} holds {holds}: it has no frame {start}")


# ------------------------------------------------------------------------------------------------ sampling


def _positions(lengths: np.ndarray, frames: int, train: bool, rng: Optional[np.random.Generator]) -> np.ndarray:
    """Fractional frame positions [B, frames] for clips of the given lengths (docs/design.md, Datasets).

    Test: evenly spaced over the whole clip, round(linspace(0, n-1, frames)). Train (the reference's random-end
    scheme): start at the onset, end drawn uniformly in [frames, n-2], then rounded linspace; clips too short for
    that use the test scheme. Clips shorter than `frames` keep fractional positions (interpolated in time).
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    ends = lengths - 1
    if train:
        if rng is None:
            raise ValueError("train sampling needs an rng")
        high = lengths - 2
        random_end = high >= frames
        draws = rng.integers(frames, np.maximum(high, frames), endpoint=True)
        ends = np.where(random_end, draws, ends)
    pos = ends[:, None].astype(np.float64) * np.linspace(0.0, 1.0, frames)[None, :]
    short = lengths < frames
    return np.where(short[:, None], pos, np.round(pos))


def sample_indices(n: int, frames: int, train: bool, rng: Optional[np.random.Generator]) -> np.ndarray:
    """Frame indices (0-based within the clip) to sample; for clips shorter than `frames`, the nearest frames."""
    pos = _positions(np.array([n]), frames, train, rng)[0]
    return np.clip(np.round(pos), 0, max(n - 1, 0)).astype(np.int64)


def sample_batch(
    prepared: ClipStore, rows: np.ndarray, train: bool, rng: Optional[np.random.Generator], frames: int
) -> torch.Tensor:
    """A model input batch, float32 in [0, 1]: [B, frames, size, size] (clip) or [B, 3, size, size] (flow)."""
    import torch  # here, not at module level: `aullm data stats` should not pay for importing torch

    rows = np.asarray(rows, dtype=np.int64)
    if prepared.flow is not None:
        return torch.from_numpy(np.ascontiguousarray(prepared.flow[rows]))
    lengths = prepared.lengths[rows]
    offsets = prepared.offsets[rows]
    pos = _positions(lengths, frames, train, rng)
    lo = np.floor(pos).astype(np.int64)
    weight = (pos - lo).astype(np.float32)
    # numpy gather + one fused scale: much faster on CPU than torch indexing of a uint8 tensor
    batch = np.multiply(
        np.take(prepared.frames, offsets[:, None] + lo, axis=0), np.float32(1.0 / 255.0), dtype=np.float32
    )
    short = np.flatnonzero((weight > 0).any(axis=1))
    if len(short):  # clips shorter than `frames`: linear interpolation between neighbouring frames
        hi = np.minimum(lo[short] + 1, lengths[short, None] - 1)
        upper = np.multiply(
            np.take(prepared.frames, offsets[short, None] + hi, axis=0), np.float32(1.0 / 255.0), dtype=np.float32
        )
        whole = len(short) == len(rows)
        lower = batch if whole else batch[short]
        upper -= lower
        upper *= weight[short][:, :, None, None]
        lower += upper
        if not whole:
            batch[short] = lower
    return torch.from_numpy(batch)


__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "Box",
    "FrameError",
    "frame_number",
    "image_size",
    "list_frames",
    "load_frames",
    "read_gray",
    "read_video",
    "resize_gray",
    "sample_batch",
    "sample_indices",
    "video_first_frame",
]
