"""Pick AULLM++'s default design from candidate runs on SynME's DEFAULT preset, by a rule fixed before any result.

Rule (docs/aullmpp.md, Choosing the default): score = (AUC + F1 macro with validation-subject thresholds) / 2,
each the average over AUs and the mean over the run's seeds (metrics.json `summary.<metric>.avg.mean`). The highest
score wins; a candidate within 0.5 points (0.005) of the best that trains at least 10% faster wins instead (the
cheaper of near-equals). Only these runs are read: never the demo data's.

    python benchmarks/select_aullmpp.py --out sel/selected.json NAME=RUN_DIR[:LOG] ...
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any, Optional

TIE = 0.005
FASTER = 0.90


def training_seconds(log: Optional[Path], tasks: Optional[int] = None) -> Optional[float]:
    """Sum of the fold trainings' times from a run's log ("fold F seed S: trained N clips in Xs"), the last time of
    each fold-seed (a fold interrupted and trained again counts once). A log that holds fewer than the run's `tasks`
    fold-seeds (a resumed run whose earlier log was lost) gives the mean of those logged × `tasks`, an estimate."""
    if log is None or not log.is_file():
        return None
    pattern = r"fold (\S+) seed (\d+): trained \d+ clips in ([0-9.]+)s"
    times = {(m.group(1), m.group(2)): float(m.group(3)) for m in re.finditer(pattern, log.read_text())}
    if not times:
        return None
    total = sum(times.values())
    return total / len(times) * tasks if tasks and len(times) < tasks else total


def fold_seed_count(metrics: dict[str, Any]) -> int:
    """How many fold trainings a finished run holds (folds × seeds), from its metrics.json's content."""
    return len(metrics["folds"]) * len(metrics["seeds"])


def score_run(run: Path, log: Optional[Path]) -> dict[str, Any]:
    metrics = json.loads((run / "metrics.json").read_text())
    summary = metrics["summary"]
    auc = summary["auc"]["avg"]["mean"]
    f1_val = summary["f1_macro_val_tuned"]["avg"]["mean"]
    return {
        "run": str(run),
        "auc": auc,
        "f1_macro_val_tuned": f1_val,
        "f1_binary": summary["f1_binary"]["avg"]["mean"],
        "score": (auc + f1_val) / 2,
        "train_seconds": training_seconds(log, fold_seed_count(metrics)),
    }


def choose(scores: dict[str, dict[str, Any]]) -> str:
    best = max(scores, key=lambda n: scores[n]["score"])
    near = [n for n in scores if n != best and scores[best]["score"] - scores[n]["score"] <= TIE]
    base_time = scores[best]["train_seconds"]
    cheaper = [
        n for n in near if base_time and scores[n]["train_seconds"] and scores[n]["train_seconds"] <= FASTER * base_time
    ]
    return min(cheaper, key=lambda n: scores[n]["train_seconds"]) if cheaper else best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("candidates", nargs="+", help="NAME=RUN_DIR[:LOG]")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    scores = {}
    for item in args.candidates:
        name, _, rest = item.partition("=")
        run, _, log = rest.partition(":")
        scores[name] = score_run(Path(run), Path(log) if log else None)
    chosen = choose(scores)
    result = {"rule": __doc__.split("\n\n")[1], "scores": scores, "chosen": chosen}
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(chosen)


if __name__ == "__main__":
    main()
