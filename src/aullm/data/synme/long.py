"""SynME long videos (docs/datasets.md, SynME long): spotting with known ground truth, byte-identical for a seed.

Each video is a drawn face (data/synme/face.py) placed in a textured scene, holding neutral stretches, blinks,
slow head drift and tremor, lighting drift, sensor noise, talking-like mouth bursts and macro-expressions (the
distractors) and several micro-expressions (1–3 px AU displacement fields of data/synme/motion.py, AU combinations
from data/synme/codes.py) at known frames. Layout, read unchanged by the CAS(ME)² reader
(data/longvideo/casme2_long.py):

    OUT/videos/<NN>_<CODE>.mp4           H.264 (libx264, one thread, fixed settings), subject i → NN = 14 + i,
                                         its videos CODE = 0101, 0102, …  (CAS(ME)²'s naming)
    OUT/rawpic/s<NN>/<NN>_<CODE>/img001.jpg …   with frames=True: every frame, 1-based (CAS(ME)²'s raw layout)
    OUT/truth.csv                        video, subject, onset, apex, offset, kind, aus, fps, frames (0-based frames
                                         of the video file, inclusive)
    OUT/CAS(ME)^2code_final.xlsx         the same truth in CAS(ME)²'s workbook layout (1-based: frame 0 = img001)
    OUT/distractors.csv                  the blinks and talking bursts (video, kind, onset, offset; 0-based)
    OUT/synme_long.json                  the settings (so a later call can tell whether OUT holds the same data)

Rendering is data/synme/long_render.py's; this module plans the videos, streams each one's frames (rendered
in a second thread) to the encoder, and writes the truth, atomically.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict
from fractions import Fraction
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np
import pandas as pd
from openpyxl import Workbook

from aullm.core.ahead import produced_ahead
from aullm.core.console import logger, track
from aullm.core.errors import UserError, arg
from aullm.core.io import atomic_dir, atomic_path, check_output_dir, write_csv, write_text
from aullm.data.longvideo.truth import CASME2_LONG_WORKBOOK, SYNME_LONG_META, TRUTH_CSV
from aullm.data.synme.codes import casme2_string
from aullm.data.synme.face import make_identity
from aullm.data.synme.long_plan import Expression, VideoPlan, plan_video
from aullm.data.synme.long_presets import LONG_PRESETS
from aullm.data.synme.long_render import FaceLayer, Scene, build_scene, face_layer, render_frames
from aullm.data.synme.writer import _save_xlsx

LONG_VERSION = 1
DISTRACTORS_CSV = "distractors.csv"
VIDEOS_DIR = "videos"
FRAMES_DIR = "rawpic"
#: The encoder's fixed settings: one thread and a fixed preset make the bytes a function of the frames only.
ENCODER: dict[str, str] = {"codec": "libx264", "crf": "16", "preset": "veryfast", "pix_fmt": "yuv420p", "threads": "1"}
MIN_SECONDS = 3.0
FPS_RANGE = (15.0, 1000.0)
_CASME_EMOTION = {
    "others": "others",
    "disgust": "negative",
    "sadness": "negative",
    "repression": "negative",
    "happiness": "positive",
    "surprise": "surprise",
}


def _rng(seed: int, *keys: int) -> np.random.Generator:
    """Independent stream per (seed, purpose, subject, video): a video does not depend on the others."""
    return np.random.default_rng(np.random.SeedSequence([seed, 29, *keys]))


def video_key(subject: int, video: int) -> tuple[str, str, str]:
    """(folder number `15`, code `0101`, key `15_0101`) of subject index `subject` and video index `video` (0-based)."""
    number = f"{14 + subject + 1:02d}"
    code = f"01{video + 1:02d}"
    return number, code, f"{number}_{code}"


# ------------------------------------------------------------------------------------------------ writing


class _Encoder:
    """H.264 in MP4 through PyAV, frames pushed one at a time; fixed settings and one thread (byte-identical)."""

    def __init__(self, path: Path, width: int, height: int, fps: float) -> None:
        import av

        self.container = av.open(str(path), "w", format="mp4")
        rate = Fraction(fps).limit_denominator(1001)
        stream = self.container.add_stream(ENCODER["codec"], rate=rate)
        assert isinstance(stream, av.VideoStream)
        self.stream = stream
        self.stream.width = width
        self.stream.height = height
        self.stream.pix_fmt = ENCODER["pix_fmt"]
        self.stream.codec_context.thread_count = 1
        self.stream.options = {k: ENCODER[k] for k in ("crf", "preset", "threads")}
        self.count = 0

    def write(self, frame: np.ndarray) -> None:
        import av

        video_frame = av.VideoFrame.from_ndarray(frame, format="bgr24")
        video_frame.pts = self.count
        self.count += 1
        for packet in self.stream.encode(video_frame):
            self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


def _settings(
    videos: int,
    seconds: float,
    fps: float,
    seed: int,
    frames: bool,
    width: int,
    height: int,
    videos_per_subject: int,
    preset: str,
) -> dict[str, Any]:
    import av

    return json.loads(
        json.dumps(
            {
                "synme_long_version": LONG_VERSION,
                "videos": videos,
                "seconds": seconds,
                "fps": fps,
                "seed": seed,
                "frames": frames,
                "width": width,
                "height": height,
                "videos_per_subject": videos_per_subject,
                "preset": preset,
                "params": asdict(LONG_PRESETS[preset]),
                "encoder": {**ENCODER, "pyav": av.__version__},
            }
        )
    )


def long_written_with(out: Path, **settings: Any) -> bool:
    """True when `out` holds complete SynME long output written with exactly these `generate_long` arguments."""
    out = Path(out)
    try:
        stored = json.loads((out / SYNME_LONG_META).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    if not isinstance(stored, dict) or not stored.get("complete") or not (out / TRUTH_CSV).is_file():
        return False
    defaults = {
        "videos": 4,
        "seconds": 60.0,
        "fps": 30.0,
        "seed": 0,
        "frames": False,
        "width": 640,
        "height": 480,
        "videos_per_subject": 2,
        "preset": "default",
    }
    wanted = _settings(**{**defaults, **settings})
    return all(stored.get(k) == v for k, v in wanted.items())


def _prepare_out(out: Path) -> None:
    """Create `out`, or clear earlier SynME long output there; refuse a non-empty folder of anything else."""
    check_output_dir(out, "SynME long output folder")
    if out.exists() and any(out.iterdir()):
        if not (out / SYNME_LONG_META).is_file():
            raise UserError(
                f"{arg('out', out)} is not empty and holds no {SYNME_LONG_META}: refusing to write SynME long videos "
                "into it (give a new or empty folder)"
            )
        for name in (VIDEOS_DIR, FRAMES_DIR):
            if (out / name).is_dir():
                shutil.rmtree(out / name)
        for name in (TRUTH_CSV, CASME2_LONG_WORKBOOK, DISTRACTORS_CSV, SYNME_LONG_META):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def _check(
    videos: int, seconds: float, fps: float, width: int, height: int, videos_per_subject: int, preset: str
) -> None:
    if preset not in LONG_PRESETS:
        raise UserError(f"unknown SynME long {arg('preset', preset)}: use {' or '.join(LONG_PRESETS)}")
    if not 1 <= videos <= 10_000:
        raise UserError(f"{arg('videos', videos)} must be 1..10000")
    if videos_per_subject < 1 or videos_per_subject > 99:
        raise UserError(f"{arg('videos_per_subject', videos_per_subject)} must be 1..99")
    if not (math.isfinite(fps) and FPS_RANGE[0] <= fps <= FPS_RANGE[1]):
        raise UserError(
            f"{arg('fps', fps)} is outside {FPS_RANGE[0]:g}..{FPS_RANGE[1]:g} frames per second "
            "(a 0.2 s micro-expression needs at least 3 frames)"
        )
    if not (math.isfinite(seconds) and MIN_SECONDS <= seconds <= 7200):
        raise UserError(
            f"{arg('seconds', seconds)} must be {MIN_SECONDS:g}..7200: a video needs room for at least one "
            "expression between neutral stretches"
        )
    if width % 2 or height % 2 or not (160 <= width <= 3840 and 120 <= height <= 2160):
        raise UserError(
            f"frame size {arg('width', width)} × {arg('height', height)} must be even and within 160×120..3840×2160"
        )


def generate_long(
    out: Path,
    videos: int = 4,
    seconds: float = 60.0,
    fps: float = 30.0,
    seed: int = 0,
    frames: bool = False,
    width: int = 640,
    height: int = 480,
    videos_per_subject: int = 2,
    preset: str = "default",
) -> pd.DataFrame:
    """Write SynME long videos under `out` (layout in the module docstring) and return the truth table (columns
    video, subject, onset, apex, offset, kind, aus, fps, frames; 0-based frames of the video files)."""
    _check(videos, seconds, fps, width, height, videos_per_subject, preset)
    p = LONG_PRESETS[preset]
    out = Path(out)
    _prepare_out(out)
    settings = _settings(videos, seconds, fps, seed, frames, width, height, videos_per_subject, preset)
    write_text(out / SYNME_LONG_META, json.dumps({**settings, "complete": False}, indent=1, sort_keys=True) + "\n")
    n = int(round(seconds * fps))
    frame_scale = min(width / 640.0, height / 480.0)
    truth: list[dict[str, Any]] = []
    sheet: list[dict[str, Any]] = []
    distractors: list[dict[str, Any]] = []
    layer: Optional[FaceLayer] = None
    start = time.perf_counter()
    rendered = 0
    for v in track(range(videos), "SynME long videos", total=videos):
        si, vi = divmod(v, videos_per_subject)
        number, code, key = video_key(si, vi)
        if vi == 0 or layer is None:
            frng = _rng(seed, 1, si)
            size = int(round(frng.integers(p.face_px[0], p.face_px[1] + 1) * frame_scale))
            layer = face_layer(make_identity(frng, size, colour=True), float(frng.uniform(0.85, 1.0)))
        face_scale = layer.canvas / 256.0
        vrng = _rng(seed, 2, si, vi)
        plan = plan_video(vrng, n, fps, face_scale, p)
        scene = build_scene(vrng, layer, plan, p, width, height)
        t0 = time.perf_counter()
        _write_video(out, number, key, scene, plan, fps, frames, p.jpeg_quality)
        rendered += n
        logger.info(
            "%s: %d frames in %.1fs (%.0f frames/s)", key, n, time.perf_counter() - t0, n / (time.perf_counter() - t0)
        )
        for k, e in enumerate(plan.expressions):
            aus = "+".join(f"{c.side}{c.au}" for c in e.codes)
            truth.append(
                {
                    "video": key,
                    "subject": number,
                    "onset": e.onset,
                    "apex": e.apex,
                    "offset": e.offset,
                    "kind": e.kind,
                    "aus": aus,
                    "fps": fps,
                    "frames": n,
                }
            )
            sheet.append({"participant": si + 1, "number": number, "code": code, "k": k + 1, "e": e})
        distractors += [{"video": key, "kind": "blink", "onset": a, "offset": b} for a, b in plan.blinks]
        distractors += [{"video": key, "kind": "talk", "onset": t.onset, "offset": t.offset} for t in plan.talks]
    table = pd.DataFrame(truth, columns=["video", "subject", "onset", "apex", "offset", "kind", "aus", "fps", "frames"])
    write_csv(table, out / TRUTH_CSV)
    write_csv(pd.DataFrame(distractors, columns=["video", "kind", "onset", "offset"]), out / DISTRACTORS_CSV)
    with atomic_path(out / CASME2_LONG_WORKBOOK) as tmp:
        _save_xlsx(_workbook(sheet, videos_per_subject), tmp)
    write_text(out / SYNME_LONG_META, json.dumps({**settings, "complete": True}, indent=1, sort_keys=True) + "\n")
    elapsed = time.perf_counter() - start
    logger.info(
        "SynME long: %d videos, %d expressions (%d micro) written to %s in %.1fs (%.0f frames/s)",
        videos,
        len(table),
        int((table["kind"] == "micro").sum()),
        out,
        elapsed,
        rendered / max(elapsed, 1e-9),
    )
    return table


def _write_video(
    out: Path, number: str, key: str, scene: Scene, plan: VideoPlan, fps: float, frames: bool, quality: int
) -> None:
    """Stream the video's frames to the encoder (and to JPEGs with `frames`), each output replaced atomically."""
    video_path = out / VIDEOS_DIR / f"{key}.mp4"
    folder = out / FRAMES_DIR / f"s{number}" / key
    with atomic_path(video_path) as tmp:
        encoder = _Encoder(tmp, scene.width, scene.height, fps)
        rendered = produced_ahead(render_frames(scene, plan), depth=8, name="synme-long-render")
        try:
            if frames:
                with atomic_dir(folder) as tmp_dir:
                    for i, frame in enumerate(rendered):
                        encoder.write(frame)
                        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
                        if not ok:
                            raise RuntimeError(f"JPEG encoding failed for frame {i} of {key}")
                        (tmp_dir / f"img{i + 1:03d}.jpg").write_bytes(buf.tobytes())
            else:
                for frame in rendered:
                    encoder.write(frame)
        finally:
            encoder.close()


