"""Speed and memory of the whole spotting pipeline (decode, face, flow, scoring) on long videos.

    python benchmarks/bench_spot.py VIDEO [VIDEO ...] [--repeats 5] [--json OUT.json]

For each video: frames per second of `aullm.spotting.spot_stream` (median of `--repeats` runs in fresh processes,
with the spread), the real-time factor at the video's own frame rate, the peak resident memory of a run (each run
is a process of its own, so the peak is that run's), and where the main thread's time goes (cProfile of one more
run, by pipeline stage: STAGES). Give a 1-minute and a 10-minute video to see that memory does not grow with the
length (SynME long: `aullm synth OUT --long --videos 1 --seconds 600`). Run it on a quiet machine: the numbers
are the machine's, and another process halves them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

#: Where the main thread's time goes: each stage is the cumulative time of the pipeline's own functions (file,
#: function name), so the NumPy and OpenCV work a stage calls counts in it. Decoding runs in a second thread,
#: overlapped; the main thread's wait for it (`acquire`) is what decoding costs beyond the overlap.
STAGES: dict[str, tuple[tuple[str, str], ...]] = {
    "waiting for decoding": (("~", "<method 'acquire' of '_thread.lock' objects>"),),
    "face detection": (("spotting/motion.py", "detect"),),
    "crop": (("spotting/face.py", "warp"),),
    "normalise and eye mask": (("spotting/motion.py", "_normalised"),),
    "optical flow": (("~", "<method 'calc' of 'cv2.DenseOpticalFlow' objects>"),),
    "head-motion fit": (("spotting/head.py", "fit"),),
    "region means": (("spotting/regions.py", "mean"), ("spotting/head.py", "at")),
}
#: Scoring and finding the intervals: the whole call less its pass over the frames.
WHOLE, FRAMES_PASS = ("spotting/spotter.py", "spot_stream"), ("spotting/motion.py", "measure_motion")

RUN = """
import json, resource, sys, time
from pathlib import Path
from aullm.data.stream import FrameStream
from aullm.spotting.settings import SpotSettings
from aullm.spotting.spotter import spot_stream
start = time.perf_counter()
result = spot_stream(FrameStream(Path(sys.argv[1])), SpotSettings())
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "frames": result.frames_read, "fps_video": result.info.fps,
                  "intervals": len(result.intervals),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

PROFILE = """
import cProfile, pstats, sys
from pathlib import Path
from aullm.data.stream import FrameStream
from aullm.spotting.settings import SpotSettings
from aullm.spotting.spotter import spot_stream
profile = cProfile.Profile()
profile.enable()
spot_stream(FrameStream(Path(sys.argv[1])), SpotSettings())
profile.disable()
stats = pstats.Stats(profile)
rows = [(func[0], func[2], tt, ct) for func, (cc, nc, tt, ct, callers) in stats.stats.items()]
import json
print(json.dumps(rows))
"""


def _python(code: str, video: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    done = subprocess.run([sys.executable, "-c", code, str(video)], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    return done.stdout.strip().splitlines()[-1]


def where_time_goes(video: Path) -> dict[str, float]:
    """Seconds of the main thread per stage (STAGES), the rest under "other"."""
    rows = json.loads(_python(PROFILE, video))

    def cumulative(file: str, name: str) -> float:
        return sum(ct for f, n, _, ct in rows if n == name and f.replace("\\", "/").endswith(file))

    total = sum(tt for _, _, tt, _ in rows)
    totals = {stage: sum(cumulative(f, n) for f, n in keys) for stage, keys in STAGES.items()}
    totals["scoring and intervals"] = cumulative(*WHOLE) - cumulative(*FRAMES_PASS)
    totals["other"] = max(0.0, total - sum(totals.values()))
    return totals


def bench(video: Path, repeats: int) -> dict[str, object]:
    runs = [json.loads(_python(RUN, video)) for _ in range(repeats)]
    rates = [r["frames"] / r["seconds"] for r in runs]
    first = runs[0]
    stages = where_time_goes(video)
    total = sum(stages.values())
    return {
        "video": str(video),
        "frames": first["frames"],
        "video_fps": first["fps_video"],
        "intervals": first["intervals"],
        "fps_median": statistics.median(rates),
        "fps_min": min(rates),
        "fps_max": max(rates),
        "realtime_factor": statistics.median(rates) / first["fps_video"],
        "peak_rss_mb_median": statistics.median(r["peak_rss_mb"] for r in runs),
        "peak_rss_mb_max": max(r["peak_rss_mb"] for r in runs),
        "time_share": {k: round(v / total, 3) for k, v in stages.items()},
        "repeats": repeats,
        "load_average": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="+", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M")
    results = [bench(video, args.repeats) for video in args.videos]
    for r in results:
        print(
            f"{r['video']}: {r['frames']} frames, {r['fps_median']:.1f} frames/s "
            f"(min {r['fps_min']:.1f}, max {r['fps_max']:.1f}, {r['repeats']} runs) = "
            f"{r['realtime_factor']:.2f}x real time; peak RSS {r['peak_rss_mb_median']:.0f} MB "
            f"(max {r['peak_rss_mb_max']:.0f}); time: "
            + ", ".join(f"{k} {100 * v:.0f}%" for k, v in r["time_share"].items())
            + f"; load average {r['load_average'][0]:.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps({"started": started, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
