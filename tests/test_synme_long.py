"""SynME long videos (`aullm synth --long`, aullm.synth_long): layout, byte identity, truth that matches what is
drawn, 200 fps, and the CAS(ME)² workbook read back by the long-video reader."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import aullm
from aullm.core.errors import UserError
from aullm.data.longvideo import read_truth
from aullm.data.longvideo.casme2_long import read_casme2_long
from aullm.data.synme.face import make_identity
from aullm.data.synme.long import _Encoder, _rng, generate_long, long_written_with
from aullm.data.synme.long_plan import plan_video
from aullm.data.synme.long_presets import LONG_PRESETS
from aullm.data.synme.long_render import build_scene, face_layer, render_frames
from aullm.data.synme.motion import au_region


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def decode(path: Path) -> tuple[list[np.ndarray], float]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate)
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)], rate


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    out = tmp_path_factory.mktemp("long") / "synme_long"
    truth = aullm.synth_long(out, videos=3, seconds=4, fps=30, seed=5, frames=True, videos_per_subject=2)
    return out, truth


def test_layout_and_truth_table(small: tuple[Path, pd.DataFrame]) -> None:
    out, truth = small
    assert list(truth.columns) == ["video", "subject", "onset", "apex", "offset", "kind", "aus", "fps", "frames"]
    assert sorted(p.name for p in (out / "videos").iterdir()) == ["15_0101.mp4", "15_0102.mp4", "16_0101.mp4"]
    assert set(truth["video"]) <= {"15_0101", "15_0102", "16_0101"} and set(truth["subject"]) <= {"15", "16"}
    assert (out / "rawpic" / "s15" / "15_0101" / "img001.jpg").is_file()
    assert len(list((out / "rawpic" / "s15" / "15_0101").glob("img*.jpg"))) == 120
    assert (out / "rawpic" / "s15" / "15_0101" / "img120.jpg").is_file()
    for name in ("truth.csv", "CAS(ME)^2code_final.xlsx", "synme_long.json", "distractors.csv"):
        assert (out / name).is_file(), name
    on_disk = pd.read_csv(out / "truth.csv", dtype={"subject": str})
    pd.testing.assert_frame_equal(on_disk, truth, check_dtype=False)
    assert (truth["frames"] == 120).all() and (truth["fps"] == 30).all()
    for video in ("15_0101", "15_0102", "16_0101"):
        rows = truth[truth["video"] == video]
        assert (rows["kind"] == "micro").sum() >= 1  # at least one micro-expression per video
    micro = truth[truth["kind"] == "micro"]
    lengths = (micro["offset"] - micro["onset"] + 1) / 30
    assert lengths.between(0.2 - 1e-9, 0.5 + 1e-9).all()
    assert ((truth["onset"] < truth["apex"]) & (truth["apex"] < truth["offset"])).all()
    assert truth["aus"].str.fullmatch(r"[LR]?\d+(\+[LR]?\d+)*").all()
    frames, rate = decode(out / "videos" / "15_0101.mp4")
    assert len(frames) == 120 and frames[0].shape == (480, 640, 3) and rate == pytest.approx(30)
    assert long_written_with(out, videos=3, seconds=4, fps=30, seed=5, frames=True, videos_per_subject=2)
    assert not long_written_with(out, videos=3, seconds=4, fps=30, seed=6, frames=True, videos_per_subject=2)


def test_expressions_never_overlap_and_distractors_do_not_touch_them(small: tuple[Path, pd.DataFrame]) -> None:
    out, truth = small
    distractors = pd.read_csv(out / "distractors.csv")
    for video, rows in truth.groupby("video"):
        spans = sorted(zip(rows["onset"], rows["offset"]))
        talks = distractors[(distractors["video"] == video) & (distractors["kind"] == "talk")]
        spans_all = sorted(spans + list(zip(talks["onset"], talks["offset"])))
        for (_, e1), (s2, _) in itertools.pairwise(spans_all):
            assert s2 > e1 + 15, (video, spans_all)  # at least 0.5 s of neutral face (gap_s is 1 s)


def test_the_workbook_reads_back_as_the_truth_shifted_by_one(small: tuple[Path, pd.DataFrame]) -> None:
    out, truth = small
    sheet = read_casme2_long(out / "CAS(ME)^2code_final.xlsx")
    assert sheet.attrs["skipped"] == []
    a = sheet.sort_values(["video", "onset"]).reset_index(drop=True)
    b = truth.sort_values(["video", "onset"]).reset_index(drop=True)
    assert list(a["video"]) == list(b["video"]) and list(a["subject"]) == list(b["subject"])
    assert list(a["kind"]) == list(b["kind"])
    for column in ("onset", "apex", "offset"):
        assert list(a[column]) == list(b[column] + 1)  # 1-based: video frame 0 is img001.jpg
    assert {Path(d).name for d in a["frames_dir"]} == {"15_0101", "15_0102", "16_0101"}
    folder = read_truth(out)  # the SynME folder itself: truth.csv, 0-based
    assert list(folder.sort_values(["video", "onset"])["onset"]) == list(b["onset"])
    assert set(folder["dataset"]) == {"synme_long"}


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    a = tmp_path / "a"
    generate_long(a, videos=1, seconds=3, fps=30, seed=1, frames=True)
    first = digest(a)
    generate_long(a, videos=1, seconds=3, fps=30, seed=1, frames=True)  # rewritten in place
    assert digest(a) == first
    generate_long(tmp_path / "b", videos=1, seconds=3, fps=30, seed=1, frames=True)
    assert digest(tmp_path / "b") == first  # another folder: the same bytes
    generate_long(tmp_path / "c", videos=1, seconds=3, fps=30, seed=2, frames=True)
    other = digest(tmp_path / "c")
    assert other["videos/15_0101.mp4"] != first["videos/15_0101.mp4"]


def test_200_fps_works(tmp_path: Path) -> None:
    truth = generate_long(tmp_path / "fast", videos=1, seconds=3, fps=200, seed=0)
    frames, rate = decode(tmp_path / "fast" / "videos" / "15_0101.mp4")
    assert len(frames) == 600 and rate == pytest.approx(200)
    micro = truth[truth["kind"] == "micro"]
    assert len(micro) >= 1 and ((micro["offset"] - micro["onset"] + 1) / 200).between(0.2, 0.5).all()
    assert (truth["frames"] == 600).all()


def _still_plan(fps: float, seconds: float, seed: int):
    """A plan of the default preset without head motion, lighting drift, blinks or talking: only the expressions
    (and sensor noise) change the frames."""
    p = replace(
        LONG_PRESETS["default"],
        head_shift_px=0.0,
        head_rot_deg=0.0,
        head_scale=0.0,
        tremor_px=0.0,
        light_gain=0.0,
        light_gradient=0.0,
        talk_per_min=0.0,
        blink_every_s=(1e6, 1e6),
        macro_per_min=0.0,
        micro_per_min=15.0,
    )
    frng = _rng(seed, 1, 0)
    layer = face_layer(make_identity(frng, 256, colour=True), 0.9)
    vrng = _rng(seed, 2, 0, 0)
    plan = plan_video(vrng, round(seconds * fps), fps, 1.0, p)
    plan.grad_x[:] = 0
    plan.grad_y[:] = 0
    return layer, plan, build_scene(vrng, layer, plan, p, 640, 480)


def test_truth_matches_what_is_drawn(tmp_path: Path) -> None:
    """Inside a micro-expression the frames change in its AUs' region, more than sensor noise changes them over a
    neutral stretch of the same length and more than they change elsewhere — in the rendered frames and in the
    H.264 video made of them."""
    layer, plan, scene = _still_plan(30.0, 12.0, seed=3)
    assert len(plan.expressions) >= 2
    rendered = list(render_frames(scene, plan))
    encoder = _Encoder(tmp_path / "still.mp4", 640, 480, 30.0)
    for frame in rendered:
        encoder.write(frame)
    encoder.close()
    decoded, _ = decode(tmp_path / "still.mp4")
    f = layer.face
    x0, y0 = scene.centre[0] - f.cx, scene.centre[1] - f.cy  # layer → frame offset (no head motion)
    busy = np.zeros(plan.n, bool)
    for e in plan.expressions:
        busy[e.onset : e.offset + 1] = True
    for source in (rendered, decoded):
        frames = np.stack([frame.astype(np.float32).mean(axis=2) for frame in source])
        for e in plan.expressions:
            region = np.zeros(frames.shape[1:], bool)
            for c in e.codes:
                ys, xs = np.nonzero(au_region(f, c.au))
                region[(ys + round(y0)).clip(0, 479), (xs + round(x0)).clip(0, 639)] = True
            length = e.offset - e.onset
            inside = np.abs(frames[e.apex] - frames[e.onset])[region].mean()
            quiet = next(s for s in range(plan.n - length) if not busy[max(0, s - 2) : s + length + 3].any())
            neutral = np.abs(frames[quiet + (e.apex - e.onset)] - frames[quiet])[region].mean()
            outside = np.abs(frames[e.apex] - frames[e.onset])[~region].mean()
            assert inside > 1.5 * neutral and inside > 1.5 * outside, (e.codes, inside, neutral, outside)


def test_the_expression_is_the_only_difference_from_a_plan_without_it() -> None:
    """Removing one expression from the plan changes exactly its frames onset+1..offset-1 (0 at onset and offset)."""
    _, plan, scene = _still_plan(30.0, 6.0, seed=4)
    e = plan.expressions[0]
    with_it = [f.copy() for f in render_frames(scene, plan)]
    plan.expressions = plan.expressions[1:]
    scene.fields = {i - 1: field for i, field in scene.fields.items() if i > 0}  # fields follow the expressions
    without = [f.copy() for f in render_frames(scene, plan)]
    changed = [i for i, (a, b) in enumerate(zip(with_it, without)) if not np.array_equal(a, b)]
    assert changed and min(changed) > e.onset and max(changed) < e.offset and e.apex in changed


def test_bad_values_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"videos=0 must be 1\.\.10000"):
        generate_long(tmp_path / "a", videos=0)
    with pytest.raises(UserError, match=r"seconds=1\.0 must be"):
        generate_long(tmp_path / "a", seconds=1.0)
    with pytest.raises(UserError, match="fps=5000"):
        generate_long(tmp_path / "a", fps=5000)
    with pytest.raises(UserError, match="fps=0"):
        generate_long(tmp_path / "a", fps=0)
    with pytest.raises(UserError, match="must be even"):
        generate_long(tmp_path / "a", width=641)
    with pytest.raises(UserError, match="unknown SynME long preset=nope"):
        aullm.synth_long(tmp_path / "a", preset="nope")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"not empty and holds no synme_long\.json"):
        generate_long(other, videos=1, seconds=3)
    assert (other / "notes.txt").read_text() == "mine"


def test_the_command(tmp_path: Path) -> None:
    from aullm.cli import app

    runner = CliRunner()
    result = runner.invoke(
        app, ["synth", str(tmp_path / "s"), "--long", "--videos", "1", "--seconds", "3", "--preset", "hard"]
    )
    assert result.exit_code == 0, result.output
    assert "SynME long (hard, seed 0): 1 videos, 90 frames" in result.output
    assert (tmp_path / "s" / "videos" / "15_0101.mp4").is_file()
    bad = runner.invoke(app, ["synth", str(tmp_path / "t"), "--videos", "2"])
    assert bad.exit_code == 2 and "--videos applies to long videos only: add --long" in bad.output
    bad = runner.invoke(app, ["synth", str(tmp_path / "t"), "--long", "--fps", "2"])
    assert bad.exit_code == 2 and "--fps 2.0 is outside" in bad.output
