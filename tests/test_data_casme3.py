"""CAS(ME)³ part A: every micro-expression a sample, its three frame layouts, MEB's corrections, true duplicates."""

from __future__ import annotations

import numpy as np
import pytest

from aullm.config import DataConfig
from aullm.data.index import load_index
from aullm.data.readers.casme3 import CASME3_CORRECTIONS, meb_folder_names
from aullm.data.stats import dataset_stats
from fixtures_data import CASME3_HEADER, CASME3_SHEET, Clip, _write_xlsx, write_casme3a
from fixtures_faces import astronaut, on_canvas


def several_per_video() -> list[Clip]:
    """Two subjects; video `e` of spNO.1 holds three MEs (the first two share frame 96, as in the real sheet)."""
    return [
        Clip("spNO.1", "e", 62, 68, 96, "R12"),
        Clip("spNO.1", "e", 96, 102, 106, "R12", extra={"meb": "e2"}),
        Clip("spNO.1", "e", 110, 112, 118, "L4+7", extra={"meb": "e3"}),
        Clip("spNO.1", "f", 10, 12, 20, "4"),
        Clip("spNO.2", "e", 30, 33, 40, "12"),  # another subject's video e: MEB's counter starts again
        Clip("spNO.2", "a", 5, 7, 12, "1+2"),
    ]


EXPECTED_SAMPLES = ["e_62", "e_96", "e_110", "f_10", "e_30", "a_5"]


def test_every_me_of_a_video_is_a_sample(tmp_path):
    """Rows of one video used to collide as 'duplicate sample'; each is its own sample, id = video + onset."""
    sheet = write_casme3a(tmp_path, several_per_video(), layout=None)
    stats = dataset_stats(DataConfig(dataset="casme3a", annotations=str(sheet)), frames=False)
    assert (stats["samples"], stats["usable"], stats["subjects"], stats["skipped"]) == (6, 6, 2, [])
    df = load_index(DataConfig(dataset="casme3a", annotations=str(sheet)), frames=False).df
    assert df["sample"].tolist() == EXPECTED_SAMPLES
    assert df["subject"].tolist() == ["spNO.1"] * 4 + ["spNO.2"] * 2
    assert df[["onset", "apex", "offset"]].values.tolist()[:2] == [[62, 68, 96], [96, 102, 106]]
    assert df.loc[2, ["AU4", "AU7", "AU12"]].tolist() == [1, 1, 0]


def test_same_video_and_onset_is_a_duplicate_naming_both_rows(tmp_path, warnings_log):
    clips = [*several_per_video(), Clip("spNO.1", "e", 62, 70, 90, "R12")]
    sheet = write_casme3a(tmp_path, clips, layout=None)
    index = load_index(DataConfig(dataset="casme3a", annotations=str(sheet)), frames=False)
    assert index.df["sample"].tolist() == EXPECTED_SAMPLES
    ((name, reason),) = [(s["sample"], s["reason"]) for s in index.skipped]
    assert name == "spNO.1/e_62"
    assert reason == f"duplicate sample ({CASME3_SHEET} row 8; first in {CASME3_SHEET} row 2)"
    assert any("spNO.1/e_62" in m and "duplicate" in m for m in warnings_log)


def test_meb_folder_names_follow_mebs_rule():
    """MEB numbers consecutive rows of one subject's video e, e2, e3 …; anything else starts the counter again,
    so a video that comes back after another one is `e` again (MEB's own folders collide there too)."""
    rows = [("s1", "e"), ("s1", "e"), ("s1", "e"), ("s1", "f"), ("s1", "f"), ("s2", "f"), ("s2", "f")]
    rows += [("s2", "a"), ("s2", "e"), ("s2", "a")]
    assert meb_folder_names(rows) == ["e", "e2", "e3", "f", "f2", "f", "f2", "a", "e", "a"]
    assert meb_folder_names([]) == []


def _frame_bytes(index) -> dict[str, list[bytes]]:
    return {s: [p.read_bytes() for p in src.paths] for s, src in zip(index.df["sample"], index.sources)}


def test_all_three_layouts_read_the_same_frames(tmp_path):
    """The release's videos, MEB's per-ME copies and the release's per-ME clips: same samples, same frames."""
    read = {}
    for layout in ("videos", "meb", "clips"):
        root = tmp_path / layout
        write_casme3a(root, several_per_video(), layout=layout)
        index = load_index(DataConfig(dataset="casme3a", root=str(root)))
        assert index.skipped == [] and index.df["sample"].tolist() == EXPECTED_SAMPLES, layout
        for (onset, offset), source in zip(index.df[["onset", "offset"]].values.tolist(), index.sources):
            assert [p.name for p in source.paths] == [f"{n}.jpg" for n in range(onset, offset + 1)], layout
        read[layout] = (index, _frame_bytes(index))
    folders = {layout: [str(s.paths[0].parent.relative_to(tmp_path / layout)) for s in read[layout][0].sources]
               for layout in read}  # fmt: skip
    assert folders["videos"][:3] == ["spNO.1/e/color"] * 3
    assert folders["meb"][:3] == ["spNO.1/e/color", "spNO.1/e2/color", "spNO.1/e3/color"]
    assert folders["clips"][1] == "Part_A_ME_clip/frame/spNO.1_e_96"
    assert read["videos"][1] == read["meb"][1] == read["clips"][1]
    assert read["videos"][0].sources[1].apex_pos == 102 - 96


