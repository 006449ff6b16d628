"""The package layout, kept by reading the import graph (every import, module level or not).

Layers, from the ground up (a module imports only its own layer or those below it):

    ground     typing, validation, atomic, chunked
    math       losses, regularizers, noise, rbm, variational, pca, text, retrieval
    models     jaxae.models.*
    training   jaxae.training.*
    recipes    jaxae.recipes.*
    data       jaxae.data.* (sources; may use the ground only)
    tools      results, experiment: what scripts share

jaxae/ never imports experiments/ or benchmarks/; no module in jaxae/, experiments/ or
benchmarks/ takes another module's ``_private`` name; there is no import cycle inside jaxae/;
scripts in experiments/ never import one another.
"""

from __future__ import annotations

import ast
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

_BELOW_TRAINING = {"ground", "math", "models"}
ALLOWED = {  # layer -> the layers it may import
    "ground": {"ground"},
    "math": {"ground", "math"},
    "models": {"ground", "math", "models"},
    "training": _BELOW_TRAINING | {"training"},
    "recipes": _BELOW_TRAINING | {"training", "recipes"},
    "data": {"ground", "data"},
    "tools": _BELOW_TRAINING | {"training", "recipes", "data", "tools"},
}
GROUND = {"typing", "validation", "atomic", "chunked"}
MATH = {"losses", "regularizers", "noise", "rbm", "variational", "pca", "text", "retrieval"}
TOOLS = {"results", "experiment"}
NAMEDTUPLE_API = {"_fields", "_replace", "_asdict", "_make"}  # public, underscored by design


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _layer(module: str) -> str | None:
    """The layer of a jaxae module, or None for the package root (which re-exports)."""
    parts = module.split(".")
    if parts == ["jaxae"]:
        return None
    head = parts[1]
    if head in GROUND:
        return "ground"
    if head in MATH:
        return "math"
    if head in ("models", "training", "recipes", "data"):
        return head
    if head in TOOLS:
        return "tools"
    raise AssertionError(
        f"{module}: not placed in a layer; add it to tests/test_layout.py's lists deliberately"
    )


def _imports(path: pathlib.Path) -> list[tuple[str, list[str], int]]:
    """``(module imported, names taken from it, line)`` for every import in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((base, [alias.name for alias in node.names], node.lineno))
    return found


def _files(folder: str) -> list[pathlib.Path]:
    """The folder's Python files that belong to the project: tracked or not yet added, but never
    git-ignored (scratch scripts under experiments/runs/ are not the layout); every file on disk
    where there is no git checkout."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", folder],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return sorted((ROOT / folder).rglob("*.py"))
    return sorted(ROOT / name for name in listed if name.endswith(".py") and (ROOT / name).exists())


def _jaxae_modules() -> set[str]:
    return {_module_name(p) for p in _files("jaxae")}


def _resolve(base: str, names: list[str], modules: set[str]) -> list[str]:
    """The jaxae modules an import statement loads (``from jaxae import rbm`` loads jaxae.rbm)."""
    if not base.startswith("jaxae"):
        return []
    submodules = [f"{base}.{name}" for name in names if f"{base}.{name}" in modules]
    if submodules and len(submodules) == len(names):
        return submodules  # ``from jaxae import rbm`` loads jaxae.rbm, not the root's re-exports
    return ([base] if base in modules else []) + submodules


def _graph() -> dict[str, set[str]]:
    modules = _jaxae_modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for path in _files("jaxae"):
        here = _module_name(path)
        for base, names, _ in _imports(path):
            graph[here].update(t for t in _resolve(base, names, modules) if t != here)
    return graph


def test_every_jaxae_module_imports_only_its_layer_or_below():
    bad = []
    for module, targets in sorted(_graph().items()):
        layer = _layer(module)
        if layer is None:
            continue
        for target in sorted(targets):
            other = _layer(target)
            if other is None:
                if layer != "tools":  # the root re-exports every layer: only the top may use it
                    bad.append(f"{module} imports the package root")
                continue
            if other not in ALLOWED[layer]:
                bad.append(f"{module} ({layer}) imports {target} ({other})")
    assert not bad, "imports that run the wrong way:\n" + "\n".join(bad)


def test_no_import_cycle_inside_jaxae():
    graph = _graph()
    # Submodules importing their own package's __init__ re-exports are not a cycle of modules.
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if target == "jaxae" or node.startswith(target + "."):
                continue
            if state.get(target) == 1:
                cycles.append(" -> ".join([*stack[stack.index(target) :], target]))
            elif target not in state:
                visit(target, [*stack, target])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_models_do_not_import_the_training_loop():
    bad = [
        f"{m} imports {t}"
        for m, targets in _graph().items()
        if m.startswith("jaxae.models")
        for t in targets
        if t.startswith(("jaxae.training", "jaxae.recipes"))
    ]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("folder", ["jaxae"])
def test_jaxae_never_imports_experiments_or_benchmarks(folder):
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {base}"
        for path in _files(folder)
        for base, _, line in _imports(path)
        if base.split(".")[0] in ("experiments", "benchmarks")
    ]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("folder", ["jaxae", "experiments", "benchmarks"])
def test_no_module_takes_another_modules_private_name(folder):
    bad = []
    for path in _files(folder):
        here = _module_name(path)
        tree = ast.parse(path.read_text())
        imported_modules = {}
        for base, names, line in _imports(path):
            if not base.startswith(("jaxae", "experiments", "benchmarks")) or base == here:
                continue
            for name in names:
                if name.startswith("_") and not name.startswith("__"):
                    bad.append(f"{path.relative_to(ROOT)}:{line} takes {base}.{name}")
                imported_modules[name] = f"{base}.{name}"
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in imported_modules
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and node.attr not in NAMEDTUPLE_API
            ):
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                bad.append(f"{where} uses {imported_modules[node.value.id]}.{node.attr}")
    assert not bad, "\n".join(bad)


def test_scripts_never_import_one_another_nor_edit_sys_path():
    # A script is a module that runs as a program; a module without a __main__ block is shared.
    scripts = {p.stem for p in _files("experiments") if "__main__" in p.read_text()}
    bad = []
    for path in _files("experiments"):
        for base, names, line in _imports(path):
            parts = base.split(".")
            taken = {parts[1]} if parts[0] == "experiments" and len(parts) > 1 else set()
            if parts[0] == "experiments" and len(parts) == 1:
                taken = set(names)
            if parts[0] in scripts:
                taken = {parts[0]}
            for script in sorted(taken & scripts):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports experiments/{script}.py")
        if "sys.path" in path.read_text():
            bad.append(f"{path.relative_to(ROOT)} edits sys.path")
    assert not bad, "\n".join(bad)


def test_the_layout_checks_can_fail(tmp_path, monkeypatch):
    """The graph reader sees a function-level import and a private name (the old train.py)."""
    fake = tmp_path / "jaxae" / "training"
    fake.mkdir(parents=True)
    source = "def f():\n    from jaxae.training import _epoch\n    import jaxae.recipes.stack\n"
    (fake / "fit.py").write_text(source)
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    imports = _imports(fake / "fit.py")
    assert ("jaxae.training", ["_epoch"], 2) in imports
    assert ("jaxae.recipes.stack", [], 3) in imports
