"""Enable the hook plugins named in configuration (``plugins: [...]``).

Hook plugins are entry points of the ``pvc.plugins`` group
(:data:`pvc_core.hooks.specs.PLUGIN_GROUP`). The node daemon and the API
server each load the configured ones into their own
:class:`~pvc_core.hooks.manager.HookManager` at start, after the enabled
drivers were registered. Like drivers, only the named entry points are
imported, and an enabled plugin that is missing, fails to import or does
not match the hook specifications stops the start with a
:class:`~pvc_core.errors.DriverLoadError` naming it.
"""

from __future__ import annotations

from pvc_core.config import Config
from pvc_core.hooks.manager import HookManager


def enabled_plugins(config: Config) -> list[str]:
    """The hook plugins ``config`` enables, in configuration order.

    ``plugins`` was validated by the core schema: a list of unique names.
    """
    names = config.raw.get("plugins") or []
    return [str(name) for name in names]


def load_hook_plugins(hooks: HookManager, config: Config) -> list[str]:
    """Import and register every plugin of ``config``'s ``plugins`` with ``hooks``.

    Returns the names registered by this call. A name already registered
    with ``hooks`` (a second call for the same manager) is left as it is.
    Raises DriverLoadError for a plugin that is missing, fails to import,
    cannot be instantiated or does not match the hook specifications;
    nothing is registered then.
    """
    registered = set(hooks.plugin_names())
    wanted = [name for name in enabled_plugins(config) if name not in registered]
    loaded = hooks.load_entrypoints(wanted)
    if loaded:
        hooks.log.info("hook plugins enabled: %s", ", ".join(loaded))
    return loaded
