"""pvc_core imports no plugin, no API and no CLI module (DESIGN.md section 2)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "pvc_core"
FORBIDDEN = ("pvc_plugins", "pvc_api", "pvc_cli")
DYNAMIC = {"import_module", "__import__"}


def _forbidden(module: str) -> bool:
    return any(module == f or module.startswith(f + ".") for f in FORBIDDEN)


def violations(source: str, package: tuple[str, ...]) -> list[str]:
    """Forbidden imports in ``source``, a module inside ``package`` (dotted parts)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level > len(package):
                    found.append(f"line {node.lineno}: relative import escapes pvc_core")
                    continue
                base = list(package[:len(package) - node.level + 1])
                if base[:1] != ["pvc_core"]:
                    found.append(f"line {node.lineno}: relative import escapes pvc_core")
                    continue
                targets = [".".join(base + ([node.module] if node.module else []))]
            else:
                targets = [node.module or ""]
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in DYNAMIC and node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str):
                targets = [node.args[0].value]
        line = getattr(node, "lineno", 0)
        found += [f"line {line}: imports {t}" for t in targets if _forbidden(t)]
    return found


def core_modules() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def package_of(path: Path) -> tuple[str, ...]:
    return tuple(path.relative_to(ROOT).parent.parts)


@pytest.mark.parametrize("source", [
    "import pvc_plugins",
    "import os, pvc_api.app",
    "from pvc_cli import main",
    "from pvc_plugins.fake.hypervisor import FakeHypervisorDriver",
    "from ... import pvc_plugins",
    "from .... import anything",
    "importlib.import_module('pvc_plugins.fake')",
    "__import__('pvc_cli')",
    "def f():\n    from pvc_api import app\n",
])
def test_scanner_catches(source: str) -> None:
    assert violations(source, ("pvc_core", "drivers"))


@pytest.mark.parametrize("source", [
    "import pvc_core.errors",
    "from pvc_core.drivers import base",
    "from . import base",
    "from ..errors import DriverError",
    "import pvc_plugins_like_name_elsewhere",
    "importlib.import_module(name)",
])
def test_scanner_allows(source: str) -> None:
    assert violations(source, ("pvc_core", "drivers")) == []


def test_there_is_something_to_scan() -> None:
    assert len(core_modules()) > 5


def test_pvc_core_imports_no_plugin_api_or_cli() -> None:
    problems = {str(p.relative_to(ROOT)): violations(p.read_text(), package_of(p))
                for p in core_modules()}
    assert {path: v for path, v in problems.items() if v} == {}
