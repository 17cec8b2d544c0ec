"""Text primitives every report table shares: the metrics' short names, the dash for a missing value, and the
markdown table writer (kept apart so that report sections can use them without importing one another)."""

from __future__ import annotations

from collections.abc import Sequence

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
