"""The import graph of `aullm`: no cycles, and every layer imports only the layers below it (docs/design.md).

Imports are read from the source with `ast`, function-level imports included (they are real dependencies, only
deferred). Imports under `if TYPE_CHECKING:` are left out: they exist for annotations and never run.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# (group, layer) by module-name prefix, most specific first. Lower layers never import higher ones; within a
# layer a module imports only its own group (data does not import models, training does not import evaluation).
LAYERS: list[tuple[str, str, int]] = [
    ("aullm.models.registry", "config", 1),
    ("aullm.models.au_llm_config", "config", 1),
    ("aullm.models.aullmpp_config", "config", 1),
    ("aullm.models.baselines_config", "config", 1),
    ("aullm.config", "config", 1),
    ("aullm.options", "foundation", 0),
    ("aullm.version", "foundation", 0),
    ("aullm.errors", "foundation", 0),
    ("aullm.console", "foundation", 0),
    ("aullm.hashing", "foundation", 0),
    ("aullm.io", "foundation", 0),
    ("aullm.provenance", "foundation", 0),
    ("aullm.runtime", "foundation", 0),
    ("aullm.memory", "foundation", 0),
    ("aullm.figures", "foundation", 0),
    ("aullm.data", "data", 2),
    ("aullm.models", "models", 2),
    ("aullm.training", "training", 3),
    ("aullm.evaluation", "evaluation", 3),
    ("aullm.reporting", "reporting", 4),
    ("aullm.bundle", "inference", 4),
    ("aullm.predict", "inference", 4),
    ("aullm.explain", "inference", 4),
    ("aullm.detector", "inference", 4),
    ("aullm.explain_plots", "inference", 4),
    ("aullm.crop", "inference", 4),
    ("aullm.bench", "inference", 4),
    ("aullm.workflows", "workflows", 5),
    ("aullm.api", "api", 6),
    ("aullm.results", "workflows", 5),
    ("aullm.datasets", "api", 6),
    ("aullm.demo", "workflows", 5),
    ("aullm.tracking", "workflows", 5),
    ("aullm.commands", "commands", 7),
    ("aullm.cli", "commands", 7),
    ("aullm.__main__", "commands", 7),
]


def module_files() -> dict[str, Path]:
    files = {}
    for path in (SRC / "aullm").rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        files[name] = path
    return files


def _type_checking_lines(tree: ast.Module) -> set[int]:
    """Line numbers inside `if TYPE_CHECKING:` blocks."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def import_graph() -> dict[str, set[str]]:
    files = module_files()

    def resolve(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_lines(tree)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package
                    for _ in range(node.level - 1):
                        anchor = anchor.rpartition(".")[0]
                    base = f"{anchor}.{base}" if base else anchor
                for alias in node.names:  # `from aullm.data import faces` imports the module aullm.data.faces
                    full = f"{base}.{alias.name}"
                    targets.append(full if full in files else base)
            for target in targets:
                if target.startswith("aullm"):
                    resolved = resolve(target)
                    if resolved and resolved != module:
                        graph[module].add(resolved)
        graph.setdefault(module, set())
    return graph


def layer_of(module: str) -> tuple[str, int]:
    if module == "aullm":
        return "commands", 7  # the package's public face re-exports the API
    for prefix, group, rank in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return group, rank
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and to docs/design.md")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_layers_import_only_downward() -> None:
    wrong = []
    for module, targets in sorted(import_graph().items()):
        group, rank = layer_of(module)
        for target in sorted(targets):
            target_group, target_rank = layer_of(target)
            if target_rank > rank or (target_rank == rank and target_group != group):
                wrong.append(f"{module} ({group}) imports {target} ({target_group})")
    assert wrong == []


#: What the command line may use besides the public API: its own helpers and the foundation (errors, console, file
#: checks, config types for option parsing, the memory setting). Work itself goes through aullm.api/aullm.datasets,
#: so the CLI and the Python API cannot drift.
CLI_MAY_IMPORT = {
    *("aullm", "aullm.api", "aullm.datasets"),
    *("aullm.errors", "aullm.console", "aullm.io", "aullm.config", "aullm.memory"),
}


def test_the_command_line_calls_only_the_public_api() -> None:
    wrong = []
    for module, targets in sorted(import_graph().items()):
        if layer_of(module)[0] != "commands" or module == "aullm":
            continue
        for target in sorted(targets):
            if target not in CLI_MAY_IMPORT and not target.startswith(("aullm.commands", "aullm.cli")):
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_the_checker_sees_function_level_imports_and_cycles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks above can fail: a deferred import and a two-module cycle are both found."""
    package = tmp_path / "aullm"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "io.py").write_text("def f():\n    from aullm.api import train\n")
    (package / "api.py").write_text("from aullm import io\n")
    monkeypatch.setattr(__import__(__name__), "SRC", tmp_path)
    graph = import_graph()
    assert graph["aullm.io"] == {"aullm.api"} and graph["aullm.api"] == {"aullm.io"}
    assert cycles(graph) == [["aullm.api", "aullm.io"]]
    assert layer_of("aullm.io")[1] < layer_of("aullm.api")[1]


def test_dataset_names_are_one_list() -> None:
    """The config's `data.dataset` choices are exactly the registered readers."""
    from typing import get_args, get_type_hints

    from aullm.config import DataConfig
    from aullm.data.readers import READERS

    assert set(get_args(get_type_hints(DataConfig)["dataset"])) == set(READERS)
