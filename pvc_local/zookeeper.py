"""Private ZooKeeper servers on loopback, for tests and the local cluster.

Starts Debian's ZooKeeper (installed by ``scripts/install-deps``, or here when
missing and running as root) from a private directory: no systemd, no shared
state, bound to 127.0.0.1 only, stopped by the PID it recorded.

Ports are chosen free (:func:`free_ports`), but they are free only until the
probe socket closes: another process may take one before the JVM binds it.
A start that waits therefore recognises a failed bind (``BindException`` in
the server's log) and starts again on new ports, at most
:data:`BIND_ATTEMPTS` times: :meth:`ZooKeeperServer.start` for a server whose
port it chose itself, :meth:`ZooKeeperEnsemble.start` for all the ports of an
ensemble. A port given by the caller is never changed: a failed bind then is
a :class:`ZooKeeperError` naming the port.

Command line (``pvc-zookeeper``)::

    pvc-zookeeper start --dir DIR [--port N] [--tick-ms N]   # prints host:port
    pvc-zookeeper stop --dir DIR
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ZK_JAR = Path("/usr/share/java/zookeeper.jar")
SLF4J_JAR = Path("/usr/share/java/slf4j-simple.jar")
MAIN_CLASS = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
APT_PACKAGES = ("zookeeper",)
#: How many times a waiting start tries, each on new ports, when a bind fails.
BIND_ATTEMPTS = 5
#: What the JVM logs when a port it must listen on is taken.
BIND_FAILURE = b"java.net.BindException"


class ZooKeeperError(RuntimeError):
    """The server could not be installed, started or stopped."""


def ensure_installed() -> None:
    """Install Debian's ZooKeeper when its jar is missing (root only)."""
    if ZK_JAR.exists() and SLF4J_JAR.exists():
        return
    if os.geteuid() != 0:
        raise ZooKeeperError(f"{ZK_JAR} is missing: run scripts/install-deps as root")
    for argv in (["apt-get", "-o", "DPkg::Lock::Timeout=600", "update", "-q"],
                 ["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "-q",
                  "--no-install-recommends", *APT_PACKAGES]):
        subprocess.run(argv, check=True, timeout=900,  # noqa: S603 - fixed argv
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if not ZK_JAR.exists():
        raise ZooKeeperError(f"{ZK_JAR} still missing after installing {APT_PACKAGES}")


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct TCP ports free on 127.0.0.1 right now."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def four_letter(port: int, word: str, timeout: float = 1.0) -> str:
    """Send a four-letter command to 127.0.0.1:port and return the answer ('' on error)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(word.encode())
            chunks = []
            while True:
                data = s.recv(4096)
                if not data:
                    break
                chunks.append(data)
            return b"".join(chunks).decode(errors="replace")
    except OSError:
        return ""


class ZooKeeperServer:
    """One ZooKeeper JVM (standalone, or a member of an ensemble).

    :param directory: private directory for config, data, log and pid file.
    :param client_port: loopback client port (a free one when None).
    :param tick_ms: tickTime; the server clamps client session timeouts to
        2-20 ticks (500 ms: 1-10 s).
    :param server_id: member id in an ensemble (with ``peers``).
    :param peers: ``{id: (quorum_port, election_port)}`` of every member.
    """

    def __init__(self, directory: Path | str, client_port: int | None = None,
                 tick_ms: int = 500, server_id: int | None = None,
                 peers: dict[int, tuple[int, int]] | None = None) -> None:
        self.dir = Path(directory).absolute()
        #: The client port. Chosen here when not given, and then changed by a
        #: waiting :meth:`start` whose bind failed: read it after the start.
        self.port = client_port or free_ports(1)[0]
        self.tick_ms = tick_ms
        self.server_id = server_id
        self.peers = peers or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self._own_port = client_port is None
        self._log_start = 0  # where the current run's output begins in zk.log

    @property
    def hosts(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.dir / "zk.pid"

    def _write_config(self) -> Path:
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        lines = [
            f"tickTime={self.tick_ms}", "initLimit=10", "syncLimit=5",
            f"dataDir={data}", "clientPortAddress=127.0.0.1", f"clientPort={self.port}",
            "admin.enableServer=false", "4lw.commands.whitelist=ruok,srvr,mntr,stat,envi",
            "maxClientCnxns=0",
        ]
        if self.server_id is not None:
            (data / "myid").write_text(f"{self.server_id}\n")
            for sid, (qport, eport) in sorted(self.peers.items()):
                lines.append(f"server.{sid}=127.0.0.1:{qport}:{eport}")
        cfg = self.dir / "zoo.cfg"
        cfg.write_text("\n".join(lines) + "\n")
        return cfg

    @property
    def log_file(self) -> Path:
        return self.dir / "zk.log"

    def start(self, wait: bool = True, timeout: float = 30.0) -> None:
        """Start the JVM; with ``wait``, return once it serves requests.

        With ``wait``, a server whose client port was chosen here (none given)
        and whose bind failed is started again on a new free port, up to
        :data:`BIND_ATTEMPTS` runs in all within ``timeout``; :attr:`port` and
        :attr:`hosts` then name the port it serves on. Without ``wait`` the
        JVM is started once: :meth:`wait_serving` reports a failed bind.

        :raises ZooKeeperError: ZooKeeper or java is missing, the server
            exited (a port taken on the last attempt, or a port given by the
            caller: the message says so), or it did not serve within ``timeout``.
        """
        if not wait:
            self._launch()
            return
        deadline = time.monotonic() + timeout
        for attempt in range(1, BIND_ATTEMPTS + 1):
            self._launch()
            try:
                self.wait_serving(max(0.0, deadline - time.monotonic()))
                return
            except ZooKeeperError:
                if not (self._own_port and self.bind_failed() and attempt < BIND_ATTEMPTS):
                    raise
            self.stop()
            self.port = free_ports(1)[0]

    def _launch(self) -> None:
        """Write the configuration and start the JVM once (no wait)."""
        ensure_installed()
        java = shutil.which("java")
        if not java:
            raise ZooKeeperError("java is not installed (Debian's zookeeper depends on it)")
        cfg = self._write_config()
        self._log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
        log = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child
        argv = [java, "-Xmx128m", "-XX:+UseSerialGC",
                "-Dzookeeper.admin.enableServer=false",
                "-cp", f"{ZK_JAR}:{SLF4J_JAR}", MAIN_CLASS, str(cfg)]
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=self.dir)
        log.close()
        self.pid_file.write_text(f"{self.proc.pid}\n")

    def check_running(self) -> None:
        """Raise ZooKeeperError if the JVM this object started has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            why = f": one of its ports {self.own_ports()} was taken" if self.bind_failed() else ""
            raise ZooKeeperError(f"ZooKeeper exited with {self.proc.returncode}{why};"
                                 f" see {self.log_file}")

    def bind_failed(self) -> bool:
        """True when the current run (since the last start) failed to bind a port.

        Read from the server's log: the client port and the election port end
        the JVM, a taken quorum port only stops this member from leading.
        """
        try:
            with open(self.log_file, "rb") as log:
                log.seek(self._log_start)
                return BIND_FAILURE in log.read()
        except OSError:
            return False

    def own_ports(self) -> list[int]:
        """The ports this server listens on: client, then quorum and election (a member)."""
        ports = [self.port]
        if self.server_id is not None and self.server_id in self.peers:
            ports += self.peers[self.server_id]
        return ports

    def serving(self) -> bool:
        """True when the server answers ``srvr`` with a mode (it has quorum)."""
        return "Mode:" in four_letter(self.port, "srvr")

    def wait_serving(self, timeout: float = 30.0) -> None:
        """Return once the server serves; ZooKeeperError when it exits or after ``timeout``."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.check_running()
            if self.serving():
                return
            time.sleep(0.05)  # polling a socket; the condition is the answer
        raise ZooKeeperError(f"ZooKeeper on {self.hosts} not serving after {timeout:g}s")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        """Stop the JVM by its PID (SIGKILL after ``timeout``). Idempotent."""
        if self.proc is None:
            stop_pidfile(self.pid_file, sig, timeout)
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self.proc = None
        self.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL: a crash, as chaos tests want it."""
        self.stop(signal.SIGKILL)


def stop_pidfile(pid_file: Path, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    """Stop a process recorded in ``pid_file`` (used by ``pvc-zookeeper stop``)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        return
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)


def ensemble_ports(size: int) -> tuple[list[int], dict[int, tuple[int, int]]]:
    """Free ports for ``size`` members: client ports, and ``{id: (quorum, election)}``."""
    ports = free_ports(3 * size)
    peers = {i + 1: (ports[size + 2 * i], ports[size + 2 * i + 1]) for i in range(size)}
    return ports[:size], peers


class ZooKeeperEnsemble:
    """``size`` ZooKeeper members on loopback forming one ensemble."""

    def __init__(self, directory: Path | str, size: int = 3, tick_ms: int = 500) -> None:
        clients, peers = ensemble_ports(size)
        self.members = [
            ZooKeeperServer(Path(directory) / f"zk{i + 1}", clients[i], tick_ms, i + 1, peers)
            for i in range(size)
        ]

    def _new_ports(self) -> None:
        """Give every member a new client port and the ensemble new peer ports."""
        clients, peers = ensemble_ports(len(self.members))
        for m, port in zip(self.members, clients, strict=True):
            m.port, m.peers = port, peers

    @property
    def hosts(self) -> str:
        return ",".join(m.hosts for m in self.members)

    def start(self, timeout: float = 60.0) -> None:
        """Start every member; return once all serve.

        When a member fails to bind one of its ports, every member is stopped
        and the ensemble starts again on new ports (the members' configs name
        each other's), up to :data:`BIND_ATTEMPTS` runs within ``timeout``:
        read :attr:`hosts` after the start.

        :raises ZooKeeperError: a member exited for another reason, a bind
            failed on the last attempt, or not all served within ``timeout``.
        """
        deadline = time.monotonic() + timeout
        for attempt in range(1, BIND_ATTEMPTS + 1):
            for m in self.members:
                m.start(wait=False)
            try:
                self._wait_serving(deadline)
                # A taken quorum port does not end the JVM (that member just never
                # leads): it is a failed start all the same.
                failed = [m for m in self.members if m.bind_failed()]
                if not failed:
                    return
                if attempt == BIND_ATTEMPTS:
                    raise ZooKeeperError(
                        f"ZooKeeper member {failed[0].server_id} could not bind one of its"
                        f" ports {failed[0].own_ports()}; see {failed[0].log_file}")
            except ZooKeeperError:
                if attempt == BIND_ATTEMPTS or not any(m.bind_failed() for m in self.members):
                    self.stop()
                    raise
            self.stop()
            self._new_ports()

    def _wait_serving(self, deadline: float) -> None:
        """Until every member serves; ZooKeeperError as soon as one exits, or at ``deadline``."""
        while True:
            for m in self.members:
                m.check_running()
            if all(m.serving() for m in self.members):
                return
            if time.monotonic() >= deadline:
                raise ZooKeeperError(f"ZooKeeper ensemble {self.hosts} not serving in time")
            time.sleep(0.05)  # polling sockets; the condition is the answer

    def stop(self) -> None:
        for m in self.members:
            m.stop()

    def leader(self) -> ZooKeeperServer | None:
        for m in self.members:
            if "Mode: leader" in four_letter(m.port, "srvr"):
                return m
        return None


def expire_session(hosts: str, session_id: tuple[int, bytes], timeout: float = 10.0) -> None:
    """Expire another client's session the way ZooKeeper's own tests do.

    A second client joins the same session (id and password) and closes it;
    the server then expires the session for the original client.
    """
    from kazoo.client import KazooClient

    twin = KazooClient(hosts=hosts, client_id=session_id, timeout=timeout)
    twin.start(timeout=timeout)
    twin.stop()
    twin.close()


#: ZooKeeperServer.superSecret: the server derives each session's password from it.
_SUPER_SECRET = 0xB3415C00
_JAVA_RANDOM_MULTIPLIER = 0x5DEECE66D
_MASK48 = (1 << 48) - 1


def session_password(session_id: int) -> bytes:
    """The password ZooKeeper gives session ``session_id`` (16 bytes).

    The server does not store session passwords: it derives them as
    ``new java.util.Random(id ^ superSecret).nextBytes(new byte[16])``
    (``ZooKeeperServer.generatePasswd``) and checks a reconnecting client
    against that. This is the same computation (Java's linear congruential
    generator), so a test can join, and so expire, any session whose id it
    knows, e.g. the ``ephemeralOwner`` of a node's ``alive`` znode, without
    help from the process that owns it.
    """
    seed = ((session_id ^ _SUPER_SECRET) ^ _JAVA_RANDOM_MULTIPLIER) & _MASK48
    out = bytearray()
    while len(out) < 16:
        seed = (seed * _JAVA_RANDOM_MULTIPLIER + 0xB) & _MASK48
        word = seed >> 16  # Random.next(32): nextInt(), little end first in nextBytes
        for _ in range(min(4, 16 - len(out))):
            out.append(word & 0xFF)
            word >>= 8
    return bytes(out)


def expire_session_id(hosts: str, session_id: int, timeout: float = 10.0) -> None:
    """Expire the session ``session_id`` of another process (see :func:`session_password`)."""
    expire_session(hosts, (session_id, session_password(session_id)), timeout)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pvc-zookeeper", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    start = sub.add_parser("start", help="start a private server, print host:port")
    start.add_argument("--dir", required=True, type=Path)
    start.add_argument("--port", type=int)
    start.add_argument("--tick-ms", type=int, default=500)
    stop = sub.add_parser("stop", help="stop the server recorded in DIR")
    stop.add_argument("--dir", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        if args.cmd == "start":
            args.dir.mkdir(parents=True, exist_ok=True)
            server = ZooKeeperServer(args.dir, args.port, args.tick_ms)
            server.start()
            print(server.hosts)
        else:
            stop_pidfile(args.dir.absolute() / "zk.pid")
    except (ZooKeeperError, OSError, subprocess.SubprocessError) as exc:
        print(f"pvc-zookeeper: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
