"""The invariant sampler can fail: it sees a VM on two nodes, and only live guests.

Fast (no cluster): real ``fake`` hypervisor drivers in this process write
the state files, and a real child process stands for a node whose daemon
is alive, hung or dead.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid as uuidlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from pvc_core.drivers.base import DriverContext
from pvc_local import procs
from pvc_plugins.fake.hypervisor import FakeHypervisorDriver

from .sampler import InvariantSampler, read_all, read_node

U1 = str(uuidlib.UUID(int=1, version=4))
U2 = str(uuidlib.UUID(int=2, version=4))


def xml(name: str, uuid: str) -> str:
    return (f"<domain type='kvm'><name>{name}</name><uuid>{uuid}</uuid>"
            "<memory unit='MiB'>64</memory><vcpu>1</vcpu></domain>")


def hypervisor(tmp_path: Path, node: str) -> FakeHypervisorDriver:
    return FakeHypervisorDriver({"state_file": str(tmp_path / f"{node}.json")},
                                DriverContext(node=node))


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)  # noqa: S603,S607
    yield proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def test_a_vm_on_two_nodes_is_a_violation(tmp_path: Path) -> None:
    hv1, hv2 = hypervisor(tmp_path, "n1"), hypervisor(tmp_path, "n2")
    for hv in (hv1, hv2):
        hv.define(xml("vm1", U1))
    hv1.define(xml("vm2", U2))
    hv1.start(U1)
    hv1.start(U2)
    sampler = InvariantSampler({"n1": tmp_path / "n1.json", "n2": tmp_path / "n2.json"})
    assert sampler.sample() == {U1: ["n1"], U2: ["n1"]}
    assert sampler.violations == []
    hv2.start(U1)  # the split brain the cluster must never produce
    assert sampler.sample()[U1] == ["n1", "n2"]
    hv1.destroy(U1)
    sampler.sample()
    assert [(v.vm, v.nodes) for v in sampler.violations] == [(U1, ("n1", "n2"))]
    assert sampler.samples == 3
    assert sampler.min_active(0, time.monotonic()) == (2, 3)


def test_guests_count_only_while_the_writer_process_exists(
        tmp_path: Path, child: subprocess.Popen[bytes]) -> None:
    hv = hypervisor(tmp_path, "n1")
    hv.define(xml("vm1", U1))
    hv.start(U1)
    path = tmp_path / "n1.json"
    doc = json.loads(path.read_text())
    ref = procs.ref_of(child.pid)
    doc.update(pid=ref.pid, pid_start=ref.start_time)  # as if that process had written it
    path.write_text(json.dumps(doc))
    assert read_node(path) == {U1}
    child.send_signal(signal.SIGSTOP)  # hung: its guests still run
    assert read_all({"n1": path}) == {U1: ["n1"]}
    child.send_signal(signal.SIGKILL)  # power loss: its guests are gone
    child.wait(10)
    assert read_node(path) == set()
    doc.update(pid_start=ref.start_time + 1)  # a reused PID is not the writer
    path.write_text(json.dumps(doc))
    assert read_node(path) == set()
    assert read_node(tmp_path / "never-written.json") == set()


def test_the_thread_samples_every_period(tmp_path: Path) -> None:
    hv = hypervisor(tmp_path, "n1")
    hv.define(xml("vm1", U1))
    hv.start(U1)
    sampler = InvariantSampler({"n1": tmp_path / "n1.json"}, period=0.02)
    sampler.start()
    end = time.monotonic() + 10
    while sampler.samples < 20 and time.monotonic() < end:
        time.sleep(0.02)
    sampler.stop()
    assert sampler.samples >= 20 and not sampler.errors and not sampler.alive
    assert sampler.violations == [] and sampler.max_gap < 1.0
