"""Loaders: CASME II, SAMM (corrections, or_policy), CAS(ME)³-A, manifest, and every bad-input case."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aullm.config import DataConfig
from aullm.core.errors import DataError
from aullm.data.index import BASE_COLUMNS, load_index
from aullm.data.stats import dataset_stats
from fixtures_data import (
    CASME2_HEADER,
    SAMM_EXPECTED,
    Clip,
    _write_xlsx,
    casme2_clips,
    frame_pixels,
    samm_correction_clips,
    write_casme2,
    write_casme3a,
    write_frames,
    write_manifest,
    write_samm,
)


def _reasons(index) -> dict[str, str]:
    return {s["sample"]: s["reason"] for s in index.skipped}


# -------------------------------------------------------------------------------------------------- CASME II


@pytest.mark.parametrize("subject_as_int", [True, False])
@pytest.mark.parametrize("layout", ["cropped", "raw"])
def test_casme2_index(tmp_path, subject_as_int, layout):
    clips = [
        Clip(1 if subject_as_int else "01", "EP02_01f", 46, 59, 66, "4+L10"),
        Clip(1 if subject_as_int else "01", "EP03_02", 10, "/", 14, "L1+L2"),
        Clip(2 if subject_as_int else "02", "EP02_01f", 5, 7, 9, 12),
        Clip(2 if subject_as_int else "02", "EP19_05f", 5, 7, 9, "?"),
        Clip(3 if subject_as_int else "03", "EP01_01", 1, 3, 6, 12.0),
    ]
    write_casme2(tmp_path, clips, layout=layout)
    index = load_index(DataConfig(dataset="casme2", root=str(tmp_path)))
    df = index.df
    assert list(df.columns[: len(BASE_COLUMNS)]) == BASE_COLUMNS
    assert [c for c in df.columns if c.startswith("AU")] == ["AU1", "AU2", "AU4", "AU10", "AU12"]
    assert df["subject"].tolist() == ["01", "01", "02", "02", "03"]
    assert df["sample"].tolist() == ["EP02_01f", "EP03_02", "EP02_01f", "EP19_05f", "EP01_01"]
    assert df.loc[0, ["AU4", "AU10", "AU1"]].tolist() == [1, 1, 0]
    assert pd.isna(df.loc[1, "apex"]) and df.loc[1, "onset"] == 10
    assert df.loc[2, "AU12"] == 1 and df.loc[4, "AU12"] == 1
    assert df["au_unknown"].tolist() == [False, False, False, True, False]
    assert df.loc[3, ["AU1", "AU2", "AU4", "AU10", "AU12"]].sum() == 0
    top = "Cropped" if layout == "cropped" else "CASME2_RAW_selected"
    assert df.loc[0, "clip_dir"] == str(tmp_path / top / "sub01" / "EP02_01f")
    assert index.skipped == []
    assert [len(s.paths) for s in index.sources] == [21, 5, 5, 5, 6]
    name = "reg_img{}.jpg" if layout == "cropped" else "img{}.jpg"
    assert index.sources[0].paths[0].name == name.format(46)
    assert index.sources[0].apex_pos == 59 - 46 and index.sources[1].apex_pos is None


def test_casme2_header_has_unnamed_columns(tmp_path):
    sheet = write_casme2(tmp_path, casme2_clips(2))
    raw = pd.read_excel(sheet)
    assert list(raw.columns) == [c if c else f"Unnamed: {i}" for i, c in enumerate(CASME2_HEADER)]


def test_casme2_cropped_preferred_and_frames_dir(tmp_path):
    clips = casme2_clips(2)
    write_casme2(tmp_path, clips, layout="raw")
    write_casme2(tmp_path, clips, layout="cropped")
    df = load_index(DataConfig(root=str(tmp_path))).df
    assert "Cropped" in df.loc[0, "clip_dir"]
    df = load_index(DataConfig(root=str(tmp_path), frames_dir="CASME2_RAW_selected")).df
    assert "CASME2_RAW_selected" in df.loc[0, "clip_dir"]


def test_synme_is_read_by_the_casme2_loader(tmp_path):
    write_casme2(tmp_path, casme2_clips(3), sheet_name="CASME2-coding-synme.xlsx")
    index = load_index(DataConfig(dataset="synme", root=str(tmp_path)))
    assert len(index.df) == 3 and set(index.df["dataset"]) == {"synme"}


def test_annotations_only_needs_no_frames(tmp_path):
    sheet = write_casme2(tmp_path / "c", casme2_clips(4))
    index = load_index(DataConfig(annotations=str(sheet)), frames=False)
    assert len(index.df) == 4 and index.sources is None


# ------------------------------------------------------------------------------------------------------ SAMM


def test_samm_stats_with_standard_corrections(tmp_path):
    sheet = write_samm(tmp_path, samm_correction_clips(), with_frames=False)
    stats = dataset_stats(DataConfig(dataset="samm", annotations=str(sheet)), frames=False)
    assert list(stats) == [
        *("dataset", "samples", "usable", "subjects", "au_counts", "skipped"),
        *("folders_checked", "frames_checked"),
    ]
    assert (stats["folders_checked"], stats["frames_checked"]) == (False, False)
    for key, value in SAMM_EXPECTED.items():
        assert stats[key] == value, key
    assert [s["sample"] for s in stats["skipped"]] == ["023/023_1_1"]


def test_samm_corrections_values(tmp_path):
    sheet = write_samm(tmp_path, samm_correction_clips(), with_frames=False)
    df = load_index(DataConfig(dataset="samm", annotations=str(sheet)), frames=False).df.set_index("sample")
    assert df.loc["028_4_1", "apex"] == 1105
    assert df.loc["032_3_1", "apex"] == 4945
    assert df.loc["032_3_2", "apex"] == 5130
    assert df.loc["007_6_1", "au_raw"] == "R12+R15" and df.loc["007_6_1", ["AU12", "AU15"]].tolist() == [1, 1]
    assert "AU6" not in df.columns  # the R6 reading of 007_6_1/007_6_5 is gone
    assert df.loc["011_4_2", "AU14"] == 1 and df.loc["011_4_2", "AU12"] == 0
    assert df.loc["035_7_2", "AU14"] == 1 and "AU24" not in df.columns
    assert df.loc["006_1_2", "subject"] == "006"


def test_samm_corrections_off(tmp_path):
    sheet = write_samm(tmp_path, samm_correction_clips(), with_frames=False)
    stats = dataset_stats(DataConfig(dataset="samm", annotations=str(sheet), corrections=False), frames=False)
    skipped = {s["sample"]: s["reason"] for s in stats["skipped"]}
    assert set(skipped) == {
        "007/007_6_1",
        "007/007_6_5",
        "011/011_4_2",
        "014/014_5_2",
        "035/035_7_2",
        "028/028_4_1",
        "032/032_3_1",
        "023/023_1_1",
    }
    assert "apex 1143 outside" in skipped["028/028_4_1"]
    assert stats["usable"] == 14 and stats["samples"] == 22


@pytest.mark.parametrize(("policy", "aus_023"), [("union", {"AU4", "AU7"}), ("first", {"AU4"})])
def test_samm_or_policy(tmp_path, policy, aus_023):
    sheet = write_samm(tmp_path, samm_correction_clips(), with_frames=False)
    cfg = DataConfig(dataset="samm", annotations=str(sheet), or_policy=policy)
    df = load_index(cfg, frames=False).df.set_index("sample")
    row = df.loc["023_1_1"]
    assert {c for c in df.columns if c.startswith("AU") and row[c] == 1} == aus_023


def test_samm_apex_outside_with_permissive_policy_keeps_sample(tmp_path, warnings_log):
    sheet = write_samm(tmp_path, samm_correction_clips(), with_frames=False)
    cfg = DataConfig(dataset="samm", annotations=str(sheet), corrections=False, or_policy="union")
    df = load_index(cfg, frames=False).df.set_index("sample")
    assert pd.isna(df.loc["028_4_1", "apex"])
    assert any("028_4_1" in m and "apex" in m for m in warnings_log)


def test_samm_frames(tmp_path):
    clips = [Clip("006", "006_1_2", 5562, 5564, 5567, "4+7"), Clip("032", "032_3_2", 5125, 5127, 5132, "A12")]
    write_samm(tmp_path, clips)
    index = load_index(DataConfig(dataset="samm", root=str(tmp_path)))
    assert index.df["subject"].tolist() == ["006", "032"]
    assert index.sources[0].paths[0] == tmp_path / "SAMM" / "006" / "006_1_2" / "006_05562.jpg"
    assert len(index.sources[0].paths) == 6
    assert index.df.loc[1, "apex"] == 5130 and index.sources[1].apex_pos == 5


# ----------------------------------------------------------------------------------------- CAS(ME)³ and manifest


def test_casme3a(tmp_path):
    write_casme3a(tmp_path, [Clip("spNO.1", "a", 0, 2, 5, "L4+7"), Clip("spNO.2", "b", 3, "/", 6, "12")])
    index = load_index(DataConfig(dataset="casme3a", root=str(tmp_path)))
    assert index.df["subject"].tolist() == ["spNO.1", "spNO.2"]
    assert index.df["sample"].tolist() == ["a_0", "b_3"]  # video + onset: a video holds several MEs
    assert index.df[["AU4", "AU7", "AU12"]].values.tolist() == [[1, 1, 0], [0, 0, 1]]
    assert index.sources[0].paths[0] == tmp_path / "spNO.1" / "a" / "color" / "0.jpg"


def test_manifest_folder_video_and_flow_image(tmp_path):
    import av

    write_frames(tmp_path / "clips" / "s1", range(0, 8), "f{:03d}.jpg")
    video = tmp_path / "clips" / "v1.mp4"
    with av.open(str(video), "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for t in range(10):
            frame = av.VideoFrame.from_ndarray(np.stack([frame_pixels(32, t)] * 3, -1), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    from PIL import Image

    Image.fromarray(np.zeros((16, 16, 3), np.uint8) + 128).save(tmp_path / "flow.png")
    write_manifest(
        tmp_path / "manifest.csv",
        [
            {
                "subject": "a",
                "sample": "s1",
                "path": "clips/s1",
                "AU1": 1,
                "AU4": 0,
                "onset": "",
                "apex": "",
                "offset": "",
            },
            {
                "subject": "a",
                "sample": "v1",
                "path": "clips/v1.mp4",
                "AU1": 0,
                "AU4": 1,
                "onset": 2,
                "apex": 4,
                "offset": 8,
            },
            {
                "subject": "b",
                "sample": "fl",
                "path": "flow.png",
                "AU1": 1,
                "AU4": 1,
                "onset": "",
                "apex": "",
                "offset": "",
            },
            {
                "subject": "b",
                "sample": "unk",
                "path": "clips/s1",
                "AU1": "?",
                "AU4": 0,
                "onset": "",
                "apex": "",
                "offset": "",
            },
        ],
    )
    index = load_index(DataConfig(dataset="manifest", root=str(tmp_path)))
    df = index.df.set_index("sample")
    assert df.loc["s1", "onset"] == 0 and df.loc["s1", "offset"] == 7
    assert [s.kind for s in index.sources] == ["frames", "video", "frames"]
    assert "data.input: flow" in _reasons(index)["b/fl"]
    assert bool(df.loc["unk", "au_unknown"]) and df.loc["v1", "AU4"] == 1
    flow_index = load_index(DataConfig(dataset="manifest", root=str(tmp_path), input="flow"))
    assert [s.kind for s in flow_index.sources] == ["frames", "video", "flow_image", "frames"]


# -------------------------------------------------------------------------------------------------- bad input


def test_missing_root_is_data_error(tmp_path):
    with pytest.raises(DataError, match="dataset root not found"):
        load_index(DataConfig(root=str(tmp_path / "nope")))


def test_missing_annotation_file(tmp_path):
    (tmp_path / "Cropped").mkdir()
    with pytest.raises(DataError, match="no annotation file found"):
        load_index(DataConfig(root=str(tmp_path)))
    with pytest.raises(DataError, match="annotation file not found"):
        load_index(DataConfig(annotations=str(tmp_path / "missing.xlsx")), frames=False)


def test_unreadable_annotation_file(tmp_path):
    bad = tmp_path / "CASME2-coding-20140508.xlsx"
    bad.write_bytes(b"this is not a zip file")
    with pytest.raises(DataError, match="cannot read annotation file"):
        load_index(DataConfig(annotations=str(bad)), frames=False)


def test_missing_column_is_named(tmp_path):
    header = [c for c in CASME2_HEADER if c != "ApexFrame"]
    sheet = _write_xlsx(
        tmp_path / "CASME2-coding-x.xlsx", [("Sheet1", [header, [1, "EP01", None, 1, 5, None, "4", "x"]])]
    )
    with pytest.raises(DataError, match="missing column 'ApexFrame'"):
        load_index(DataConfig(annotations=str(sheet)), frames=False)


def test_samm_missing_sheet(tmp_path):
    sheet = _write_xlsx(tmp_path / "SAMM_Micro_FACS_Codes_v2.xlsx", [("Other", [["x"]])])
    with pytest.raises(DataError, match="MICRO_ONLY"):
        load_index(DataConfig(dataset="samm", annotations=str(sheet)), frames=False)


def test_no_usable_rows_is_data_error(tmp_path):
    sheet = write_casme2(tmp_path, [Clip(1, "EP01", 9, 5, 3, "4")])
    with pytest.raises(DataError, match="no usable samples"):
        load_index(DataConfig(annotations=str(sheet)), frames=False)


def test_bad_samples_are_skipped_and_named(tmp_path, warnings_log):
    good = casme2_clips(2)
    bad = [
        Clip(5, "EP_nofolder", 1, 2, 5, "4", frames="none"),
        Clip(5, "EP_empty", 1, 2, 5, "4", frames="empty"),
        Clip(5, "EP_short", 1, 2, 5, "4", frames="short"),
        Clip(5, "EP_backwards", 9, 5, 3, "4"),
        Clip(5, "EP_apex", 1, 40, 5, "4"),
        Clip(5, "EP_badau", 1, 2, 5, "L12Z"),
        Clip(5, "EP_noau", 1, 2, 5, None),
        Clip(5, "EP_onset", "x", 2, 5, "4", frames="skip"),
        Clip(5, "EP_single", 3, 3, 3, "4"),
    ]
    write_casme2(tmp_path, good + bad)
    index = load_index(DataConfig(root=str(tmp_path)))
    assert index.df["sample"].tolist() == [c.filename for c in good]
    reasons = _reasons(index)
    expected = {
        "EP_nofolder": "frame folder missing",
        "EP_empty": "frame folder empty",
        "EP_short": "too few frames",
        "EP_backwards": "onset 9 > offset 3",
        "EP_apex": "apex 40 outside",
        "EP_badau": "unparseable Action Units",
        "EP_noau": "empty Action Units",
        "EP_onset": "not a frame number",
        "EP_single": "too few frames",
    }
    for sample, needle in expected.items():
        assert needle in reasons[f"05/{sample}"], (sample, reasons[f"05/{sample}"])
        assert any(f"05/{sample}" in m for m in warnings_log), sample
    stats = dataset_stats(DataConfig(root=str(tmp_path)), frames=True)
    assert stats["samples"] == len(good) + len(bad) and stats["usable"] == len(good)


def test_duplicate_sample_skipped(tmp_path):
    clips = casme2_clips(2)
    write_casme2(tmp_path, [*clips, clips[0]])
    index = load_index(DataConfig(root=str(tmp_path)))
    assert len(index.df) == 2 and "duplicate" in index.skipped[0]["reason"]


def test_manifest_missing_column(tmp_path):
    write_manifest(tmp_path / "manifest.csv", [{"subject": "a", "path": "x", "AU1": 1}])
    with pytest.raises(DataError, match="missing column 'sample'"):
        load_index(DataConfig(dataset="manifest", root=str(tmp_path)))


def test_manifest_bad_label_skipped(tmp_path):
    write_frames(tmp_path / "s1", range(3), "{}.jpg")
    write_manifest(
        tmp_path / "manifest.csv",
        [
            {"subject": "a", "sample": "s1", "path": "s1", "AU1": 1},
            {"subject": "a", "sample": "s2", "path": "s1", "AU1": "maybe"},
        ],
    )
    index = load_index(DataConfig(dataset="manifest", root=str(tmp_path)))
    assert index.df["sample"].tolist() == ["s1"]
    assert "not 0 or 1" in _reasons(index)["a/s2"]
