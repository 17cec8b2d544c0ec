"""report.md in the paper's layout: our rows beside the published ones, the trivial rows, the conventions, the
ablations and the plots.

Everything here reads run directories only (via `load_metrics`), so a report can be rebuilt at any time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from aullm.core.console import logger
from aullm.core.errors import UserError
from aullm.core.io import check_output_dir, write_text
from aullm.evaluation.metrics import HEADLINE, LABELS, METRICS, OPTIMISTIC
from aullm.evaluation.run_scores import load_metrics
from aullm.evaluation.trivial import TRIVIAL, TRIVIAL_LABELS
from aullm.reporting import paper, plots
from aullm.reporting.comparisons import comparison_section
from aullm.reporting.markdown import DASH, SHORT, markdown_table, pct


@dataclass
class RunScores:
    """One run directory and its metrics.json content."""

    dir: Path
    metrics: dict[str, Any]
    label: str = ""

    @property
    def info(self) -> dict[str, Any]:
        return self.metrics.get("run", {})

    @property
    def aus(self) -> list[str]:
        return list(self.metrics["aus"])

    @property
    def n_seeds(self) -> int:
        return len(self.metrics.get("seeds", []))


# ----------------------------------------------------------------------------------------------- formatting


def is_llm_ablation(info: dict[str, Any]) -> bool:
    """An AU-LLM run whose LLM is randomly initialised or removed: it reproduces no published row."""
    return info.get("llm_init") == "random" or info.get("reasoner") == "none"


def model_text(info: dict[str, Any]) -> str:
    """model (variant, LLM ablation) as the runs table shows it."""
    tags = [info["variant"]] if (info.get("variant") or "all") != "all" else []
    if info.get("reasoner") == "none":
        tags.append("no LLM")
    elif info.get("llm_init") == "random":
        tags.append("LLM randomly initialised")
    return info.get("model", "?") + (f" ({', '.join(tags)})" if tags else "")


def published(value: Optional[float]) -> str:
    """A paper value (already in %)."""
    return DASH if value is None else f"{value:.1f}"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "run"


# ------------------------------------------------------------------------------------------------ rows


def metric_row(entry: Optional[dict[str, Any]], aus: Sequence[str], std: bool = True) -> list[str]:
    """Per-AU cells + Avg. of one summary entry ({"per_au", "avg"}); all dashes when the metric is absent."""
    if entry is None:
        return [DASH] * (len(aus) + 1)
    per_au = entry.get("per_au", {})
    return [pct(per_au.get(au), std) for au in aus] + [pct(entry.get("avg"), std)]


def trivial_rows(runs: Sequence[RunScores], metric: str, aus: Sequence[str]) -> list[list[str]]:
    """Trivial rows under one convention. Runs on the same labels share one set of rows; runs whose labels
    differ (other folds, other dataset version) each get theirs, tagged with the run's label."""
    blocks: list[tuple[RunScores, list[list[str]]]] = []
    for run in runs:
        block = []
        for name in TRIVIAL:
            entry = run.metrics.get("trivial", {}).get(name, {}).get(metric)
            block.append([TRIVIAL_LABELS.get(name, name), "chance", *metric_row(entry, aus, std=False)])
        if any(cell != DASH for row in block for cell in row[2:]):  # undefined for this run (no val): skip
            blocks.append((run, block))
    if not blocks:
        return []
    distinct = {repr(block) for _, block in blocks}
    if len(distinct) == 1:
        return blocks[0][1]
    rows, seen = [], set()
    for run, block in blocks:
        if repr(block) in seen:
            continue
        seen.add(repr(block))
        rows += [[f"{row[0]} [{run.label}]", *row[1:]] for row in block]
    return rows


def our_source(run: RunScores) -> str:
    """'ours (N seeds)', or 'ours, reconstruction (N seeds)' for a model rebuilt from a paper without code."""
    seeds = run.n_seeds
    kind = "ours, reconstruction" if run.info.get("reconstruction") else "ours"
    return f"{kind} ({seeds} seed{'s' if seeds != 1 else ''})"


def comparison_key(run: RunScores) -> tuple[str, str, Optional[str], tuple[str, ...]]:
    info = run.info
    return (info.get("dataset", "?"), info.get("protocol", "?"), info.get("target"), tuple(run.aus))


def group_title(key: tuple[str, str, Optional[str], tuple[str, ...]]) -> str:
    dataset, protocol, target, _ = key
    name = paper.DATASET_NAMES.get(dataset, dataset)
    if protocol == "cross_domain":
        return f"{name} → {paper.DATASET_NAMES.get(target or '?', target)} (cross-domain)"
    return f"{name} ({protocol.upper()})"


