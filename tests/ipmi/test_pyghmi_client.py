"""pyghmi's own client against the simulated BMC (the RMCP+ open-session fix).

The BMC always negotiates cipher suite 3; pyghmi's client proposes SHA256
first and, without :func:`pvc_local.bmc.install_open_session_fix`, crashes
(``struct.error: pack expected 32 items``). With it the client falls back
to SHA1. ipmitool with ``-C 3`` is the client PVC uses; this keeps the
simulator usable from Python too.
"""

from __future__ import annotations

from pyghmi.ipmi import command

from .conftest import SimBmc, wait_for


def test_pyghmi_client_reads_and_sets_power(sim_bmc: SimBmc) -> None:
    client = command.Command(bmc="127.0.0.1", port=sim_bmc.entry.port, userid="admin",
                             password=sim_bmc.password)
    try:
        assert client.get_power() == {"powerstate": "on"}
        client.set_power("off")
        assert wait_for(lambda: client.get_power()["powerstate"] == "off", 10, "power off")
        assert sim_bmc.victim.wait(5) is not None
    finally:
        client.ipmi_session.logout()