def test_frames_dir_points_at_a_copy_elsewhere(tmp_path):
    """MEB's aligned copy (`ME_A_cropped`) or the release's clip folder can live outside the dataset root."""
    write_casme3a(tmp_path / "ME_A_cropped", several_per_video(), layout="meb")
    write_casme3a(tmp_path, several_per_video(), layout=None)
    index = load_index(DataConfig(dataset="casme3a", root=str(tmp_path), frames_dir="ME_A_cropped"))
    assert index.skipped == [] and index.sources[2].paths[0].parent == tmp_path / "ME_A_cropped/spNO.1/e3/color"


def test_missing_per_me_folder_is_named_not_read_from_the_first_me(tmp_path):
    """In MEB's layout folder `e` holds only the first ME: a missing `e2` must not fall back to it."""
    clips = several_per_video()
    clips[1].frames = "none"
    write_casme3a(tmp_path, clips, layout="meb")
    index = load_index(DataConfig(dataset="casme3a", root=str(tmp_path)))
    reasons = {s["sample"]: s["reason"] for s in index.skipped}
    assert reasons == {"spNO.1/e_96": f"frame folder missing: {tmp_path / 'spNO.1' / 'e2'}"}


def test_frame_problems_in_a_shared_video_folder_are_per_me(tmp_path):
    """A video folder short of one ME's last frame skips that ME only; the video's other MEs are kept."""
    clips = several_per_video()
    clips[2].frames = "short"  # e_110: frame 118 missing
    write_casme3a(tmp_path, clips)
    index = load_index(DataConfig(dataset="casme3a", root=str(tmp_path)))
    assert index.df["sample"].tolist() == [s for s in EXPECTED_SAMPLES if s != "e_110"]
    ((skip,),) = [[s for s in index.skipped]]
    assert skip["sample"] == "spNO.1/e_110" and "first missing: 118" in skip["reason"]


# ----------------------------------------------------------------------------------------------- corrections


def correction_sheet_rows() -> list[list]:
    """An 860-row sheet in the v2 order: the six rows MEB corrects sit at MEB's positions, impossible as MEB
    describes them. Three are known by name (spNO.149 d, spNO.216 d and e); the other three rows' identities and
    v2 values are not public, so they are made impossible the way MEB's fix implies (offset before onset)."""
    rows: list[list] = []
    for i in range(860):
        onset = 10 + 3 * i
        rows.append([f"spNO.{300 + i // 9}", "abcdefghi"[i % 9], onset, onset + 2, onset + 5, "4", "Class 1", "x"])
    rows[128][:5] = ["spNO.149", "d", 112, 83, 150]
    rows[708][:5] = ["spNO.215", "c", 20, 25, 3]
    rows[749][:5] = ["spNO.216", "d", 3647, 2668, 2694]
    rows[750][:5] = ["spNO.216", "e", 0, 0, 25]
    rows[796][:5] = ["spNO.4", "b", 1830, 1838, 1045]
    rows[798][:5] = ["spNO.4", "d", 2390, 2396, 2304]
    return rows


def _sheet(tmp_path, rows):
    return _write_xlsx(tmp_path / CASME3_SHEET, [("label", [CASME3_HEADER, *rows])])


def test_mebs_six_corrections_make_every_row_usable(tmp_path):
    sheet = _sheet(tmp_path, correction_sheet_rows())
    cfg = DataConfig(dataset="casme3a", annotations=str(sheet))
    stats = dataset_stats(cfg, frames=False)
    subjects = len({row[0] for row in correction_sheet_rows()})
    assert (stats["samples"], stats["usable"], stats["subjects"], stats["skipped"]) == (860, 860, subjects, [])
    df = load_index(cfg, frames=False).df.set_index(["subject", "sample"])
    frames = ["onset", "apex", "offset"]
    assert df.loc[("spNO.149", "d_112"), frames].tolist() == [112, 123, 150]
    assert df.loc[("spNO.215", "c_20"), frames].tolist() == [20, 25, 34]
    assert df.loc[("spNO.216", "d_3647"), frames].tolist() == [2647, 2668, 2694]  # the id keeps the sheet's onset
    assert df.loc[("spNO.216", "e_0"), frames].tolist() == [1, 1, 25]
    assert df.loc[("spNO.4", "b_1830"), frames].tolist() == [1830, 1838, 1845]
    assert df.loc[("spNO.4", "d_2390"), frames].tolist() == [2390, 2396, 2403]
    assert sorted(c.row for c in CASME3_CORRECTIONS) == [128, 708, 749, 750, 796, 798]


