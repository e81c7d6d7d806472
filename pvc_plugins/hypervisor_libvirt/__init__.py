"""The ``libvirt`` hypervisor driver (entry point ``pvc.drivers.hypervisor: libvirt``).

- :mod:`.driver`: :class:`~.driver.LibvirtHypervisorDriver`, the driver.
- :mod:`.connection`: one connection per driver, hard timeouts, error mapping.
- :mod:`.migration`: live migration (``migrate3``) and migration target URIs.
- console-log tails are read by the core (:mod:`pvc_core.console`) from the path this driver reports.
- :mod:`.xml`: the fields PVC reads from domain XML.
"""
