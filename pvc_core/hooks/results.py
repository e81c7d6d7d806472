"""What a hook call returns: per-plugin values, failures, overruns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pvc_core.errors import Conflict


@dataclass(frozen=True)
class HookValue:
    """One implementation that returned in time."""

    plugin: str
    value: Any
    elapsed_s: float


@dataclass(frozen=True)
class HookFailure:
    """One implementation that raised."""

    plugin: str
    error: BaseException
    elapsed_s: float


@dataclass(frozen=True)
class HookResults:
    """The outcome of one hook call, in call order.

    :ivar values: implementations that returned, with their values.
    :ivar failed: implementations that raised.
    :ivar overran: plugins still running when the deadline passed.
    :ivar busy: plugins skipped because their previous call of this hook
        is still running.
    """

    hook: str
    values: tuple[HookValue, ...] = ()
    failed: tuple[HookFailure, ...] = ()
    overran: tuple[str, ...] = ()
    busy: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every implementation returned in time."""
        return not (self.failed or self.overran or self.busy)

    def by_plugin(self) -> dict[str, Any]:
        """Plugin name -> returned value, for the implementations that returned."""
        return {v.plugin: v.value for v in self.values}

    def problems(self) -> list[str]:
        """One line per plugin that failed, overran or was busy."""
        lines = [f"{f.plugin}: {type(f.error).__name__}: {f.error}" for f in self.failed]
        lines += [f"{name}: did not answer before the deadline" for name in self.overran]
        lines += [f"{name}: still busy with a previous call" for name in self.busy]
        return lines

    def raise_if_refused(self, *, overrun_refuses: bool = True) -> None:
        """Raise :class:`HookRefused` when a plugin refused.

        A plugin refuses by raising; with ``overrun_refuses`` (the default,
        right for ``pvc_vm_about_to_start``) a plugin that overran or was
        busy refuses too, since it may not have done its part.
        """
        if self.failed or (overrun_refuses and (self.overran or self.busy)):
            raise HookRefused(self)


class HookRefused(Conflict):
    """A plugin refused an action by raising from (or overrunning) its hook (409)."""

    def __init__(self, results: HookResults) -> None:
        super().__init__(f"{results.hook} refused: " + "; ".join(results.problems()))
        self.results = results
