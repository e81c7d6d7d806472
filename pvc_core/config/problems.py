"""Configuration problems and the one-line error that reports them.

A :class:`Problem` is one thing wrong with a configuration: a key path (a
tuple of mapping keys and list indices) and a human reason. Problems are
reported in a deterministic order (sorted by key path, then reason); the
exception :class:`ConfigInvalid` carries all of them but its message is the
first one, on one line, e.g.
``fencing.saving_throws: must be an integer >= 0, got "six"``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pvc_core.errors import ConfigError

#: A key path: mapping keys and list indices from the top of the file.
KeyPath = tuple[object, ...]

_MAX_VALUE_CHARS = 80


def format_value(value: object) -> str:
    """``value`` as compact one-line JSON (non-JSON values as strings), truncated."""
    try:
        text = json.dumps(value, default=str, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):  # e.g. mixed key types, circular data
        text = json.dumps(repr(value), ensure_ascii=False)
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 3] + "..."
    return text


def _key_text(key: object) -> str:
    return key if isinstance(key, str) else format_value(key)


def format_path(path: Sequence[object]) -> str:
    """Render a key path as ``a.b[0].c``; list indices are ints in ``path``."""
    out = ""
    for part in path:
        if type(part) is int:
            out += f"[{part}]"
        else:
            out += ("." if out else "") + _key_text(part)
    return out


def _sort_key(path: KeyPath) -> tuple[tuple[int, int, str], ...]:
    return tuple((0, p, "") if type(p) is int else (1, 0, _key_text(p)) for p in path)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration: where, and why."""

    path: KeyPath
    reason: str

    @property
    def key(self) -> str:
        """The key path as text (``fencing.chain.node1[0].host``)."""
        return format_path(self.path)

    def __str__(self) -> str:
        key = self.key
        return f"{key}: {self.reason}" if key else self.reason


def with_value(reason: str, value: object) -> str:
    """``reason`` followed by ``, got <value as JSON>``."""
    return f"{reason}, got {format_value(value)}"


def sort_problems(problems: Iterable[Problem]) -> list[Problem]:
    """Deduplicate and order problems by key path, then by reason."""
    return sorted(set(problems), key=lambda p: (_sort_key(p.path), p.reason))


class ConfigInvalid(ConfigError):
    """A configuration that parsed but is not valid.

    :ivar problems: every problem found, sorted; the message names the first
        (with ``(and N more)`` when there are others).
    :ivar source: where the configuration came from (a file path or a label).
    """

    def __init__(self, problems: Sequence[Problem], source: str = "<config>") -> None:
        ordered = sort_problems(problems)
        if not ordered:
            raise ValueError("ConfigInvalid needs at least one problem")
        first = ordered[0]
        reason = " ".join(first.reason.split())
        if len(ordered) > 1:
            reason += f" (and {len(ordered) - 1} more)"
        super().__init__(reason, first.key or None)
        self.problems: tuple[Problem, ...] = tuple(ordered)
        self.source = source


def raise_if_any(problems: Sequence[Problem], source: str) -> None:
    """Raise :class:`ConfigInvalid` when ``problems`` is not empty."""
    if problems:
        raise ConfigInvalid(problems, source)
