"""`aullm spot-eval PRED.csv --truth SHEET_OR_FOLDER`: the MEGC spotting evaluation (docs/cli.md, Spotting)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from aullm.commands.options import JsonOption


def _number(value: Optional[float], digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _interval(ci: Optional[list[float]]) -> str:
    return "–" if ci is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def print_result(result: dict[str, Any]) -> None:
    """The three rows (micro, macro, overall) as a table, then the videos the truth does not have."""
    from rich.console import Console
    from rich.table import Table

    subjects = result["subjects"]
    videos = sum(v["known"] for v in result["videos"])
    table = Table(
        title=f"Spotting (MEGC: IoU ≥ {result['iou']}, {subjects} subject{'s' * (subjects != 1)}, "
        f"{videos} video{'s' * (videos != 1)})"
    )
    for column in ("kind", "TP", "FP", "FN", "precision", "recall", "F1", "F1 95% CI"):
        table.add_column(column, justify="left" if column == "kind" else "right")
    for kind in ("micro", "macro", "overall"):
        row = result[kind]
        table.add_row(
            kind,
            str(row["tp"]),
            str(row["fp"]),
            str(row["fn"]),
            _number(row["precision"]),
            _number(row["recall"]),
            _number(row["f1"]),
            _interval(row["ci95"]),
        )
    console = Console()
    console.print(table)
    if result["unknown_videos"]:
        console.print(f"predictions for videos not in the truth (all false positives): {result['unknown_videos']}")


def spot_eval(
    predicted: Path = typer.Argument(
        ..., help="Predicted intervals: spots.csv written by `aullm spot`, or the folder it wrote."
    ),
    truth: Path = typer.Option(
        ...,
        "--truth",
        help="Ground truth: a CAS(ME)² or SAMM Long Videos workbook, a truth.csv, a SynME long folder "
        "(`aullm synth --long`), or a dataset root holding one.",
    ),
    json_out: bool = JsonOption,
    iou: float = typer.Option(0.5, "--iou", help="IoU a prediction needs with a truth to find it (MEGC: 0.5)."),
    bootstrap: int = typer.Option(
        2000, "--bootstrap", min=0, help="Subject-bootstrap replicates behind each F1's interval (0: none)."
    ),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
) -> None:
    """Score spotted intervals the MEGC way: a truth interval is found when a predicted interval of the same kind
    in the same video has IoU ≥ 0.5 with it (each prediction matched once); precision, recall and F1 over the
    whole set for micro, macro and overall, with subject-bootstrap 95% intervals."""
    import json

    from aullm import api

    result = api.spot_eval(predicted, truth, iou=iou, bootstrap=bootstrap, seed=seed)
    if json_out:
        typer.echo(json.dumps(result, indent=2))
        return
    print_result(result)


def register(app: typer.Typer) -> None:
    app.command("spot-eval")(spot_eval)
