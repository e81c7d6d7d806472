"""Real QEMU nodes on one machine: private libvirtds in namespaces and a tiny guest.

Used by the real-QEMU test suite (``tox -e qemu``) and by ``pvc-local up
--hypervisor qemu``. Needs root and the Debian packages that
``scripts/install-deps`` installs; :func:`unavailable_reason` says why not.

**Nodes.** Every node (index 0 too) gets its own network namespace
``pvcq<name>`` and its own mount namespace, in which a private copy of
``/etc/libvirt`` and the node's own ``run``, ``lib`` and ``log`` directories
are bind-mounted over ``/etc/libvirt``, ``/run/libvirt``,
``/var/lib/libvirt`` and ``/var/log/libvirt``; ``virtlogd`` and ``libvirtd``
(pinned with ``taskset -c 0``: ENVIRONMENT.md section 5) run there. So the
host's own libvirt configuration is never edited (``user = "root"``,
``security_driver = "none"`` and a per-node ``host_uuid`` go into the
private copy), and the ``ip``/``ip6`` nft tables libvirtd creates live and die
with the node's namespace. The nodes' ``eth0`` (``10.250.0.<index+1>/24``)
are joined by a bridge in the namespace ``pvcq-hub`` (created with the first
node, removed with the last). Clients reach a node's libvirtd through its
socket ``<state_dir>/run/libvirt-sock`` (``qemu+unix``); migration streams
go to ``tcp://10.250.0.<index+1>``. The QEMU processes run in the node's
namespaces, so a guest's console log must live in a directory every node
sees (anything but the four directories above). Only ``/run/libvirt`` is
created on the host when missing (as an empty mount point).

**Guest.** :func:`ensure_guest_images` and :func:`guest_domain_xml` (from
:mod:`pvc_local.qemu_guest`, re-exported here): a Debian kernel and a
static-busybox initramfs, built once per cache directory, and a TCG domain
with a serial console log file.

Every external command runs with an argument list and a timeout.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid as uuidlib
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

from pvc_local.qemu_guest import (
    GuestImages,
    QemuError,
    ensure_guest_images,
    guest_domain_xml,
    is_static_elf,
    run,
    tool,
)

__all__ = ["GuestImages", "NodeLibvirtd", "QemuError", "ensure_guest_images",
           "guest_domain_xml", "run", "tool", "unavailable_reason"]

HUB_NETNS = "pvcq-hub"
SUBNET = "10.250.0"
TOOLS = ("ip", "unshare", "nsenter", "taskset", "sleep", "libvirtd", "virtlogd",
         "qemu-system-x86_64", "busybox", "cpio", "apt-get", "apt-cache", "dpkg-deb", "mount")


def unavailable_reason() -> str | None:
    """Why real QEMU nodes cannot run here, or None when they can.

    Detected, not assumed: root, the tools, a static busybox, and the
    kernel's network namespaces, bridges, veth pairs and mount namespaces.
    KVM is not needed (guests use TCG).
    """
    if os.geteuid() != 0:
        return "needs root (network and mount namespaces, libvirtd)"
    missing = []
    for name in TOOLS:
        try:
            tool(name)
        except QemuError:
            missing.append(name)
    if missing:
        return f"not installed: {', '.join(missing)} (scripts/install-deps installs them)"
    if not is_static_elf(Path(tool("busybox")).resolve()):
        return f"{tool('busybox')} is not statically linked (install busybox-static)"
    probe = f"pvcq-probe{os.getpid()}"
    try:
        run(["ip", "netns", "add", probe])
        try:
            run(["ip", "-n", probe, "link", "add", "b0", "type", "bridge"])
            run(["ip", "-n", probe, "link", "add", "v0", "type", "veth", "peer", "name", "v1"])
        finally:
            run(["ip", "netns", "del", probe])
        run(["unshare", "--mount", "--propagation", "private", "true"])
    except QemuError as exc:
        return f"namespaces, bridges or veth pairs are unavailable: {exc}"
    return None


# -- processes ---------------------------------------------------------------


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (PID 1 may never reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _read_pid(path: Path, comm: str) -> int | None:
    """The PID in a PID file when that process is alive and is ``comm``."""
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) and _comm(pid) == comm else None


def _wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Wait until the processes are gone; those still alive after ``timeout``."""
    deadline, pause = time.monotonic() + timeout, threading.Event()
    left = [p for p in pids if _alive(p)]
    while left and time.monotonic() < deadline:
        pause.wait(0.05)
        left = [p for p in left if _alive(p)]
    return left


