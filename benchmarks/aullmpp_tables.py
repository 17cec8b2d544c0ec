"""The markdown tables of issue #31's study (benchmarks/aullmpp_study.sh OUT ...) for docs/aullmpp.md.

    python benchmarks/aullmpp_tables.py OUT

Per run: F1 binary, F1 macro with validation-subject thresholds and AUC, each the mean over seeds of the average over
AUs, ± the seeds' standard deviation, [the 95% subject-bootstrap interval of the seed-averaged score], and the
training time summed over folds and seeds (from the run's log). Paired: B − A averaged over AUs with the paired
subject-bootstrap 95% interval and p, from `aullm compare`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# the sibling script (benchmarks/ is first on sys.path when run)
from select_aullmpp import fold_seed_count, training_seconds

METRICS = {"f1_binary": "F1 binary", "f1_macro_val_tuned": "F1 macro val-tuned", "auc": "AUC"}


def run_row(name: str, run: Path) -> str:
    metrics = json.loads((run / "metrics.json").read_text())
    summary = metrics["summary"]
    cells = []
    for metric in METRICS:
        s = summary[metric]["avg"]
        low, high = s["ci95"]
        cells.append(f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f} [{100 * low:.1f}, {100 * high:.1f}]")
    seconds = training_seconds(run.parent / f"{run.name}.log", fold_seed_count(metrics))
    return f"| {name} | " + " | ".join(cells) + f" | {'' if seconds is None else f'{seconds:,.0f} s'} |"


def runs_table(runs: dict[str, Path]) -> list[str]:
    head = "| run | " + " | ".join(METRICS.values()) + " | training (sum over folds and seeds) |"
    lines = [head, "|---|" + "---:|" * (len(METRICS) + 1)]
    return lines + [run_row(name, path) for name, path in runs.items() if (path / "metrics.json").is_file()]


def paired_table(base: Path, others: dict[str, Path]) -> list[str]:
    from aullm import api

    present = {n: p for n, p in others.items() if (p / "metrics.json").is_file()}
    if not (base / "metrics.json").is_file() or not present:
        return []
    frame = api.compare([base, *present.values()]).to_frame()
    frame = frame[frame["au"] == "avg"]
    lines = ["| B − A | " + " | ".join(METRICS.values()) + " |", "|---|" + "---:|" * len(METRICS)]
    for name, path in present.items():
        cells = []
        for metric in METRICS:
            row = frame[(frame["run_b"] == str(path)) & (frame["metric"] == metric)].iloc[0]
            low, high = 100 * row["ci_low"], 100 * row["ci_high"]
            cells.append(f"{100 * row['diff']:+.1f} [{low:+.1f}, {high:+.1f}], p = {row['p']:.2f}")
        lines.append(f"| {name} − {base.name} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    sel, final = args.out / "sel", args.out / "final"
    blocks = [
        ("Selection, SynME default preset", runs_table({c: sel / c for c in ("it_ct", "it_ct_sep", "ct_it")})),
        ("Selection, paired against it_ct", paired_table(sel / "it_ct", {c: sel / c for c in ("it_ct_sep", "ct_it")})),
    ]
    names = ["aullmpp", "au_llm", "au_llm_no_llm", "aullmpp_no_mge_efp", "aullmpp_no_r_augnn", "aullmpp_no_ccr"]
    blocks.append(("Final, the demo's SynME", runs_table({n: final / n for n in names})))
    blocks.append(
        (
            "AULLM++ against AU-LLM and AU-LLM without the LLM",
            paired_table(final / "au_llm", {"aullmpp": final / "aullmpp"}),
        )
    )
    blocks.append(("", paired_table(final / "au_llm_no_llm", {"aullmpp": final / "aullmpp"})))
    blocks.append(("Each part switched off", paired_table(final / "aullmpp", {n: final / n for n in names[3:]})))
    chosen = sel / "selected.json"
    if chosen.is_file():
        picked = json.loads(chosen.read_text())
        blocks.insert(
            1,
            (
                "Selection rule's scores",
                [f"chosen: {picked['chosen']}"]
                + [
                    f"- {n}: score {100 * s['score']:.2f}, training {s['train_seconds'] or 0:,.0f} s"
                    for n, s in picked["scores"].items()
                ],
            ),
        )
    for title, lines in blocks:
        if lines:
            print(f"\n{title}\n" if title else "")
            print("\n".join(lines))


if __name__ == "__main__":
    main()
