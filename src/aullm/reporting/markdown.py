"""Text primitives every report table shares: the metrics' short names, the dash for a missing value, a score as
percent with its spread and interval, and the markdown table writer (kept apart so that report sections and the
terminal tables can use them without importing one another)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SHORT: dict[str, str] = {
    "f1_binary": "F1 binary",
    "f1_macro": "F1 macro",
    "f1_macro_test_tuned": "F1 macro test-tuned (OPTIMISTIC)",
    "f1_macro_val_tuned": "F1 macro val-tuned",
    "auc": "AUC",
}
DASH = "—"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int = 2) -> str:
    """A GitHub-flavoured markdown table: the first `text_columns` left-aligned, numbers right-aligned."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    align = ["---"] * text_columns + ["---:"] * (len(header) - text_columns)
    return "\n".join([line(header), "| " + " | ".join(align) + " |", *(line(r) for r in rows)])


def pct(stat: Any, std: bool = True) -> str:
    """A fraction (or {"mean","std"[, "ci95"]}) as percent with one decimal: '± std' when there are several seeds,
    then the 95% interval when there is one, e.g. `59.8 ± 1.2 [52.1, 66.0]`."""
    if stat is None:
        return DASH
    if isinstance(stat, dict):
        mean, sd, n = stat.get("mean"), stat.get("std"), stat.get("n", 2 if stat.get("std") else 1)
        if mean is None:
            return DASH
        text = f"{100 * mean:.1f}"
        if std and n > 1:
            text += f" ± {100 * (sd or 0.0):.1f}"
        ci = stat.get("ci95")
        return f"{text} [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else text
    return f"{100 * float(stat):.1f}"
