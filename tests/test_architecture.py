"""The import graph of `aullm`: no cycles, and every layer imports only the layers below it (docs/design.md).

Imports are read from the source with `ast`, function-level and type-only (`if TYPE_CHECKING:`) imports included:
a deferred import is a real dependency, and a type-only one ties the modules together just the same for a reader.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# (pattern, group, layer): one row per folder (docs/design.md, Layers), most specific first; `*` matches one name.
# Lower layers never import higher ones; within a layer a module imports only its own group.
LAYERS: list[tuple[str, str, int]] = [
    ("aullm.core", "foundation", 0),
    ("aullm.config", "config", 1),
    ("aullm.models.registry", "config", 1),
    ("aullm.models.*.configuration_*", "config", 1),  # each model's options, beside its modelling file
    ("aullm.data", "data", 2),
    ("aullm.models", "models", 2),
    ("aullm.training", "training", 3),
    ("aullm.evaluation", "evaluation", 3),
    ("aullm.spotting", "spotting", 3),
    ("aullm.reporting", "reporting", 4),
    ("aullm.inference", "inference", 4),
    ("aullm.workflows", "workflows", 5),
    ("aullm.api", "api", 6),
    ("aullm.datasets", "api", 6),
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


def import_graph() -> dict[str, set[str]]:
    files = module_files()

    def resolve(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(tree):
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
                for alias in node.names:  # `from aullm.data import faces` imports the module aullm.data.faces.detect
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
    for pattern, group, rank in LAYERS:
        if fnmatch.fnmatchcase(module, pattern) or fnmatch.fnmatchcase(module, pattern + ".*"):
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
    *("aullm.core.errors", "aullm.core.console", "aullm.core.io", "aullm.config", "aullm.core.memory"),
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
    """The checks above can fail: a deferred import, a two-module cycle and an upward import are all found."""
    package = tmp_path / "aullm"
    (package / "core").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "core" / "__init__.py").write_text("")
    (package / "core" / "io.py").write_text("def f():\n    from aullm.api import train\n")
    (package / "api.py").write_text("from aullm.core import io\n")
    monkeypatch.setattr(__import__(__name__), "SRC", tmp_path)
    graph = import_graph()
    assert graph["aullm.core.io"] == {"aullm.api"} and graph["aullm.api"] == {"aullm.core.io"}
    assert cycles(graph) == [["aullm.api", "aullm.core.io"]]
    assert layer_of("aullm.core.io")[1] < layer_of("aullm.api")[1]


def test_the_checker_sees_a_circle_made_of_type_only_imports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An import under `if TYPE_CHECKING:` counts: two modules that name each other's types are a circle."""
    package = tmp_path / "aullm"
    (package / "training").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "training" / "__init__.py").write_text("")
    (package / "training" / "execution.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from aullm.training.protocols import Session\n"
    )
    (package / "training" / "protocols.py").write_text("from aullm.training.execution import execute\n")
    monkeypatch.setattr(__import__(__name__), "SRC", tmp_path)
    assert cycles(import_graph()) == [["aullm.training.execution", "aullm.training.protocols"]]


def test_every_module_is_in_a_layer_by_its_folder() -> None:
    """A model's options sit in the config layer by their file name, the rest of its folder in the models layer."""
    assert layer_of("aullm.models.aullmpp.configuration_aullmpp") == ("config", 1)
    assert layer_of("aullm.models.aullmpp.modeling_aullmpp") == ("models", 2)
    for module in import_graph():
        layer_of(module)  # raises for a module in no layer


def test_dataset_names_are_one_list() -> None:
    """The config's `data.dataset` choices are exactly the registered readers."""
    from typing import get_args, get_type_hints

    from aullm.config import DataConfig
    from aullm.data.readers.registry import READERS

    assert set(get_args(get_type_hints(DataConfig)["dataset"])) == set(READERS)


#: Command-line flags may appear in messages only where a message is a command line the user can copy (pip's).
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]+")
ALLOWED_FLAGS = {"--no-deps"}


def _string_constants(tree: ast.Module) -> list[tuple[int, str]]:
    """Every string literal (and literal part of an f-string) that is not a docstring."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def flag_names_below_commands(src: Path) -> list[str]:
    found = []
    for module, path in sorted(module_files().items()):
        if layer_of(module)[0] == "commands" or module == "aullm":
            continue
        for line, text in _string_constants(ast.parse(path.read_text(encoding="utf-8"))):
            flags = set(FLAG.findall(text)) - ALLOWED_FLAGS
            if flags:
                found.append(f"{path.relative_to(src)}:{line} {sorted(flags)}")
    return found


def test_no_command_line_flag_names_below_the_commands() -> None:
    """Python users get errors naming the parameters they passed (`aullm.core.errors.arg`), never flags they did
    not type: only the command line turns parameters into flags."""
    assert flag_names_below_commands(SRC) == []


def test_the_flag_check_sees_a_flag_in_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "aullm" / "core"
    package.mkdir(parents=True)
    (tmp_path / "aullm" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    source = '"""Docstrings may say --out."""\ndef f(x):\n    raise ValueError(f"--out {x} bad")\n'
    (package / "io.py").write_text(source)
    monkeypatch.setattr(__import__(__name__), "SRC", tmp_path)
    assert flag_names_below_commands(tmp_path) == ["aullm/core/io.py:3 ['--out']"]
