"""The per-AU table under every convention that `aullm evaluate` and `aullm train` print, with the trivial rows and
the notes that qualify them."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from aullm.evaluation.metrics import METRICS
from aullm.evaluation.trivial import TRIVIAL, TRIVIAL_LABELS
from aullm.reporting.markdown import DASH, SHORT, pct


def metrics_table(metrics: dict[str, Any]) -> Table:
    """Per-AU table of every convention for `aullm evaluate` (mean ± std over seeds, percent)."""
    run = metrics.get("run", {})
    seeds = metrics.get("seeds", [])
    table = Table(
        title=f"{run.get('name', 'run')}: {len(seeds)} seed(s), {len(metrics.get('folds', []))} fold(s), "
        f"{metrics.get('samples')} samples, threshold {metrics.get('threshold')}"
        + (", mean ± std over seeds" if len(seeds) > 1 else "")
        + (", [95% interval] below" if (metrics.get("bootstrap") or {}).get("replicates") else "")
    )
    table.add_column("AU")
    table.add_column("pos/n", justify="right")
    for metric in METRICS:
        table.add_column(SHORT[metric].replace(" (OPTIMISTIC)", "\n(OPTIMISTIC)"), justify="right")
    n = metrics.get("samples")
    summary = metrics["summary"]
    for au in metrics["aus"]:
        cells = [
            _two_line_pct((summary.get(m) or {}).get("per_au", {}).get(au)) if summary.get(m) else DASH for m in METRICS
        ]
        table.add_row(au, f"{metrics['positives'][au]}/{n}", *cells)
    table.add_section()
    table.add_row(
        "Avg.", "", *[_two_line_pct(summary[m]["avg"]) if summary.get(m) else DASH for m in METRICS], style="bold"
    )
    return table


def _two_line_pct(stat: Any) -> str:
    """`pct` with the interval on its own line, so terminal columns stay narrow."""
    text = pct(stat)
    return text.replace(" [", "\n[", 1)


def trivial_table(metrics: dict[str, Any]) -> Table:
    """Average over AUs of each trivial predictor under every convention: what chance looks like."""
    table = Table(title="Trivial reference rows (same labels), Avg. over AUs")
    table.add_column("predictor")
    for metric in METRICS:
        table.add_column(SHORT[metric].replace(" (OPTIMISTIC)", "\n(OPTIMISTIC)"), justify="right")
    for name in TRIVIAL:
        entry = metrics["trivial"][name]
        table.add_row(
            TRIVIAL_LABELS[name], *[pct(entry[m]["avg"], std=False) if entry.get(m) else DASH for m in METRICS]
        )
    return table


def print_run_summary(metrics: dict[str, Any]) -> None:
    """Per-AU table under every convention, the trivial rows, and the notes that qualify them."""
    import sys

    from rich.console import Console
    from rich.text import Text

    console = Console(width=None if sys.stdout.isatty() else 120)
    console.print(metrics_table(metrics))
    console.print(trivial_table(metrics))
    for name, text in metrics["notes"].items():
        if name in (
            "f1_macro_test_tuned",
            "f1_macro_val_tuned",
            "prior",
            "incomplete",
            "single_class_aus",
            "intervals",
        ):
            console.print(Text(f"{name}: {text}", style="dim"))
