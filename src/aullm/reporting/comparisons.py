"""Paired comparisons in words and tables: the `aullm compare` console tables and report.md's section."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from rich.table import Table

from aullm.core.errors import UserError
from aullm.evaluation.metrics import HEADLINE, LABELS, METRICS
from aullm.reporting.markdown import DASH, SHORT, markdown_table


def points(value: Optional[float], signed: bool = False) -> str:
    """A fraction as percent (points for a difference), one decimal."""
    if value is None:
        return DASH
    return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"


def interval(row: dict[str, Any]) -> str:
    if row.get("ci_low") is None:
        return DASH
    return f"[{100 * row['ci_low']:+.1f}, {100 * row['ci_high']:+.1f}]"


def p_text(p: Optional[float]) -> str:
    if p is None:
        return DASH
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def rows_of(pair: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    return [r for r in pair["comparisons"] if r["metric"] == metric]


def verdict_text(row: dict[str, Any], a: str, b: str) -> str:
    verdict = row.get("verdict", "")
    if verdict == "b better":
        return f"{b} better"
    if verdict == "b worse":
        return f"{b} worse"
    return "n.s."


# ------------------------------------------------------------------------------------------------ console


def comparison_tables(pair: dict[str, Any], a_label: str, b_label: str) -> list[Table]:
    """One rich table per metric: rows = AUs and Avg., columns = A, B, B − A, its 95% interval, p, Holm's p."""
    tables = []
    for metric in METRICS:
        rows = rows_of(pair, metric)
        if not rows:
            continue
        table = Table(title=f"{SHORT[metric]}: {b_label} − {a_label} (percentage points, paired subject bootstrap)")
        for column in ("AU", a_label, b_label, "B − A", "95% CI", "p", "p Holm", "verdict"):
            table.add_column(column, justify="left" if column in ("AU", "verdict") else "right")
        for row in rows:
            if row["au"] == "avg":
                table.add_section()
            table.add_row(
                "Avg." if row["au"] == "avg" else row["au"],
                points(row["a"]),
                points(row["b"]),
                points(row["diff"], signed=True),
                interval(row),
                p_text(row["p"]),
                p_text(row["p_holm"]),
                verdict_text(row, a_label, b_label),
                style="bold" if row["au"] == "avg" else None,
            )
        tables.append(table)
    return tables


def print_comparison(result: dict[str, Any]) -> None:
    """Every pair's tables, then what the p-values mean."""
    import sys

    from rich.console import Console
    from rich.text import Text

    console = Console(width=None if sys.stdout.isatty() else 140)
    boot = result["bootstrap"]
    for pair in result["pairs"]:
        a_label, b_label = pair.get("a_name") or pair["a"], pair.get("b_name") or pair["b"]
        if a_label == b_label:
            a_label, b_label = pair["a"], pair["b"]
        console.print(
            Text(
                f"{b_label} ({pair['b']}) vs {a_label} ({pair['a']}): {pair['samples']} samples, "
                f"{pair['subjects']} subjects, seeds {pair['seeds']['a']} vs {pair['seeds']['b']}",
                style="bold",
            )
        )
        for table in comparison_tables(pair, a_label, b_label):
            console.print(table)
        if pair["skipped_metrics"]:
            console.print(
                Text(f"not compared (undefined for a run): {', '.join(pair['skipped_metrics'])}", style="dim")
            )
    console.print(
        Text(
            f"{boot['replicates']} paired subject-level bootstrap replicates (seed {boot['seed']}); p: two-sided, "
            f"from the replicate differences; p Holm: corrected across AUs per metric; verdicts at "
            f"α = {result['alpha']} on p Holm (Avg.: on p).",
            style="dim",
        )
    )


# ------------------------------------------------------------------------------------------------ report.md


