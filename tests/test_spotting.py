"""Spotting: the interval rules on hand-written signals, the face crop on a real photograph, the head-motion fit,
and the whole spotter on videos made from that photograph (moved, rotated, re-lit; with and without an
expression)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from aullm.core.errors import UserError
from aullm.data.stream import FrameStream
from aullm.spotting.face import crop_geometry, locate_face
from aullm.spotting.head import HeadFit
from aullm.spotting.intervals import detect, kind_of, region_scores
from aullm.spotting.regions import face_regions
from aullm.spotting.settings import SpotSettings, settings_from
from aullm.spotting.spotter import spot_stream, spot_videos
from fixtures_video import Expression, photo_frames, write_video

FPS = 30.0
S = SpotSettings()


def bump(n: int, start: int, length: int, height: float) -> np.ndarray:
    """A sin² bump of `height` over [start, start + length)."""
    out = np.zeros(n)
    t = np.arange(length)
    out[start : start + length] = height * np.sin(np.pi * (t + 0.5) / length) ** 2
    return out


def noise(n: int, level: float = 0.2, seed: int = 0) -> np.ndarray:
    return np.abs(np.random.default_rng(seed).normal(0, level, n))


# --------------------------------------------------------------------------------------------- interval rules


def test_a_short_bump_is_one_micro_expression_where_it_is() -> None:
    scores = noise(300) + bump(300, 100, 12, 3.0)  # 0.4 s
    found, level = detect(scores, FPS, S)
    assert len(found) == 1
    item = found[0]
    assert 99 <= item.onset <= 102 and 109 <= item.offset <= 112 and 104 <= item.apex <= 107
    assert kind_of(item, FPS, S) == "micro" and item.score == pytest.approx(scores[item.apex])
    assert level == pytest.approx(S.threshold_px)


def test_a_long_bump_is_a_macro_expression_and_noise_alone_is_nothing() -> None:
    scores = noise(400) + bump(400, 100, 60, 5.0)  # 2 s
    found, _ = detect(scores, FPS, S)
    assert [kind_of(i, FPS, S) for i in found] == ["macro"]
    assert detect(noise(400), FPS, S)[0] == []


def test_the_micro_macro_split_is_at_half_a_second() -> None:
    from aullm.spotting.intervals import Interval

    assert kind_of(Interval(0, 7, 15, 1.0), FPS, S) == "micro"  # 15 frames after onset = 0.5 s
    assert kind_of(Interval(0, 7, 16, 1.0), FPS, S) == "macro"
    assert kind_of(Interval(0, 50, 100, 1.0), 200.0, S) == "micro"  # the same in seconds at 200 fps


def test_runs_closer_than_the_join_gap_are_one_and_farther_ones_two() -> None:
    close = noise(300) + bump(300, 100, 8, 3.0) + bump(300, 107, 8, 3.0)  # below the threshold for 2 frames
    far = noise(300) + bump(300, 100, 8, 3.0) + bump(300, 160, 8, 3.0)
    assert len(detect(close, FPS, S)[0]) == 1
    assert len(detect(far, FPS, S)[0]) == 2


def test_noisy_footage_raises_the_threshold_instead_of_reporting_noise() -> None:
    loud = noise(600, level=1.0, seed=3)
    found, level = detect(loud, FPS, S)
    assert level > S.threshold_px and found == []
    assert len(detect(loud + bump(600, 300, 12, 12.0), FPS, S)[0]) == 1


def test_region_scores_cancel_a_slow_drift_and_keep_an_expression() -> None:
    n = 600
    drift = np.linspace(0, 30, n)  # 30 px over 20 s: the head sinking in its chair
    trajectory = np.zeros((n, 2, 2))
    trajectory[:, 0, 1] = drift
    trajectory[:, 1, 1] = drift + bump(n, 300, 12, 3.0)
    scores = region_scores(trajectory, np.ones(n, bool), FPS, S)
    assert scores[50:250].max() < 0.2 and scores[300:312, 1].max() > 2.0


def test_untracked_frames_score_nothing() -> None:
    trajectory = np.zeros((100, 1, 2))
    tracked = np.ones(100, bool)
    tracked[40:60] = False
    scores = region_scores(trajectory, tracked, FPS, S)
    assert np.isnan(scores[40:60]).all() and np.isfinite(scores[:40]).all()


def test_settings_are_checked_by_name() -> None:
    assert settings_from({"threshold_px": "1.5"}).threshold_px == 1.5
    with pytest.raises(UserError, match="unknown spotting setting 'treshold_px'"):
        settings_from({"treshold_px": 1})
    with pytest.raises(UserError, match="must be a positive number"):
        settings_from({"lowpass_hz": -2})
    with pytest.raises(UserError, match="shortest_s"):
        settings_from({"shortest_s": 5, "longest_s": 4})


# ------------------------------------------------------------------------------------------- face and head


def astronaut_gray() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)


def test_the_crop_levels_the_eyes_of_a_real_face_even_when_it_is_rolled() -> None:
    gray = astronaut_gray()
    for angle in (0.0, 12.0):
        matrix = cv2.getRotationMatrix2D((225.0, 120.0), angle, 1.0)
        rolled = cv2.warpAffine(gray, matrix, gray.shape[::-1], borderMode=cv2.BORDER_REFLECT)
        found = locate_face(rolled)
        assert found is not None and found.source == "mtcnn"
        geometry = crop_geometry(found, 256)
        left, right = geometry.landmarks[:2]
        assert np.allclose(left, [64, 96], atol=0.5) and np.allclose(right, [192, 96], atol=0.5)
        crop = geometry.warp(rolled)
        assert crop.shape == (307, 256)
        again = locate_face(cv2.resize(crop, (512, 614)))  # the crop itself shows an upright face
        assert again is not None and abs(again.points[0, 1] - again.points[1, 1]) < 8


def test_no_face_in_a_photograph_of_a_cat() -> None:
    from skimage import data

    assert locate_face(cv2.cvtColor(data.chelsea(), cv2.COLOR_RGB2GRAY)) is None


def test_the_head_fit_removes_a_roll_and_leaves_a_local_motion() -> None:
    found = locate_face(astronaut_gray())
    assert found is not None
    geometry = crop_geometry(found, 256)
    regions = face_regions(geometry)
    fit = HeadFit(geometry, [r.box for r in regions])
    yy, xx = np.mgrid[0 : geometry.height, 0 : geometry.width].astype(np.float64)
    angle, shift = np.radians(2.0), np.array([1.5, -0.7])
    centre = np.array([128.0, 150.0])
    rolled_x = np.cos(angle) * (xx - centre[0]) - np.sin(angle) * (yy - centre[1]) + centre[0]
    rolled_y = np.sin(angle) * (xx - centre[0]) + np.cos(angle) * (yy - centre[1]) + centre[1]
    field = np.stack([rolled_x - xx + shift[0], rolled_y - yy + shift[1]], axis=2)
    brow = regions[0]
    x0, y0, x1, y1 = brow.box
    field[y0:y1, x0:x1, 1] -= 2.0  # the inner left brow rises by 2 px on top of the head's motion
    rigid = fit.fit(field.astype(np.float32))
    own = brow.mean(field) - rigid.at(brow.centre)
    assert np.allclose(own, [0.0, -2.0], atol=0.05)
    still = regions[4]  # a mouth corner: only the head moved there
    assert np.allclose(still.mean(field) - rigid.at(still.centre), 0.0, atol=0.05)


# ------------------------------------------------------------------------------------ the whole spotter


@pytest.fixture(scope="module")
def photo_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("videos")
    return {
        "still": write_video(folder / "still.mp4", photo_frames(240, FPS, seed=1), FPS),
        "brows": write_video(
            folder / "brows.mp4", photo_frames(240, FPS, expression=Expression(120, 129), seed=2), FPS
        ),
        "mouth": write_video(
            folder / "mouth.mp4", photo_frames(240, FPS, expression=Expression(60, 71, 3.0, "mouth"), seed=3), FPS
        ),
    }


def test_a_moving_relit_real_face_without_expression_gives_no_interval(photo_videos: dict[str, Path]) -> None:
    result = spot_stream(FrameStream(photo_videos["still"]), S)
    assert result.face_source == "mtcnn"
    assert result.intervals.empty, result.intervals
    assert result.signal["score"].max() < result.threshold


@pytest.mark.parametrize(("name", "onset", "offset"), [("brows", 120, 129), ("mouth", 60, 71)])
def test_an_expression_on_a_real_face_is_spotted_in_place(
    photo_videos: dict[str, Path], name: str, onset: int, offset: int
) -> None:
    result = spot_stream(FrameStream(photo_videos[name]), S)
    assert len(result.intervals) == 1
    row = result.intervals.iloc[0]
    inter = min(row["offset"], offset) - max(row["onset"], onset) + 1
    union = (row["offset"] - row["onset"] + 1) + (offset - onset + 1) - inter
    assert inter / union >= 0.5 and row["kind"] == "micro" and onset <= row["apex"] <= offset
    assert row["video"] == name and row["duration_s"] == pytest.approx((row["offset"] - row["onset"]) / FPS, abs=1e-4)


def test_a_folder_of_videos_goes_on_past_a_broken_one(photo_videos: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "interviews"
    folder.mkdir()
    for name in ("still", "brows"):
        (folder / f"{name}.mp4").write_bytes(photo_videos[name].read_bytes())
    (folder / "broken.mp4").write_bytes(b"not a video at all")
    run = spot_videos([folder], S)
    assert sorted(v.name for v in run.videos) == ["brows", "still"]
    assert list(run.failed) == ["broken"] and "unreadable video" in run.failed["broken"]
    summary = run.summary().set_index("video")
    assert summary.loc["broken", "status"].startswith("failed: unreadable video")
    assert summary.loc["brows", "micro"] == 1


def test_a_video_without_a_face_fails_alone(tmp_path: Path) -> None:
    from skimage import data

    cat = cv2.cvtColor(data.chelsea(), cv2.COLOR_RGB2BGR)[:300, :450]  # H.264 wants even sides
    video = write_video(tmp_path / "cat.mp4", [cat] * 20, FPS)
    run = spot_videos([video], S)
    assert run.videos == [] and "no face found" in run.failed["cat"]


def test_a_talking_mouth_is_speech_and_an_expression_is_not() -> None:
    from aullm.spotting.intervals import Interval
    from aullm.spotting.regions import REGION_NAMES
    from aullm.spotting.speech import mouth_oscillation, speech_ratio

    n = 600
    t = np.arange(n) / FPS
    trajectory = np.zeros((n, len(REGION_NAMES), 2))
    chin = REGION_NAMES.index("chin")
    talking = (t >= 5) & (t < 7)
    trajectory[talking, chin, 1] = 2.0 + 2.0 * np.sin(2 * np.pi * 4.5 * t[talking])  # 2 s of syllables at 4.5 Hz
    trajectory[:, chin, 1] += bump(n, 450, 12, 3.0)  # and a micro-expression of the chin at 15 s
    tracked = np.ones(n, bool)
    energy = mouth_oscillation(trajectory, tracked, FPS)
    assert energy is not None
    found, _ = detect(frame_scores_of(trajectory, tracked), FPS, S)
    ratios = {(i.onset // 30): speech_ratio(i, energy, FPS) for i in found}
    speech = [k for k, r in ratios.items() if r >= S.speech_ratio]
    expressions = [k for k, r in ratios.items() if r < S.speech_ratio]
    assert speech and all(4 <= k < 8 for k in speech) and expressions == [15], ratios
    assert mouth_oscillation(trajectory[:, :, :], tracked, 12.0) is None  # too slow a frame rate for the band
    assert isinstance(found[0], Interval)


def frame_scores_of(trajectory: np.ndarray, tracked: np.ndarray) -> np.ndarray:
    from aullm.spotting.intervals import frame_scores

    return frame_scores(region_scores(trajectory, tracked, FPS, S))
