"""`predict` on videos (issue 30): events (spot, then the AU model on each interval exactly as on a clip), the
sliding-window timeline, folders of videos with index.csv, the report, and explain per event. The model is an
untrained bundle (written in seconds): these tests check frame numbers, times, files and equalities, not what a
trained model predicts. The videos are made from a real photograph (tests/fixtures_video.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import aullm
from aullm.cli import app
from aullm.data.decode import DecodeSettings, decode_clip
from aullm.data.index import ClipSource
from aullm.data.stream import FrameStream
from aullm.data.stream_clips import FrameRange, decode_ranges
from fixtures_bundle import AUS, untrained_bundle
from fixtures_video import Expression, photo_frames, write_frames, write_video

FPS = 30.0
EVENT_COLUMNS = ["video", "event", "onset", "apex", "offset", "t_onset_s", "t_offset_s", "spot_score", "kind"]
runner = CliRunner()


def cli(args: list[str]):
    from aullm.core.console import logger

    try:
        return runner.invoke(app, [str(a) for a in args])
    finally:
        logger.handlers.clear()
        logger.propagate = True


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("video_events")
    brows = photo_frames(240, FPS, expression=Expression(120, 129), seed=2)
    return {
        "base": base,
        "bundle": untrained_bundle(base / "bundle"),
        "brows": write_video(base / "brows.mp4", brows, FPS),
        "still": write_video(base / "still.mp4", photo_frames(240, FPS, seed=1), FPS),
        "frames": write_frames(base / "brows_frames", brows, first=1),
        "short": write_video(base / "short.mp4", photo_frames(30, FPS, seed=4), FPS),
    }


@pytest.fixture(scope="module")
def detector(made: dict[str, Path]) -> aullm.Detector:
    return aullm.Detector.load(made["bundle"], device="cpu")


@pytest.fixture(scope="module")
def brows_events(detector: aullm.Detector, made: dict[str, Path]):
    return detector.video_events(made["brows"], keep_clips=True)


# ------------------------------------------------------------------------------------- decoding


@pytest.mark.parametrize("face_crop", ["align", "detect", "none"])
@pytest.mark.parametrize("input_kind", ["clip", "flow"])
def test_streamed_ranges_are_decode_clips_pixels(made: dict[str, Path], face_crop: str, input_kind: str) -> None:
    """Events are decoded from a seeking, streamed pass; each clip must be exactly what `decode_clip` gives for
    the same frames of the video (the training clips' decoding)."""
    settings = DecodeSettings(input=input_kind, size=32, face_crop=face_crop)  # type: ignore[arg-type]
    ranges = [FrameRange(200, 214, 206), FrameRange(3, 12), FrameRange(8, 20, 15), FrameRange(120, 129, 124)]
    got = {r.index: r for r in decode_ranges(FrameStream(made["brows"]), ranges, settings, still_size=48)}
    assert sorted(got) == [0, 1, 2, 3]
    for i, r in enumerate(ranges):
        source = ClipSource("video", [made["brows"]], start=r.start, stop=r.stop, apex_pos=r.apex_pos)
        expected = decode_clip(source, settings)
        decoded = got[i].decoded
        assert decoded is not None and got[i].error is None
        assert decoded.n_frames == expected.n_frames == r.stop - r.start + 1
        if input_kind == "clip":
            assert np.array_equal(decoded.clip, expected.clip)
        else:
            assert np.array_equal(decoded.flow, expected.flow)
        assert got[i].still is not None and got[i].still.shape == (48, 48)


def test_a_range_beyond_the_end_says_how_long_the_video_is(made: dict[str, Path]) -> None:
    items = list(decode_ranges(FrameStream(made["brows"]), [FrameRange(230, 250)], DecodeSettings(size=32)))
    assert items[0].decoded is None
    assert "frames 230..250 are not all in" in items[0].error and "240 frames, 0..239" in items[0].error


# ------------------------------------------------------------------------------------- events


def test_events_follow_the_contract_and_are_predicted_exactly_as_clips(
    detector: aullm.Detector, made: dict[str, Path], brows_events
) -> None:
    table = brows_events.table
    assert list(table.columns) == [*EVENT_COLUMNS, *(f"{a}_prob" for a in AUS), *AUS, "status"]
    assert len(table) == 1, table
    row = table.iloc[0]
    assert row["video"] == "brows" and row["event"] == 1 and row["kind"] == "micro"
    assert 115 <= row["onset"] <= row["apex"] <= row["offset"] <= 135  # the expression: frames 120..129
    assert row["t_onset_s"] == pytest.approx(row["onset"] / FPS, abs=1e-4)
    assert row["t_offset_s"] == pytest.approx(row["offset"] / FPS, abs=1e-4)
    assert row["status"] == "ok"
    # the same frames as a clip, through predict's own decoding: the same probabilities
    clip = detector.predict(made["brows"], onset=int(row["onset"]), offset=int(row["offset"]))
    np.testing.assert_allclose(
        row[[f"{a}_prob" for a in AUS]].to_numpy(float), clip[[f"{a}_prob" for a in AUS]].to_numpy(float)[0], atol=1e-6
    )
    assert [int(row[a]) for a in AUS] == [int(clip[a].iloc[0]) for a in AUS]


def test_no_expression_is_one_row_saying_so(detector: aullm.Detector, made: dict[str, Path]) -> None:
    table = detector.events(made["still"])
    assert len(table) == 1 and pd.isna(table["event"].iloc[0])
    assert table["status"].iloc[0] == "no expression spotted" and table["video"].iloc[0] == "still"


def test_a_frames_folder_keeps_its_file_numbers(detector: aullm.Detector, made: dict[str, Path], brows_events):
    """img001.jpg is frame 1: the folder's events are the video's shifted by one, times from its first frame."""
    folder = detector.events(made["frames"], fps=FPS)
    video = brows_events.table
    assert len(folder) == len(video) == 1
    assert folder["onset"].iloc[0] == pytest.approx(video["onset"].iloc[0] + 1, abs=1)
    assert folder["t_onset_s"].iloc[0] == pytest.approx((folder["onset"].iloc[0] - 1) / FPS, abs=1e-4)
    with pytest.raises(aullm.UserError, match="no frame rate of its own: give fps"):
        detector.events(made["frames"])


def test_the_timeline_scores_every_window_as_a_clip(detector: aullm.Detector, made: dict[str, Path]) -> None:
    timeline = detector.timeline(made["brows"], window_s=2.0, stride_s=1.0)
    assert list(timeline.columns[:3]) == ["video", "t_start_s", "t_end_s"]
    assert list(timeline.columns[3 : 3 + len(AUS)]) == [f"{a}_prob" for a in AUS]
    assert timeline["t_start_s"].tolist() == [float(s) for s in range(7)]  # 8 s of video: 2 s windows every 1 s
    assert timeline["t_end_s"].iloc[-1] == pytest.approx(8.0)
    assert (timeline["end_frame"] - timeline["start_frame"] == 59).all() and (timeline["status"] == "ok").all()
    k = 3
    clip = detector.predict(
        made["brows"], onset=int(timeline["start_frame"].iloc[k]), offset=int(timeline["end_frame"].iloc[k])
    )
    np.testing.assert_allclose(
        timeline.loc[k, [f"{a}_prob" for a in AUS]].to_numpy(float),
        clip[[f"{a}_prob" for a in AUS]].to_numpy(float)[0],
        atol=1e-6,
    )
    with pytest.raises(aullm.UserError, match="window_s=0"):
        detector.timeline(made["brows"], window_s=0)


# ------------------------------------------------------------------------------------- long input as one clip


def test_whole_video_prediction_on_long_input_warns_with_the_lengths(
    detector: aullm.Detector, made: dict[str, Path], warnings_log
) -> None:
    """Issue 32 item 7: 6 frames sampled across 8 s of video could all miss the expression: say so."""
    result = detector.predict_result(made["brows"])
    warning = next(w for w in result.warnings if "spans" in w)
    assert "240 frames (8.0 s)" in warning and "longest clip this model was trained on had 40 frames" in warning
    assert "spot=True" in warning and "Detector.events" in warning
    short = detector.predict_result(made["short"])
    assert not any("spans" in w for w in short.warnings)


def test_a_long_video_is_spotted_by_default_on_the_command_line(made: dict[str, Path]) -> None:
    result = cli(["predict", made["brows"], "-c", made["bundle"], "--device", "cpu"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith(("video,", "brows,"))]
    assert lines[0].startswith("video,event,onset,apex,offset,t_onset_s") and len(lines) == 2
    forced = cli(["predict", made["brows"], "-c", made["bundle"], "--onset", "0", "--offset", "239"])
    assert forced.exit_code == 0 and forced.stdout.startswith("clip,")
    assert "spans 240 frames (8.0 s)" in forced.output and "--spot" in forced.output


# ------------------------------------------------------------------------------------- many videos


def test_a_folder_of_videos_gives_a_csv_each_an_index_and_a_report(made: dict[str, Path]) -> None:
    folder = made["base"] / "interviews"
    folder.mkdir()
    for name in ("brows", "still", "short"):
        (folder / f"{name}.mp4").write_bytes(made[name].read_bytes())
    (folder / "broken.mp4").write_bytes(b"not a video")
    out = made["base"] / "events"
    result = cli(["predict", folder, "-c", made["bundle"], "--out", out, "--report", "--explain", "--device", "cpu"])
    assert result.exit_code == 1, result.output  # one video failed, the others went on
    assert "error: broken: unreadable video" in result.output
    index = pd.read_csv(out / "index.csv").set_index("video")
    assert sorted(index.index) == ["broken", "brows", "short", "still"]
    assert index.loc["broken", "status"].startswith("failed: unreadable video")
    assert index.loc["brows", "status"] == "ok" and index.loc["brows", "micro"] == 1
    assert index.loc["still", "status"] == "no expression spotted" and index.loc["short", "mode"] == "clip"
    for name in index.index:
        assert (out / f"{name}.csv").is_file()
    assert pd.read_csv(out / "broken.csv")["status"].iloc[0].startswith("failed: unreadable video")
    assert pd.read_csv(out / "short.csv")["kind"].tolist() == ["clip"]
    for name in ("brows", "still", "short"):
        assert (out / f"{name}_timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "report.html").read_text()
    assert "brows_explain/event1/gradcam_all.png" in html and "<script" not in html and "http" not in html
    # explain titles the event with the video's frame numbers and time
    explained = json.loads((out / "brows_explain" / "event1" / "explain.json").read_text())
    events = pd.read_csv(out / "brows.csv")
    apex = int(events["apex"].iloc[0])
    assert explained["frame"].startswith(f"frame {apex} of brows ({apex / FPS:.2f} s), event 1: micro")
    # a second run into the same folder is allowed (it is predict's), a folder of the user's files is not
    again = cli(["predict", made["short"], "-c", made["bundle"], "--out", out, "--device", "cpu"])
    assert again.exit_code == 0, again.output


# ------------------------------------------------------------------------------------- inputs never destroyed


def test_outputs_never_overwrite_inputs_or_the_users_files(made: dict[str, Path], tmp_path: Path) -> None:
    """Issue 32 item 8."""
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,onset,offset\n{made['frames']},1,20\n")
    before = manifest.read_bytes()
    result = cli(["predict", manifest, "-c", made["bundle"], "--out", manifest])
    assert result.exit_code == 2 and "is inside the input" in result.output and manifest.read_bytes() == before
    inside = cli(["predict", manifest, "-c", made["bundle"], "--out", made["frames"] / "p.csv"])
    assert inside.exit_code == 2 and "is inside the input" in inside.output  # a clip the manifest lists
    mine = tmp_path / "notes.csv"
    mine.write_text("my,own,notes\n")
    refused = cli(["predict", made["short"], "-c", made["bundle"], "--out", mine])
    assert refused.exit_code == 2 and "was not written by aullm" in refused.output and "--force" in refused.output
    assert mine.read_text() == "my,own,notes\n"
    forced = cli(["predict", made["short"], "-c", made["bundle"], "--out", mine, "--force"])
    assert forced.exit_code == 0 and mine.read_text().startswith("clip,")
    again = cli(["predict", made["short"], "-c", made["bundle"], "--out", mine])  # now aullm's: replaced
    assert again.exit_code == 0
    # folders: crop into its own input, explain and predict into a folder of the user's files
    frames_before = sorted(p.name for p in made["frames"].iterdir())
    crop = cli(["crop", made["frames"], "--out", made["frames"]])
    assert crop.exit_code == 2 and "is inside the input" in crop.output
    assert sorted(p.name for p in made["frames"].iterdir()) == frames_before
    users = tmp_path / "holiday"
    users.mkdir()
    (users / "photo.jpg").write_bytes(b"mine")
    for args in (
        ["explain", made["short"], "-c", made["bundle"], "--out", users],
        ["crop", made["short"], "--out", users],
        ["predict", made["brows"], "-c", made["bundle"], "--out", users, "--report"],
    ):
        result = cli(args)
        assert result.exit_code == 2 and "holds files aullm did not write (photo.jpg)" in result.output, args
        assert "--force" in result.output
    assert sorted(p.name for p in users.iterdir()) == ["photo.jpg"]


# ------------------------------------------------------------------------------------- weak answers (item 20)


def test_weak_answers_name_what_is_wrong(detector: aullm.Detector, made: dict[str, Path], tmp_path: Path) -> None:
    one = detector.predict(made["frames"], onset=5, offset=5)
    assert one["status"].iloc[0].startswith("failed: clip brows_frames has 1 frame(s): a clip needs at least 2")
    beyond = detector.predict(made["brows"], onset=500, offset=520, crop="none")
    assert "holds 240 frames, 0..239" in beyond["status"].iloc[0]
    beyond_aligned = detector.predict(made["brows"], onset=500, offset=520)
    assert "holds 240 frames, 0..239: it has no frame 500" in beyond_aligned["status"].iloc[0]
    empty = detector.predict(np.zeros((0, 64, 64), np.uint8))
    assert empty["status"].iloc[0] == "failed: the array holds no frame (shape (0, 64, 64))"
    outside = detector.explain(made["frames"], tmp_path / "ex", onset=10, offset=30, apex=80)
    assert outside["brows_frames"] == (
        "failed: apex 80 is not a frame of the clip (img010.jpg..img030.jpg); give a frame inside it, or none to "
        "estimate it"
    )


# ------------------------------------------------------------------------------------- events against the truth


def test_event_au_scores_count_a_missed_expression_as_all_negative() -> None:
    from aullm.evaluation.events import score_events

    truth = pd.DataFrame(
        {
            "video": ["a", "a", "b", "b"],
            "onset": [10, 100, 50, 300],
            "offset": [19, 109, 59, 309],
            "kind": ["micro", "micro", "micro", "macro"],
            "aus": ["4+7", "12", "4", "12"],
        }
    )
    events = pd.DataFrame(
        {
            "video": ["a", "a", "b", "b"],
            "event": [1, 2, 1, 2],
            "onset": [11, 104, 50, 300],  # a/1: IoU 9/11 (found); a/2: IoU 6/15 < 0.5 (missed)
            "offset": [20, 118, 59, 309],
            "AU4": [1, 0, 0, 0],
            "AU7": [0, 1, 1, 0],
            "AU12": [1, 1, pd.NA, 1],
            "status": ["ok", "ok", "failed: no face found in frame 50 of b.mp4", "ok"],  # b/1: as if missed
        }
    )
    micro = score_events(events, truth, ["AU4", "AU7", "AU12"], kinds=["micro"])
    assert micro["expressions"] == 3 and micro["found"] == 1
    # labels (a/1, a/2, b/1): AU4 1,0,1 · AU7 1,0,0 · AU12 0,1,0; decisions: a/1 only (1, 0, 1), the others all 0
    assert micro["per_au"]["AU4"] == {"f1": 2 / 3, "tp": 1, "fp": 0, "fn": 1, "support": 2}
    assert micro["per_au"]["AU7"] == {"f1": 0.0, "tp": 0, "fp": 0, "fn": 1, "support": 1}
    assert micro["per_au"]["AU12"] == {"f1": 0.0, "tp": 0, "fp": 1, "fn": 1, "support": 1}
    assert micro["f1_macro"] == pytest.approx((2 / 3) / 3)
    every = score_events(events, truth, ["AU4", "AU7", "AU12"])
    assert every["expressions"] == 4 and every["found"] == 2 and every["per_au"]["AU12"]["tp"] == 1


def test_given_intervals_are_predicted_as_spotted_ones(detector: aullm.Detector, made: dict[str, Path], brows_events):
    """The oracle of bench_events.py: the true intervals through the very path spotted events take."""
    from aullm.inference.events import interval_events

    spotted = brows_events.table
    given = interval_events(detector.bundle, made["brows"], spotted[["onset", "apex", "offset", "kind"]])
    probs = [f"{a}_prob" for a in AUS]
    np.testing.assert_allclose(given.table[probs].to_numpy(float), spotted[probs].to_numpy(float), atol=1e-6)
    assert given.table["kind"].tolist() == spotted["kind"].tolist() and given.table["spot_score"].isna().all()


# ------------------------------------------------------------------------------------- start-up


def test_the_prompt_cache_changes_no_prediction_and_survives_batches(
    made: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The LLM's prompt keys/values are kept on disk per bundle (start-up of predict) and across batches: the
    probabilities are the very same as computed afresh."""
    from aullm.inference.bundle import load_bundle, prompt_cache_path
    from aullm.inference.predict import ClipRequest, predict_clips

    monkeypatch.setenv("AULLM_CACHE", str(tmp_path / "cache"))
    requests = [ClipRequest(name=f"c{i}", path=made["frames"], onset=1 + 20 * i, offset=30 + 20 * i) for i in range(3)]
    cold = load_bundle(made["bundle"], device="cpu")
    path = prompt_cache_path(cold.model, cold.path)
    assert path is not None and path.is_file()  # written on the first load
    first = predict_clips(cold, requests, batch_size=1).table
    kept = cold.model.reasoner._eval_kv
    predict_clips(cold, requests, batch_size=1)
    assert cold.model.reasoner._eval_kv is kept  # batches no longer drop it by switching to eval mode
    warm = predict_clips(load_bundle(made["bundle"], device="cpu"), requests, batch_size=1).table
    probs = [f"{a}_prob" for a in AUS]
    assert np.array_equal(first[probs].to_numpy(), warm[probs].to_numpy())
