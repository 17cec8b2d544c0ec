"""Frame discovery, decoding, sampling, batching, optical flow and face cropping."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from aullm.data import flow
from aullm.data.cache import PreparedDataset
from aullm.data.clips import (
    FrameError,
    frame_number,
    list_frames,
    load_frames,
    read_gray,
    sample_batch,
    sample_indices,
)
from aullm.data.faces import detect as faces
from fixtures_data import frame_pixels, jpeg_bytes, write_frames


def test_list_frames_orders_by_number_not_name(tmp_path):
    for n in (10, 9, 100, 1):
        (tmp_path / f"reg_img{n}.jpg").write_bytes(jpeg_bytes(frame_pixels(8, 0)))
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".hidden.jpg").write_bytes(b"x")
    assert [p.name for p in list_frames(tmp_path)] == [
        "reg_img1.jpg",
        "reg_img9.jpg",
        "reg_img10.jpg",
        "reg_img100.jpg",
    ]
    assert frame_number(tmp_path / "006_05562.jpg") == 5562 and frame_number(tmp_path / "img46.jpg") == 46


def test_load_frames_gray_resized(tmp_path):
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(tmp_path / "1.png")
    paths = write_frames(tmp_path / "j", range(3), "{}.jpg", size=48)
    out = load_frames([tmp_path / "1.png", *paths], 16)
    assert out.shape == (4, 16, 16) and out.dtype == np.uint8
    assert abs(int(out[0].mean()) - round(0.299 * 200)) <= 2  # luma of pure red


def test_resize_is_anti_aliased(tmp_path):
    checker = (np.indices((128, 128)).sum(0) % 2 * 255).astype(np.uint8)
    Image.fromarray(checker).save(tmp_path / "c.png")
    small = read_gray(tmp_path / "c.png", 16)
    assert abs(float(small.mean()) - 127.5) < 3 and small.std() < 3  # aliasing would give stripes


def test_crop_box_is_applied(tmp_path):
    img = np.zeros((100, 200), np.uint8)
    img[20:60, 120:160] = 255
    Image.fromarray(img).save(tmp_path / "a.jpg", quality=95)
    crop = read_gray(tmp_path / "a.jpg", 20, box=(120, 20, 160, 60))
    assert crop.mean() > 230


def test_corrupt_images_raise_frame_error(tmp_path):
    good = jpeg_bytes(frame_pixels(64, 0))
    (tmp_path / "trunc.jpg").write_bytes(good[: len(good) // 3])
    (tmp_path / "junk.jpg").write_bytes(b"\x00garbage" * 10)
    for name in ("trunc.jpg", "junk.jpg", "missing.jpg"):
        with pytest.raises(FrameError, match=name):
            read_gray(tmp_path / name, 16)


def test_sample_indices_test_scheme():
    rng = np.random.default_rng(0)
    for n in (6, 7, 20, 51):
        expected = np.round(np.linspace(0, n - 1, 6)).astype(int)
        assert sample_indices(n, 6, False, rng).tolist() == expected.tolist()


def test_sample_indices_train_random_end():
    rng = np.random.default_rng(0)
    n = 30
    ends = set()
    for _ in range(300):
        idx = sample_indices(n, 6, True, rng)
        assert idx[0] == 0 and len(idx) == 6 and np.all(np.diff(idx) >= 0)
        ends.add(int(idx[-1]))
    assert min(ends) == 6 and max(ends) == n - 2 and len(ends) == n - 2 - 6 + 1
    assert sample_indices(7, 6, True, rng).tolist() == np.round(np.linspace(0, 6, 6)).astype(int).tolist()


def _prepared(clips: list[np.ndarray]) -> PreparedDataset:
    lengths = np.array([len(c) for c in clips])
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    size = clips[0].shape[-1]
    return PreparedDataset(
        index=None,
        frames=np.concatenate(clips),
        offsets=offsets,
        lengths=lengths,
        flow=None,  # type: ignore[arg-type]
        labels=np.zeros((len(clips), 1), np.float32),
        subjects=np.array(["a"] * len(clips)),
        aus=["AU1"],
        skipped=[],
        size=size,
        input="clip",
        dataset="t",
    )


def test_sample_batch_matches_per_clip_indices():
    rng = np.random.default_rng(1)
    clips = [rng.integers(0, 256, (n, 8, 8), dtype=np.uint8) for n in (10, 25, 6)]
    prepared = _prepared(clips)
    assert prepared.clips[1].shape == (25, 8, 8)
    batch = sample_batch(prepared, np.array([0, 1, 2, 1]), False, None, 6)
    assert batch.shape == (4, 6, 8, 8) and batch.dtype == torch.float32
    for b, row in enumerate([0, 1, 2, 1]):
        idx = sample_indices(len(clips[row]), 6, False, None)
        np.testing.assert_allclose(batch[b].numpy(), clips[row][idx] / 255.0, atol=1e-6)
    # train: same rng stream → same indices as sample_indices for a one-row batch
    a = sample_batch(prepared, np.array([1]), True, np.random.default_rng(5), 6)
    idx = sample_indices(25, 6, True, np.random.default_rng(5))
    np.testing.assert_allclose(a[0].numpy(), clips[1][idx] / 255.0, atol=1e-6)
    assert float(batch.min()) >= 0.0 and float(batch.max()) <= 1.0


def test_short_clips_are_interpolated_in_time():
    clip = np.stack([np.full((4, 4), v, np.uint8) for v in (0, 100, 200)])
    batch = sample_batch(_prepared([clip, np.zeros((9, 4, 4), np.uint8)]), np.array([0, 1]), False, None, 5)
    assert batch.shape == (2, 5, 4, 4)
    np.testing.assert_allclose(batch[0, :, 0, 0].numpy() * 255, [0, 50, 100, 150, 200], atol=1e-3)
    assert float(batch[1].abs().max()) == 0.0


def test_sample_batch_is_fast():
    import time

    rng = np.random.default_rng(0)
    prepared = _prepared([rng.integers(0, 256, (int(n), 64, 64), dtype=np.uint8) for n in rng.integers(20, 80, 250)])
    sample_batch(prepared, np.arange(256) % 250, True, rng, 6)
    start = time.perf_counter()
    for _ in range(10):
        sample_batch(prepared, rng.integers(0, 250, 256), True, rng, 6)
    assert (time.perf_counter() - start) / 10 < 0.25  # ~10 ms on an idle core; generous for busy CI


def test_flow_sees_rightward_motion():
    onset = frame_pixels(128, 0, shift=0.0)
    apex = frame_pixels(128, 1, shift=3.0)
    out = flow.flow_input(onset, apex, 32)
    assert out.shape == (3, 32, 32) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    blob = (slice(12, 20), slice(12, 20))
    assert out[0][blob].mean() > 0.6  # u > 0 at the blob
    assert abs(out[1][blob].mean() - 0.5) < abs(out[0][blob].mean() - 0.5)  # little vertical motion
    still = flow.flow_input(onset, onset, 32)
    assert np.allclose(still[:2], 0.5, atol=0.05)


def test_optical_strain_of_rigid_translation_is_zero():
    u = np.full((16, 16), 2.0, np.float32)
    v = np.full((16, 16), -1.0, np.float32)
    assert np.allclose(flow.optical_strain(u, v), 0.0)
    _, xx = np.mgrid[0:16, 0:16].astype(np.float32)
    assert np.allclose(flow.optical_strain(0.1 * xx, np.zeros_like(xx)), 0.1)  # u_x = 0.1


def test_flow_image_read(tmp_path):
    rgb = np.zeros((10, 10, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 255, 0, 128
    Image.fromarray(rgb).save(tmp_path / "f.png")
    out = flow.read_flow_image(tmp_path / "f.png", 8)
    assert out.shape == (3, 8, 8)
    assert np.allclose(out[:, 0, 0], [1.0, 0.0, 128 / 255], atol=1e-6)


def _face_canvas() -> np.ndarray:
    from skimage.color import rgb2gray
    from skimage.data import astronaut

    face = (rgb2gray(astronaut()) * 255).astype(np.uint8)  # 512×512, face near rows 60–160, cols 185–285
    canvas = np.full((600, 760), 90, np.uint8)
    canvas[50:562, 200:712] = face
    return canvas


def test_face_detection_finds_the_face():
    canvas = _face_canvas()
    box = faces.face_box(canvas, margin=0.2)
    assert box is not None
    x0, y0, x1, y1 = box
    assert x1 - x0 == y1 - y0  # square
    cx, cy = 200 + 235, 50 + 110  # the astronaut's face centre on the canvas
    assert x0 < cx < x1 and y0 < cy < y1
    assert 80 < x1 - x0 < 300
    assert faces.face_box(np.full((200, 200), 128, np.uint8)) is None


def test_expand_box_stays_inside():
    assert faces.expand_box((0, 0, 50, 40), 100, 80, margin=0.5) == (0, 0, 80, 80)  # 100 px wanted: clipped
    x0, y0, x1, y1 = faces.expand_box((80, 60, 100, 80), 100, 80, margin=0.2)
    assert x1 <= 100 and y1 <= 80 and x0 >= 0 and y0 >= 0
