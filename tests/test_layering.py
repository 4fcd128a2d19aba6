"""The import graph of the project's modules: no cycles, and the layers stay in order.

Layers, bottom up: `envs` (imports nothing of jaxrl); `jaxrl.data` (datasets and their files; no agents,
no training); the agents; the trainer; and what trains (`jaxrl.protocols.suite`, `jaxrl.protocols.corruption`, `jaxrl.train`,
...). Every import counts, at module level or inside a function: a lazy import hides a cycle from
Python, not from the design.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("jaxrl", "envs")


def _modules() -> dict[str, Path]:
    """Every module of the project by dotted name (a package by its own name, from its __init__.py)."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _imported(module: str, path: Path, modules: dict[str, Path]) -> dict[str, int]:
    """The project modules that `module` imports, each with the line of its first import."""
    is_package = path.name == "__init__.py"
    found: dict[str, int] = {}

    def add(name: str | None, line: int):
        # `import a.b.c` and `from a.b import c` (an attribute of a.b): the longest prefix that is a module
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name and name != module:
            found.setdefault(name, line)

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the package the module is in (a package's own, for __init__)
                package = module.split(".")
                if not is_package:
                    package = package[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([node.module] if node.module else []))
            else:
                base = node.module
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                add(submodule if submodule in modules else base, node.lineno)  # `from jaxrl.data import io`
    return found


def import_graph() -> dict[str, dict[str, int]]:
    modules = _modules()
    return {name: _imported(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, dict[str, int]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return components


def _path(graph: dict[str, dict[str, int]], start: str, goal, within=None) -> list[str] | None:
    """A shortest import chain start -> ... -> a module for which goal(name) holds (breadth first)."""
    parents, frontier = {start: None}, [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph[v]):
                if within is not None and w not in within:
                    continue
                if goal(w):
                    chain = [w, v]
                    while parents[chain[-1]] is not None:
                        chain.append(parents[chain[-1]])
                    return chain[::-1]
                if w not in parents:
                    parents[w] = v
                    following.append(w)
        frontier = following
    return None


def _describe(graph, chain: list[str]) -> str:
    return " -> ".join(f"{a} (line {graph[a][b]})" for a, b in zip(chain, chain[1:], strict=False)) + f" -> {chain[-1]}"


def test_the_graph_sees_every_kind_of_import():
    graph = import_graph()
    assert "jaxrl.data.dataset" in graph["jaxrl.data"]  # a package's __init__ importing its submodule
    assert "jaxrl.engine.trainer" in graph["jaxrl.train"]  # `from jaxrl import trainer`: the submodule
    assert "jaxrl.data" in graph["jaxrl.train"]  # `from jaxrl.data import load_dataset`: the package
    assert "jaxrl.agents.base" in graph["jaxrl.agents.dt"]
    assert "envs.gymnax_env" in graph["envs.registry"]  # imported inside a function
    assert not any(name.startswith(("jax.", "numpy")) for deps in graph.values() for name in deps)


def test_no_import_cycles():
    graph = import_graph()
    found = _cycles(graph)
    described = []
    for component in found:
        start = min(component)
        chain = _path(graph, start, lambda name, start=start: name == start, within=component)
        described.append(f"{sorted(component)}: e.g. {_describe(graph, chain)}")
    assert not found, "import cycles between project modules:\n" + "\n".join(described)


# Each layer of jaxrl/ and what it must never reach, directly or through others: the engine trains any
# agent on any data; protocols (suites, corruption, tables, L2M, HAMSTER) and the front end (config,
# train) are built on it, never the other way round.
ABOVE = {
    "jaxrl.data": ("jaxrl.agents", "jaxrl.engine", "jaxrl.protocols", "jaxrl.config", "jaxrl.train"),
    "jaxrl.agents": ("jaxrl.engine", "jaxrl.protocols", "jaxrl.config", "jaxrl.train"),
    "jaxrl.engine": ("jaxrl.protocols", "jaxrl.config", "jaxrl.train"),
}


@pytest.mark.parametrize("layer", list(ABOVE))
def test_a_layer_never_reaches_the_layers_above_it(layer):
    graph = import_graph()
    above = lambda name: name.startswith(tuple(f"{m}." for m in ABOVE[layer])) or name in ABOVE[layer]  # noqa: E731
    problems = []
    for module in sorted(graph):
        if module == layer or module.startswith(layer + "."):
            chain = _path(graph, module, above)
            if chain:
                problems.append(_describe(graph, chain))
    assert not problems, f"{layer} reaches modules above it:\n" + "\n".join(problems)


def test_envs_import_nothing_of_jaxrl():
    graph = import_graph()
    problems = [
        f"{module} imports {dep} (line {line})"
        for module, deps in sorted(graph.items())
        if module.split(".")[0] == "envs"
        for dep, line in deps.items()
        if dep.split(".")[0] == "jaxrl"
    ]
    assert not problems, "\n".join(problems)


def test_the_config_describes_a_run_without_reaching_what_runs_it():
    """`jaxrl.config` is data plus validation: it must not import the trainer, the suite generator (which
    trains agents) or the CLI module, so reading a config can never start training."""
    graph = import_graph()
    runners = ("jaxrl.engine.trainer", "jaxrl.protocols.suite", "jaxrl.train")
    chain = _path(graph, "jaxrl.config", lambda name: name in runners)
    assert chain is None, "jaxrl.config reaches " + _describe(graph, chain)
