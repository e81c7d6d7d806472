"""The tiny QEMU guest of the real-QEMU tests and ``pvc-local --hypervisor qemu``.

A Debian kernel plus a 1.2 MB static-busybox initramfs (ENVIRONMENT.md
section 5), built once per cache directory by :func:`ensure_guest_images`,
and :func:`guest_domain_xml`: TCG, 1 vCPU, 128 MiB, a serial console log
file. The guest prints ``BOOTED-OK uptime: ...`` once, then
``tick <uptime> <idle>`` every second; it ignores ACPI shutdown (destroy
it). Also the command helpers of :mod:`pvc_local.qemu`: every external
command runs with an argument list and a timeout.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import uuid as uuidlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

_SBIN = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: Kernel modules the guest loads (virtio NIC support), in load order.
GUEST_MODULES = ("virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
                 "virtio_pci", "failover", "net_failover", "virtio_net")
GUEST_INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev 2>/dev/null
echo "BOOTED-OK uptime: $(cat /proc/uptime)"
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net; do insmod /lib/modules/$m.ko; done
grep -q dhcp /proc/cmdline && { ip link set eth0 up; udhcpc -i eth0 -n -q -t 5 -s /usr/share/udhcpc/default.script; }
grep -q stay /proc/cmdline && while true; do echo "tick $(cat /proc/uptime)"; sleep 1; done
poweroff -f
"""
UDHCPC_SCRIPT = """#!/bin/sh
case "$1" in bound|renew) ip addr add $ip/${mask:-24} dev $interface;; esac
"""


class QemuError(RuntimeError):
    """A command failed, or a node could not be started or stopped."""


def tool(name: str) -> str:
    """Absolute path of a command (also searching the sbin directories)."""
    found = shutil.which(name, path=f"{os.environ.get('PATH', '')}:{_SBIN}")
    if not found:
        raise QemuError(f"{name} is not installed (scripts/install-deps installs it)")
    return found


def run(argv: Sequence[str], *, timeout: float = 30.0, input: bytes | None = None,
        cwd: Path | None = None) -> bytes:
    """Run a command (argument list) with a timeout; its stdout, or QemuError."""
    cmd = [tool(argv[0]), *argv[1:]]
    try:
        proc = subprocess.run(cmd, input=input, cwd=cwd, capture_output=True,  # noqa: S603
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise QemuError(f"{' '.join(argv)}: no result within {timeout:g} s") from None
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        raise QemuError(f"{' '.join(argv)} failed (exit {proc.returncode}): {err}")
    return proc.stdout


def is_static_elf(path: Path) -> bool:
    """True for an ELF executable without a program interpreter (statically linked)."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:  # 64-bit only
        return False
    phoff = int.from_bytes(data[0x20:0x28], "little")
    size, count = int.from_bytes(data[0x36:0x38], "little"), int.from_bytes(data[0x38:0x3a], "little")
    return all(int.from_bytes(data[phoff + i * size:phoff + i * size + 4], "little") != 3
               for i in range(count))  # PT_INTERP


@dataclass(frozen=True)
class GuestImages:
    """The tiny guest's kernel and initramfs."""

    kernel: Path
    initrd: Path


def kernel_package() -> str:
    """The Debian kernel package ``linux-image-amd64`` currently depends on."""
    out = run(["apt-cache", "depends", "linux-image-amd64"], timeout=60).decode()
    found: list[str] = re.findall(r"Depends:\s*(linux-image-\S+)", out)
    if not found:
        raise QemuError(f"apt-cache depends linux-image-amd64 names no kernel package:\n{out}")
    return found[0]


def _extract_kernel(deb: Path, boot: Path, modules: Path) -> None:
    """Stream the package's data tar; keep vmlinuz and the guest modules."""
    wanted = {f"{m}.ko" for m in GUEST_MODULES}
    found: set[str] = set()
    proc = subprocess.Popen([tool("dpkg-deb"), "--fsys-tarfile", str(deb)],  # noqa: S603
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                base = name.rsplit("/", 1)[-1]
                if not member.isfile():
                    continue
                if re.fullmatch(r"boot/vmlinuz-.+", name):
                    target = boot / "vmlinuz"
                elif base in wanted and "/kernel/" in name:
                    target = modules / base
                else:
                    continue
                src = tar.extractfile(member)
                assert src is not None
                target.write_bytes(src.read())
                found.add(base if target.parent == modules else "vmlinuz")
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    missing = ({"vmlinuz"} | wanted) - found
    if missing:
        raise QemuError(f"{deb.name} lacks {', '.join(sorted(missing))}")


def _pack_initramfs(tree: Path, out: Path) -> None:
    names = ["."] + sorted(str(p.relative_to(tree)) for p in tree.rglob("*"))
    archive = run(["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"],
                  input="\n".join(names).encode() + b"\n", cwd=tree, timeout=60)
    out.write_bytes(gzip.compress(archive, compresslevel=1))


def ensure_guest_images(cache_dir: Path) -> GuestImages:
    """Build the guest's kernel and initramfs once; reuse them afterwards.

    Cached in ``cache_dir/<kernel package>-<hash of the init scripts>/``
    (``vmlinuz``, ``initrd.gz``); rebuilt when missing. Downloads the kernel
    package with ``apt-get download`` (70 MB, no installation).
    """
    package = kernel_package()
    digest = hashlib.sha256((GUEST_INIT + UDHCPC_SCRIPT).encode()).hexdigest()[:12]
    final = Path(cache_dir).absolute() / f"{package}-{digest}"
    images = GuestImages(kernel=final / "vmlinuz", initrd=final / "initrd.gz")
    if images.kernel.is_file() and images.initrd.is_file():
        return images
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=final.parent) as tmp:
        work = Path(tmp)
        run(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", package],
            cwd=work, timeout=600)
        debs = list(work.glob("*.deb"))
        if len(debs) != 1:
            raise QemuError(f"apt-get download {package} produced {debs}")
        out, tree = work / "out", work / "tree"
        for sub in ("bin", "proc", "sys", "dev", "lib/modules", "usr/share/udhcpc"):
            (tree / sub).mkdir(parents=True)
        out.mkdir()
        _extract_kernel(debs[0], out, tree / "lib" / "modules")
        shutil.copy(Path(tool("busybox")).resolve(), tree / "bin" / "busybox")
        for path, text in ((tree / "init", GUEST_INIT),
                           (tree / "usr/share/udhcpc/default.script", UDHCPC_SCRIPT)):
            path.write_text(text)
            path.chmod(0o755)
        _pack_initramfs(tree, out / "initrd.gz")
        try:
            out.rename(final)
        except OSError:
            if not (images.kernel.is_file() and images.initrd.is_file()):
                raise  # not a concurrent build that finished first
    return images


def guest_domain_xml(name: str, uuid: str, images: GuestImages, console_path: Path | str,
                     memory_mib: int = 128) -> str:
    """libvirt XML of the tiny guest: TCG, 1 vCPU, serial console to a file."""
    uuid = str(uuidlib.UUID(uuid))
    return f"""<domain type='qemu'>
  <name>{escape(name)}</name>
  <uuid>{uuid}</uuid>
  <memory unit='MiB'>{int(memory_mib)}</memory>
  <currentMemory unit='MiB'>{int(memory_mib)}</currentMemory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{escape(str(images.kernel))}</kernel>
    <initrd>{escape(str(images.initrd))}</initrd>
    <cmdline>console=ttyS0 quiet panic=-1 stay</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <serial type='file'>
      <source path={quoteattr(str(console_path))} append='on'/>
      <target port='0'/>
    </serial>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
"""


