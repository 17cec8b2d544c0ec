"""The MEGC spotting evaluation (aullm.spot_eval, `aullm spot-eval`) against hand-computed cases."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import aullm
from aullm.core.errors import DataError, UserError
from aullm.evaluation.spotting import interval_iou, match_intervals, match_video, spot_eval

COLUMNS = ["video", "onset", "apex", "offset", "duration_s", "score", "kind"]


def truth(*rows: tuple[str, int, int, str]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"video": v, "subject": v.split("_")[0], "onset": s, "apex": s, "offset": e, "kind": k} for v, s, e, k in rows]
    )


def preds(*rows: tuple[str, int, int, str]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"video": v, "onset": s, "apex": s, "offset": e, "duration_s": 0.0, "score": 1.0, "kind": k}
            for v, s, e, k in rows
        ],
        columns=COLUMNS,
    )


def counts(result: dict, kind: str) -> tuple[int, int, int]:
    return result[kind]["tp"], result[kind]["fp"], result[kind]["fn"]


def test_iou_uses_inclusive_frame_counts() -> None:
    assert interval_iou(10, 19, 10, 19) == 1.0
    assert interval_iou(0, 9, 5, 14) == pytest.approx(5 / 15)  # inter 5, union 10 + 10 - 5
    assert interval_iou(0, 9, 10, 19) == 0.0
    assert interval_iou(0, 0, 0, 0) == 1.0


def test_exact_match() -> None:
    r = spot_eval(preds(("15_0101", 100, 110, "micro")), truth(("15_0101", 100, 110, "micro")), bootstrap=0)
    assert counts(r, "micro") == (1, 0, 0) and r["micro"]["f1"] == 1.0 and r["micro"]["precision"] == 1.0
    assert counts(r, "macro") == (0, 0, 0) and r["macro"]["f1"] is None
    assert counts(r, "overall") == (1, 0, 0) and r["overall"]["f1"] == 1.0
    assert r["micro"]["ci95"] is None


def test_iou_just_below_and_just_above_one_half() -> None:
    t = truth(("v_1", 0, 9, "micro"))  # 10 frames
    # [5, 14]: inter 5, union 15 -> 0.333; [3, 12]: inter 7, union 13 -> 0.538; [0, 19]: inter 10, union 20 -> 0.5
    # [4, 13]: inter 6, union 14 -> 0.4286; [0, 20]: inter 10, union 21 -> 0.476
    assert counts(spot_eval(preds(("v_1", 0, 20, "micro")), t, bootstrap=0), "micro") == (0, 1, 1)
    assert counts(spot_eval(preds(("v_1", 0, 19, "micro")), t, bootstrap=0), "micro") == (1, 0, 0)  # exactly 0.5
    assert counts(spot_eval(preds(("v_1", 3, 12, "micro")), t, bootstrap=0), "micro") == (1, 0, 0)
    assert counts(spot_eval(preds(("v_1", 4, 13, "micro")), t, bootstrap=0), "micro") == (0, 1, 1)
    # a stricter threshold
    assert counts(spot_eval(preds(("v_1", 3, 12, "micro")), t, iou=0.6, bootstrap=0), "micro") == (0, 1, 1)


def test_two_predictions_on_one_truth_give_one_tp_one_fp() -> None:
    r = spot_eval(preds(("v_1", 0, 9, "micro"), ("v_1", 1, 10, "micro")), truth(("v_1", 0, 9, "micro")), bootstrap=0)
    assert counts(r, "micro") == (1, 1, 0)
    assert r["micro"]["precision"] == 0.5 and r["micro"]["recall"] == 1.0 and r["micro"]["f1"] == pytest.approx(2 / 3)


def test_matching_is_maximum_whatever_the_order() -> None:
    # P1 overlaps both truths, P2 only the first: a greedy first-come matching gives P1->T1 and leaves T2 unfound;
    # the maximum matching is P2->T1, P1->T2.
    t = [(0, 9), (4, 13)]
    p = [(2, 11), (0, 9)]
    assert sorted((a, b) for a, b, _ in match_intervals(t, p)) == [(0, 1), (1, 0)]
    r = spot_eval(
        preds(("v_1", 2, 11, "macro"), ("v_1", 0, 9, "macro")),
        truth(("v_1", 0, 9, "macro"), ("v_1", 4, 13, "macro")),
        bootstrap=0,
    )
    assert counts(r, "macro") == (2, 0, 0)


def test_empty_predictions() -> None:
    r = spot_eval(preds(), truth(("v_1", 0, 9, "micro"), ("v_2", 5, 60, "macro")), bootstrap=0)
    assert counts(r, "micro") == (0, 0, 1) and counts(r, "macro") == (0, 0, 1) and counts(r, "overall") == (0, 0, 2)
    assert r["overall"]["precision"] is None and r["overall"]["recall"] == 0.0 and r["overall"]["f1"] == 0.0
    assert [v["video"] for v in r["videos"]] == ["v_1", "v_2"]


def test_a_micro_prediction_on_a_macro_truth_finds_nothing() -> None:
    r = spot_eval(preds(("v_1", 0, 30, "micro")), truth(("v_1", 0, 30, "macro")), bootstrap=0)
    assert counts(r, "micro") == (0, 1, 0) and counts(r, "macro") == (0, 0, 1) and counts(r, "overall") == (0, 1, 1)


def test_a_prediction_for_an_unknown_video_is_a_false_positive(warnings_log: list[str]) -> None:
    r = spot_eval(
        preds(("15_0101disgustingteeth", 0, 9, "micro"), ("99_0101", 0, 9, "micro")),
        truth(("15_0101", 0, 9, "micro")),
        bootstrap=0,
    )
    assert counts(r, "micro") == (1, 1, 0)
    assert r["unknown_videos"] == ["99_0101"]
    assert any("99_0101" in m and "false positives" in m for m in warnings_log)
    assert {v["video"]: v["known"] for v in r["videos"]} == {"15_0101": True, "99_0101": False}


def test_video_names_match_by_key_prefix() -> None:
    keys = ["15_0101", "006_1", "006_10"]
    assert match_video("15_0101disgustingteeth", keys) == "15_0101"
    assert match_video("15_0101.mp4", keys) == "15_0101"
    assert match_video("rawpic/s15/15_0101disgustingteeth", keys) == "15_0101"
    assert match_video("006_10", keys) == "006_10" and match_video("006_1", keys) == "006_1"
    assert match_video("006_11", keys) is None and match_video("15_01012", keys) is None


def test_sums_over_the_set_not_averages_per_video_and_per_video_counts() -> None:
    t = truth(("1_a", 0, 9, "micro"), ("1_a", 50, 59, "micro"), ("2_b", 0, 9, "micro"), ("2_b", 100, 200, "macro"))
    p = preds(("1_a", 0, 9, "micro"), ("1_a", 50, 59, "micro"), ("2_b", 300, 310, "micro"), ("2_b", 100, 190, "macro"))
    r = spot_eval(p, t, bootstrap=0)
    assert counts(r, "micro") == (2, 1, 1) and counts(r, "macro") == (1, 0, 0) and counts(r, "overall") == (3, 1, 1)
    assert r["micro"]["f1"] == pytest.approx(4 / 6)  # per-video averaging would give (1 + 0) / 2
    videos = {v["video"]: v for v in r["videos"]}
    assert videos["1_a"]["micro"] == {"tp": 2, "fp": 0, "fn": 0}
    assert videos["2_b"]["micro"] == {"tp": 0, "fp": 1, "fn": 1} and videos["2_b"]["macro"]["tp"] == 1


def test_bootstrap_interval_contains_the_estimate_and_is_reproducible() -> None:
    rows_t, rows_p = [], []
    for s in range(8):
        v = f"{s + 1}_0101"
        for j in range(4):
            rows_t.append((v, 100 * j, 100 * j + 9, "micro"))
            if (s + j) % 3:  # found
                rows_p.append((v, 100 * j, 100 * j + 9, "micro"))
        rows_p.append((v, 1000, 1009, "micro"))  # one false positive per video
    a = spot_eval(preds(*rows_p), truth(*rows_t), bootstrap=500, seed=3)
    b = spot_eval(preds(*rows_p), truth(*rows_t), bootstrap=500, seed=3)
    low, high = a["micro"]["ci95"]
    assert low <= a["micro"]["f1"] <= high and low < high
    assert a["micro"]["ci95"] == b["micro"]["ci95"] and a["overall"]["ci95"] == a["micro"]["ci95"]
    assert a["macro"]["ci95"] is None  # no macro at all: F1 undefined in every replicate
    assert spot_eval(preds(*rows_p), truth(*rows_t), bootstrap=0)["micro"]["ci95"] is None


def test_bad_predictions_are_one_clear_error(tmp_path: Path) -> None:
    t = truth(("v_1", 0, 9, "micro"))
    with pytest.raises(DataError, match="missing column"):
        spot_eval(pd.DataFrame({"video": ["v_1"], "onset": [0]}), t)
    with pytest.raises(DataError, match="row 2: onset 12 after offset 9"):
        spot_eval(preds(("v_1", 12, 9, "micro")), t)
    with pytest.raises(DataError, match="negative frame number, onset -3"):
        spot_eval(preds(("v_1", -3, 9, "micro")), t)
    with pytest.raises(DataError, match="kind 'blink' is neither micro nor macro"):
        spot_eval(preds(("v_1", 0, 9, "blink")), t)
    with pytest.raises(UserError, match=r"iou=1\.5 must be in"):
        spot_eval(preds(), t, iou=1.5)
    bad = tmp_path / "bad.csv"
    bad.write_text("video,onset,offset,kind\nv_1,a,9,micro\n")
    with pytest.raises(DataError, match="onset 'a' is not a whole frame number"):
        spot_eval(bad, t)
    with pytest.raises(DataError, match="does not exist"):
        spot_eval(tmp_path / "nope.csv", t)


def test_files_the_api_and_the_command(tmp_path: Path) -> None:
    from aullm.cli import app

    (tmp_path / "truth").mkdir()
    (tmp_path / "truth" / "truth.csv").write_text(
        "video,subject,onset,apex,offset,kind,aus,fps,frames\n"
        "15_0101,15,10,12,15,micro,1+2,30,300\n15_0101,15,40,60,90,macro,12,30,300\n"
        "16_0101,16,20,25,30,micro,4,30,300\n"
    )
    spots = tmp_path / "spots.csv"
    preds(("15_0101", 10, 15, "micro"), ("15_0101", 40, 80, "macro"), ("16_0101", 200, 210, "micro")).to_csv(
        spots, index=False
    )
    r = aullm.spot_eval(spots, tmp_path / "truth", bootstrap=200)
    assert counts(r, "micro") == (1, 1, 1) and counts(r, "macro") == (1, 0, 0)
    # the folder `aullm spot --out` wrote is read as its spots.csv; a folder without one is named as such
    assert counts(aullm.spot_eval(tmp_path, tmp_path / "truth", bootstrap=0), "micro") == (1, 1, 1)
    with pytest.raises(DataError, match=r"is a folder without spots\.csv"):
        aullm.spot_eval(tmp_path / "truth", tmp_path / "truth", bootstrap=0)
    result = CliRunner().invoke(app, ["spot-eval", str(spots), "--truth", str(tmp_path / "truth"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) >= {"micro", "macro", "overall", "videos"}
    assert set(data["micro"]) == {"tp", "fp", "fn", "precision", "recall", "f1", "ci95"}
    assert data["overall"]["tp"] == 2 and data["overall"]["f1"] == pytest.approx(4 / 6)
    table = CliRunner().invoke(app, ["spot-eval", str(spots), "--truth", str(tmp_path / "truth"), "--iou", "0.9"])
    assert table.exit_code == 0 and "overall" in table.output and "micro" in table.output
    bad = CliRunner().invoke(app, ["spot-eval", str(spots), "--truth", str(tmp_path / "nothing")])
    assert bad.exit_code == 2 and "--truth" in bad.output and "does not exist" in bad.output
    helped = CliRunner().invoke(app, ["spot-eval", "--help"])
    assert helped.exit_code == 0 and "--truth" in helped.output
