"""The package's shape: no import cycles (function-level imports included), a small top level, a
config layer that imports nothing from the runtime, and the public API at the top."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "augcli"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _targets(node: ast.AST, here: str, is_package: bool, modules: dict) -> list[str]:
    """The augcli modules an import statement depends on: the named module, or the submodules a
    ``from`` import names. (The packages in between run too, but a package whose ``__init__`` imports
    its own submodules is not a cycle; a module that takes names *from* a package's ``__init__`` is
    an edge to it.)"""
    if isinstance(node, ast.Import):
        named = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            anchor = here.split(".") if is_package else here.split(".")[:-1]
            anchor = anchor[: len(anchor) - node.level + 1]
            base = ".".join(anchor + ([base] if base else []))
        named = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
    return [name for name in named if name in modules]


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {imported module: line}, counting imports inside functions too. The root package
    is left out as a source: its only imports are the lazy re-exports of the public API (a facade
    over the leaves, run on attribute access), and every module may read ``augcli.__version__``."""
    modules = _modules()
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        edges = graph.setdefault(name, {})
        if name == "augcli":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _targets(node, name, path.name == "__init__.py", modules):
                    if target not in (name, "augcli"):
                        edges.setdefault(target, node.lineno)
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import():
    graph = {"a": {"b": 1}, "b": {"c": 3}, "c": {"a": 9}, "d": {"a": 1}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b": 1}, "b": {}}) == []


def test_the_graph_counts_imports_inside_functions():
    graph = import_graph()
    # engine/executors.py imports the worker pool inside a function only
    assert "augcli.engine.workers" in graph["augcli.engine.executors"]


def _loop(graph: dict[str, dict[str, int]], component: list[str]) -> str:
    """One closed path through a strongly connected component, with the line of each import."""
    inside, start = set(component), component[0]
    paths = {start: [start]}
    todo = [start]
    while todo:
        v = todo.pop(0)
        for w in graph[v]:
            if w == start:
                steps = paths[v] + [start]
                return " -> ".join(f"{a} (line {graph[a][b]})" for a, b in zip(steps, steps[1:])) + f" -> {start}"
            if w in inside and w not in paths:
                paths[w] = paths[v] + [w]
                todo.append(w)
    return ", ".join(component)


def test_no_import_cycle_among_augcli_modules():
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(_loop(graph, c) for c in found)


def test_the_top_level_holds_at_most_eight_modules():
    top = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))
    assert len(top) <= 8, top


RUNTIME = ("augcli.engine", "augcli.evaluation", "augcli.policy_search", "augcli.reporting", "augcli.cli",
           "augcli.pipeline", "augcli.adaptive", "augcli.datasets", "augcli.clean", "augcli.io")


def test_the_config_layer_imports_nothing_from_the_runtime():
    graph = import_graph()
    config = {m: edges for m, edges in graph.items() if m.startswith("augcli.config")}
    assert config
    bad = {m: sorted(t for t in edges if t.startswith(RUNTIME)) for m, edges in config.items()}
    assert not any(bad.values()), bad


def test_the_public_api_imports_from_the_top():
    code = ("from augcli import (load_strategy, run, RunOptions, evaluate, search, Pipeline, AdaptivePipeline,"
            " AdaptiveController, Transform, register, AugcliError, StrategyError, DataError, UsageError)\n"
            "import augcli.evaluation.api, augcli.policy_search.api, augcli.engine.runner\n"
            "assert callable(run) and callable(evaluate) and callable(search) and callable(load_strategy)\n"
            "assert run is augcli.engine.runner.run and evaluate is augcli.evaluation.api.evaluate\n"
            "assert search is augcli.policy_search.api.search\n"
            "import augcli\n"
            "assert set(augcli.__all__) >= {'run', 'evaluate', 'search', 'Pipeline', 'load_strategy'}\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_importing_augcli_loads_no_runtime_module():
    # `augcli --help` and `import augcli` stay cheap: the public names load on first use
    code = ("import sys, augcli\n"
            "loaded = sorted(m for m in sys.modules if m.startswith('augcli.'))\n"
            "assert loaded == [], loaded\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", ["nope", "runner"])
def test_an_unknown_top_level_name_is_an_attribute_error(name):
    import augcli

    with pytest.raises(AttributeError):
        getattr(augcli, name)


def test_pyproject_license_is_an_spdx_expression():
    """A ``license = { text = ... }`` table makes setuptools >= 77 print a deprecation box on every
    install (twice during ``make run``); PEP 639's expression string does not."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"
    assert any(r.startswith("setuptools>=77") for r in project["build-system"]["requires"])
