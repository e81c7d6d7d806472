"""The ``health_basic`` hook plugin (entry point ``pvc.plugins: health_basic``).

Enable it with ``plugins: [health_basic]`` in ``pvc.yaml``. Every keepalive
it gives two health checks of the node (``pvc_collect_health_checks``):

- ``root_filesystem``: free space on ``/`` (blocks available to
  unprivileged users); failing below 10 % free;
- ``memory``: ``MemAvailable`` of ``/proc/meminfo``; failing below 10 % of
  ``MemTotal``.

Both read local kernel figures only (no subprocess, no network), so they
return in well under a millisecond. A figure that cannot be read is a
failing check saying why. See :class:`~.plugin.BasicHealth`.
"""

from pvc_plugins.health_basic.plugin import BasicHealth

__all__ = ["BasicHealth"]
