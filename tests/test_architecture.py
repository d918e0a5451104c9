"""The module map in docs/architecture.md matches the code, and nntrain/ has no import cycle
(lazy imports inside functions included) and no reach into another module's private names."""

import ast
import re

from conftest import ROOT

PACKAGE = ROOT / "nntrain"
DOCUMENTED = {"os._exit"}  # public API despite the underscore


def imports_of(path) -> set[str]:
    """The nntrain modules a file imports, anywhere in it (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:  # from . import x
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nntrain."):
            found.add(node.module.split(".")[1])
    return found


def graph() -> dict[str, set[str]]:
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    return {p.stem: imports_of(p) & (modules - {p.stem}) for p in PACKAGE.glob("*.py")}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node, path):
        state[node] = 1
        for child in sorted(edges.get(node, ())):
            if state.get(child) == 1:
                return path + [node, child]
            if child not in state:
                cycle = visit(child, path + [node])
                if cycle:
                    return cycle
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            cycle = visit(node, [])
            if cycle:
                return cycle
    return None


def test_no_import_cycle():
    # __init__ counted: a module that imports the package (for its version, say) while the
    # package's front door imports that module is a cycle too
    assert find_cycle(graph()) is None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) is not None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_module_uses_another_modules_private_names():
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                private = [a.name for a in node.names
                           if a.name.startswith("_") and not a.name.endswith("__")]
                assert not private, f"{path.name} imports {private} from .{node.module}"
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not (
                    node.attr.startswith("__") and node.attr.endswith("__")):
                owner = node.value
                if isinstance(owner, ast.Name) and f"{owner.id}.{node.attr}" in DOCUMENTED:
                    continue
                assert isinstance(owner, ast.Name) and owner.id in ("self", "cls"), (
                    f"{path.name}:{node.lineno} reaches into .{node.attr}")
    assert modules


def test_module_map_lists_every_module_and_its_imports():
    text = (ROOT / "docs" / "architecture.md").read_text()
    rows = dict(re.findall(r"^\| `(\w+)\.py` \| [^|]+ \|([^|]*)\|$", text, flags=re.M))
    edges = graph()
    documented = set(rows)
    assert documented == set(edges)  # __init__ and __main__ too
    for module, imports in rows.items():
        listed = {name for name in re.findall(r"\w+", imports)}
        assert listed == edges[module], module
    order = list(rows)  # the table reads from the bottom floor up: imports come earlier
    for module in order:
        assert all(order.index(m) < order.index(module) for m in edges[module]), module
