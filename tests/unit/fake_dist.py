"""Install a throwaway distribution for one test, visible to importlib.metadata.

A third-party package is nothing but a ``*.dist-info`` directory (METADATA and
entry_points.txt) and its modules on ``sys.path``; this writes exactly that
into the test's tmp dir and prepends it to ``sys.path``. Modules it imported
are dropped from ``sys.modules`` afterwards.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest


class FakeDistInstaller:
    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.monkeypatch = monkeypatch
        self.modules: list[str] = []
        self._on_path = False

    def install(self, name: str, entry_points: Mapping[str, Mapping[str, str]],
                modules: Mapping[str, str]) -> Path:
        """Write dist ``name`` (version 0.1) with its entry points and modules."""
        info = self.root / f"{name.replace('-', '_')}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        lines = []
        for group, eps in entry_points.items():
            lines.append(f"[{group}]")
            lines += [f"{ep} = {target}" for ep, target in eps.items()]
            lines.append("")
        (info / "entry_points.txt").write_text("\n".join(lines))
        for module, source in modules.items():
            (self.root / f"{module}.py").write_text(textwrap.dedent(source))
            self.modules.append(module)
        if not self._on_path:  # after the files exist: metadata caches key on mtimes
            self.monkeypatch.syspath_prepend(str(self.root))
            self._on_path = True
        return info

    def cleanup(self) -> None:
        for module in self.modules:
            sys.modules.pop(module, None)


@pytest.fixture
def fake_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDistInstaller]:
    installer = FakeDistInstaller(tmp_path / "site", monkeypatch)
    installer.root.mkdir()
    yield installer
    installer.cleanup()
