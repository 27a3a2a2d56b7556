# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""The imports inside the tfmxne package go one way: no cycle.

Every ``import`` statement of every module is read with :mod:`ast`, those
inside functions included (a function-level import is a cycle deferred, not
removed). Importing ``tfmxne.x`` runs ``tfmxne/__init__.py`` first; that
implicit import of the parent package is not an edge (the package imports its
modules, not the reverse), an explicit ``import tfmxne`` is.
"""

import ast
from pathlib import Path

import pytest

import tfmxne

PKG = Path(tfmxne.__file__).resolve().parent


def _modules():
    mods = {}
    for path in PKG.rglob("*.py"):
        parts = path.relative_to(PKG.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def _target(name, mods):
    """The module of the package that ``name`` (a module or a name in one) is."""
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def import_graph():
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name if is_pkg else name.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        base = base.rpartition(".")[0]
                    full = base + ("." + node.module if node.module else "")
                else:
                    full = node.module or ""
                targets = [f"{full}.{a.name}" for a in node.names]
            else:
                continue
            for t in targets:
                t = _target(t, mods)
                if t is not None and t != name:
                    edges.add(t)
        graph[name] = edges
    return graph


def find_cycle(graph):
    """A cycle of ``graph`` as a list of nodes, or None."""
    state = {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt, stack)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [])
            if found:
                return found
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


#: The modules of a call, lowest first: each imports only modules before it,
#: so that a call runs one way (check, prepare, solve, build the result).
ORDER = (
    "tfmxne._validation",
    "tfmxne._options",
    "tfmxne.solver",
    "tfmxne._prepare",
    "tfmxne._problem",
    "tfmxne._result",
    "tfmxne._solve",
    "tfmxne._select",
    "tfmxne._batch",
    "tfmxne.path",
    "tfmxne.inverse",
)


def _reachable(graph, start):
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


def test_import_graph_has_no_cycle():
    graph = import_graph()
    # the graph is the package's (the parse found its layers)
    assert set(ORDER) | {"tfmxne", "tfmxne.cli"} <= set(graph)
    assert {"tfmxne._problem", "tfmxne._solve"} <= graph["tfmxne.path"]
    assert {"tfmxne._solve", "tfmxne._select", "tfmxne._batch"} <= graph["tfmxne.inverse"]
    assert "tfmxne" in graph["tfmxne.cli"]  # (a function-level `import tfmxne`)
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


@pytest.mark.parametrize("low", ORDER[:-1])
def test_one_way(low):
    """No module of a call reaches (imports, directly or not) a module after it."""
    reached = _reachable(import_graph(), low)
    above = set(ORDER[ORDER.index(low) + 1 :])
    assert not reached & above, sorted(reached & above)


def test_the_problem_and_the_result_are_apart():
    """The prepared problem and the result do not know each other: the solve
    (tfmxne._solve) takes the one and builds the other."""
    graph = import_graph()
    assert "tfmxne._result" not in _reachable(graph, "tfmxne._problem")
    assert "tfmxne._problem" not in _reachable(graph, "tfmxne._result")


def test_testing_helpers_stay_private():
    """The helpers of the tests and benchmarks (tfmxne._testing) are imported by
    no module of the package."""
    graph = import_graph()
    assert "tfmxne._testing.simulate" in graph
    users = {
        mod
        for mod, edges in graph.items()
        if not mod.startswith("tfmxne._testing")
        and any(e.startswith("tfmxne._testing") for e in edges)
    }
    assert not users, sorted(users)