# ------------------------------------------------------------------------------------------------ report


def load_runs(run_dirs: Sequence[Path]) -> list[RunScores]:
    """Score every run (from its CSVs) and give each a unique label: its config name, else name [dir]."""
    runs = [RunScores(Path(d), load_metrics(Path(d))) for d in run_dirs]
    names = [r.info.get("name") or r.dir.name for r in runs]
    for run, name in zip(runs, names):
        run.label = name if names.count(name) == 1 else f"{name} [{run.dir.name}]"
    return runs


def per_au_section(runs: Sequence[RunScores], key: tuple, out: Path, plot_prefix: str) -> tuple[list[str], list[str]]:
    """The headline table in the paper's layout (+ plot); returns (markdown lines, notes)."""
    dataset, protocol, target, aus = key
    table = paper.paper_table_for(dataset, protocol, target)
    columns = list(table.aus) if table is not None else list(aus)
    header = ["Method", "Source", *columns, "Avg."]
    rows: list[list[str]] = []
    notes: list[str] = []
    matched: dict[str, paper.PaperRow] = {}
    if table is not None:
        tag = "paper " + table.source.split(", ")[-1].replace("Table ", "T")
        for run in runs:
            row = paper.matching_row(
                table, run.info.get("model", ""), run.info.get("llm", ""), (run.info.get("variant") or "all")
            )
            if row is not None and not is_llm_ablation(run.info):
                matched[run.label] = row
        for prow in table.rows:
            who = [label for label, r in matched.items() if r is prow]
            source = tag + (f" ↔ {', '.join(who)}" if who else "")
            rows.append([prow.method, source, *(published(prow.values.get(a)) for a in columns), published(prow.avg)])
        if set(columns) != set(aus):
            notes.append(
                f"our runs score AUs {', '.join(aus)}; the paper's table has {', '.join(columns)} — our "
                "Avg. is over our AUs"
            )
    else:
        notes.append(
            f"no published numbers for {paper.DATASET_NAMES.get(dataset, dataset)} under this protocol; "
            "compare with the trivial rows"
        )
    for run in runs:
        rows.append([run.label, our_source(run), *_run_cells(run, HEADLINE, columns)])
    rows.extend(trivial_rows(runs, HEADLINE, columns))
    lines = [
        f"### {LABELS[HEADLINE]}" + (f" — layout of the paper's {table.title.split(':')[0]}" if table else ""),
        "",
        markdown_table(header, rows),
        "",
    ]
    if table is not None:
        lines += [
            f"Published rows: {table.source.split(', ', 1)[-1]} of {paper.PAPER}. ↔ marks the row each run reproduces.",
            "",
        ]
    # plot: our runs and the published rows they reproduce
    series: dict[str, dict[str, Any]] = {}
    for run in runs:
        entry = run.metrics["summary"].get(HEADLINE) or {}
        series[run.label] = {
            **{a: _stat(entry.get("per_au", {}).get(a)) for a in columns},
            "Avg.": _stat(entry.get("avg")),
        }
    hatched = []
    for prow in matched.values():
        name = f"paper: {prow.method}"
        if name not in series:
            series[name] = {**{a: prow.values.get(a) for a in columns}, "Avg.": prow.avg}
            hatched.append(name)
    path = plots.plot_per_au(
        series,
        columns,
        out / f"{plot_prefix}_per_au.png",
        title=f"{SHORT[HEADLINE]} per AU (paper convention) — {group_title(key)}",
        hatched=hatched,
    )
    lines += [f"![per-AU F1]({path.name})", ""]
    return lines, notes


def _stat(entry: Optional[dict[str, Any]]) -> Optional[tuple[Optional[float], ...]]:
    """A {"mean","std"[,"ci95"]} fraction → (mean %, std %[, low %, high %]) for plots (the interval is drawn
    as the error bar when there is one)."""
    if not entry or entry.get("mean") is None:
        return None
    mean, std = 100 * entry["mean"], 100 * (entry.get("std") or 0.0)
    ci = entry.get("ci95")
    return (mean, std, 100 * ci[0], 100 * ci[1]) if ci else (mean, std)


def _run_cells(run: RunScores, metric: str, columns: Sequence[str]) -> list[str]:
    entry = run.metrics["summary"].get(metric)
    if entry is None:
        return [DASH] * (len(columns) + 1)
    per_au = entry.get("per_au", {})
    return [pct(per_au.get(a)) for a in columns] + [pct(entry.get("avg"))]


