"""The layout of the code: which bpcalc module may import which. Read from the source with
ast, so imports inside functions and under `if TYPE_CHECKING:` count like those at the top."""

from __future__ import annotations

import ast
from pathlib import Path

import bpcalc

PACKAGE_DIR = Path(bpcalc.__file__).parent


def _module_files(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (packages by __init__.py)."""
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that `name` imports anywhere in its source."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[: len(package) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in modules:  # from pkg import module
                    found.add(full)
                elif base in modules:  # from module import name
                    found.add(base)
    found.discard(name)
    return found


def import_cycles(package_dir: Path) -> list[list[str]]:
    """Every group of modules that import each other, directly or round a longer loop
    (the strongly connected components of the import graph with more than one module)."""
    modules = _module_files(package_dir)
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        order[v] = low[v] = len(order)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in order:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], order[w])
        if low[v] == order[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for v in sorted(graph):
        if v not in order:
            visit(v)
    return cycles


def test_no_module_imports_one_that_imports_it_back() -> None:
    assert import_cycles(PACKAGE_DIR) == []


def test_an_import_inside_a_function_that_closes_a_loop_is_found(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import f\n")
    (pkg / "b.py").write_text("def f():\n    from pkg import a\n")
    (pkg / "c.py").write_text("from . import a\n")
    assert import_cycles(pkg) == [["pkg.a", "pkg.b"]]


def _sources(*patterns: str) -> list[tuple[str, ast.Module]]:
    out = []
    for pattern in patterns:
        for path in sorted(PACKAGE_DIR.glob(pattern)):
            out.append((str(path.relative_to(PACKAGE_DIR)), ast.parse(path.read_text("utf-8"))))
    return out


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the string constants that are docstrings."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def test_only_the_renderers_and_the_cli_import_rich():
    offenders = []
    for name, tree in _sources("**/*.py"):
        if name.startswith("render/") or name == "cli.py":
            continue
        for node in ast.walk(tree):
            mods = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                mods = [node.module]
            offenders += [(name, m) for m in mods if m == "rich" or m.startswith("rich.")]
    assert offenders == []


def test_no_module_probes_a_layer_unit_with_getattr_or_hasattr():
    """The unit's base class declares every hook: callers call it, never ask whether it exists."""
    offenders = []
    for name, tree in _sources("**/*.py"):
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "hasattr")
                and node.args
                and "op" in ast.unparse(node.args[0]).replace(".", " ").split()
            ):
                offenders.append((name, node.lineno, ast.unparse(node)))
    assert offenders == []


def test_the_engine_the_checker_and_the_renderers_write_no_formulas():
    """Formulas come from the units and bpcalc/notation.py, so tables, JSON and write-ups agree."""
    offenders = []
    for name, tree in _sources("engine.py", "check/*.py", "render/*.py", "cli.py"):
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docs
            ):
                text = node.value
                if "=" in text and any(sym in text for sym in ("∂", "θ′", "Σ", "σ(")):
                    offenders.append((name, node.lineno, text))
    assert offenders == []


def test_every_layer_type_has_a_unit_with_its_formulas():
    from bpcalc import activations, layers
    from bpcalc.network.types import LAYER_TYPES

    for t in LAYER_TYPES:
        cls = layers.unit_class(t)
        assert t in cls.types, t
        assert callable(layers.parse(t)), t  # its parser beside it
        for method in ("forward_formula", "grad_input_formula"):
            assert getattr(cls, method) is not getattr(layers.Layer, method), (t, method)
        # the maths: forward and backward, or their forms with a scope (a block's)
        for method in ("forward", "backward"):
            assert any(
                getattr(cls, m) is not getattr(layers.Layer, m) for m in (method, f"{method}_with")
            ), (t, method)
    for kind in activations.kinds():
        unit = activations.get(kind)
        assert unit.formula().startswith("a = "), kind
        assert unit.grad_formula().startswith("∂L/∂z"), kind