def _workbook(rows: list[dict[str, Any]], videos_per_subject: int) -> Workbook:
    """The truth in CAS(ME)²'s workbook layout: `CASFEcode_final` (no header row, 9 columns, 1-based frames),
    `naming rule1` row-aligned with it and `naming rule2` (video codes as text)."""
    wb = Workbook()
    ws = wb.active
    ws.title = "CASFEcode_final"
    rule1 = wb.create_sheet("naming rule1")
    rule2 = wb.create_sheet("naming rule2")
    for r in rows:
        e: Expression = r["e"]
        name = f"synme{int(r['code'][2:])}"
        ws.append(
            [
                r["participant"],
                f"{name}_{r['k']}",
                e.onset + 1,
                e.apex + 1,
                e.offset + 1,
                casme2_string(e.codes),
                _CASME_EMOTION[e.emotion],
                f"{e.kind}-expression",
                e.emotion,
            ]
        )
        rule1.append([int(r["number"]), f"s{r['number']}", r["participant"]])
    codes = sorted({f"01{j + 1:02d}" for j in range(videos_per_subject)})
    for code in codes:
        rule2.append([code, f"synme{int(code[2:])}"])
    for cell in rule2["A"]:
        cell.number_format = "@"  # text, as the release stores the codes
    return wb


__all__ = [
    "DISTRACTORS_CSV",
    "ENCODER",
    "FRAMES_DIR",
    "VIDEOS_DIR",
    "generate_long",
    "long_written_with",
    "video_key",
]