def conventions_section(runs: Sequence[RunScores], key: tuple, out: Path, plot_prefix: str) -> list[str]:
    """One table per other convention (our rows + trivial rows) and a chart of averages under all of them."""
    aus = list(key[3])
    lines = ["### Other conventions", ""]
    for metric in METRICS:
        if metric == HEADLINE:
            continue
        title = LABELS[metric]
        lines += [f"#### {title}", ""]
        if metric in OPTIMISTIC:
            lines += [
                "**Optimistic:** each AU's threshold is picked on the test predictions themselves (as the "
                "AU-LLM reference code does); not a fair estimate of performance on new subjects.",
                "",
            ]
        rows = [[run.label, our_source(run), *_run_cells(run, metric, aus)] for run in runs]
        rows += trivial_rows(runs, metric, aus)
        lines += [markdown_table(["Method", "Source", *aus, "Avg."], rows), ""]
        if metric == "f1_macro_val_tuned" and all(r.metrics["summary"].get(metric) is None for r in runs):
            lines += ["Not available: the runs have no val_predictions.csv (set eval.validation_subjects > 0).", ""]
    series: dict[str, dict[str, Any]] = {}
    for run in runs:
        series[run.label] = {m: _stat((run.metrics["summary"].get(m) or {}).get("avg")) for m in METRICS}
    hatched = []
    first = runs[0]
    for name in TRIVIAL:
        label = TRIVIAL_LABELS[name]
        series[label] = {m: _stat((first.metrics["trivial"][name].get(m) or {}).get("avg")) for m in METRICS}
        hatched.append(label)
    names = {m: SHORT[m].replace(" (OPTIMISTIC)", "\n(OPTIMISTIC)") for m in METRICS}
    path = plots.plot_conventions(
        series,
        names,
        out / f"{plot_prefix}_conventions.png",
        title=f"Average over AUs under every convention — {group_title(key)} (test-tuned is OPTIMISTIC)",
        hatched=hatched,
    )
    lines += [f"![conventions]({path.name})", ""]
    return lines


def ablation_section(runs: Sequence[RunScores], key: tuple, out: Path, plot_prefix: str) -> list[str]:
    """Table 3 layout (variant × LLM, average F1) and the Fig. 2 chart, when the group holds AU-LLM variants."""
    ours = [r for r in runs if r.info.get("model") == "au_llm" and not is_llm_ablation(r.info)]
    variants = {(r.info.get("variant") or "all") for r in ours}
    if not ours or variants == {"all"}:
        return []
    dataset = key[0]
    published_grid = paper.TABLE3.get(dataset) if key[1] == "loso" else None
    ours_grid: dict[str, dict[str, Any]] = {}
    notes = []
    for run in ours:
        llm = paper.canonical_llm(run.info.get("llm", "?"))
        cell = ours_grid.setdefault(llm, {})
        variant = run.info.get("variant") or "all"
        if variant in cell:
            notes.append(f"several runs for {variant} with {llm}; showing {run.label}")
        cell[variant] = (run.metrics["summary"][HEADLINE] or {}).get("avg")
    header = ["Variant"]
    if published_grid:
        header += [f"paper {paper.ABLATION_LLMS[llm]}" for llm in paper.ABLATION_LLMS]
    header += [f"ours {paper.ABLATION_LLMS.get(llm, llm)}" for llm in ours_grid]
    rows = []
    for variant, name in paper.VARIANTS.items():
        row = [name]
        if published_grid:
            row += [published(published_grid[variant].get(llm)) for llm in paper.ABLATION_LLMS]
        row += [pct(ours_grid[llm].get(variant)) for llm in ours_grid]
        rows.append(row)
    lines = [
        f"### Ablation — layout of the paper's Table 3 ({LABELS[HEADLINE]}, Avg. over AUs)",
        "",
        markdown_table(header, rows),
        "",
    ]
    if published_grid:
        lines += [f"Published columns: arXiv 2507.21778, Table 3 ({'a' if dataset == 'casme2' else 'b'}).", ""]
    lines += [f"- {n}" for n in notes]
    panels: dict[str, dict[str, dict[str, Any]]] = {}
    title = paper.DATASET_NAMES.get(dataset, dataset)
    if published_grid:
        panels[f"{title} (paper, Table 3)"] = {
            paper.ABLATION_LLMS[llm]: {paper.VARIANTS[v]: published_grid[v][llm] for v in paper.VARIANTS}
            for llm in paper.ABLATION_LLMS
        }
    panels[f"{title} (ours)"] = {
        paper.ABLATION_LLMS.get(llm, llm): {paper.VARIANTS[v]: _stat(cell.get(v)) for v in paper.VARIANTS}
        for llm, cell in ours_grid.items()
    }
    path = plots.plot_ablation(
        panels,
        list(paper.VARIANTS.values()),
        out / f"{plot_prefix}_ablation.png",
        title=f"Ablation in the style of the paper's Fig. 2 — {group_title(key)}",
    )
    lines += ["", f"![ablation]({path.name})", ""]
    return lines


