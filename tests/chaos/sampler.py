"""The invariant sampler: reads every node's hypervisor directly, every 100 ms.

Each node of the chaos cluster runs the ``fake`` hypervisor with a state
file (``DIR/nodeN/hypervisor.json``, see :mod:`pvc_plugins.fake.hypervisor`)
that the driver rewrites atomically on every change, activations before
they happen. A node's guests live in its daemon's memory, so they exist
only while that process does: a domain counts as running on a node when
the file says it is active *and* the process that wrote the file (PID and
start time in the file) still exists, alive or SIGSTOPped. A SIGKILL (a
crash, or the BMC's power-off) therefore takes the node's guests with it,
as a power loss does.

The sampler never talks to ZooKeeper and never waits on the cluster: it
reads files and ``/proc`` only, so it keeps sampling through every fault,
quorum loss included (its largest gap between samples is reported).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pvc_local import procs

#: Seconds between samples.
PERIOD = 0.1


@dataclass(frozen=True)
class Violation:
    """One sample in which a VM ran on more than one node."""

    at: float  # time.time() of the sample
    vm: str
    nodes: tuple[str, ...]

    def __str__(self) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.at)) + f".{int(self.at % 1 * 1000):03d}"
        return f"{stamp} {self.vm} active on {', '.join(self.nodes)}"


def read_node(path: Path) -> set[str]:
    """UUIDs active on one node right now (empty when its process is gone)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return set()
    pid, start = doc.get("pid"), doc.get("pid_start")
    if not isinstance(pid, int) or not isinstance(start, int):
        raise AssertionError(f"{path}: no writer PID and start time: {doc!r}")
    if not procs.is_running(procs.ProcRef(pid, start)):
        return set()  # its guests died with it
    return {uuid for uuid, dom in (doc.get("domains") or {}).items() if dom.get("active")}


def read_all(files: Mapping[str, Path]) -> dict[str, list[str]]:
    """VM uuid -> the nodes it is active on, sorted (VMs active nowhere are absent)."""
    where: dict[str, list[str]] = {}
    for node, path in sorted(files.items()):
        for uuid in read_node(path):
            where.setdefault(uuid, []).append(node)
    return where


class InvariantSampler:
    """A thread sampling :func:`read_all` every :data:`PERIOD` seconds until :meth:`stop`.

    Records every VM seen active on two or more nodes (:attr:`violations`),
    the number of samples, the largest gap between two samples and, per
    sample, how many VMs were active somewhere (:meth:`min_active`).
    """

    def __init__(self, files: Mapping[str, Path], period: float = PERIOD) -> None:
        self.files = dict(files)
        self.period = period
        self.samples = 0
        self.violations: list[Violation] = []
        self.errors: list[str] = []
        self.max_gap = 0.0
        self.started_at = 0.0
        self.stopped_at = 0.0
        self._active: list[tuple[float, int]] = []  # (monotonic, VMs active somewhere)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="invariant-sampler",
                                        daemon=True)

    def start(self) -> None:
        self.started_at = time.monotonic()
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self.stopped_at = time.monotonic()
        if self._thread.is_alive():
            self.errors.append(f"the sampler thread did not stop within {timeout:g}s")

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _loop(self) -> None:
        next_at = time.monotonic()
        last = None
        while not self._stop.is_set():
            now = time.monotonic()
            if last is not None:
                self.max_gap = max(self.max_gap, now - last)
            last = now
            try:
                self.sample()
            except Exception as exc:  # noqa: BLE001 - reported by the final check
                self.errors.append(f"{type(exc).__name__}: {exc}")
            next_at += self.period
            delay = next_at - time.monotonic()
            if delay < 0:  # fell behind (a busy machine): keep the rate, skip the backlog
                next_at = time.monotonic()
                delay = 0
            self._stop.wait(delay)

    def sample(self) -> dict[str, list[str]]:
        """Take one sample now and record it."""
        where = read_all(self.files)
        at, mono = time.time(), time.monotonic()
        with self._lock:
            self.samples += 1
            self._active.append((mono, len(where)))
            for uuid, nodes in sorted(where.items()):
                if len(nodes) > 1:
                    self.violations.append(Violation(at, uuid, tuple(nodes)))
        return where

    def min_active(self, since: float, until: float) -> tuple[int, int]:
        """(fewest VMs active in a sample, number of samples) between two monotonic times."""
        with self._lock:
            window = [n for t, n in self._active if since <= t <= until]
        return (min(window) if window else -1), len(window)
