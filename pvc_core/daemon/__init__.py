"""The PVC node daemon (``pvcnoded``): one object per node, see :class:`NodeDaemon`."""

from pvc_core.daemon.node import NodeDaemon

__all__ = ["NodeDaemon"]