def runs_table(runs: Sequence[RunScores]) -> str:
    header = ["Run", "Directory", "Dataset", "Protocol", "Model", "LLM", "Seeds", "Folds", "Samples", "Threshold"]
    rows = []
    for run in runs:
        info, m = run.info, run.metrics
        protocol = info.get("protocol", "?") + (f" → {info['target']}" if info.get("target") else "")
        model = model_text(info)
        model += " — reconstruction" if info.get("reconstruction") else ""
        unfinished = info.get("unfinished_folds") or []
        folds = f"{len(m.get('folds', []))}" + (f" ({len(unfinished)} unfinished)" if unfinished else "")
        rows.append(
            [
                run.label,
                str(run.dir),
                info.get("dataset", "?"),
                protocol,
                model,
                info.get("llm", "?"),
                ", ".join(str(s) for s in m.get("seeds", [])),
                folds,
                str(m.get("samples", "?")),
                str(m.get("threshold", "?")),
            ]
        )
    return markdown_table(header, rows, text_columns=6)


def build_report(runs: Sequence[RunScores], out: Path) -> str:
    """report.md text for scored runs; writes the plots into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# aullm report",
        "",
        f"{len(runs)} run(s). Scores are percent with one decimal, mean ± std over seeds (sample std), then "
        "[the 95% subject-level bootstrap interval] (error bars in the plots; ± std where a run has no interval). "
        "Per seed, all folds' predictions are concatenated and scored once per AU (never averaged per fold), then "
        "averaged over AUs. The headline convention is the paper's: F1 macro (mean of positive- and negative-class "
        "F1) at the fixed threshold. Trivial rows are computed on the same labels, so chance is visible under every "
        "convention.",
        "",
        "## Runs",
        "",
        runs_table(runs),
        "",
    ]
    groups: dict[tuple, list[RunScores]] = {}
    for run in runs:
        groups.setdefault(comparison_key(run), []).append(run)
    for key, members in groups.items():
        prefix = slug("_".join([key[0], key[1]] + ([key[2]] if key[2] else [])))
        if len(groups) > 1 and sum(1 for k in groups if k[:3] == key[:3]) > 1:
            prefix += "_" + slug("-".join(key[3]))
        lines += [f"## {group_title(key)} — AUs {', '.join(key[3])}", ""]
        table_lines, notes = per_au_section(members, key, out, prefix)
        lines += table_lines + [f"- {n}" for n in notes] + ([""] if notes else [])
        lines += ablation_section(members, key, out, prefix)
        lines += conventions_section(members, key, out, prefix)
    if len(runs) > 1:
        first = runs[0].metrics.get("bootstrap") or {}
        lines += comparison_section(
            [r.dir for r in runs],
            [r.label for r in runs],
            int(first.get("replicates", 0)),
            int(first.get("seed", 0)),
            out,
        )
    loss_lines = []
    for run in runs:
        logs = plots.read_train_logs(run.dir)
        path = plots.plot_loss_curves(logs, out / f"loss_{slug(run.label)}.png", title=f"Training loss — {run.label}")
        if path is not None:
            loss_lines += [f"![training loss of {run.label}]({path.name})", ""]
    lines += ["## Training loss", ""] + (loss_lines or ["No train_log.csv found in the runs' fold folders.", ""])
    lines += ["## Notes", ""]
    seen: dict[tuple[str, str], list[str]] = {}
    for run in runs:
        for name, text in run.metrics.get("notes", {}).items():
            seen.setdefault((name, text), []).append(run.label)
    for (name, text), labels in seen.items():
        who = "all runs" if len(labels) == len(runs) and len(runs) > 1 else ", ".join(labels)
        lines.append(f"- {name} ({who}): {text}")
    lines += ["", f"Published numbers: {paper.PAPER}, Tables 1–4 (transcribed in aullm/reporting/paper.py).", ""]
    return "\n".join(lines)


def write_report(run_dirs: Sequence[Path], out: Optional[Path] = None) -> Path:
    """Score the runs, write report.md and its PNGs into `out` (default: the first run directory)."""
    if not run_dirs:
        raise UserError("report needs at least one run directory")
    out = Path(out) if out is not None else Path(run_dirs[0])
    check_output_dir(out, "report folder")
    runs = load_runs(run_dirs)
    text = build_report(runs, out)
    path = out / "report.md"
    write_text(path, text)
    logger.info("wrote %s", path)
    return path
