"""`aullm predict --report`: one self-contained HTML page for every video of a run (DIR/report.html).

Rendered with Jinja2 from a template shipped with the package (`templates/video_report.html.j2`), with
autoescaping on: every name that comes from a file name (videos, folders, bundles) is escaped, so a video named
`<script>….mp4` shows as text. Pictures (the timelines, the apex thumbnails) are embedded as `data:` URIs, so the
page is one file that opens offline, anywhere, without a server; it has no JavaScript at all. Links (each video's
CSV, an event's Grad-CAM from `--explain`) are relative, to the files beside the page.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import pandas as pd

from aullm.data.aus import au_title
from aullm.reporting.timeline import format_seconds, tick_step

#: A timeline's table lists at most this many windows (those with an AU present first).
MAX_WINDOW_ROWS = 100
TEMPLATE = "video_report.html.j2"


@dataclass
class VideoPage:
    """What the page shows of one video (plain data; `table` is its events or windows table, None if it failed)."""

    name: str
    path: str
    status: str  # "ok", "no expression spotted" or "failed: reason"
    mode: str = "events"  # events | windows | clip
    table: Optional[pd.DataFrame] = None
    duration_s: Optional[float] = None
    fps: Optional[float] = None
    timeline_png: Optional[bytes] = None
    stills: Mapping[int, np.ndarray] = field(default_factory=dict)  # event number → gray thumbnail
    explain: Mapping[int, str] = field(default_factory=dict)  # event number → relative link to its Grad-CAM
    csv: Optional[str] = None  # relative link to the video's CSV

    @property
    def failed(self) -> bool:
        return self.status.startswith("failed")


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def gray_png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _length(seconds: Optional[float]) -> str:
    if seconds is None or not np.isfinite(seconds):
        return ""
    return format_seconds(seconds, tick_step(seconds)) if seconds >= 120 else f"{seconds:.1f} s"


def _ok_rows(page: VideoPage) -> pd.DataFrame:
    if page.table is None:
        return pd.DataFrame()
    table = page.table
    if "event" in table:
        table = table[table["event"].notna()]
    return table


def _au_counts(page: VideoPage, aus: Sequence[str]) -> dict[str, int]:
    rows = _ok_rows(page)
    return {au: int((rows[au] == 1).sum()) for au in aus if au in rows}


def _row(page: VideoPage, rec: Mapping[Any, Any], aus: Sequence[str], number: int) -> dict[str, Any]:
    present: list[dict[str, Any]] = [
        {"name": au, "title": au_title(au), "prob": float(rec[f"{au}_prob"])}
        for au in aus
        if rec.get(au) is not None and not pd.isna(rec[au]) and int(rec[au]) == 1
    ]
    present.sort(key=lambda a: -float(a["prob"]))
    status = str(rec.get("status", "ok"))
    if page.mode == "windows":
        return {
            "number": number,
            "frames": f"{int(rec['start_frame'])}–{int(rec['end_frame'])}",
            "times": f"{rec['t_start_s']:.2f}–{rec['t_end_s']:.2f}",
            "aus": present,
            "status": status,
            "failed": status.startswith("failed"),
        }
    event = int(rec["event"])
    still = page.stills.get(event)
    score = rec.get("spot_score")
    return {
        "number": event,
        "frames": f"{int(rec['onset'])}–{int(rec['offset'])}"
        + ("" if pd.isna(rec.get("apex")) else f" (apex {int(rec['apex'])})"),
        "times": f"{rec['t_onset_s']:.2f}–{rec['t_offset_s']:.2f}",
        "kind": str(rec["kind"]),
        "score": "" if score is None or pd.isna(score) else f"{float(score):.2f}",
        "thumb": data_uri(gray_png(still)) if still is not None else None,
        "aus": present,
        "explain": page.explain.get(event),
        "status": status,
        "failed": status.startswith("failed"),
    }


def _rows(page: VideoPage, aus: Sequence[str]) -> tuple[list[dict[str, Any]], str]:
    rows = _ok_rows(page)
    if page.mode != "windows":
        return [_row(page, rec, aus, i + 1) for i, rec in enumerate(rows.to_dict("records"))], ""
    records = rows.to_dict("records")
    with_au = [i for i, rec in enumerate(records) if any(rec.get(au) == 1 for au in aus)]
    shown = with_au[:MAX_WINDOW_ROWS]
    note = f"{len(with_au)} of {len(records)} windows have an AU present"
    if len(with_au) > len(shown):
        note += f"; the first {len(shown)} are listed (all are in the CSV)"
    return [_row(page, records[i], aus, i + 1) for i in shown], note


def _page_context(page: VideoPage, aus: Sequence[str]) -> dict[str, Any]:
    rows, note = ([], "") if page.failed else _rows(page, aus)
    ok = _ok_rows(page)
    kinds = ok["kind"].astype(str) if "kind" in ok else pd.Series(dtype=str)
    if page.mode == "windows":
        empty = "no window has an AU present at the bundle's thresholds"
    else:
        empty = "no expression spotted"
    return {
        "name": page.name,
        "path": page.path,
        "status": page.status,
        "failed": page.failed,
        "mode": page.mode,
        "fps": page.fps,
        "length": _length(page.duration_s),
        "csv": page.csv,
        "timeline": data_uri(page.timeline_png) if page.timeline_png else None,
        "rows": rows,
        "rows_note": note,
        "empty_note": empty,
        "has_explain": bool(page.explain),
        "n_events": 0 if page.mode == "windows" else len(ok),
        "n_micro": int((kinds == "micro").sum()),
        "n_macro": int((kinds == "macro").sum()),
        "au_counts": _au_counts(page, aus),
    }


def render_report(
    pages: Sequence[VideoPage],
    aus: Sequence[str],
    thresholds: Sequence[float],
    *,
    bundle: str,
    model: str,
    version: str,
    title: str = "AU events per video",
) -> str:
    """The page's HTML (see the module's docstring)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("aullm.reporting", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    videos = [_page_context(p, aus) for p in pages]
    events = sum(v["n_events"] for v in videos)
    au_totals = {au: sum(v["au_counts"].get(au, 0) for v in videos) for au in aus}
    frequencies = [
        {
            "title": au_title(au),
            "threshold": float(t),
            "count": au_totals[au],
            "share": f"{100 * au_totals[au] / events:.0f}%" if events else "",
        }
        for au, t in zip(aus, thresholds)
    ]
    return env.get_template(TEMPLATE).render(
        title=title,
        bundle=bundle,
        model=model,
        version=version,
        created=dt.datetime.now().replace(microsecond=0).isoformat(sep=" "),
        aus=list(aus),
        au_titles={au: au_title(au) for au in aus},
        videos=videos,
        totals={
            "events": events,
            "micro": sum(v["n_micro"] for v in videos),
            "macro": sum(v["n_macro"] for v in videos),
            "au_counts": au_totals,
        },
        frequencies=frequencies if events else [],
    )


__all__ = ["MAX_WINDOW_ROWS", "VideoPage", "data_uri", "gray_png", "render_report"]
