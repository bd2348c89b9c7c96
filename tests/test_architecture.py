"""The floors of the house, read from the source as an ``ast`` walk (docs/DESIGN.md, "Layers").

1. ``metrics`` and ``synthesizers`` never import each other (they share ``texbench.nets``/``texbench.ops``).
2. A name with a leading underscore is used only in its own module.
3. Only ``texbench.store`` speaks SQL.
4. The ground (everything but the plugin packages and the top floor) never imports a plugin package or
   the top floor by name; plugins reach the ground only; the top floor (CLI, runner, reports) imports a
   plugin module only lazily, inside the command that needs it (``texbench --help`` stays light).

5. A module over 500 lines says why in a ``Size:`` paragraph of its docstring; functions of the ground and
   the top floor stay under 80 lines.

Each rule lists every break it finds, so a failure names the module and line to fix.
"""

from __future__ import annotations

import ast
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_PACKAGES = ("texbench.synthesizers", "texbench.metrics", "texbench.datasets")
#: the top floor: applications built on everything below (they find plugins through the registry)
TOP = ("texbench.__main__", "texbench.cli", "texbench.runner", "texbench.plan", "texbench.scoring", "texbench.executors", "texbench.reports", "texbench.calibration")
SQL = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|PRAGMA|ALTER|DROP)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool

    @property
    def tree(self) -> ast.Module:
        return ast.parse(self.path.read_text(), filename=str(self.path))


def _modules() -> dict[str, Module]:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_dir = cfg["tool"]["setuptools"]["package-dir"]
    out: dict[str, Module] = {}
    for pkg, folder in package_dir.items():
        base = ROOT / folder
        for path in base.rglob("*.py"):
            rel = path.relative_to(base).with_suffix("").parts
            if "__pycache__" in rel:
                continue
            is_package = rel[-1] == "__init__"
            parts = rel[:-1] if is_package else rel
            name = ".".join([pkg, *parts])
            # a sub-folder mapped to its own package is walked under that name (the longest mapping wins)
            if name not in out or len(pkg) > len(out[name].name.split(".")[0]):
                out[name] = Module(name, path, is_package)
    return out


MODULES = _modules()


def _within(name: str, prefixes: tuple[str, ...] | str) -> bool:
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _imports(mod: Module, *, module_level: bool = False) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every texbench import, relative ones resolved;
    ``module_level``: only the imports that run when the module is imported."""
    out = []
    tree = mod.tree
    nodes = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))] if module_level else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names if a.name.startswith("texbench")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = mod.name.split(".")
                if not mod.is_package:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("texbench"):
                for a in node.names:
                    sub = f"{target}.{a.name}"
                    # `from texbench.metrics import lpips` imports a module, not a name
                    if sub in MODULES:
                        out.append((sub, None, node.lineno))
                    else:
                        out.append((target, a.name, node.lineno))
    return out


def _family(name: str) -> str:
    for p in PLUGIN_PACKAGES:
        if _within(name, p):
            return p
    return "top" if _within(name, TOP) else "ground"


def _report(breaks: list[str]) -> None:
    breaks = sorted(set(breaks))
    if breaks:
        pytest.fail(f"{len(breaks)} break(s):\n" + "\n".join(sorted(breaks)))


def test_the_walk_sees_the_whole_tree():
    assert "texbench.store" in MODULES and "texbench.registry" in MODULES
    assert any(_within(m, "texbench.metrics") for m in MODULES)
    assert any(_within(m, "texbench.synthesizers") for m in MODULES)


def test_metrics_and_synthesizers_never_import_each_other():
    pairs = {"texbench.metrics": "texbench.synthesizers", "texbench.synthesizers": "texbench.metrics"}
    breaks = []
    for mod in MODULES.values():
        fam = _family(mod.name)
        if fam in pairs:
            for target, name, line in _imports(mod):
                if _within(target, pairs[fam]):
                    breaks.append(f"{mod.path.relative_to(ROOT)}:{line} imports {target}" + (f".{name}" if name else ""))
    _report(breaks)


def test_private_names_stay_in_their_module():
    breaks = []
    for mod in MODULES.values():
        tree = mod.tree
        aliases: dict[str, str] = {}
        for target, name, line in _imports(mod):
            if name is not None and name.startswith("_") and not name.startswith("__") and target != mod.name:
                breaks.append(f"{mod.path.relative_to(ROOT)}:{line} imports private {target}.{name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("texbench"):
                        aliases[a.asname or a.name] = a.name
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("texbench"):
                for a in node.names:
                    if f"{node.module}.{a.name}" in MODULES:
                        aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and aliases[node.value.id] != mod.name
            ):
                breaks.append(
                    f"{mod.path.relative_to(ROOT)}:{node.lineno} uses private {aliases[node.value.id]}.{node.attr}"
                )
    _report(breaks)


def test_only_the_store_speaks_sql():
    breaks = []
    for mod in MODULES.values():
        if mod.name == "texbench.store":
            continue
        for node in ast.walk(mod.tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                if any(n.split(".")[0] == "sqlite3" for n in names):
                    breaks.append(f"{mod.path.relative_to(ROOT)}:{node.lineno} imports sqlite3")
            elif isinstance(node, ast.Attribute) and node.attr == "conn":
                breaks.append(f"{mod.path.relative_to(ROOT)}:{node.lineno} reaches into a connection (.conn)")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.match(node.value):
                breaks.append(f"{mod.path.relative_to(ROOT)}:{node.lineno} holds SQL: {node.value[:40]!r}")
    _report(breaks)


def test_floors_import_downwards_only():
    breaks = []
    for mod in MODULES.values():
        fam = _family(mod.name)
        for target, _, line in _imports(mod):
            tfam = _family(target)
            where = f"{mod.path.relative_to(ROOT)}:{line} ({fam}) imports {target}"
            if fam == "ground" and tfam != "ground":
                breaks.append(f"{where}: the ground never imports {tfam}")
            elif fam in PLUGIN_PACKAGES and tfam not in ("ground", fam):
                breaks.append(f"{where}: a plugin imports only the ground and itself")
    _report(breaks)


def test_the_top_floor_imports_plugins_lazily():
    breaks = []
    for mod in MODULES.values():
        if _family(mod.name) != "top":
            continue
        for target, _, line in _imports(mod, module_level=True):
            if _family(target) in PLUGIN_PACKAGES:
                breaks.append(f"{mod.path.relative_to(ROOT)}:{line} imports {target} when it is imported")
    _report(breaks)


def test_long_modules_say_why():
    breaks = []
    for mod in MODULES.values():
        lines = mod.path.read_text().count("\n")
        doc = ast.get_docstring(mod.tree) or ""
        if lines > 500 and not re.search(r"^Size:", doc, re.MULTILINE):
            breaks.append(f"{mod.path.relative_to(ROOT)}: {lines} lines and no 'Size:' paragraph in its docstring")
    _report(breaks)


def test_functions_of_the_ground_and_the_top_stay_short():
    breaks = []
    for mod in MODULES.values():
        if _family(mod.name) in PLUGIN_PACKAGES:
            continue
        for node in ast.walk(mod.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > 80:
                    breaks.append(f"{mod.path.relative_to(ROOT)}:{node.lineno} {node.name} is {length} lines")
    _report(breaks)
