"""Dataset readers: one small reader per annotation format, behind one protocol, registered by name.

A reader knows only its format: where the annotation file is (`find_annotation`), where the sample folders are
(`frames_root`), and how to read the sheet into `RawRow`s (`read_rows`). Everything else — AU parsing,
`or_policy`, onset/apex/offset checks, frame discovery, skipping bad samples — is done once by `index.py`, which
finds readers here by name and imports none of them itself. Adding a dataset is one module and one line below.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Protocol

from aullm.config import DataConfig
from aullm.core.errors import DataError


@dataclass
class RawRow:
    """One annotated sample as a loader read it, before any checking."""

    subject: str
    sample: str
    onset: Any
    apex: Any
    offset: Any
    au: Any
    clip_dir: Optional[Path]
    where: str  # "file.xlsx row 17", for messages
    labels: Optional[dict[str, Any]] = None  # manifest: AU columns given directly
    kind: Optional[str] = None  # manifest: "frames", "video", "flow_image"


@dataclass
class SheetRows:
    rows: list[RawRow]
    annotation: Path
    root: Optional[Path]
    extra_skipped: list[dict[str, str]] = field(default_factory=list)


class DatasetReader(Protocol):
    """What the index builder needs from a dataset format."""

    def find_annotation(self, root: Path) -> Optional[Path]:
        """The annotation file inside a dataset root as shipped, or None."""
        ...

    def frames_root(self, root: Path, cfg: DataConfig) -> Optional[Path]:
        """The folder holding the sample folders (None when every row names its own path)."""
        ...

    def read_rows(self, annotation: Path, root: Optional[Path], cfg: DataConfig) -> SheetRows:
        """Every annotated sample as written, unchecked."""
        ...


def configured_frames_dir(root: Path, frames_dir: str) -> Path:
    """`data.frames_dir` as given: absolute, or relative to the dataset root."""
    given = Path(frames_dir).expanduser()
    return given if given.is_absolute() else root / given


#: `data.dataset` → "module:Reader". SynME is written in CASME II's layout, so CASME II's reader reads it.
READERS: dict[str, str] = {
    "casme2": "aullm.data.readers.casme2:CASME2Reader",
    "synme": "aullm.data.readers.casme2:CASME2Reader",
    "samm": "aullm.data.readers.samm:SAMMReader",
    "casme3a": "aullm.data.readers.casme3:CASME3Reader",
    "manifest": "aullm.data.readers.manifest:ManifestReader",
}


def get_reader(dataset: str) -> DatasetReader:
    """The reader registered for `dataset` (imported on first use)."""
    if dataset not in READERS:
        raise DataError(f"unknown dataset {dataset!r} ({', '.join(READERS)})")
    module, name = READERS[dataset].split(":")
    reader: DatasetReader = getattr(importlib.import_module(module), name)()
    return reader


__all__ = ["READERS", "DatasetReader", "RawRow", "SheetRows", "configured_frames_dir", "get_reader"]
