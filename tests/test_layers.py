"""Imports only go down the layers, and no modules import each other in a circle.

The layers, top to bottom, are listed once, here (README's Layout section and
``../shared/DESIGN.md`` draw the same picture). A module may import modules of its own
layer or of a lower one. Every ``import`` of a ``gridflow`` module counts, at module
level or inside a function, except the ones under ``if TYPE_CHECKING:`` (they never
run: a mixin naming the class it is mixed into).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import gridflow

PACKAGE = Path(gridflow.__file__).resolve().parent

#: Top to bottom: (layer name, its modules as prefixes of the dotted name below gridflow).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("what people touch", ("cli", "sweep_cli", "data_cli", "control", "fakex")),
    ("flows, sources and sinks", ("dataflows",)),
    ("research engines", ("sweep", "wfo")),
    ("operations: preflight, status", ("ops",)),
    ("exchange adapters", ("exchange",)),
    ("pure logic", ("operators",)),
    ("journal", ("journal",)),
    ("market data files", ("data",)),
    ("settings, records, names", ("config", "events", "event_kinds", "ids", "timeframes",
                                  "chunks", "indicator_names", "metrics", "isotime", "redaction",
                                  "command_payloads", "candle_rules", "_numba_cache",
                                  "series_spec", "latency_trace", "")),
]


def _layer(module: str) -> int:
    """Index in :data:`LAYERS` of ``gridflow.<module>`` (``""`` is the package itself)."""
    best, depth = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".") or p == "") and len(p) > depth:
                best, depth = i, len(p)
    assert best is not None, f"gridflow.{module} is in no layer of LAYERS"
    return best


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str:
    """The module a dotted ``gridflow...`` name lives in (``a.b.func`` -> ``a.b``)."""
    name = name.removeprefix("gridflow").removeprefix(".")
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for b in node.body for n in ast.walk(b))
    return skip


def imports_of(module: str) -> set[str]:
    """The gridflow modules ``module`` imports (resolved to module names)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    skip = _type_checking_nodes(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.split(".")[0] == "gridflow"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - node.level + 1]
                mod = ".".join(["gridflow", *base, *([node.module] if node.module else [])])
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "gridflow":
                continue
            names = [f"{mod}.{a.name}" for a in node.names]
        else:
            continue
        found.update(_resolve(n) for n in names)
    found.discard(module)
    return found


GRAPH = {m: imports_of(m) for m in MODULES}


def test_every_module_is_in_a_layer_and_imports_only_its_own_or_lower_layers() -> None:
    upward = []
    for module, deps in sorted(GRAPH.items()):
        for dep in sorted(deps):
            if _layer(dep) < _layer(module):
                upward.append(f"gridflow.{module} ({LAYERS[_layer(module)][0]}) imports "
                              f"gridflow.{dep} ({LAYERS[_layer(dep)][0]})")
    assert upward == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan 1972)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circle() -> None:
    assert _cycles(GRAPH) == []


def test_the_checks_see_an_upward_import_and_a_circle() -> None:
    """The checks can fail: a made-up upward edge and a made-up circle are found."""
    assert _layer("operators.risk") > _layer("dataflows.replay")
    assert _layer("journal.store") > _layer("operators.engine") > _layer("sweep.kernel")
    assert _layer("control.app.views") == 0 and _layer("") == len(LAYERS) - 1
    assert "operators.engine_commands" in GRAPH["operators.engine"]
    graph = {k: set(v) for k, v in GRAPH.items()}
    graph["operators.strategies"].add("operators.engine")  # engine -> strategies -> engine
    assert any({"operators.engine", "operators.strategies"} <= set(c) for c in _cycles(graph))


@pytest.mark.parametrize("source,expected", [
    ("from gridflow.journal.store import Journal", {"journal.store"}),
    ("from gridflow.operators import risk", {"operators.risk"}),
    ("import gridflow.journal.sweep_schema", {"journal.sweep_schema"}),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from gridflow.cli import main",
     set()),
    ("def f():\n    from gridflow.dataflows.replay import build_flow", {"dataflows.replay"}),
])
def test_imports_are_read_at_any_depth_but_type_checking(tmp_path, monkeypatch, source,
                                                          expected) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(source)
    monkeypatch.setitem(MODULES, "probe", probe)
    assert imports_of("probe") == expected
