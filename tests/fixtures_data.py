"""Builders for dataset fixtures: xlsx sheets in the official layouts and tiny JPEG frame folders.

The layouts copy the shipped files: CASME II sheet 1 with two blank-header (`Unnamed`) columns; SAMM's
`MICRO_ONLY` sheet with 13 legend rows above the header in row 14; CAS(ME)³-A's `label` sheet; manifest CSV.
"""

from __future__ import annotations

import contextlib
import io
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
from openpyxl import Workbook
from PIL import Image

CASME2_HEADER = [
    "Subject",
    "Filename",
    None,
    "OnsetFrame",
    "ApexFrame",
    "OffsetFrame",
    None,
    "Action Units",
    "Estimated Emotion",
]
SAMM_HEADER = [
    "Subject",
    "Filename",
    "Inducement Code",
    "Onset Frame",
    "Apex Frame",
    "Offset Frame",
    "Duration",
    "Micro",
    "Action Units",
    "Estimated Emotion",
    "Objective Classes",
    "Notes",
]
CASME3_HEADER = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"]
SAMM_LEGEND = [
    ["SAMM Micro-Movement FACS Codes v2"],
    ["Micro-movements only"],
    [None],
    ["Legend"],
    ["Inducement Code", "the stimulus video shown"],
    ["Onset Frame", "first frame of the movement"],
    ["Apex Frame", "frame of greatest intensity"],
    ["Offset Frame", "last frame of the movement"],
    ["Duration", "offset - onset + 1"],
    ["Micro", "1 = micro-expression (<= 500 ms)"],
    ["Action Units", "L/R = left/right, A-E = intensity"],
    ["Objective Classes", "Davison et al. 2018"],
    [None],
]
assert len(SAMM_LEGEND) == 13


# ------------------------------------------------------------------------------------------------ frames


