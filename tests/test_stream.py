"""Streams: a video or frames folder read frame by frame in its own frame numbers, with every bad input one clear
error (an unreadable or empty video, a folder without a frame rate or with a long gap, an absurd frame rate)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from aullm.data.stream import FrameStream, StreamError, stream_sources
from fixtures_video import write_frames, write_video


def numbered_frames(n: int, size: int = 64) -> list[np.ndarray]:
    """Frames whose content says their index: a bright bar at row 2·i (mod size), so a decoded frame is checkable."""
    frames = []
    for i in range(n):
        frame = np.full((size, size, 3), 40, np.uint8)
        frame[(4 * i) % (size - 4) : (4 * i) % (size - 4) + 4] = 230
        frames.append(frame)
    return frames


def bar_row(gray: np.ndarray) -> int:
    return int(np.argmax(gray[:, gray.shape[1] // 2]))


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("v") / "talk.mp4", numbered_frames(90), 30.0)


def test_a_video_streams_every_frame_in_order_with_its_0_based_index(video: Path) -> None:
    stream = FrameStream(video)
    assert (stream.info.name, stream.info.kind, stream.info.fps, stream.info.first_number) == ("talk", "video", 30, 0)
    assert stream.info.frame_count == 90 and stream.info.duration_s == pytest.approx(3.0)
    numbers = []
    for number, gray in stream.frames():
        assert gray.ndim == 2 and abs(bar_row(gray) - (4 * number) % 60) <= 2
        numbers.append(number)
    assert numbers == list(range(90))


def test_a_detached_picture_is_the_same_frame_as_arrays_only(video: Path, tmp_path: Path) -> None:
    """What the spotter hands from its decoding thread: the same gray and colour pixels, no decoder frame (a
    decoder frame released in the other thread made the process grow by ~15 KB a frame)."""
    for picture in list(FrameStream(video).pictures())[:5]:
        detached = picture.detached()
        assert detached.number == picture.number and isinstance(detached._source, np.ndarray)
        assert np.array_equal(detached.gray, picture.gray) and np.array_equal(detached.bgr, picture.bgr)
    write_frames(tmp_path / "f", numbered_frames(3))
    first = next(iter(FrameStream(tmp_path / "f", fps=30).pictures()))
    assert first.detached() is first  # a frames folder's picture is a path: nothing to detach


def test_a_clip_from_the_middle_of_a_video_is_the_same_frames_as_reading_through(video: Path) -> None:
    stream = FrameStream(video)
    through = {n: g for n, g in stream.frames()}
    clip = stream.clip(61, 70)
    assert clip.shape[0] == 10
    for k, gray in enumerate(clip):
        assert np.abs(gray.astype(int) - through[61 + k].astype(int)).max() <= 2
    with pytest.raises(Exception, match="it has 90 frames"):
        stream.clip(80, 95)


def test_a_given_frame_rate_overrides_the_container_and_absurd_ones_are_refused(video: Path) -> None:
    assert FrameStream(video, fps=25).info.fps == 25
    for bad in (0, -3, 5000, float("nan")):
        with pytest.raises(StreamError, match="fps must lie in"):
            FrameStream(video, fps=bad)


def test_a_frames_folder_streams_in_its_file_names_numbers(tmp_path: Path) -> None:
    folder = write_frames(tmp_path / "s15" / "15_0101", numbered_frames(12))
    stream = FrameStream(folder, fps=30)
    assert (stream.info.name, stream.info.first_number, stream.info.frame_count) == ("15_0101", 1, 12)
    assert [n for n, _ in stream.frames()] == list(range(1, 13))
    assert [n for n, _ in stream.frames(5, 7)] == [5, 6, 7]


def test_a_frames_folder_needs_a_frame_rate(tmp_path: Path) -> None:
    folder = write_frames(tmp_path / "clip", numbered_frames(5))
    with pytest.raises(StreamError, match="frames folder, which has no frame rate of its own: give fps"):
        FrameStream(folder)


def test_a_short_gap_is_filled_with_a_warning_and_a_long_one_refused(tmp_path: Path, caplog) -> None:
    folder = write_frames(tmp_path / "gap", numbered_frames(20))
    (folder / "img006.jpg").unlink()
    with caplog.at_level(logging.WARNING, logger="aullm"):
        stream = FrameStream(folder, fps=30)
    assert "missing frame(s) 6 filled" in caplog.text
    frames = dict(stream.frames())
    assert sorted(frames) == list(range(1, 21)) and np.array_equal(frames[6], frames[5])
    for k in range(8, 16):
        (folder / f"img{k:03d}.jpg").unlink()
    with pytest.raises(StreamError, match=r"frames 8\.\.15 are missing \(0\.27 s"):
        FrameStream(folder, fps=30)


def test_bad_sources_are_one_clear_error_each(tmp_path: Path) -> None:
    garbage = tmp_path / "broken.mp4"
    garbage.write_bytes(b"\x00" * 1000)
    empty = tmp_path / "empty"
    empty.mkdir()
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    unnumbered = write_frames(tmp_path / "names", numbered_frames(3), pattern="frame.{:d}x.jpg")
    (unnumbered / "cover.jpg").write_bytes((unnumbered / "frame.1x.jpg").read_bytes())
    cases = {
        garbage: "unreadable video",
        empty: "holds no frame images",
        text: "neither a video",
        tmp_path / "missing.mp4": "video not found",
        unnumbered: "has no frame number in its name",
    }
    for source, message in cases.items():
        with pytest.raises(StreamError, match=message):
            FrameStream(source, fps=30)


def test_folders_are_searched_for_videos_and_frames_folders(tmp_path: Path, video: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.mp4").write_bytes(video.read_bytes())
    write_frames(tmp_path / "b" / "s15" / "15_0101", numbered_frames(3))
    (tmp_path / "b" / "readme.txt").write_text("not a video")
    found = stream_sources([tmp_path])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a/one.mp4", "b/s15/15_0101"]
    (tmp_path / "c").mkdir()
    with pytest.raises(StreamError, match="no video or frames folder"):
        stream_sources([tmp_path / "c"])
