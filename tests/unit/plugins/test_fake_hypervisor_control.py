"""The fake hypervisor's control socket drives it from outside its process."""

from __future__ import annotations

import json
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pvc_core.drivers.base import DriverContext
from pvc_core.drivers.hypervisor import DomainState
from pvc_core.errors import AlreadyExists, DriverError, InvalidInput, NotFound
from pvc_plugins.fake.control import FakeHypervisorControl
from pvc_plugins.fake.hypervisor import FakeHypervisorDriver

U1 = "11111111-2222-3333-4444-555555555555"
XML = (f"<domain type='kvm'><name>vm1</name><uuid>{U1}</uuid>"
       "<memory unit='MiB'>512</memory><vcpu>1</vcpu></domain>")


@pytest.fixture
def sock_dir(tmp_path: Path) -> Path:
    # a short path: a Unix socket address holds at most 107 bytes
    return tmp_path


@pytest.fixture
def hv(sock_dir: Path) -> Iterator[FakeHypervisorDriver]:
    driver = FakeHypervisorDriver({"memory_mib": 4096, "control_socket": "hv.sock"},
                                  DriverContext(node="hv1", state_dir=str(sock_dir)))
    yield driver
    driver.close()


@pytest.fixture
def ctl(sock_dir: Path, hv: FakeHypervisorDriver) -> FakeHypervisorControl:
    return FakeHypervisorControl(sock_dir / "hv.sock")


def test_socket_is_private_and_removed_on_close(sock_dir: Path,
                                                 hv: FakeHypervisorDriver) -> None:
    path = sock_dir / "hv.sock"  # relative to the node's state_dir
    assert stat.S_ISSOCK(path.lstat().st_mode)
    assert stat.S_IMODE(path.lstat().st_mode) == 0o600
    hv.close()
    hv.close()  # idempotent
    assert not path.exists()
    with pytest.raises(DriverError, match="hv.sock"):
        FakeHypervisorControl(path, timeout=1).domains()


def test_define_start_crash_by_hand(hv: FakeHypervisorDriver,
                                    ctl: FakeHypervisorControl) -> None:
    info = ctl.define(XML)
    assert (info["uuid"], info["name"], info["state"], info["memory_mib"]) == (
        U1, "vm1", "shutoff", 512)
    ctl.start(U1)
    assert hv.domain_info(U1).state is DomainState.RUNNING
    assert ctl.state(U1) == "running" and ctl.domains()[U1]["active"] is True
    ctl.crash(U1)
    assert hv.domain_info(U1).state is DomainState.CRASHED
    ctl.destroy(U1)
    assert ctl.state(U1) == "shutoff"
    assert ctl.state("no-such-uuid") is None
    assert ctl.calls_to("start") == [[U1]]
    assert ctl.calls_to("list_domains") == []  # reading the domains is not a call


def test_hang_and_finish_a_shutdown(hv: FakeHypervisorDriver,
                                    ctl: FakeHypervisorControl) -> None:
    hv.define(XML)
    hv.start(U1)
    ctl.hang_shutdown(U1)
    result: list[bool] = []
    t = threading.Thread(target=lambda: result.append(hv.shutdown(U1, timeout=30)))
    t.start()
    assert hv.wait_for_state(U1, DomainState.SHUTDOWN, 10)
    ctl.finish_shutdown(U1)
    t.join(10)
    assert result == [True] and hv.domain_info(U1).state is DomainState.SHUTOFF
    assert U1 not in hv.hang_shutdown


def test_fail_start_and_allow_it_again(hv: FakeHypervisorDriver,
                                       ctl: FakeHypervisorControl) -> None:
    hv.define(XML)
    ctl.fail_start(U1)
    with pytest.raises(DriverError, match="injected fault"):
        hv.start(U1)
    ctl.fail_start(U1, fail=False)
    hv.start(U1)
    assert hv.domain_info(U1).state is DomainState.RUNNING


def test_errors_come_back_as_the_same_errors(hv: FakeHypervisorDriver,
                                             ctl: FakeHypervisorControl) -> None:
    with pytest.raises(NotFound, match="no domain with UUID"):
        ctl.crash(U1)
    ctl.define(XML)
    with pytest.raises(AlreadyExists, match="already exists"):
        ctl.define(XML.replace(U1, "99999999-2222-3333-4444-555555555555"))
    with pytest.raises(InvalidInput, match="unknown operation 'reboot'"):
        ctl.request("reboot", uuid=U1)
    with pytest.raises(InvalidInput, match="bad arguments"):
        ctl.request("crash", vm=U1)


def test_garbage_on_the_socket_is_refused(sock_dir: Path, hv: FakeHypervisorDriver) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(str(sock_dir / "hv.sock"))
        s.sendall(b"not json\n")
        answer = json.loads(s.makefile("rb").readline())
    assert answer["ok"] is False and answer["error"] == "InvalidInput"
    assert hv.list_domains() == []


def test_a_stale_socket_is_replaced_a_live_one_or_a_file_refused(sock_dir: Path) -> None:
    ctx = DriverContext(node="hv2", state_dir=str(sock_dir))
    stale = sock_dir / "stale.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(stale))
    dead.close()  # the file stays, nobody listens: a killed process's socket
    first = FakeHypervisorDriver({"control_socket": str(stale)}, ctx)
    try:
        assert FakeHypervisorControl(stale).domains() == {}
        with pytest.raises(DriverError, match="another driver answers there"):
            FakeHypervisorDriver({"control_socket": str(stale)}, ctx)
        assert FakeHypervisorControl(stale).domains() == {}  # the first one still serves
    finally:
        first.close()
    (sock_dir / "file").write_text("keep me")
    with pytest.raises(DriverError, match="exists and is not a socket"):
        FakeHypervisorDriver({"control_socket": "file"}, ctx)
    assert (sock_dir / "file").read_text() == "keep me"
    with pytest.raises(DriverError, match="longer than 107 bytes"):
        FakeHypervisorDriver({"control_socket": "x" * 120}, ctx)
