"""An in-memory stand-in for ZkClient: just what the recipes' pure paths need."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pvc_core.errors import AlreadyExists, NotFound, VersionConflict


@dataclass
class Stat:
    version: int = 0
    ephemeralOwner: int = 0  # noqa: N815 - kazoo's name


class MemoryZk:
    """Znodes in a dict. ``lose_replies`` > 0 makes the next writes apply and
    then fail the way ZkClient reports a retried write whose first reply was lost."""

    op_timeout = 1.0

    def __init__(self) -> None:
        self.nodes: dict[str, tuple[bytes, Stat]] = {}
        self.listeners: list[Callable[[str], None]] = []
        self.lose_replies = 0
        self.writes = 0

    def add_listener(self, fn: Callable[[str], None]) -> None:
        self.listeners.append(fn)

    def remove_listener(self, fn: Callable[[str], None]) -> None:
        if fn in self.listeners:
            self.listeners.remove(fn)

    def emit(self, state: str) -> None:
        for fn in list(self.listeners):
            fn(state)

    def get(self, path: str) -> tuple[bytes, Stat]:
        if path not in self.nodes:
            raise NotFound(path)
        return self.nodes[path]

    def exists(self, path: str) -> Stat | None:
        return self.nodes[path][1] if path in self.nodes else None

    def create(self, path: str, data: bytes = b"", *, ephemeral: bool = False,
               sequence: bool = False, makepath: bool = False) -> str:
        if path in self.nodes:
            raise AlreadyExists(path)
        self.nodes[path] = (data, Stat(0, 7 if ephemeral else 0))
        self.writes += 1
        if self.lose_replies:
            self.lose_replies -= 1
            raise AlreadyExists(path)  # the retry found our own node
        return path

    def set(self, path: str, data: bytes, version: int = -1) -> Stat:
        if path not in self.nodes:
            raise NotFound(path)
        stat = self.nodes[path][1]
        if version >= 0 and version != stat.version:
            raise VersionConflict(path)
        new = Stat(stat.version + 1, stat.ephemeralOwner)
        self.nodes[path] = (data, new)
        self.writes += 1
        if self.lose_replies:
            self.lose_replies -= 1
            raise VersionConflict(path)  # the retry saw our own write
        return new
