"""What the Python API hands back: a `Run` (a run directory on disk) and its `Metrics` (a metrics.json).

Both are views of files (docs/formats.md describes them), so a run trained yesterday, on another machine or by
the command line opens the same way as one trained a minute ago.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import pandas as pd

from aullm.config import Config, load_config
from aullm.core.errors import UserError
from aullm.evaluation.metrics import METRICS
from aullm.training import run_dir as rd


@dataclass(frozen=True)
class Metrics:
    """A run's scores: every metric per AU and averaged, per seed and over seeds, with 95% intervals when the run
    was scored with the bootstrap on (`eval.bootstrap`). `data` is metrics.json as a dict."""

    data: dict[str, Any]

    @classmethod
    def read(cls, path: Union[str, Path]) -> Metrics:
        """Read a metrics.json (or the one in a run directory)."""
        path = Path(path)
        if path.is_dir():
            path = path / "metrics.json"
        try:
            return cls(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise UserError(f"no metrics.json at {path} (aullm evaluate RUN_DIR writes it)") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise UserError(f"cannot read {path}: {err}") from None

    @property
    def aus(self) -> list[str]:
        return list(self.data.get("aus", []))

    def __repr__(self) -> str:
        """One line: the run, its size, and the headline metric and AUC averaged over AUs, with intervals."""
        run = self.data.get("run") or {}
        seeds = self.data.get("seeds") or []
        head = [str(run.get("name", "?")), f"{len(self.aus)} AUs", f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}"]
        scores = []
        for metric in dict.fromkeys([self.data.get("headline", "f1_macro"), "auc"]):
            stat = ((self.data.get("summary") or {}).get(metric) or {}).get("avg") or {}
            if stat.get("mean") is not None:
                ci = stat.get("ci95")
                interval = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if isinstance(ci, list) and None not in ci else ""
                scores.append(f"{metric} {stat['mean']:.3f}{interval}")
        return f"Metrics({', '.join(head)}: {'; '.join(scores) or 'no scores'})"

    @property
    def seeds(self) -> list[int]:
        return [int(s) for s in self.data.get("seeds", [])]

    def print(self) -> None:
        """The per-AU table under every convention, the trivial rows and the notes, on the terminal."""
        from aullm.reporting.terminal import print_run_summary

        print_run_summary(self.data)

    def mean(self, metric: str = "f1_macro", au: str = "avg") -> Optional[float]:
        """The mean over seeds of one metric for one AU (or `avg`, the average over AUs)."""
        entry = self.data["summary"][metric]
        stat = entry["avg"] if au == "avg" else entry["per_au"].get(au)
        return None if stat is None else stat["mean"]

    def to_frame(self) -> pd.DataFrame:
        """A tidy table: one row per (seed, AU, metric) with `value` and, when present, `ci_low`/`ci_high`.

        Rows with `seed` "mean" hold the mean over seeds (with `std` and `n`); `au` "avg" is the average over
        AUs. Scores are fractions (0..1), as in metrics.json.
        """
        rows: list[dict[str, Any]] = []
        for seed, scores in self.data.get("per_seed", {}).items():
            intervals = scores.get("ci95") or {}
            for metric in METRICS:
                values = scores["per_au"].get(metric, {})
                ci = intervals.get(metric) or {}
                for au, value in [*values.items(), ("avg", scores["avg"].get(metric))]:
                    low_high = ci.get("avg") if au == "avg" else (ci.get("per_au") or {}).get(au)
                    rows.append(_row(str(seed), au, metric, value, low_high))
        for metric in METRICS:
            entry = self.data["summary"].get(metric)
            if entry is None:
                continue
            for au, stat in [*entry["per_au"].items(), ("avg", entry["avg"])]:
                row = _row("mean", au, metric, stat.get("mean"), stat.get("ci95"))
                rows.append({**row, "std": stat.get("std"), "n": stat.get("n")})
        columns = ["seed", "au", "metric", "value", "ci_low", "ci_high", "std", "n"]
        return pd.DataFrame(rows, columns=columns)


def _headline(item: dict[str, Any]) -> bool:
    return item.get("au") == "avg" and item.get("metric") in ("f1_macro", "auc") and item.get("diff") is not None


def _diff_text(item: dict[str, Any]) -> str:
    low, high, p = item.get("ci_low"), item.get("ci_high"), item.get("p")
    interval = f" [{low:+.3f}, {high:+.3f}]" if low is not None and high is not None else ""
    return f"{item['metric']} {item['diff']:+.3f}{interval}" + (f" p={p:.3g}" if p is not None else "")


def _row(seed: str, au: str, metric: str, value: Any, interval: Any) -> dict[str, Any]:
    low, high = interval if isinstance(interval, (list, tuple)) and len(interval) == 2 else (None, None)
    return {"seed": seed, "au": au, "metric": metric, "value": value, "ci_low": low, "ci_high": high}


@dataclass(frozen=True)
class Comparison:
    """`aullm compare`: B − A per metric and AU with a paired subject-bootstrap interval, p and Holm-corrected p,
    for every later run against the first. `data` is the JSON object `aullm compare --json` prints."""

    data: dict[str, Any]

    def __repr__(self) -> str:
        """A few lines: per pair of runs, B − A averaged over AUs for F1 macro and AUC, with the 95% interval and
        p (`to_frame()` has every metric and AU, `print()` the tables)."""
        pairs = self.data.get("pairs", [self.data])
        rows = sum(len(pair.get("comparisons", [])) for pair in pairs)
        lines = [f"Comparison(B − A averaged over AUs; to_frame(): {rows} rows, print(): the tables"]
        for pair in pairs:
            parts = [_diff_text(item) for item in pair.get("comparisons", []) if _headline(item)]
            names = f"{Path(str(pair.get('b'))).name} − {Path(str(pair.get('a'))).name}"
            lines.append(f"  {names}: {'; '.join(parts) or 'no scores'}")
        return "\n".join(lines) + ")"

    def to_frame(self) -> pd.DataFrame:
        """One row per (pair, metric, AU): a, b, diff (b − a), ci_low, ci_high, p, p_holm, verdict."""
        rows = []
        for pair in self.data.get("pairs", [self.data]):
            for item in pair["comparisons"]:
                rows.append({"run_a": pair["a"], "run_b": pair["b"], **item})
        return pd.DataFrame(rows)

    def print(self) -> None:
        """The comparison tables on the terminal, and what the p-values mean."""
        from aullm.reporting.comparisons import print_comparison

        print_comparison(self.data)


@dataclass(frozen=True)
class Run:
    """A run directory written by `aullm train` (or `aullm.train`): its config, predictions, metrics, folds."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    @property
    def config(self) -> Config:
        """The fully resolved config the run was trained with."""
        path = self.path / rd.CONFIG
        if not path.is_file():
            raise UserError(f"{self.path} is not a run directory: no config.yaml (written by aullm train)")
        return load_config(path, resolved=True)

    @property
    def complete(self) -> bool:
        """Whether every fold is done (metrics.json is written then)."""
        return (self.path / "metrics.json").is_file() and not self.unfinished_folds

    @property
    def unfinished_folds(self) -> list[str]:
        folds = self.path / rd.FOLDS
        if not folds.is_dir():
            return []
        return sorted(p.name for p in folds.iterdir() if p.is_dir() and not rd.fold_is_done(p))

    def predictions(self) -> pd.DataFrame:
        """predictions.csv: seed, fold, subject, sample, prob_<AU>…, label_<AU>… (one row per sample and seed)."""
        path = self.path / rd.PREDICTIONS
        if not path.is_file():
            raise UserError(f"{self.path} has no predictions.csv yet (no fold is done)")
        return rd.read_predictions(path)

    @property
    def metrics(self) -> Metrics:
        """metrics.json as written when the run finished (or by the last `evaluate`)."""
        return Metrics.read(self.path)

    @property
    def bundle(self) -> Optional[Path]:
        """The model bundle of the final model, when the run was trained with `save_final`."""
        path = self.path / "bundle"
        return path if (path / "manifest.json").is_file() else None

    def __repr__(self) -> str:
        """The path, then what the run is and how far it got (read from its files; never raises)."""
        try:
            cfg = self.config
        except UserError:
            return f"Run({str(self.path)!r}: not a run directory)"
        model = cfg.model.name + (" (no LLM)" if getattr(cfg.model, "reasoner", None) == "none" else "")
        parts = [cfg.name, model, cfg.data.dataset]
        if self.complete:
            try:
                f1 = self.metrics.mean("f1_macro")
            except (UserError, KeyError):
                f1 = None
            parts.append("complete" + (f", f1_macro {f1:.3f}" if f1 is not None else ""))
        else:
            unfinished = self.unfinished_folds
            parts.append(f"{len(unfinished)} fold(s) unfinished" if unfinished else "not scored yet")
        return f"Run({str(self.path)!r}: {', '.join(parts)})"


__all__ = ["Comparison", "Metrics", "Run"]