def frame_pixels(size: int, t: int, seed: int = 0, shift: float = 1.0) -> np.ndarray:
    """A gray frame with texture and a bright blob that moves right by `shift` px per frame (for flow tests)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    base = 60 + 40 * np.sin(xx / 5.0 + seed) * np.cos(yy / 7.0) + rng.normal(0, 4, (size, size))
    cx, cy = size * 0.4 + shift * t, size * 0.5
    blob = 120 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (size / 10) ** 2))
    return np.clip(base + blob, 0, 255).astype(np.uint8)


def jpeg_bytes(pixels: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def write_frames(
    folder: Path, numbers: range | list[int], name: str, size: int = 32, seed: int = 0, corrupt: Optional[int] = None
) -> list[Path]:
    """Frames `name.format(n)` for each frame number; `corrupt` = a number whose file is truncated garbage."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for t, n in enumerate(numbers):
        path = folder / name.format(n)
        data = jpeg_bytes(frame_pixels(size, t, seed))
        if corrupt is not None and n == corrupt:
            data = data[: len(data) // 3]
        path.write_bytes(data)
        paths.append(path)
    return paths


# ------------------------------------------------------------------------------------------------- sheets


def _write_xlsx(path: Path, sheets: list[tuple[str, list[list[Any]]]]) -> Path:
    wb = Workbook()
    wb.remove(wb.active)
    for title, rows in sheets:
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(list(row))
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


@dataclass
class Clip:
    """One sample of a fixture: sheet values and what its frame folder should look like."""

    subject: Any
    filename: str
    onset: Any
    apex: Any
    offset: Any
    aus: Any
    emotion: str = "others"
    frames: str = "full"  # full | none (no folder) | empty | short (last frame missing) | corrupt | skip (no frames)
    extra: dict[str, Any] = field(default_factory=dict)


def _frames_for(clip: Clip, folder: Path, name: str, size: int, seed: int) -> None:
    if clip.frames in ("none", "skip"):
        return
    if clip.frames == "empty":
        folder.mkdir(parents=True, exist_ok=True)
        return
    onset, offset = int(clip.onset), int(clip.offset)
    numbers = list(range(onset, offset + 1))
    if clip.frames == "short":
        numbers = numbers[:-1]
    corrupt = numbers[len(numbers) // 2] if clip.frames == "corrupt" else None
    write_frames(folder, numbers, name, size=size, seed=seed, corrupt=corrupt)


def write_casme2(
    root: Path,
    clips: list[Clip],
    *,
    layout: str = "cropped",
    size: int = 32,
    sheet_name: str = "CASME2-coding-20140508.xlsx",
) -> Path:
    """CASME II as shipped: coding sheet (sheet 1) + `Cropped/subXX/EP../reg_imgN.jpg` or the raw layout."""
    rows = [CASME2_HEADER]
    for c in clips:
        rows.append([c.subject, c.filename, None, c.onset, c.apex, c.offset, None, c.aus, c.emotion])
    sheet = _write_xlsx(root / sheet_name, [("Sheet1", rows)])
    top, name = ("Cropped", "reg_img{}.jpg") if layout == "cropped" else ("CASME2_RAW_selected", "img{}.jpg")
    for i, c in enumerate(clips):
        subject = str(c.subject).zfill(2)
        _frames_for(c, root / top / f"sub{subject}" / c.filename, name, size, seed=i)
    return sheet


def write_samm(
    root: Path,
    clips: list[Clip],
    *,
    size: int = 32,
    with_frames: bool = True,
    sheet_file: str = "SAMM_Micro_FACS_Codes_v2.xlsx",
) -> Path:
    """SAMM as shipped: `MICRO_ONLY` sheet (13 legend rows, header in row 14) + `SAMM/006/006_1_2/006_05562.jpg`."""
    rows: list[list[Any]] = [list(r) for r in SAMM_LEGEND] + [SAMM_HEADER]
    for c in clips:
        duration = None
        with contextlib.suppress(TypeError, ValueError):  # fixtures with bad frame cells get no duration
            duration = int(c.offset) - int(c.onset) + 1
        rows.append(
            [
                c.subject,
                c.filename,
                c.extra.get("inducement", 1),
                c.onset,
                c.apex,
                c.offset,
                duration,
                "Micro - 1/2",
                c.aus,
                c.emotion,
                c.extra.get("objective", "Class 1"),
                c.extra.get("notes"),
            ]
        )
    macro = [SAMM_HEADER, ["006", "006_9_9", 1, 10, 20, 30, 21, "Macro", "12", "Happy", "Class 1", None]]
    sheet = _write_xlsx(root / sheet_file, [("FACS_Codes", macro), ("MICRO_ONLY", rows)])
    if with_frames:
        for i, c in enumerate(clips):
            subject = str(c.subject).zfill(3)
            _frames_for(c, root / "SAMM" / subject / c.filename, f"{subject}_{{:05d}}.jpg", size, seed=i)
    return sheet


CASME3_SHEET = "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"


def casme3_pixels(subject: str, video: str, number: int, size: int) -> np.ndarray:
    """Frame `number` of one CAS(ME)³ video: the same pixels whichever layout it is written in."""
    return frame_pixels(size, number % 8, seed=zlib.crc32(f"{subject}/{video}".encode()) % 1000)


def write_casme3a(
    root: Path,
    clips: list[Clip],
    *,
    size: int = 32,
    layout: Optional[str] = "videos",
    pixels: Optional[Callable[[str, str, int], np.ndarray]] = None,
) -> Path:
    """CAS(ME)³ part A: the `label` sheet (one row per ME, `Filename` naming the video) and frames `<n>.jpg`.

    `layout`: `videos` as the release ships them, every ME of a video in one `<subject>/<video>/color/` holding
    the union of their frames; `meb`, the MEB benchmark's per-ME copies `<subject>/<folder>/color/`, the folder
    given by hand in `clip.extra["meb"]` (default: the video's name); `clips`, the release's per-ME clips
    `Part_A_ME_clip/frame/<subject>_<video>_<onset>/`; None, the sheet only. A clip's `frames` mode (short,
    corrupt, none, …) applies to its own frame range. `pixels(subject, video, n)` draws frame n (default: texture
    that depends on the video and n only, so every layout holds the same pixels).
    """
    rows = [CASME3_HEADER] + [
        [c.subject, c.filename, c.onset, c.apex, c.offset, c.aus, "Class 1", c.emotion] for c in clips
    ]
    sheet = _write_xlsx(root / CASME3_SHEET, [("label", rows)])
    draw = pixels or (lambda subject, video, n: casme3_pixels(subject, video, n, size))
    files: dict[Path, dict[int, tuple[str, str, bool]]] = {}
    for c in clips:
        subject, video = str(c.subject), str(c.filename)
        if layout is None or c.frames in ("none", "skip"):
            continue
        if layout == "videos":
            folder = root / subject / video / "color"
        elif layout == "meb":
            folder = root / subject / c.extra.get("meb", video) / "color"
        elif layout == "clips":
            folder = root / "Part_A_ME_clip" / "frame" / f"{subject}_{video}_{c.onset}"
        else:
            raise ValueError(f"unknown layout {layout!r}")
        folder.mkdir(parents=True, exist_ok=True)
        if c.frames == "empty":
            continue
        numbers = list(range(int(c.onset), int(c.offset) + 1))
        if c.frames == "short":
            numbers = numbers[:-1]
        corrupt = numbers[len(numbers) // 2] if c.frames == "corrupt" else None
        for n in numbers:
            files.setdefault(folder, {})[n] = (subject, video, n == corrupt)
    for folder, frames in files.items():
        for n, (subject, video, corrupt) in frames.items():
            data = jpeg_bytes(draw(subject, video, n))
            (folder / f"{n}.jpg").write_bytes(data[: len(data) // 3] if corrupt else data)
    return sheet


# ----------------------------------------------------------------------------------------------- SAMM rows


def samm_correction_clips() -> list[Clip]:
    """Every row named in the corrections table (with its v2 value) plus rows in every AU-string form.

    Frames are not written for these (the stats test reads the sheet only), so frame numbers can be the real
    ones: 028_4_1's v2 apex 1143 lies after its offset 1134, 032_3_1's v2 apex 1930 before its onset 4896.
    """
    C = Clip
    return [
        C("006", "006_1_2", 5562, 5588, 5605, "4+7"),
        C("006", "006_1_5", 1000, 1010, 1040, "7B"),
        C("007", "007_6_1", 1200, 1230, 1260, "(R6 or R12)+R15"),
        C("007", "007_6_5", 2200, 2230, 2260, "(R6 or R12) + R15"),
        C("011", "011_4_2", 300, 330, 360, "L12 or L14"),
        C("014", "014_5_2", 400, 430, 460, "R12 or R14"),
        C("035", "035_7_2", 500, 530, 560, "R14A or 17A or 24A"),
        C("028", "028_4_1", 1080, 1143, 1134, "L2"),
        C("032", "032_3_1", 4896, 1930, 4990, "4A"),
        C("032", "032_3_2", 5100, 5127, 5160, "A12"),
        C("016", "016_4_1", 100, 120, 140, "L12A"),
        C("016", "016_7_2", 200, 220, 240, "10A/B"),
        C("017", "017_3_1", 100, 120, 140, "A/L12"),
        C("018", "018_4_4", 100, 120, 140, "ref(7B)+43"),
        C("019", "019_1_1", 100, 120, 140, "1A+2B+L14C"),
        C("020", "020_2_1", 100, 120, 140, "T18+39"),
        C("021", "021_3_1", 100, 120, 140, "R14+17+soft focus"),
        C("022", "022_4_1", 100, 120, 140, "12+15 "),
        C("023", "023_1_1", 100, 120, 140, "4 or 7"),
        C("025", "025_2_1", 100, 120, 140, 4),
        C("026", "026_1_1", 100, 120, 140, 12.0),
        C("026", "026_2_1", 100, 120, 140, "2+4"),
    ]


#: What `data stats samm --annotations` must report on samm_correction_clips() with corrections on.
SAMM_EXPECTED = {
    "samples": 22,
    "usable": 21,  # 023_1_1 "4 or 7" is not in the table: dropped by or_policy drop_sample
    "subjects": 16,  # 006 007 011 014 035 028 032 016 017 018 019 020 021 022 025 026
    "au_counts": {
        "AU1": 1,
        "AU2": 3,
        "AU4": 4,
        "AU7": 3,
        "AU10": 1,
        "AU12": 7,
        "AU14": 5,
        "AU15": 3,
        "AU17": 1,
        "AU18": 1,
        "AU39": 1,
        "AU43": 1,
    },
}


# ------------------------------------------------------------------------------------------ bigger datasets


def casme2_clips(n: int, frames: int = 10, subjects: int = 10, start: int = 1) -> list[Clip]:
    """`n` valid CASME II samples spread over `subjects` subjects (AUs cycle through the 8 CASME II AUs)."""
    codes = ["1+2", "4", "4+7", "12", "14", "15+17", "L1+L2", "R12", "4+L10", "7B"]
    clips = []
    for i in range(n):
        onset = start + 10 * i
        clips.append(
            Clip(
                (i % subjects) + 1,
                f"EP{i // subjects:02d}_{i % subjects:02d}f",
                onset,
                onset + frames // 2,
                onset + frames - 1,
                codes[i % len(codes)],
            )
        )
    return clips


def write_manifest(path: Path, rows: list[dict[str, Any]]) -> Path:
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


# ------------------------------------------------------------------------------------------------- logging
