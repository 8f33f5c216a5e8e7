"""The packages' layers, read from the code: every import of every module under ``src/``
(those inside functions too) points down or sideways within a layer, never up, and the
modules' imports have no cycle; no module imports another's private name, nor uses one
through the module (``module._name``).

Layers, bottom to top: ``splendor`` (the game and its log format), the per-file steps
(``imitation_learning.per_file``), the job and its assembly (the rest of ``imitation_learning``), and
``splendor_il`` (the command line, the composition root).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGES = ("splendor", "imitation_learning", "splendor_il")

#: The subpackage of ``imitation_learning`` that turns one file into its outputs: it imports
#: nothing of the job above it.
PER_FILE_STEPS = "imitation_learning.per_file"


def layer_of(module: str) -> int:
    """0 the game, 1 the per-file steps, 2 the job, 3 the command line."""
    package = module.split(".")[0]
    if package == "splendor":
        return 0
    if package == "imitation_learning":
        return 1 if module == PER_FILE_STEPS or module.startswith(PER_FILE_STEPS + ".") else 2
    return 3


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(p): p for package in PACKAGES for p in sorted((SRC / package).rglob("*.py"))
    }


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, list[str]]]:
    """``(imported module, names)`` for each import of the project's modules in ``path``
    (``names``: what a ``from`` import takes, empty for a plain import)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [alias.name for alias in node.names]
            submodules = [f"{base}.{n}" for n in names if f"{base}.{n}" in modules]
            if submodules:  # ``from splendor import columns``
                found += [(m, []) for m in submodules]
            else:
                found.append((base, names))
    return [(m, names) for m, names in found if m.split(".")[0] in PACKAGES]


def private_attributes_used(module: str, path: Path, modules: dict[str, Path]) -> list[str]:
    """``target._name`` for each access of a private attribute of another project module
    through a name bound to that module (``from imitation_learning import job as j`` then
    ``j._x``; ``import imitation_learning.job.api`` then ``imitation_learning.job.api._x``)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    bound: dict[str, str] = {}  # local name -> project module
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    bound[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    bound[top] = top
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:
                    bound[alias.asname or alias.name] = f"{base}.{alias.name}"

    def dotted(node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return bound.get(node.id)
        if isinstance(node, ast.Attribute):
            head = dotted(node.value)
            return None if head is None else f"{head}.{node.attr}"
        return None

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            if node.attr.startswith("__"):
                continue
            target = dotted(node.value)
            if target in modules and target != module:
                found.append(f"{target}.{node.attr}")
    return found


def import_graph() -> dict[str, dict[str, list[str]]]:
    modules = project_modules()
    graph: dict[str, dict[str, list[str]]] = {}
    for module, path in modules.items():
        edges: dict[str, list[str]] = {}
        for target, names in imports_of(module, path, modules):
            if target != module:
                edges.setdefault(target, []).extend(names)
        graph[module] = edges
    return graph


def find_cycle(graph: dict[str, dict[str, list[str]]]) -> list[str] | None:
    """One cycle of the graph as a list of modules, or ``None``."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_three_packages_are_found():
    graph = import_graph()
    assert {m.split(".")[0] for m in graph} == set(PACKAGES)
    assert "splendor.rules" in graph and "imitation_learning.job.build" in graph
    assert "splendor_il.cli" in graph
    assert graph["splendor.rules"], "the import walk found no import of the rules module"


def test_no_module_imports_a_higher_layer():
    upward = [
        f"{module} imports {target}"
        for module, edges in import_graph().items()
        for target in edges
        if layer_of(target) > layer_of(module)
    ]
    assert upward == []


def test_the_game_never_imports_the_pipeline():
    graph = import_graph()
    offending = [
        (module, target)
        for module, edges in graph.items()
        if module.startswith("splendor.")
        for target in edges
        if not target.startswith("splendor.")
    ]
    assert offending == []


def test_no_import_cycle():
    assert find_cycle(import_graph()) is None


def test_no_private_name_imported_across_modules():
    private = [
        f"{module} imports {target}.{name}"
        for module, edges in import_graph().items()
        for target, names in edges.items()
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert private == []


def test_no_private_attribute_used_across_modules():
    """No module reaches into another's private names through the module either
    (``pp._collect``), not only by importing them."""
    modules = project_modules()
    used = [
        f"{module} uses {name}"
        for module, path in modules.items()
        for name in private_attributes_used(module, path, modules)
    ]
    assert used == []


def test_the_private_attribute_check_can_fail(tmp_path):
    modules = {"pkg.a": tmp_path / "a.py", "pkg.b": tmp_path / "b.py"}
    source = (
        "from pkg import b\nimport pkg.b as bb\nimport pkg.b\n"
        "b._x()\nbb._y\npkg.b._z\nb.public\nb.__name__\n"
    )
    modules["pkg.a"].write_text(source)
    used = sorted(private_attributes_used("pkg.a", modules["pkg.a"], modules))
    assert used == ["pkg.b._x", "pkg.b._y", "pkg.b._z"]


def test_the_checks_can_fail():
    """The walkers see an upward edge, a cycle and a private import when there is one."""
    graph = {"a": {"b": ["_x"]}, "b": {"c": []}, "c": {"a": []}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": []}, "b": {}}) is None
    assert layer_of("splendor_il.cli") > layer_of("imitation_learning.job.build")
    assert layer_of("imitation_learning.job.build") > layer_of("imitation_learning.per_file.features")
    assert layer_of("imitation_learning.per_file.features") > layer_of("splendor.rules")


def test_the_architecture_page_matches_the_code():
    """``docs/architecture.md``'s module map is what ``docs/module_map.py`` prints now."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "module_map", SRC.parent / "docs" / "module_map.py"
    )
    module_map = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module_map)
    page = module_map.PAGE.read_text()
    assert module_map.BEGIN in page and module_map.END in page
    assert module_map.page_with_map(page, module_map.module_map()) == page, (
        "docs/architecture.md is out of date: run python docs/module_map.py --write"
    )


def test_every_module_is_at_most_500_lines():
    long = {m: n for m, p in project_modules().items()
            if (n := len(p.read_text().splitlines())) > 500}
    assert long == {}
