"""Long-video truth readers (docs/datasets.md, Long videos) on fixture workbooks written in the layouts of the real
releases: CAS(ME)² `CAS(ME)^2code_final.xlsx` (three sheets, no header row) and SAMM Long Videos
`SAMM_LongVideos_V2_Release.xlsx` (legend rows above the header), each with the known annotation errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from openpyxl import Workbook

from aullm.core.errors import DataError
from aullm.data.longvideo import COLUMNS, read_truth
from aullm.data.longvideo.casme2_long import read_casme2_long
from aullm.data.longvideo.samm_long import read_samm_long

CASME_ROWS = [
    # participant, expression, onset, apex, offset, AUs, estimated emotion, type, self-reported
    [1, "disgust1_1", 557, 572, 608, "4+10+14", "negative", "macro-expression", "disgust"],
    [1, "disgust1_2", 700, 706, 712, 4, "negative", "micro-expression", "disgust"],
    [1, "anger1_1", 100, 120, 0, "4", "negative", "macro-expression", "anger"],  # offset 0 -> apex
    [2, "anger1_1", 1763, 0, 1787, "4+7", "negative", "macro-expression", "anger"],  # apex 0 -> midpoint
    [2, "disgust1_5", 1221, 1230, 1224, "9", "negative", "micro-expression", "disgust"],  # offset < apex: kept
    [2, "happy1_1", 300, 290, 280, "12", "positive", "macro-expression", "happyiness"],  # onset > offset: skipped
    [2, "happy1_2", None, 400, 410, "12", "positive", "micro-expression", "happy"],  # missing onset: skipped
    [2, "happy1_3", 500, 505, 510, "12", "positive", "blink", "happy"],  # unknown type: skipped
    [3, "happy1_4", 50, 55, 60, "12", "positive", "micro-expression", "happy"],  # participant not in rule1
]
RULE1 = [[15, "s15", 1], [15, "s15", 1], [15, "s15", 1], [16, "s16", 2], [16, "s16", 2], [16, "s16", 2]]
RULE2 = [["0101", "disgust1"], ["0401", "anger1"], [502, "happy1"]]  # a code stored as a number loses its zero


def write_casme(folder: Path, name: str = "CAS(ME)^2code_final.xlsx", rows: list | None = None) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.title = "CASFEcode_final"
    for row in CASME_ROWS if rows is None else rows:
        ws.append(row)
    for title, data in (("naming rule1", RULE1), ("naming rule2", RULE2)):
        sheet = wb.create_sheet(title)
        for row in data:
            sheet.append(row)
    folder.mkdir(parents=True, exist_ok=True)
    wb.save(folder / name)
    return folder / name


SAMM_HEADER = ["Subject", "Filename", "Inducement Code", "Onset", "Apex", "Offset", "Duration", "Type",
               "Action Units", "Notes"]  # fmt: skip
SAMM_ROWS = [
    ["006", "006_1_1", 1, 566.4, 647.6, 743.2, None, "Micro - 1/2", "R12", None],  # floats: rounded
    ["006", "006_1_2", 1, 0, 1200, 1500, None, "Macro", "4+7", "Blinks"],  # onset 0 -> apex
    [6, "006_1_3", 1, 2000, -1, 2101, None, "Micro - 1/2", "1+2", None],  # apex -1 -> midpoint; subject as int
    ["007", "007_2_1", 2, 4800, 4900, 5476, None, "Macro", "12", None],  # offset beyond 5001 frames -> clipped
    ["007", "007_2_2", 2, 5300, 5350, 5400, None, "Macro", "12", None],  # onset beyond the last frame: skipped
    ["007", "007_2_3", 2, 900, 950, 800, None, "Macro", "12", None],  # onset > offset: skipped
    ["007", "007_2_4", 2, 100, 150, 200, None, "Eye movement", "", None],  # unknown type: skipped
]


def write_samm(folder: Path, name: str = "SAMM_LongVideos_V2_Release.xlsx", legend_rows: int = 9) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.title = "FACS_Movement_Only"
    legend = [
        "SAMM Long Videos - FACS coded movements",
        '"/" = or',
        '"L2 or R2" = Unilateral AU',
        '"A2" = Asymmetric',
        "NOTE: Subjects with Apex Frame not annotated were labelled as -1.",
    ]
    for i in range(legend_rows):
        ws.append([legend[i] if i < len(legend) else None])
    ws.append(SAMM_HEADER)
    for row in SAMM_ROWS:
        ws.append(row)
    folder.mkdir(parents=True, exist_ok=True)
    wb.save(folder / name)
    return folder / name


def touch_frames(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def by_video_onset(df: pd.DataFrame) -> dict[tuple[str, int], tuple[int, int, int, str]]:
    return {(r.video, r.onset): (r.onset, r.apex, r.offset, r.kind) for r in df.itertuples()}


def test_casme2_workbook_fixes_and_skips(tmp_path: Path, warnings_log: list[str]) -> None:
    path = write_casme(tmp_path / "CASME")
    df = read_casme2_long(path)
    assert list(df.columns) == list(COLUMNS)
    rows = by_video_onset(df)
    assert rows == {
        ("15_0101", 557): (557, 572, 608, "macro"),
        ("15_0101", 700): (700, 706, 712, "micro"),
        ("15_0401", 100): (100, 120, 120, "macro"),  # offset 0 -> apex
        ("16_0401", 1763): (1763, 1775, 1787, "macro"),  # apex 0 -> midpoint
        ("16_0101", 1221): (1221, 1230, 1224, "micro"),  # offset < apex kept as written
    }
    assert set(df["subject"]) == {"15", "16"} and set(df["dataset"]) == {"casme_sq"}
    assert df.set_index("onset").loc[700, "aus"] == "4" and df.set_index("onset").loc[557, "aus"] == "4+10+14"
    reasons = {s["row"]: s["reason"] for s in df.attrs["skipped"]}
    assert len(reasons) == 4
    text = " | ".join(f"{k}: {v}" for k, v in reasons.items())
    assert "row 6 (happy1_1): onset 300 after offset 280" in text
    assert "row 7 (happy1_2): no onset frame" in text
    assert "row 8 (happy1_3): unknown expression type" in text
    assert "row 9 (happy1_4): participant 3 is not in sheet 'naming rule1'" in text
    assert any("apex 1230 outside onset..offset 1221..1224" in m for m in warnings_log)
    assert any("happy1_1" in m and "skipped" in m for m in warnings_log)
    assert (df["frames_dir"] == "").all()  # no rawpic folder


def test_casme2_without_corrections_reads_the_sheet_as_it_is(tmp_path: Path) -> None:
    df = read_casme2_long(write_casme(tmp_path), corrections=False)
    # offset 0 and apex 0 are frames before the first one (frame numbers are 1-based): both rows are skipped
    assert set(by_video_onset(df)) == {("15_0101", 557), ("15_0101", 700), ("16_0101", 1221)}
    assert sum("frame 0 before the first frame 1" in s["reason"] for s in df.attrs["skipped"]) == 2


def test_casme2_frame_folders_match_by_code_prefix(tmp_path: Path) -> None:
    root = tmp_path / "CAS(ME)^2"
    path = write_casme(root)
    touch_frames(root / "rawpic" / "s15" / "15_0101disgustingteeth", ["img001.jpg", "img002.jpg"])
    touch_frames(root / "rawpic" / "s15" / "15_01012other", ["img001.jpg"])  # 0101 followed by a digit: not it
    df = read_truth(root)
    dirs = dict(zip(df["video"], df["frames_dir"]))
    assert Path(dirs["15_0101"]).name == "15_0101disgustingteeth"
    assert dirs["15_0401"] == "" and dirs["16_0101"] == ""
    assert len(read_truth(path)) == len(df)  # the workbook itself, frames looked for next to it


def test_samm_workbook_fixes_and_skips(tmp_path: Path, warnings_log: list[str]) -> None:
    root = tmp_path / "SAMM_LV"
    path = write_samm(root)
    touch_frames(root / "SAMM_longvideos" / "006_1", [f"006_1_{i:05d}.jpg" for i in (1, 2, 3000)])
    touch_frames(root / "SAMM_longvideos" / "007_2", [f"007_2_{i:04d}.jpg" for i in (1, 5001)])
    df = read_samm_long(path)
    assert list(df.columns) == list(COLUMNS)
    assert by_video_onset(df) == {
        ("006_1", 566): (566, 648, 743, "micro"),  # floats rounded half up
        ("006_1", 1200): (1200, 1200, 1500, "macro"),  # onset 0 -> apex
        ("006_1", 2000): (2000, 2050, 2101, "micro"),  # apex -1 -> midpoint
        ("007_2", 4800): (4800, 4900, 5001, "macro"),  # offset clipped to the last frame
    }
    assert set(df["subject"]) == {"006", "007"} and set(df["dataset"]) == {"samm_lv"}
    assert {Path(d).name for d in df["frames_dir"]} == {"006_1", "007_2"}
    reasons = " | ".join(f"{s['row']}: {s['reason']}" for s in df.attrs["skipped"])
    assert len(df.attrs["skipped"]) == 3
    assert "row 15 (007_2_2): onset 5300 after the video's last frame 5001" in reasons
    assert "row 16 (007_2_3): onset 900 after offset 800" in reasons
    assert "row 17 (007_2_4): unknown expression type" in reasons
    assert any("007_2_3" in m for m in warnings_log)


def test_samm_without_corrections_drops_the_onset_zero_rows_as_softnet(tmp_path: Path) -> None:
    df = read_samm_long(write_samm(tmp_path), corrections=False)
    rows = by_video_onset(df)
    assert ("006_1", 1200) not in rows and ("006_1", 0) not in rows  # onset 0: skipped (frame before frame 1)
    assert ("006_1", 2000) not in rows  # apex -1: skipped
    assert rows[("007_2", 4800)] == (4800, 4900, 5476, "macro")  # no frames folder, nothing clipped
    assert rows[("006_1", 566)] == (566, 648, 743, "micro")  # rounding is not optional


@pytest.mark.parametrize("legend_rows", [0, 9, 13])
def test_samm_header_row_is_found_by_its_names(tmp_path: Path, legend_rows: int) -> None:
    df = read_truth(write_samm(tmp_path, legend_rows=legend_rows))
    assert len(df) == 5  # no frames folder: the intervals after the last frame cannot be told and are kept
    first_skipped = df.attrs["skipped"][0]["row"]  # 007_2_3, the 6th data row
    assert first_skipped == f"SAMM_LongVideos_V2_Release.xlsx sheet FACS_Movement_Only row {legend_rows + 7} (007_2_3)"


def test_read_truth_recognises_every_source(tmp_path: Path) -> None:
    casme = write_casme(tmp_path / "a", name="CAS(ME)^2code_final(Updated).xlsx")
    samm = write_samm(tmp_path / "b")
    renamed = write_casme(tmp_path / "c", name="CASME_sq_gt.xlsx")  # MTSN's copy: recognised by its sheet
    assert set(read_truth(casme)["dataset"]) == {"casme_sq"}
    assert set(read_truth(tmp_path / "a")["dataset"]) == {"casme_sq"}
    assert set(read_truth(samm)["dataset"]) == {"samm_lv"}
    assert set(read_truth(tmp_path / "b")["dataset"]) == {"samm_lv"}
    assert set(read_truth(renamed)["dataset"]) == {"casme_sq"}
    assert set(read_truth(tmp_path / "c")["dataset"]) == {"casme_sq"}
    nested = tmp_path / "root"
    write_samm(nested / "SAMM_LV")
    assert len(read_truth(nested)) == 5  # one level down (no frames: nothing is clipped or skipped for length)
    csv = tmp_path / "t" / "truth.csv"
    csv.parent.mkdir()
    csv.write_text(
        "video,subject,onset,apex,offset,kind,aus,fps,frames\n"
        "15_0101,15,10,12,15,micro,1+2,30,300\n15_0101,15,40,60,90,macro,12,30,300\n15_0101,15,9,8,7,micro,4,30,300\n"
    )
    df = read_truth(csv)
    assert by_video_onset(df) == {("15_0101", 10): (10, 12, 15, "micro"), ("15_0101", 40): (40, 60, 90, "macro")}
    assert set(df["dataset"]) == {"csv"} and len(df.attrs["skipped"]) == 1
    assert len(read_truth(csv.parent)) == 2


def test_bad_sources_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_truth(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"holds no truth\.csv"):
        read_truth(tmp_path / "empty")
    wb = Workbook()
    wb.active.title = "Sheet1"
    wb.save(tmp_path / "other.xlsx")
    with pytest.raises(DataError, match="neither a 'CASFEcode_final' sheet"):
        read_truth(tmp_path / "other.xlsx")
    (tmp_path / "broken.xlsx").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="cannot read annotation workbook"):
        read_truth(tmp_path / "broken.xlsx")
    # a CAS(ME)² workbook without its naming-rule sheets
    wb = Workbook()
    wb.active.title = "CASFEcode_final"
    for row in CASME_ROWS:
        wb.active.append(row)
    wb.save(tmp_path / "norules.xlsx")
    with pytest.raises(DataError, match="has no sheet 'naming rule1'"):
        read_truth(tmp_path / "norules.xlsx")
    # too few columns
    write_casme(tmp_path / "narrow", rows=[[1, "disgust1_1", 1, 2, 3]])
    with pytest.raises(DataError, match="has 5 columns, expected 9"):
        read_truth(tmp_path / "narrow")
    # a SAMM workbook lacking a column
    wb = Workbook()
    ws = wb.active
    ws.title = "FACS_Movement_Only"
    ws.append(["Subject", "Filename", "Onset", "Apex", "Offset"])
    wb.save(tmp_path / "samm_notype.xlsx")
    with pytest.raises(DataError, match="missing column 'Type'"):
        read_truth(tmp_path / "samm_notype.xlsx")
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("video,onset,offset\nv,1,2\n")
    with pytest.raises(DataError, match=r"missing column\(s\) apex, kind"):
        read_truth(bad_csv)
