"""False intervals on a real face without expression: scikit-image's astronaut photograph, moved, rolled, zoomed and
re-lit over time (tests/fixtures_video.py), spotted with the default settings. Every interval found is false.

    python benchmarks/spot_photo.py [--seconds 60] [--fps 30] [--seeds 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from aullm.data.stream import FrameStream
from aullm.spotting.settings import SpotSettings
from aullm.spotting.spotter import spot_stream
from fixtures_video import photo_frames, write_video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    total = 0
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(args.seeds):
            video = write_video(
                Path(folder) / f"astronaut_{seed}.mp4",
                photo_frames(int(args.seconds * args.fps), args.fps, seed=seed),
                args.fps,
            )
            result = spot_stream(FrameStream(video), SpotSettings())
            found = result.intervals
            total += len(found)
            print(
                f"seed {seed}: {len(found)} false interval(s) in {args.seconds:g} s "
                f"(face: {result.face_source}; median score {result.signal['score'].median():.3f} px, "
                f"max {result.signal['score'].max():.3f}, threshold {result.threshold:.3f})"
            )
            for row in found.itertuples():
                print(f"  {row.kind} {row.onset}..{row.offset} score {row.score}")
    print(f"total: {total} false interval(s) in {args.seeds * args.seconds:g} s of video")


if __name__ == "__main__":
    main()
