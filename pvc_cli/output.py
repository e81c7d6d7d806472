"""API objects to cliff's ``(columns, data)`` tuples.

Nested values are wrapped in :class:`cliff.columns.FormattableColumn`
subclasses: table, value and csv output show them flattened
(``key: value`` lines, ``a, b`` lists, local times), while json and yaml
output get the real structure (``machine_readable``), exactly as the API sent
it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from cliff.columns import FormattableColumn


def scalar(value: Any) -> str:
    """A scalar as a table shows it: ``true``/``false``, nothing for null."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """``(dotted key, text)`` pairs of a nested dict; lists of scalars joined by commas."""
    if isinstance(value, Mapping):
        if not value and prefix:
            return [(prefix, "")]
        out: list[tuple[str, str]] = []
        for k, v in value.items():
            out += flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(value, list | tuple):
        if all(not isinstance(v, Mapping | list | tuple) for v in value):
            return [(prefix, ", ".join(scalar(v) for v in value))]
        out = []
        for i, v in enumerate(value):
            out += flatten(v, f"{prefix}[{i}]")
        return out
    return [(prefix, scalar(value))]


class DictColumn(FormattableColumn[Mapping[str, Any]]):
    """A mapping: ``key: value`` lines (nested keys dotted) in a table."""

    def human_readable(self) -> str:
        return "\n".join(f"{k}: {v}" for k, v in flatten(self._value))


class ListColumn(FormattableColumn[Sequence[Any]]):
    """A list: comma-separated scalars, or one line per mapping (``k=v, k=v``)."""

    def human_readable(self) -> str:
        lines = []
        for item in self._value:
            if isinstance(item, Mapping):
                lines.append(", ".join(f"{k}={v}" for k, v in flatten(item)))
            else:
                lines.append(scalar(item))
        if all(not isinstance(item, Mapping) for item in self._value):
            return ", ".join(lines)
        return "\n".join(lines)


class TimeColumn(FormattableColumn[float | None]):
    """A Unix time: local ``YYYY-MM-DD HH:MM:SS`` in a table, the number in json/yaml."""

    def human_readable(self) -> str:
        if self._value is None:
            return ""
        try:
            return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(self._value)))
        except (TypeError, ValueError, OverflowError, OSError):
            return str(self._value)


class ProgressColumn(FormattableColumn[Mapping[str, Any] | None]):
    """A job's ``progress`` ``{"done": n, "total": m}``: ``n/m`` in a table."""

    def human_readable(self) -> str:
        p = self._value
        if not isinstance(p, Mapping):
            return scalar(p)
        return f"{p.get('done', 0)}/{p.get('total', 0)}"


class PlanColumn(FormattableColumn[Sequence[Any]]):
    """A flush plan: one ``vm1 -> node2 (live): reason`` line per VM in a table."""

    def human_readable(self) -> str:
        lines = []
        for item in self._value:
            if not isinstance(item, Mapping):
                lines.append(scalar(item))
                continue
            name = item.get("name") or item.get("vm") or "?"
            target = item.get("target") or "(none)"
            line = f"{name} -> {target} ({item.get('method', '?')})"
            lines.append(f"{line}: {item['reason']}" if item.get("reason") else line)
        return "\n".join(lines)


def wrap(key: str, value: Any, times: Iterable[str] = ()) -> Any:
    """``value`` ready for a formatter: nested values and times wrapped."""
    if key in times and isinstance(value, int | float) and not isinstance(value, bool):
        return TimeColumn(value)
    if key == "plan" and isinstance(value, list):
        return PlanColumn(value)
    if isinstance(value, Mapping):
        return DictColumn(value)
    if isinstance(value, list | tuple):
        return ListColumn(list(value))
    return value


def show(obj: Mapping[str, Any] | None, first: Sequence[str] = (),
         times: Iterable[str] = ()) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """A ShowOne result: every field of ``obj``, those named in ``first`` first."""
    if not isinstance(obj, Mapping):
        obj = {"result": obj}
    times = set(times)
    keys = [k for k in first if k in obj] + [k for k in obj if k not in first]
    return tuple(keys), tuple(wrap(k, obj[k], times) for k in keys)


Getter = Callable[[Mapping[str, Any]], Any]


def rows(objs: Iterable[Mapping[str, Any]], columns: Sequence[str],
         times: Iterable[str] = (), getters: Mapping[str, Getter] | None = None,
         ) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """A Lister result: ``columns`` of each object (a missing field is null)."""
    times = set(times)
    getters = getters or {}
    out = []
    for obj in objs:
        row = []
        for c in columns:
            row.append(getters[c](obj) if c in getters else wrap(c, obj.get(c), times))
        out.append(tuple(row))
    return tuple(columns), out


def items(reply: Any, *keys: str) -> list[Mapping[str, Any]]:
    """The objects of a list reply: a JSON list, or a mapping holding it under one of ``keys``
    (or ``items``)."""
    if isinstance(reply, Mapping):
        for key in (*keys, "items"):
            if isinstance(reply.get(key), list):
                reply = reply[key]
                break
    if not isinstance(reply, list):
        return []
    return [r for r in reply if isinstance(r, Mapping)]
