"""Reports: the paper's stored numbers, report.md (paper rows beside ours, trivial rows, conventions), plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from aullm.cli import app
from aullm.reporting import paper, plots
from aullm.reporting.report import write_report
from test_metrics import make_run_dir, random_frame

runner = CliRunner()
CASME2 = ("AU1", "AU2", "AU4", "AU7", "AU12", "AU14", "AU15", "AU17")
SHARED = ("AU2", "AU4", "AU7", "AU12")
PNG = b"\x89PNG\r\n\x1a\n"


def casme2_frame(rng_seed: int = 0, seeds=(1, 2)) -> pd.DataFrame:
    return random_frame(seeds=seeds, folds=5, per_fold=8, aus=CASME2, prevalence=(0.3,) * 8, rng_seed=rng_seed)


def shared_frame(rng_seed: int = 0, folds: int = 4) -> pd.DataFrame:
    return random_frame(seeds=(1,), folds=folds, per_fold=8, aus=SHARED, prevalence=(0.3,) * 4, rng_seed=rng_seed)


def is_png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG


# -------------------------------------------------------------------------------------------------- paper data


@pytest.mark.parametrize("table", paper.PER_AU_TABLES, ids=lambda t: t.id)
def test_paper_rows_average_to_their_printed_avg(table):
    for row in table.rows:
        assert list(row.values) == table.aus
        values = [v for v in row.values.values() if v is not None]
        if len(values) == len(table.aus):  # rows with an illegible cell cannot be checked
            assert abs(np.mean(values) - row.avg) <= 0.1, row.method


def test_table3_all_row_equals_tables_1_and_2():
    for dataset, table in (("casme2", paper.TABLE1), ("samm", paper.TABLE2)):
        for llm in paper.ABLATION_LLMS:
            row = next(r for r in table.rows if r.key == f"au_llm:{llm}")
            assert paper.TABLE3[dataset]["all"][llm] == row.avg
    assert paper.TABLE1.rows[-3].method == "AU-DeepSeek R1(1.5B)" and paper.TABLE1.rows[-3].avg == 81.4
    assert paper.TABLE4_C2S.rows[-1].avg == 49.9 and paper.TABLE4_S2C.rows[-1].avg == 52.8


def test_paper_table_choice_and_row_matching():
    assert paper.paper_table_for("casme2", "loso") is paper.TABLE1
    assert paper.paper_table_for("samm", "loso") is paper.TABLE2
    assert paper.paper_table_for("casme2", "cross_domain", "samm") is paper.TABLE4_C2S
    assert paper.paper_table_for("samm", "cross_domain", "casme2") is paper.TABLE4_S2C
    assert paper.paper_table_for("synme", "loso") is None
    assert paper.matching_row(paper.TABLE1, "au_llm", "Qwen/Qwen2.5-1.5B").method == "AU-Qwen2.5(1.5B)"
    assert paper.matching_row(paper.TABLE1, "sssnet_led", "smollm2-135m").method == "SSSNet LED"
    assert paper.matching_row(paper.TABLE1, "au_llm", "qwen2-1.5b", variant="f_mid") is None
    assert paper.matching_row(paper.TABLE4_C2S, "au_llm", "smollm2-135m").method == "AU-LLM (Ours)"


# ------------------------------------------------------------------------------------------------------ report


def test_report_has_paper_rows_our_rows_trivial_rows_and_plots(tmp_path):
    run_a = make_run_dir(
        tmp_path / "a",
        casme2_frame(0),
        random_frame(seeds=(1, 2), folds=5, per_fold=4, aus=CASME2, prevalence=(0.3,) * 8, rng_seed=9),
        name="casme2_qwen2",
        llm="qwen2-1.5b",
    )
    run_b = make_run_dir(tmp_path / "b", casme2_frame(0), name="casme2_sssnet", model="sssnet_led")
    out = tmp_path / "report"
    result = runner.invoke(app, ["report", str(run_a), str(run_b), "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = (out / "report.md").read_text()
    # the paper's Table 1 rows, with their numbers, in the paper's column layout
    assert "| Method | Source | AU1 | AU2 | AU4 | AU7 | AU12 | AU14 | AU15 | AU17 | Avg. |" in text
    assert (
        "| SSSNet LED | paper T1 ↔ casme2_sssnet | 92.6 | 83.7 | 88.6 | 63.7 | 76.6 | 74.4 | 71.5 | 76.1 | 78.4 |"
        in text
    )
    assert "| AU-Qwen2(1.5B) | paper T1 ↔ casme2_qwen2 |" in text and "| LBPTOP | paper T1 |" in text
    # our rows, in percent with one decimal, ± std over the two seeds, then the 95% subject-bootstrap interval
    metrics = json.loads((run_a / "metrics.json").read_text())
    mean = 100 * metrics["summary"]["f1_macro"]["avg"]["mean"]
    std = 100 * metrics["summary"]["f1_macro"]["avg"]["std"]
    low, high = (100 * v for v in metrics["summary"]["f1_macro"]["avg"]["ci95"])
    row = next(line for line in text.splitlines() if line.startswith("| casme2_qwen2 | ours (2 seeds) |"))
    assert row.rstrip(" |").endswith(f"{mean:.1f} ± {std:.1f} [{low:.1f}, {high:.1f}]")
    assert "| casme2_sssnet | ours (2 seeds) |" in text
    # trivial rows shown once (same labels), every convention, optimistic labelled
    assert text.count("| trivial: all negative | chance |") == 5
    assert "trivial: per-AU prior (expected)" in text and "trivial: all positive" in text
    assert "#### F1 macro, thresholds tuned on TEST (OPTIMISTIC)" in text and "**Optimistic:**" in text
    assert "#### F1 macro, thresholds tuned on held-out training subjects" in text
    assert "arXiv 2507.21778" in text
    for name in (
        "casme2_loso_per_au.png",
        "casme2_loso_conventions.png",
        "loss_casme2_qwen2.png",
        "loss_casme2_sssnet.png",
    ):
        assert f"]({name})" in text and is_png(out / name), name


def test_report_defaults_to_the_first_run_dir_and_works_without_logs(tmp_path):
    run = make_run_dir(tmp_path / "run", casme2_frame(seeds=(1,)), logs=False)
    path = write_report([run])
    assert path == run / "report.md"
    text = path.read_text()
    assert "No train_log.csv found" in text and "Not available: the runs have no val_predictions.csv" in text


def test_samm_cross_domain_and_synme_pick_their_tables(tmp_path):
    samm = make_run_dir(
        tmp_path / "samm", shared_frame(1), name="samm_ds", dataset="samm", llm="deepseek-r1-distill-qwen-1.5b"
    )
    c2s = make_run_dir(
        tmp_path / "c2s",
        shared_frame(2, folds=1).assign(fold="casme2_to_samm"),
        name="c2s",
        dataset="casme2",
        protocol="cross_domain",
        target="samm",
    )
    synme = make_run_dir(tmp_path / "synme", casme2_frame(3), name="demo", dataset="synme", llm="smollm2-135m")
    out = tmp_path / "out"
    write_report([samm, c2s, synme], out)
    text = (out / "report.md").read_text()
    assert "| AU-DeepSeek R1(1.5B) | paper T2 ↔ samm_ds | 66.9 | 71.9 | 55.8 | 52.8 | 61.9 |" in text
    assert "## CASME II → SAMM (cross-domain)" in text
    assert "| AU-LLM (Ours) | paper T4 (left half) ↔ c2s | 47.0 | 62.4 | 41.5 | 48.8 | 49.9 |" in text
    assert "| LED SSSNet | paper T4 (left half) |" in text
    assert "no published numbers for SynME" in text and "| demo | ours (2 seeds) |" in text
    c2s_metrics = json.loads((c2s / "metrics.json").read_text())
    assert c2s_metrics["prior_source"] == ["test_labels"]
    for prefix in ("samm_loso", "casme2_cross_domain_samm", "synme_loso"):
        assert is_png(out / f"{prefix}_per_au.png"), prefix


def test_ablation_runs_get_table3_layout_and_fig2_chart(tmp_path):
    runs = [
        make_run_dir(
            tmp_path / v,
            casme2_frame(i, seeds=(1,)),
            name=f"abl_{v}",
            variant=v,
            llm="deepseek-r1-distill-qwen-1.5b",
            logs=False,
        )
        for i, v in enumerate(("all", "f_high", "f_mid", "efp_linear", "prompt_learning"))
    ]
    out = tmp_path / "out"
    write_report(runs, out)
    text = (out / "report.md").read_text()
    assert "layout of the paper's Table 3" in text
    assert "| Variant | paper D.R1 | paper Q2 | paper Q2.5 | ours D.R1 |" in text
    metrics = json.loads((tmp_path / "f_mid" / "metrics.json").read_text())
    ours = 100 * metrics["summary"]["f1_macro"]["avg"]["mean"]
    low, high = (100 * v for v in metrics["summary"]["f1_macro"]["avg"]["ci95"])
    assert f"| F_mid | 79.3 | 78.7 | 78.7 | {ours:.1f} [{low:.1f}, {high:.1f}] |" in text
    assert is_png(out / "casme2_loso_ablation.png")
    # only the 'all' variant reproduces the Table 1 row
    assert "| AU-DeepSeek R1(1.5B) | paper T1 ↔ abl_all |" in text


def test_llm_ablation_runs_reproduce_no_published_row_and_stay_out_of_the_table3_grid(tmp_path):
    def ablated(name: str, i: int, edit: tuple[str, str]) -> Path:
        run = make_run_dir(
            tmp_path / name, casme2_frame(i, seeds=(1,)), name=name, llm="deepseek-r1-distill-qwen-1.5b", logs=False
        )
        config = run / "config.yaml"
        assert edit[0] in config.read_text()
        config.write_text(config.read_text().replace(*edit))
        return run

    runs = [
        make_run_dir(tmp_path / "all", casme2_frame(0, seeds=(1,)), name="pre", llm="deepseek-r1-distill-qwen-1.5b"),
        make_run_dir(tmp_path / "f_mid", casme2_frame(1, seeds=(1,)), name="fmid", variant="f_mid", logs=False),
        ablated("rnd", 2, ("init: pretrained", "init: random")),
        ablated("nollm", 3, ("reasoner: llm", "reasoner: none")),
    ]
    write_report(runs, tmp_path / "out")
    text = (tmp_path / "out" / "report.md").read_text()
    assert "| AU-DeepSeek R1(1.5B) | paper T1 ↔ pre |" in text  # only the pretrained run reproduces the row
    assert "au_llm (LLM randomly initialised)" in text and "au_llm (no LLM)" in text
    assert "several runs for all" not in text  # the ablations do not compete for the Table 3 'all' cell
    assert "### rnd − pre" in text and "### nollm − pre" in text


def test_report_of_missing_run_is_exit_2(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "run directory not found" in result.output


# ------------------------------------------------------------------------------------------------------- plots


def test_plot_functions_write_png_files(tmp_path):
    aus = ["AU1", "AU2"]
    series = {
        "run": {"AU1": (70.0, 2.0), "AU2": (60.0, 0.0), "Avg.": (65.0, 1.0)},
        "paper": {"AU1": 80.0, "AU2": None, "Avg.": 80.0},
    }
    assert is_png(plots.plot_per_au(series, aus, tmp_path / "bars.png", "title", hatched=["paper"]))
    panels = {"paper": {"Q2": {"all": 78.8, "F_high": 79.8}}, "ours": {"tiny": {"all": (50.0, 3.0)}}}
    assert is_png(plots.plot_ablation(panels, ["F_high", "all"], tmp_path / "sub" / "ablation.png"))
    conv = {"run": {"f1_macro": (60.0, 1.0), "auc": (70.0, 0.0)}}
    assert is_png(plots.plot_conventions(conv, {"f1_macro": "F1 macro", "auc": "AUC"}, tmp_path / "conv.png"))
    logs = pd.DataFrame(
        {"seed": [1] * 6, "epoch": [1, 2, 3] * 2, "loss": [3.0, 2.0, 1.0, 2.5, 1.5, 0.5], "fold": ["a"] * 3 + ["b"] * 3}
    )
    assert is_png(plots.plot_loss_curves(logs, tmp_path / "loss.png"))
    assert plots.plot_loss_curves(logs.iloc[:0], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_read_train_logs_collects_every_fold(tmp_path):
    run = make_run_dir(tmp_path / "run", casme2_frame(seeds=(1, 2)))
    logs = plots.read_train_logs(run)
    assert set(logs["fold"]) == {f"{f:02d}" for f in range(5)} and set(logs["seed"]) == {1, 2}
    assert len(logs) == 5 * 2 * 10


def test_percent_cells():
    from aullm.reporting.markdown import pct

    assert pct({"mean": 0.5, "std": 0.0, "n": 2}) == "50.0 ± 0.0"  # several seeds: std always shown
    assert pct({"mean": 0.81449, "std": 0.0, "n": 1}) == "81.4"
    assert pct({"mean": None, "std": None, "n": 0}) == "—" and pct(None) == "—"
    assert pct(0.123) == "12.3"


def test_reconstructed_models_are_labelled_in_metrics_table_and_notes(tmp_path):
    """AULLM++ has no public code: its rows must never read as the published model's numbers."""
    plain = make_run_dir(
        tmp_path / "aullm",
        casme2_frame(4, seeds=(1,)),
        name="synme_aullm",
        dataset="synme",
        llm="smollm2-135m",
        logs=False,
    )
    rebuilt = make_run_dir(
        tmp_path / "aullmpp",
        casme2_frame(5, seeds=(1,)),
        name="synme_aullmpp",
        dataset="synme",
        llm="smollm2-135m",
        model="aullmpp",
        logs=False,
    )
    out = tmp_path / "out"
    write_report([plain, rebuilt], out)
    text = (out / "report.md").read_text()
    assert "| synme_aullmpp | ours, reconstruction (1 seed) |" in text
    assert "| synme_aullm | ours (1 seed) |" in text
    assert "aullmpp — reconstruction" in text and "au_llm — reconstruction" not in text
    assert "- reconstruction (synme_aullmpp): AULLM++ here is our reconstruction" in text
    metrics = json.loads((rebuilt / "metrics.json").read_text())
    assert metrics["run"]["reconstruction"] is True and "reconstruction" in metrics["notes"]
    assert json.loads((plain / "metrics.json").read_text())["run"]["reconstruction"] is False
