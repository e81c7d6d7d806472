"""PVC core: coordination, state, policy and driver loading.

The core knows nothing of libvirt, Ceph, IPMI or netlink; those live in
``pvc_plugins`` and are loaded through entry points (see docs/extending.md).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pvc")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