def _signal(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _netns_list() -> set[str]:
    return {line.split()[0] for line in run(["ip", "netns", "list"]).decode().splitlines()
            if line.strip()}


def _netns_pids(netns: str) -> list[int]:
    if netns not in _netns_list():
        return []
    return [int(p) for p in run(["ip", "netns", "pids", netns]).decode().split()]


# -- nodes -------------------------------------------------------------------


def _ensure_hub() -> None:
    """The namespace whose bridge ``br0`` joins every node's ``eth0``."""
    if HUB_NETNS not in _netns_list():
        try:
            run(["ip", "netns", "add", HUB_NETNS])
        except QemuError:
            if HUB_NETNS not in _netns_list():  # else: another node created it meanwhile
                raise
    if b"br0" not in run(["ip", "-n", HUB_NETNS, "-o", "link", "show"]):
        run(["ip", "-n", HUB_NETNS, "link", "add", "br0", "type", "bridge"])
    run(["ip", "-n", HUB_NETNS, "link", "set", "br0", "up"])


def _remove_hub_if_unused() -> None:
    if HUB_NETNS in _netns_list() and not run(
            ["ip", "-n", HUB_NETNS, "-o", "link", "show", "type", "veth"]).strip():
        run(["ip", "netns", "del", HUB_NETNS])


class NodeLibvirtd:
    """One node's private libvirtd (see the module docstring).

    ``state_dir`` is this node's own directory; ``stop()`` works from a new
    object built with the same arguments (it finds everything by the PID
    files and names derived from them), so ``up`` and ``down`` may be
    different processes.
    """

    def __init__(self, state_dir: Path, name: str, index: int) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,24}", name):
            raise ValueError(f"node name {name!r}: 1-24 letters, digits, '-' or '_'")
        if not 0 <= index < 250:
            raise ValueError(f"node index {index} is not in 0..249")
        self.dir = Path(state_dir).absolute()
        self.name, self.index = name, index
        self.netns = f"pvcq{name}"
        self.address = f"{SUBNET}.{index + 1}"
        self.socket = self.dir / "run" / "libvirt-sock"
        if len(str(self.socket).encode()) > 100:
            raise ValueError(f"{self.socket} is too long for a unix socket path")

    @property
    def uri(self) -> str:
        """The libvirt URI of this node from the root namespace (and from other nodes)."""
        return f"qemu+unix:///system?socket={quote(str(self.socket))}"

    @property
    def migration_uri(self) -> str:
        """What other nodes' drivers connect to: the same socket (a shared filesystem)."""
        return self.uri

    @property
    def migration_address(self) -> str:
        """Where incoming migration streams reach this node's QEMU."""
        return f"tcp://{self.address}"

    def _mounts(self) -> list[tuple[Path, str]]:
        return [(self.dir / "etc", "/etc/libvirt"), (self.dir / "run", "/run/libvirt"),
                (self.dir / "lib", "/var/lib/libvirt"), (self.dir / "log", "/var/log/libvirt")]

    def running(self) -> bool:
        """True while this node's libvirtd runs."""
        return _read_pid(self.dir / "libvirtd.pid", "libvirtd") is not None

    def _prepare(self) -> None:
        """The node's own configuration: a copy of /etc/libvirt, made once.

        Kept across restarts, like a host's: persistent domain definitions
        (``etc/qemu/*.xml``) survive ``stop()`` and ``start()``.
        """
        etc = self.dir / "etc"
        if not (etc / "libvirtd.conf").exists():
            self._configure(etc)
        for sub in ("run", "lib/qemu", "log/qemu"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        Path("/run/libvirt").mkdir(exist_ok=True)  # a mount point; empty on the host

    def _configure(self, etc: Path) -> None:
        staging = self.dir / "etc.new"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree("/etc/libvirt", staging, symlinks=True)
        for xml in (staging / "qemu").glob("*.xml"):
            xml.unlink()  # the host's own domains are not this node's
        host_uuid = uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"pvc-local-qemu/{self.name}/{self.index}")
        with open(staging / "libvirtd.conf", "a") as fh:
            fh.write(f'\n# pvc_local.qemu\nhost_uuid = "{host_uuid}"\n'
                     'log_outputs = "3:file:/var/log/libvirt/libvirtd.log"\n')
        with open(staging / "qemu.conf", "a") as fh:
            fh.write('\n# pvc_local.qemu\nuser = "root"\ngroup = "root"\n'
                     'security_driver = "none"\n')
        shutil.rmtree(etc, ignore_errors=True)
        staging.rename(etc)

    def _network(self) -> None:
        if self.netns in _netns_list():
            pids = _netns_pids(self.netns)
            if pids:
                raise QemuError(f"namespace {self.netns} is in use by PIDs {pids}: "
                                f"is node {self.name} already running?")
            run(["ip", "netns", "del", self.netns])  # left over from a crashed run
        _ensure_hub()
        run(["ip", "netns", "add", self.netns])
        hub_end = f"n{self.index}"
        run(["ip", "-n", HUB_NETNS, "link", "add", hub_end, "type", "veth",
             "peer", "name", "eth0", "netns", self.netns])
        run(["ip", "-n", HUB_NETNS, "link", "set", hub_end, "master", "br0", "up"])
        run(["ip", "-n", self.netns, "addr", "add", f"{self.address}/24", "dev", "eth0"])
        run(["ip", "-n", self.netns, "link", "set", "eth0", "up"])
        run(["ip", "-n", self.netns, "link", "set", "lo", "up"])

    def start(self, timeout: float = 60.0) -> None:
        """Start virtlogd and libvirtd in the node's namespaces; wait until usable.

        Idempotent while the node runs. On failure everything started so far
        is stopped again and QemuError says why (with libvirtd's log).
        """
        if self.running():
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            self._prepare()
            self._network()
            self._start_daemons()
            self._wait_ready(timeout)
        except BaseException as exc:
            log = self.dir / "log" / "libvirtd.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            try:
                self.stop()
            except QemuError as cleanup:
                tail += f"\n(cleaning up also failed: {cleanup})"
            if isinstance(exc, QemuError):
                raise QemuError(f"node {self.name}: {exc}\n{tail}") from None
            raise

    def _start_daemons(self) -> None:
        holder_log = open(self.dir / "holder.log", "wb")  # noqa: SIM115 - closed below
        holder = subprocess.Popen(  # noqa: S603 - fixed argv
            [tool("ip"), "netns", "exec", self.netns, tool("unshare"), "--mount",
             "--propagation", "private", tool("sleep"), "infinity"],
            stdin=subprocess.DEVNULL, stdout=holder_log, stderr=holder_log)
        try:
            self._wait_holder(holder.pid)
            enter = ["nsenter", "-t", str(holder.pid), "--mount", "--net", "--"]
            for src, dst in self._mounts():
                run([*enter, tool("mount"), "--bind", str(src), dst])
            run([*enter, tool("virtlogd"), "-d", "-p", str(self.dir / "virtlogd.pid")])
            run([*enter, tool("taskset"), "-c", "0", tool("libvirtd"), "-d",
                 "-p", str(self.dir / "libvirtd.pid")], timeout=60)
        finally:
            holder.kill()
            holder.wait(timeout=10)
            holder_log.close()

    @staticmethod
    def _wait_holder(pid: int) -> None:
        own, pause = os.readlink("/proc/self/ns/mnt"), threading.Event()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if _comm(pid) == "sleep" and os.readlink(f"/proc/{pid}/ns/mnt") != own:
                    return
            except OSError:
                pass
            if not _alive(pid):
                break
            pause.wait(0.02)
        raise QemuError("the namespace holder process did not start")

    def _wait_ready(self, timeout: float) -> None:
        """Until a libvirt connection opens (in a thread: an open can block)."""
        import libvirt  # noqa: PLC0415 - only the qemu mode needs it

        deadline, pause = time.monotonic() + timeout, threading.Event()
        last = ["no socket yet"]
        while time.monotonic() < deadline:
            if not self.running():
                raise QemuError("libvirtd exited during startup")
            if self.socket.exists():
                finished, opened = threading.Event(), threading.Event()

                def try_open(finished: threading.Event = finished,
                             opened: threading.Event = opened) -> None:
                    try:
                        libvirt.open(self.uri).close()
                        opened.set()
                    except libvirt.libvirtError as exc:
                        last.append(str(exc))
                    finally:
                        finished.set()

                threading.Thread(target=try_open, daemon=True).start()
                finished.wait(max(0.0, deadline - time.monotonic()))
                if opened.is_set():
                    return
            pause.wait(0.05)
        raise QemuError(f"libvirtd did not answer within {timeout:g} s: {last[-1]}")

    def stop(self, timeout: float = 15.0) -> None:
        """Stop QEMU guests, libvirtd and virtlogd; remove the namespaces. Idempotent.

        Every process in the node's network namespace (guests and daemons,
        all started here) gets SIGTERM, then SIGKILL after ``timeout``.
        """
        pids = set(_netns_pids(self.netns))
        for pidfile, comm in (("libvirtd.pid", "libvirtd"), ("virtlogd.pid", "virtlogd")):
            pid = _read_pid(self.dir / pidfile, comm)
            if pid is not None:
                pids.add(pid)
        _signal(pids, signal.SIGTERM)
        left = _wait_gone(pids, timeout)
        if left:
            _signal(left, signal.SIGKILL)
            left = _wait_gone(left, 5.0)
        if left:
            raise QemuError(f"node {self.name}: PIDs {left} survived SIGKILL")
        if self.netns in _netns_list():
            run(["ip", "netns", "del", self.netns])
        _remove_hub_if_unused()