def _pair_tables(pair: dict[str, Any], first: str, label: str) -> list[str]:
    """The headline per AU and every convention's average, for one run against the first."""
    headline = rows_of(pair, HEADLINE)
    table = [
        [
            "Avg." if r["au"] == "avg" else r["au"],
            points(r["a"]),
            points(r["b"]),
            f"{points(r['diff'], signed=True)} {interval(r)}",
            p_text(r["p"]),
            p_text(r["p_holm"]),
            verdict_text(r, first, label),
        ]
        for r in headline
    ]
    averages = [
        [
            SHORT[metric],
            points(r["a"]),
            points(r["b"]),
            f"{points(r['diff'], signed=True)} {interval(r)}",
            p_text(r["p"]),
            verdict_text(r, first, label),
        ]
        for metric in METRICS
        for r in rows_of(pair, metric)
        if r["au"] == "avg"
    ]
    lines = [
        f"{LABELS[HEADLINE]}, per AU:",
        "",
        markdown_table(["AU", first, label, "difference [95% CI]", "p", "p (Holm)", "verdict"], table, 1),
        "",
        "Average over AUs, every convention:",
        "",
        markdown_table(["Metric", first, label, "difference [95% CI]", "p", "verdict"], averages, 1),
        "",
    ]
    if pair["skipped_metrics"]:
        lines += [f"Not compared (undefined for a run): {', '.join(pair['skipped_metrics'])}.", ""]
    return lines


def _differences(pair: dict[str, Any], metric: str) -> dict[str, Any]:
    """Per AU and Avg.: (difference, interval low, high) in percentage points, None where undefined."""
    return {
        ("Avg." if r["au"] == "avg" else r["au"]): (
            None if r["diff"] is None else (100 * r["diff"], 100 * r["ci_low"], 100 * r["ci_high"])
        )
        for r in rows_of(pair, metric)
    }


def comparison_section(
    run_dirs: Sequence[Path],
    labels: Sequence[str],
    replicates: int,
    seed: int,
    out: Path,
) -> list[str]:
    """report.md lines: each later run against the first (headline per AU, every convention's Avg.), and one plot
    of the paired differences per metric."""
    from aullm.evaluation.compare import compare_pair, load_run_predictions
    from aullm.reporting import plots

    lines = [f"## Paired comparisons against {labels[0]}", ""]
    if replicates < 1:
        return [*lines, "Not computed: intervals are off for the first run (eval.bootstrap: 0).", ""]
    lines += [
        f"Each run minus {labels[0]}, in percentage points, on the same samples: {replicates} paired subject-level "
        f"bootstrap replicates (seed {seed}) give the 95% interval and a two-sided p; per metric, p (Holm) corrects "
        "across AUs. Verdicts at α = 0.05 on p (Holm) for AUs and on p for the average.",
        "",
    ]
    try:
        first = load_run_predictions(run_dirs[0])
    except UserError as err:
        return [*lines, f"Not computed: {err}.", ""]
    series: dict[str, dict[str, dict[str, Any]]] = {metric: {} for metric in METRICS}
    for run_dir, label in zip(run_dirs[1:], labels[1:]):
        lines += [f"### {label} − {labels[0]}", ""]
        try:
            pair = compare_pair(first, load_run_predictions(run_dir), replicates, seed)
        except UserError as err:
            lines += [f"Not compared: {err}.", ""]
            continue
        lines += _pair_tables(pair, labels[0], label)
        for metric in METRICS:
            if metric not in pair["skipped_metrics"]:
                series[metric][label] = _differences(pair, metric)
    for metric, by_run in series.items():
        if not by_run:
            continue
        name = "comparisons.png" if metric == HEADLINE else f"comparisons_{metric}.png"
        path = plots.plot_differences(
            by_run,
            [*first.aus, "Avg."],
            out / name,
            title=f"{SHORT[metric]}: each run − {labels[0]}\n(95% paired subject-bootstrap interval)",
        )
        lines += [f"![paired differences, {SHORT[metric]}]({path.name})", ""]
    return lines
