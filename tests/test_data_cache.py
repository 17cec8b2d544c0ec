"""prepare_dataset: cache hits decode nothing, invalidation, atomic writes, flow/face-crop inputs, timing."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from aullm.config import DataConfig
from aullm.core.errors import DataError
from aullm.data import cache as cache_mod
from aullm.data.cache import prepare_dataset
from aullm.data.clips import load_frames, sample_batch
from fixtures_data import Clip, casme2_clips, write_casme2


@pytest.fixture
def image_opens(monkeypatch):
    """Counts every image file opened (any decode goes through PIL.Image.open)."""
    calls = {"n": 0}
    real_open = Image.open

    def counting(*args, **kwargs):
        calls["n"] += 1
        return real_open(*args, **kwargs)

    monkeypatch.setattr(Image, "open", counting)
    return calls


def _dataset(root, n=6, **kw):
    clips = casme2_clips(n, frames=kw.pop("frames", 8), subjects=3)
    write_casme2(root, clips, **kw)
    return clips


def test_cache_hit_decodes_no_jpeg(tmp_path, image_opens):
    _dataset(tmp_path)
    cfg = DataConfig(root=str(tmp_path), size=16)
    first = prepare_dataset(cfg)
    assert not first.from_cache and image_opens["n"] >= 6 * 8
    assert first.cache_path.parent == tmp_path / ".aullm_cache" and first.cache_path.is_file()
    image_opens["n"] = 0
    second = prepare_dataset(cfg)
    assert second.from_cache and image_opens["n"] == 0
    assert np.array_equal(first.frames, second.frames)
    assert np.array_equal(first.labels, second.labels)
    assert first.index.equals(second.index)
    assert second.index["subject"].tolist() == first.index["subject"].tolist() == ["01", "02", "03"] * 2
    assert [c.shape for c in second.clips] == [(8, 16, 16)] * 6
    assert second.labels.shape == (6, 8) and second.aus == cfg.aus
    assert list(tmp_path.joinpath(".aullm_cache").glob("*.tmp")) == []


def test_cache_invalidated_by_sheet_and_settings(tmp_path):
    clips = _dataset(tmp_path)
    cfg = DataConfig(root=str(tmp_path), size=16)
    first = prepare_dataset(cfg)
    assert prepare_dataset(DataConfig(root=str(tmp_path), size=16, frames=4, aus=["AU4"])).from_cache
    other = prepare_dataset(DataConfig(root=str(tmp_path), size=20))
    assert not other.from_cache and other.cache_path != first.cache_path and other.frames.shape[1:] == (20, 20)
    clips[0].aus = "17"
    write_casme2(tmp_path, clips)
    changed = prepare_dataset(cfg)
    assert not changed.from_cache and changed.cache_path != first.cache_path
    assert changed.labels[0].tolist() == [0, 0, 0, 0, 0, 0, 0, 1]


def test_cache_notices_frames_rewritten_under_the_same_sheet(tmp_path):
    """SynME regenerated with other nuisance or amplitude settings keeps its sheet but not its pixels."""
    from aullm.data.synme import SynMEParams, generate_synme

    root = tmp_path / "synme"
    generate_synme(root, subjects=2, clips_per_subject=2, seed=4, size=128)
    cfg = DataConfig(dataset="synme", root=str(root), size=32)
    first = prepare_dataset(cfg)
    assert prepare_dataset(cfg).from_cache
    sheet = next(root.glob("CASME2-coding-*.xlsx")).read_bytes()
    generate_synme(
        root,
        subjects=2,
        clips_per_subject=2,
        seed=4,
        size=128,
        params=SynMEParams(noise_sigma=8.0, au_gain=((4, 2.0),)),
    )
    assert next(root.glob("CASME2-coding-*.xlsx")).read_bytes() == sheet  # same sheet, so the same cache key
    again = prepare_dataset(cfg)
    assert not again.from_cache and again.cache_path == first.cache_path
    assert not np.array_equal(again.frames, first.frames)
    assert prepare_dataset(cfg).from_cache


def test_unknown_aus_excluded_unless_asked(tmp_path):
    clips = casme2_clips(4, frames=6)
    clips[1].aus = "?"
    write_casme2(tmp_path, clips)
    prepared = prepare_dataset(DataConfig(root=str(tmp_path), size=16))
    assert len(prepared) == 3 and clips[1].filename not in prepared.index["sample"].tolist()
    assert any("unknown" in s["reason"] for s in prepared.skipped)
    everything = prepare_dataset(DataConfig(root=str(tmp_path), size=16, include_unknown=True))
    assert everything.from_cache and len(everything) == 4
    np.testing.assert_array_equal(everything.clips[2], prepared.clips[1])


def test_absent_au_gives_zero_labels_and_a_warning(tmp_path, warnings_log):
    _dataset(tmp_path)
    prepared = prepare_dataset(DataConfig(root=str(tmp_path), size=16, aus=["AU4", "AU43"]))
    assert prepared.labels[:, 1].sum() == 0 and prepared.labels[:, 0].sum() > 0
    assert any("AU43" in m for m in warnings_log)


def test_corrupt_jpeg_skips_only_that_sample(tmp_path, warnings_log):
    clips = casme2_clips(4, frames=6)
    clips[2].frames = "corrupt"
    write_casme2(tmp_path, clips)
    prepared = prepare_dataset(DataConfig(root=str(tmp_path), size=16))
    assert len(prepared) == 3
    (bad,) = [s for s in prepared.skipped if clips[2].filename in s["sample"]]
    assert "unreadable image" in bad["reason"] and "reg_img" in bad["reason"]
    assert any(clips[2].filename in m for m in warnings_log)
    again = prepare_dataset(DataConfig(root=str(tmp_path), size=16))
    assert again.from_cache and [s["sample"] for s in again.skipped] == [s["sample"] for s in prepared.skipped]


def test_crash_while_writing_leaves_no_cache(tmp_path, monkeypatch):
    _dataset(tmp_path)
    cfg = DataConfig(root=str(tmp_path), size=16)

    def crash(fh, **arrays):
        fh.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(cache_mod.np, "savez_compressed", crash)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(cfg)
    monkeypatch.undo()
    assert list((tmp_path / ".aullm_cache").iterdir()) == []
    assert not prepare_dataset(cfg).from_cache


def test_damaged_cache_is_rebuilt(tmp_path, warnings_log):
    _dataset(tmp_path)
    cfg = DataConfig(root=str(tmp_path), size=16)
    path = prepare_dataset(cfg).cache_path
    path.write_bytes(path.read_bytes()[:100])
    rebuilt = prepare_dataset(cfg)
    assert not rebuilt.from_cache and len(rebuilt) == 6
    assert any("unreadable cache" in m for m in warnings_log)
    assert prepare_dataset(cfg).from_cache


def test_cache_dir_setting_and_missing_root(tmp_path):
    _dataset(tmp_path / "data")
    prepared = prepare_dataset(DataConfig(root=str(tmp_path / "data"), size=16, cache_dir=str(tmp_path / "c")))
    assert prepared.cache_path.parent == tmp_path / "c"
    with pytest.raises(DataError, match="dataset root not found"):
        prepare_dataset(DataConfig(root=str(tmp_path / "nope")))


def test_flow_input(tmp_path):
    _dataset(tmp_path, n=3, size=64)
    prepared = prepare_dataset(DataConfig(root=str(tmp_path), size=16, input="flow"))
    assert prepared.flow.shape == (3, 3, 16, 16) and prepared.flow.dtype == np.float32
    assert prepared.clips == []
    batch = sample_batch(prepared, np.array([2, 0]), True, np.random.default_rng(0), 6)
    assert tuple(batch.shape) == (2, 3, 16, 16)
    assert np.allclose(batch[0].numpy(), prepared.flow[2])
    assert prepared.flow[:, 0].mean() > 0.5  # the fixture's blob moves right from onset to apex
    assert prepare_dataset(DataConfig(root=str(tmp_path), size=16, input="flow")).from_cache


def test_face_crop_detect(tmp_path):
    from skimage.color import rgb2gray
    from skimage.data import astronaut

    face = (rgb2gray(astronaut()) * 255).astype(np.uint8)
    canvas = np.full((600, 760), 90, np.uint8)
    canvas[50:562, 200:712] = face
    clip = Clip(1, "EP01_01", 1, 2, 3, "12")
    write_casme2(tmp_path, [clip], layout="raw")
    folder = tmp_path / "CASME2_RAW_selected" / "sub01" / "EP01_01"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in (1, 2, 3):
        Image.fromarray(np.roll(canvas, n, axis=1)).save(folder / f"img{n}.jpg", quality=92)
        paths.append(folder / f"img{n}.jpg")
    cropped = prepare_dataset(DataConfig(root=str(tmp_path), size=32, face_crop="detect"))
    plain = prepare_dataset(DataConfig(root=str(tmp_path), size=32))
    from aullm.data.faces.detect import face_box_from_file

    box = face_box_from_file(paths[0])
    assert box is not None
    np.testing.assert_array_equal(cropped.clips[0], load_frames(paths, 32, box))
    assert not np.array_equal(cropped.clips[0], plain.clips[0])


def test_prepare_200_clips_cache_is_5x_faster(tmp_path, image_opens):
    write_casme2(tmp_path, casme2_clips(200, frames=10, subjects=20), size=96)
    cfg = DataConfig(root=str(tmp_path))
    start = time.perf_counter()
    first = prepare_dataset(cfg)
    cold = time.perf_counter() - start
    opened = image_opens["n"]
    start = time.perf_counter()
    second = prepare_dataset(cfg)
    warm = time.perf_counter() - start
    assert len(first) == len(second) == 200 and opened == 2000 and image_opens["n"] == opened
    assert cold >= 5 * warm, (cold, warm)
