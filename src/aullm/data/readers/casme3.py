"""CAS(ME)³ part A (`casme3a`) (docs/design.md, Datasets).

Sheet `label` of `cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx`: `Subject, Filename, Onset, Apex, Offset, AU,
Objective class, emotion`, 860 rows from 94 subjects (`spNO.1`, …). `Filename` names a *video* (`a` … `m`), and one
video often holds several micro-expressions, each a row with its own onset/apex/offset. Every row is a sample; its
id is the video and the onset as written (`e_62`), the same pair the release's own per-ME clip folders are named
after (`spNO.1_e_62`), so it never depends on row order or on the corrections below. Two rows with the same video
and onset are a data error: the index keeps the first and skips the other with a warning naming both rows.

Frames are numbered JPEGs (`62.jpg`) in any of three layouts, onset..offset always indexing by that number:

- the release's videos: `<subject>/<video>/color/<n>.jpg`, one folder holding every ME of the video;
- the MEB benchmark's per-ME copies (its `tools/extract_casme3_part_a.py`, also the layout of its aligned
  `ME_A_cropped`): the first ME of video `e` in `<subject>/e/color/`, the second in `e2`, the third in `e3`, …
  numbered as MEB's `_separate_duplicate_materials` numbers them (`meb_folder_names`);
- the release's per-ME clips: `Part_A_ME_clip/frame/<subject>_<video>_<onset>/<n>.jpg`.

`data.frames_dir` names the folder holding these when it is not the dataset root.

MEB also corrects six rows of the v2 sheet whose onset/apex/offset are impossible (apex outside the clip, onset
after offset, frame 0 in a video numbered from 1). They are applied by default (`CASME3_CORRECTIONS`) so results
are comparable with MEB's; `data.corrections: false` reads the sheet as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from aullm.config import DataConfig
from aullm.core.console import logger
from aullm.data.readers.registry import RawRow, SheetRows, configured_frames_dir
from aullm.data.readers.sheets import cell_text, is_blank, read_sheet, to_int

SHEET = "label"
REQUIRED = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU"]
#: The release's per-ME clip folders, relative to the dataset root.
ME_CLIPS = Path("Part_A_ME_clip") / "frame"
_ATTR = {"Onset": "onset", "Apex": "apex", "Offset": "offset"}


@dataclass(frozen=True)
class Correction:
    """One of MEB's corrections of the v2 sheet (`meb/datasets/datasets.py`, `Casme3A.data_frame`).

    MEB addresses rows by position (`row`: 0-based, below the header). Where public code names the row's sample
    (`sample`: subject and sample id as written), the correction follows the sample, wherever it sits in the
    sheet. Where it does not, it is applied to the row at MEB's position only if that row is impossible as
    written and the correction makes it consistent, so a sheet of another version is never corrupted.
    `changes`: (column, value in v2 when known, corrected value).
    """

    row: int
    changes: tuple[tuple[str, Optional[int], int], ...]
    sample: Optional[tuple[str, str]] = None


CASME3_CORRECTIONS: tuple[Correction, ...] = (
    # apex 83 lies before the onset 112; MEB first wrote 160, then 123
    Correction(128, (("Apex", 83, 123),), ("spNO.149", "d_112")),
    Correction(708, (("Offset", None, 34),)),
    # onset 3647 lies after the offset 2694 (apex 2668): a typo for 2647
    Correction(749, (("Onset", 3647, 2647),), ("spNO.216", "d_3647")),
    # frame 0 does not exist: the video's frames are numbered from 1
    Correction(750, (("Onset", 0, 1), ("Apex", 0, 1)), ("spNO.216", "e_0")),
    Correction(796, (("Offset", None, 1845),)),
    Correction(798, (("Offset", None, 2403),)),
)


# ------------------------------------------------------------------------------------------------ names


def sample_name(video: str, onset: Any) -> str:
    """`e`, 62 → `e_62`: the video and the onset as written (a blank onset leaves the video's name)."""
    try:
        number = to_int(onset)
    except ValueError:
        number = None
    text = str(number) if number is not None else cell_text(onset)
    return f"{video}_{text}" if text else video


def _strip_digits(text: str) -> str:
    return "".join(ch for ch in text if not ch.isdigit())


def meb_folder_names(rows: list[tuple[str, str]]) -> list[str]:
    """The folder MEB's per-ME layout gives each (subject, video) row, in sheet order.

    MEB's rule, kept exactly because its folders were written by it: a row whose video equals the previous row's
    folder name without digits, for the same subject, gets the video plus a counter that starts at 2 and grows
    along the run (`e`, `e2`, `e3`); any other row resets the counter. Only consecutive rows count.
    """
    names = [video for _, video in rows]
    number = 2
    for i in range(len(rows) - 1):
        (subject, _), (next_subject, next_video) = rows[i], rows[i + 1]
        if _strip_digits(names[i]) == next_video and subject == next_subject:
            names[i + 1] = f"{next_video}{number}"
            number += 1
        else:
            number = 2
    return names


# ------------------------------------------------------------------------------------------ corrections


def _frames(row: RawRow) -> tuple[Optional[int], Optional[int], Optional[int]]:
    try:
        return to_int(row.onset), to_int(row.apex), to_int(row.offset)
    except ValueError:
        return None, None, None


def _impossible(onset: Optional[int], apex: Optional[int], offset: Optional[int]) -> bool:
    if onset is None or offset is None:
        return False
    return onset > offset or (apex is not None and not onset <= apex <= offset)


def _consistent(onset: Optional[int], apex: Optional[int], offset: Optional[int]) -> bool:
    return onset is not None and offset is not None and not _impossible(onset, apex, offset)


def apply_corrections(rows: list[RawRow], positions: list[int]) -> int:
    """Apply CASME3_CORRECTIONS in place (`positions[i]`: row i's 0-based position below the header).

    Returns how many fields changed. A position-addressed correction that does not fit its row is left out with a
    warning naming the row (the sheet is then not the v2 one MEB corrected).
    """
    by_sample: dict[tuple[str, str], RawRow] = {}
    for row in rows:
        by_sample.setdefault((row.subject, row.sample), row)
    by_position = dict(zip(positions, rows))
    changed = 0
    for correction in CASME3_CORRECTIONS:
        if correction.sample is not None:
            named = by_sample.get(correction.sample)
            changed += _apply_named(named, correction) if named is not None else 0
        else:
            placed = by_position.get(correction.row)
            changed += _apply_positional(placed, correction) if placed is not None else 0
    return changed


def _apply_named(row: RawRow, correction: Correction) -> int:
    """Like SAMM's corrections: applied whatever the cell holds, with a note when it is not the v2 value."""
    changed = 0
    for column, v2_value, corrected in correction.changes:
        current = getattr(row, _ATTR[column])
        if _same(current, corrected):
            continue
        if v2_value is not None and not _same(current, v2_value):
            logger.info(
                "CAS(ME)³ correction for %s/%s %s: sheet has %r, v2 had %r; using %r",
                row.subject,
                row.sample,
                column,
                current,
                v2_value,
                corrected,
            )
        setattr(row, _ATTR[column], corrected)
        changed += 1
    return changed


def _apply_positional(row: RawRow, correction: Correction) -> int:
    """Only onto the impossible row MEB corrected: the row must be impossible as written and consistent after."""
    frames = dict(zip(("Onset", "Apex", "Offset"), _frames(row)))
    after = {**frames, **{column: corrected for column, _, corrected in correction.changes}}
    if _impossible(frames["Onset"], frames["Apex"], frames["Offset"]) and _consistent(
        after["Onset"], after["Apex"], after["Offset"]
    ):
        for column, _, corrected in correction.changes:
            setattr(row, _ATTR[column], corrected)
        return len(correction.changes)
    wanted = ", ".join(f"{column.lower()} → {corrected}" for column, _, corrected in correction.changes)
    logger.warning(
        "CAS(ME)³: MEB's correction of its row %d (%s) not applied: %s, sample %s/%s (onset %s, apex %s, "
        "offset %s), is not the impossible row MEB corrected (another version of the sheet?)",
        correction.row,
        wanted,
        row.where,
        row.subject,
        row.sample,
        row.onset,
        row.apex,
        row.offset,
    )
    return 0


def _same(a: Any, b: int) -> bool:
    try:
        return to_int(a) == b
    except ValueError:
        return False


# ------------------------------------------------------------------------------------------ frame folders


def _colour(folder: Path) -> Path:
    """The release keeps colour and depth side by side: `<video>/color/` is the colour frames' folder."""
    inner = folder / "color"
    return inner if inner.is_dir() else folder


@dataclass
class _Folders:
    """A row's possible frame folders, one per layout."""

    meb: Optional[Path]  # the MEB per-ME folder, when it differs from the video's folder
    video: Path
    clips: list[Path]

    def existing_clip(self) -> Optional[Path]:
        return next((p for p in self.clips if p.is_dir()), None)


def _choose(folders: _Folders, meb_layout: bool, clips_at: Optional[int]) -> Path:
    """The row's frame folder. A layout found anywhere in the dataset is trusted for every row, so a missing
    per-ME folder is reported as missing instead of silently reading the wrong range of the video's folder.
    `clips_at`: which of the per-ME clip locations the dataset uses, when it uses them."""
    if folders.meb is not None and meb_layout:
        return _colour(folders.meb)
    if folders.video.is_dir():
        return _colour(folders.video)
    clip = folders.existing_clip()
    if clip is not None:
        return _colour(clip)
    if clips_at is not None:
        return folders.clips[clips_at]
    return folders.video


class CASME3Reader:
    """CAS(ME)³ part A's label sheet (with MEB's corrections) and frame folders in every layout."""

    def find_annotation(self, root: Path) -> Optional[Path]:
        """An xlsx in the root with a `label` sheet (the release names it after part A and the version)."""
        candidates = sorted(p for p in root.glob("*.xlsx") if not p.name.startswith("~$"))
        candidates.sort(key=lambda p: "label" not in p.name.lower())
        for path in candidates:
            try:
                if SHEET in pd.ExcelFile(path, engine="openpyxl").sheet_names:
                    return path
            except Exception:
                continue
        return None

    def frames_root(self, root: Path, cfg: DataConfig) -> Path:
        if cfg.frames_dir:
            return configured_frames_dir(root, cfg.frames_dir)
        return root

    def read_rows(self, annotation: Path, root: Optional[Path], cfg: DataConfig) -> SheetRows:
        df, header_row = read_sheet(annotation, SHEET, REQUIRED)
        rows: list[RawRow] = []
        positions: list[int] = []
        videos: list[tuple[str, str]] = []
        for i, rec in enumerate(df.to_dict("records")):
            if all(is_blank(rec.get(c)) for c in ("Subject", "Filename", "Onset", "Offset")):
                continue
            subject = cell_text(rec["Subject"])
            video = cell_text(rec["Filename"])
            rows.append(
                RawRow(
                    subject=subject,
                    sample=sample_name(video, rec["Onset"]) if video else "",
                    onset=rec["Onset"],
                    apex=rec["Apex"],
                    offset=rec["Offset"],
                    au=rec["AU"],
                    clip_dir=None,
                    where=f"{annotation.name} row {header_row + 1 + i}",
                )
            )
            positions.append(i)
            videos.append((subject, video))
        if root is not None:
            self._find_folders(rows, videos, self.frames_root(root, cfg), root)
        if cfg.corrections:
            changed = apply_corrections(rows, positions)
            logger.debug("CAS(ME)³: %d of MEB's corrections applied", changed)
        return SheetRows(rows=rows, annotation=annotation, root=root)

    @staticmethod
    def _find_folders(rows: list[RawRow], videos: list[tuple[str, str]], base: Path, root: Path) -> None:
        """Set each row's frame folder, whichever of the three layouts the copy on disk uses."""
        folders: list[Optional[_Folders]] = []
        for row, (subject, video), meb in zip(rows, videos, meb_folder_names(videos)):
            if not video:
                folders.append(None)
                continue
            clip = f"{subject}_{row.sample}"
            folders.append(
                _Folders(
                    meb=base / subject / meb if meb != video else None,
                    video=base / subject / video,
                    clips=[base / clip, root / ME_CLIPS / clip],
                )
            )
        present = [f for f in folders if f is not None]
        meb_layout = any(f.meb is not None and f.meb.is_dir() for f in present)
        clips_at = next((k for k in (0, 1) if any(f.clips[k].is_dir() for f in present)), None)
        for row, found in zip(rows, folders):
            if found is not None:
                row.clip_dir = _choose(found, meb_layout, clips_at)


__all__ = ["CASME3_CORRECTIONS", "ME_CLIPS", "CASME3Reader", "Correction", "apply_corrections", "meb_folder_names"]
