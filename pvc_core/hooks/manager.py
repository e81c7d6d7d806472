"""The hook manager: a pluggy PluginManager behind a small, safe facade.

Each node daemon owns one :class:`HookManager` (``NodeContext.hooks``) holding
its enabled drivers that implement hooks and the hook plugins named in
configuration; each API server owns another (``ApiContext.hooks``) holding
the configured hook plugins, asked once for ``pvc_api_controllers``. There is
no module-level manager, so several daemons can live in one process with
separate plugins. :func:`pvc_core.daemon.plugins.load_hook_plugins` loads the
configured plugins into a manager.

Hooks that may block (see :func:`pvc_core.hooks.specs.may_block`) are called
with :meth:`HookManager.call_with_deadline`: every implementation runs in its
own daemon thread and the caller waits for all of them up to one overall
deadline. An implementation that overruns is logged and skipped; it keeps
running in its thread (Python cannot kill a thread), and until it returns
further calls of the same hook skip that plugin at once (``busy``), so a
hung plugin costs one thread, not one per keepalive.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy

from pvc_core.drivers.factory import load_entry_point
from pvc_core.errors import DriverLoadError, PVCError
from pvc_core.hooks import specs
from pvc_core.hooks.results import HookFailure, HookRefused, HookResults, HookValue

__all__ = ["HookFailure", "HookManager", "HookRefused", "HookResults", "HookValue"]


@dataclass
class _Call:
    """Shared between one call_with_deadline and the threads it started."""

    hook: str
    done: queue.SimpleQueue[tuple[int, HookValue | HookFailure]] = field(
        default_factory=queue.SimpleQueue)
    abandoned: threading.Event = field(default_factory=threading.Event)


class HookManager:
    """The plugins of one daemon and the way to call their hooks.

    :param logger: where overruns and failures are reported.
    :param spec_module: the hook specifications (tests may pass their own).
    """

    def __init__(self, logger: logging.Logger | None = None,
                 spec_module: ModuleType = specs) -> None:
        self.log = logger or logging.getLogger("pvc.hooks")
        self._pm = pluggy.PluginManager(specs.PROJECT)
        self._pm.add_hookspecs(spec_module)
        self._blocking = specs.blocking_hooks(spec_module)
        self._lock = threading.Lock()
        self._running: set[tuple[str, str]] = set()

    # -- plugins ----------------------------------------------------------

    def register(self, plugin: object, name: str) -> None:
        """Register ``plugin`` (a module or object with hookimpls) as ``name``.

        Raises pluggy.PluginValidationError when an implementation does not
        match a specification (unknown hook, unknown argument, or a wrapper
        on a hook that may block), ValueError when the name is taken.
        """
        self._pm.register(plugin, name)
        try:
            self._pm.check_pending()
            for hook in self._blocking:
                for impl in self._caller(hook).get_hookimpls():
                    if impl.plugin_name == name and (impl.wrapper or impl.hookwrapper):
                        raise pluggy.PluginValidationError(
                            plugin, f"{name}: {hook} may block; wrappers are not supported")
        except pluggy.PluginValidationError:
            self._pm.unregister(name=name)
            raise

    def unregister(self, name: str) -> object | None:
        """Remove the plugin registered as ``name``; return it (None if absent)."""
        if not self._pm.has_plugin(name):
            return None
        return self._pm.unregister(name=name)

    def plugin_names(self) -> list[str]:
        """Names of the registered plugins, sorted."""
        return sorted(name for name, plugin in self._pm.list_name_plugin() if plugin is not None)

    def load_entrypoints(self, names: Iterable[str],
                         group: str = specs.PLUGIN_GROUP) -> list[str]:
        """Import and register the named plugins of an entry-point group.

        Only the named entry points are imported (like drivers: a broken
        plugin that is not enabled is ignored). A loaded class is
        instantiated without arguments; a module or object is registered
        as is, under its entry-point name. Raises DriverLoadError for a
        plugin that is missing, fails to import or to instantiate, does not
        match the hook specifications, or whose name is taken; the plugins
        this call registered before the failure are unregistered again.
        """
        loaded: list[str] = []
        try:
            for name in names:
                what = f"hook plugin {name!r}"
                obj = load_entry_point(group, name, what)
                if isinstance(obj, type):
                    try:
                        obj = obj()
                    except Exception as exc:
                        raise DriverLoadError(
                            f"{what} ({group}) failed to initialise: "
                            f"{type(exc).__name__}: {exc}") from exc
                try:
                    self.register(obj, name)
                except (pluggy.PluginValidationError, ValueError) as exc:
                    raise DriverLoadError(f"{what} ({group}) cannot be registered: "
                                          f"{_one_line(str(exc))}") from exc
                loaded.append(name)
        except BaseException:
            for name in loaded:
                self.unregister(name)
            raise
        return loaded

    # -- calls ------------------------------------------------------------

    def may_block(self, hook: str) -> bool:
        """Whether ``hook`` must be called with a deadline."""
        self._caller(hook)
        return hook in self._blocking

    def call(self, hook: str, **kwargs: Any) -> HookResults:
        """Call a non-blocking hook in this thread, each plugin in turn.

        A plugin that raises is logged and skipped; the others still run.
        Raises TypeError for a hook that may block (use
        :meth:`call_with_deadline`) or wrong arguments.
        """
        if self.may_block(hook):
            raise TypeError(f"hook {hook} may block: use call_with_deadline")
        impls = self._prepare(hook, kwargs)
        outcomes = [_run(impl, kwargs) for impl in impls]
        results = _collect(hook, outcomes, overran=(), busy=())
        self._report(results, deadline_s=None)
        return results

    def call_with_deadline(self, hook: str, deadline_s: float,
                           **kwargs: Any) -> HookResults:
        """Call every implementation of ``hook`` in its own thread.

        Waits until all have returned or ``deadline_s`` seconds have
        passed, whichever is first, and returns what finished in time.
        Implementations that raised are in ``failed``, those still running
        at the deadline in ``overran``, and those skipped because their
        previous call is still running in ``busy``; each is logged as a
        warning naming the plugin. Never raises for a plugin's behaviour;
        raises TypeError for an unknown hook or wrong arguments.
        """
        impls = self._prepare(hook, kwargs)
        call = _Call(hook)
        started: list[str] = []
        busy: list[str] = []
        for index, impl in enumerate(impls):
            key = (hook, impl.plugin_name)
            with self._lock:
                if key in self._running:
                    busy.append(impl.plugin_name)
                    continue
                self._running.add(key)
            started.append(impl.plugin_name)
            try:
                threading.Thread(target=self._run_in_thread, args=(call, index, impl, kwargs),
                                 name=f"pvc-hook-{hook}-{impl.plugin_name}", daemon=True).start()
            except RuntimeError as exc:  # no thread to be had: that plugin fails this call
                with self._lock:
                    self._running.discard(key)
                call.done.put((index, HookFailure(impl.plugin_name, exc, 0.0)))
        finished: dict[int, HookValue | HookFailure] = {}
        end = time.monotonic() + max(0.0, deadline_s)
        while len(finished) < len(started):
            try:
                index, outcome = call.done.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                break
            finished[index] = outcome
        call.abandoned.set()
        names_done = {o.plugin for o in finished.values()}
        overran = tuple(n for n in started if n not in names_done)
        results = _collect(hook, [finished[i] for i in sorted(finished)], overran, tuple(busy))
        self._report(results, deadline_s=deadline_s)
        return results

    def busy(self) -> list[tuple[str, str]]:
        """``(hook, plugin)`` pairs with a call still running (in progress or overran)."""
        with self._lock:
            return sorted(self._running)

    # -- internals --------------------------------------------------------

    def _caller(self, hook: str) -> pluggy.HookCaller:
        caller = getattr(self._pm.hook, hook, None)
        if not isinstance(caller, pluggy.HookCaller) or caller.spec is None:
            raise TypeError(f"unknown hook {hook!r}")
        return caller

    def _prepare(self, hook: str, kwargs: dict[str, Any]) -> list[pluggy.HookImpl]:
        caller = self._caller(hook)
        assert caller.spec is not None
        expected = set(caller.spec.argnames)
        if set(kwargs) != expected:
            raise TypeError(f"hook {hook} takes {sorted(expected)}, got {sorted(kwargs)}")
        # pluggy keeps implementations in reverse call order.
        return list(reversed(caller.get_hookimpls()))

    def _run_in_thread(self, call: _Call, index: int, impl: pluggy.HookImpl,
                       kwargs: dict[str, Any]) -> None:
        start = time.monotonic()
        outcome: HookValue | HookFailure
        try:
            outcome = _run(impl, kwargs)
        except BaseException as exc:  # SystemExit and friends, in a thread of our own
            outcome = HookFailure(impl.plugin_name, exc, time.monotonic() - start)
        finally:
            with self._lock:
                self._running.discard((call.hook, impl.plugin_name))
        if call.abandoned.is_set():
            self.log.warning("hook %s: plugin %r returned %.3fs after its call gave up",
                             call.hook, impl.plugin_name, outcome.elapsed_s)
        call.done.put((index, outcome))

    def _report(self, results: HookResults, deadline_s: float | None) -> None:
        for failure in results.failed:
            self.log.warning("hook %s: plugin %r raised %s: %s; skipped", results.hook,
                             failure.plugin, type(failure.error).__name__, failure.error,
                             exc_info=None if isinstance(failure.error, PVCError)
                             else failure.error)
        for name in results.overran:
            self.log.warning("hook %s: plugin %r overran the %.3fs deadline; skipped",
                             results.hook, name, deadline_s or 0.0)
        for name in results.busy:
            self.log.warning("hook %s: plugin %r is still running its previous call; skipped",
                             results.hook, name)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _run(impl: pluggy.HookImpl, kwargs: dict[str, Any]) -> HookValue | HookFailure:
    start = time.monotonic()
    try:
        value = impl.function(*[kwargs[arg] for arg in impl.argnames])
    except Exception as exc:  # a plugin's failure never escapes to the caller
        return HookFailure(impl.plugin_name, exc, time.monotonic() - start)
    return HookValue(impl.plugin_name, value, time.monotonic() - start)


def _collect(hook: str, outcomes: Iterable[HookValue | HookFailure],
             overran: tuple[str, ...], busy: tuple[str, ...]) -> HookResults:
    outcomes = list(outcomes)
    return HookResults(
        hook=hook,
        values=tuple(o for o in outcomes if isinstance(o, HookValue)),
        failed=tuple(o for o in outcomes if isinstance(o, HookFailure)),
        overran=overran, busy=busy)