def test_corrections_off_reads_the_sheet_as_it_is(tmp_path):
    sheet = _sheet(tmp_path, correction_sheet_rows())
    cfg = DataConfig(dataset="casme3a", annotations=str(sheet), corrections=False)
    stats = dataset_stats(cfg, frames=False)
    reasons = {s["sample"]: s["reason"] for s in stats["skipped"]}
    assert reasons == {
        "spNO.149/d_112": "apex 83 outside the clip 112..150",
        "spNO.215/c_20": "onset 20 > offset 3",
        "spNO.216/d_3647": "onset 3647 > offset 2694",
        "spNO.4/b_1830": "onset 1830 > offset 1045",
        "spNO.4/d_2390": "onset 2390 > offset 2304",
    }
    df = load_index(cfg, frames=False).df.set_index(["subject", "sample"])
    assert df.loc[("spNO.216", "e_0"), ["onset", "apex"]].tolist() == [0, 0]  # frame 0: found missing with frames
    assert stats["usable"] == 855


def test_named_corrections_follow_their_sample_positional_ones_never_touch_a_sound_row(tmp_path, warnings_log):
    """Another version of the sheet, with one row moved: the corrections MEB's rows are known by name for follow
    their sample; a positional one whose position now holds a sound row leaves it alone and says so."""
    rows = correction_sheet_rows()
    rows.insert(0, rows.pop(749))  # spNO.216 d first: rows before it move down one, spNO.215 c to 709
    sheet = _sheet(tmp_path, rows)
    index = load_index(DataConfig(dataset="casme3a", annotations=str(sheet)), frames=False)
    df = index.df.set_index(["subject", "sample"])
    assert df.loc[("spNO.216", "d_3647"), "onset"] == 2647
    assert df.loc[("spNO.149", "d_112"), "apex"] == 123
    assert df.loc[("spNO.4", "d_2390"), "offset"] == 2403  # rows after the moved one kept their positions
    sound = rows[708]
    assert df.loc[(sound[0], f"{sound[1]}_{sound[2]}"), "offset"] == sound[4]
    assert {s["sample"]: s["reason"] for s in index.skipped} == {"spNO.215/c_20": "onset 20 > offset 3"}
    (warning,) = [m for m in warnings_log if "correction" in m]
    assert "row 708 (offset → 34) not applied" in warning
    assert f"{CASME3_SHEET} row 710, sample {sound[0]}/{sound[1]}_{sound[2]}" in warning


# ------------------------------------------------------------------------------------------ face crop (align)


def test_default_align_keeps_real_faces_and_check_frames_counts_what_prepare_keeps(tmp_path):
    """CAS(ME)³ is uncropped, so `align` is its default. Frames holding a real face photo are aligned and kept;
    a clip without a face is usable to the plain stats (nothing decoded) but not to --check-frames."""
    photo = astronaut()

    def pixels(subject: str, video: str, n: int) -> np.ndarray:
        if video == "z":  # no face: noise
            return np.random.default_rng(n).integers(0, 255, (120, 160), dtype=np.uint8)
        return on_canvas(photo.gray, 640, 560, 40 + n % 3, 20)  # the face drifts by a pixel or two

    clips = [
        Clip("spNO.1", "e", 10, 12, 15, "R12"),
        Clip("spNO.1", "e", 16, 18, 20, "4"),
        Clip("spNO.2", "z", 1, 2, 5, "4"),
    ]
    write_casme3a(tmp_path, clips, pixels=pixels)
    cfg = DataConfig(dataset="casme3a", root=str(tmp_path), size=32, cache_dir=str(tmp_path / "cache"))
    assert cfg.face_crop == "align"
    plain = dataset_stats(cfg, frames=True)
    assert (plain["usable"], plain["folders_checked"], plain["frames_checked"]) == (3, True, False)
    decoded = dataset_stats(cfg, frames=True, check_frames=True)
    assert (decoded["samples"], decoded["usable"], decoded["frames_checked"]) == (3, 2, True)
    no_face = str(tmp_path / "spNO.2" / "z" / "color" / "1.jpg")
    assert decoded["skipped"] == [{"sample": "spNO.2/z_1", "reason": f"no face found in {no_face}"}]


@pytest.mark.parametrize("layout", ["meb", "clips"])
def test_per_me_layouts_decode_like_the_videos(tmp_path, layout):
    """Decoded clips (face_crop none: drawn frames hold no face) are identical whichever layout they come from."""
    from aullm.data.cache import prepare_dataset

    arrays = {}
    for name in ("videos", layout):
        write_casme3a(tmp_path / name, several_per_video(), layout=name)
        cfg = DataConfig(dataset="casme3a", root=str(tmp_path / name), size=16, face_crop="none")
        prepared = prepare_dataset(cfg)
        assert prepared.index["sample"].tolist() == EXPECTED_SAMPLES
        arrays[name] = prepared.frames
    assert np.array_equal(arrays["videos"], arrays[layout])
