"""What spotting costs the AU decisions: on SynME long videos (known expressions and AUs), the AU F1 of
`predict`'s events (spot, then the AU model on each interval) beside the same model given the true intervals (the
oracle), over the true expressions (a missed expression counts as all-negative; `aullm.evaluation.events`).

    .venv/bin/python benchmarks/bench_events.py --bundle /work/baseline/demo/bundle --data data/synme_long_eval
    .venv/bin/python benchmarks/bench_events.py --bundle runs/demo --videos 10 --seconds 60 --seed 200

The data folder is generated (`aullm synth --long`) when it holds no truth.csv. Not run by the test suite (a
short version is, tests/test_video_events.py). Prints a markdown table; `--json` writes every number.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

from aullm.core.memory import keep_freed_memory


def evaluate(
    bundle: Path, data: Path, device: str = "cpu", crop: str | None = None, tables: Path | None = None
) -> dict:
    """Events and oracle tables of every video of `data`, and their scores (micro, and all expressions); the two
    tables are written into `tables` (events.csv, oracle.csv) when given, to see which expression went wrong."""
    import aullm
    from aullm.data.stream import stream_sources
    from aullm.evaluation.events import score_events
    from aullm.inference.events import interval_events

    detector = aullm.Detector.load(bundle, device=device)
    truth = pd.read_csv(data / "truth.csv", dtype={"video": str, "aus": str}, keep_default_na=False)
    events, oracle, seconds = [], [], {"events": 0.0, "oracle": 0.0}
    for video in stream_sources([data / "videos"]):
        start = time.perf_counter()
        events.append(detector.video_events(video, crop=crop).table)  # type: ignore[arg-type]
        seconds["events"] += time.perf_counter() - start
        start = time.perf_counter()
        mine = truth[truth["video"] == video.stem]
        oracle.append(interval_events(detector.bundle, video, mine, face_crop=crop).table)  # type: ignore[arg-type]
        seconds["oracle"] += time.perf_counter() - start
    found, given = pd.concat(events, ignore_index=True), pd.concat(oracle, ignore_index=True)
    if tables is not None:
        tables.mkdir(parents=True, exist_ok=True)
        found.to_csv(tables / "events.csv", index=False)
        given.to_csv(tables / "oracle.csv", index=False)
    aus = detector.aus
    return {
        "bundle": str(bundle),
        "data": str(data),
        "videos": len(events),
        "aus": aus,
        "seconds": seconds,
        "scores": {
            kinds: {
                "events": score_events(found, truth, aus, kinds=None if kinds == "all" else [kinds]),
                "oracle": score_events(given, truth, aus, kinds=None if kinds == "all" else [kinds]),
            }
            for kinds in ("micro", "all")
        },
        "failed_events": int(found["status"].astype(str).str.startswith("failed").sum()),
        "failed_oracle": int(given["status"].astype(str).str.startswith("failed").sum()),
    }


def table(result: dict) -> str:
    aus = result["aus"]
    lines = [
        "| expressions | reading | found | F1 macro | " + " | ".join(aus) + " |",
        "|---|---|---:|---:|" + "---:|" * len(aus),
    ]
    for kinds, pair in result["scores"].items():
        for name, score in pair.items():
            f1 = "–" if score["f1_macro"] is None else f"{score['f1_macro']:.3f}"
            per = ["–" if score["per_au"][a]["f1"] is None else f"{score['per_au'][a]['f1']:.2f}" for a in aus]
            lines.append(
                f"| {kinds} ({score['expressions']}) | {name} | {score['found']} | {f1} | " + " | ".join(per) + " |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True, help="a model bundle (or a run with bundle/)")
    parser.add_argument("--data", type=Path, default=Path("data/synme_long_events"), help="a SynME long folder")
    parser.add_argument("--videos", type=int, default=10, help="videos to generate when --data has none")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=200, help="SynME seed (not one the spotter was tuned on)")
    parser.add_argument("--crop", choices=["none", "detect", "align"], default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None, help="write every number here")
    parser.add_argument("--tables", type=Path, default=None, help="write the events and oracle tables here")
    args = parser.parse_args(argv)
    keep_freed_memory()
    if not (args.data / "truth.csv").is_file():
        import aullm

        aullm.synth_long(args.data, videos=args.videos, seconds=args.seconds, seed=args.seed)
    start = time.perf_counter()
    result = evaluate(args.bundle, args.data, args.device, args.crop, args.tables)
    result["wall_s"] = round(time.perf_counter() - start, 1)
    print(f"\n{result['videos']} SynME long videos in {args.data}, bundle {args.bundle} ({result['wall_s']} s)\n")
    print(table(result))
    print(f"\nevents that could not be decoded: {result['failed_events']} (oracle: {result['failed_oracle']})")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
