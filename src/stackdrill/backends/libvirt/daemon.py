"""The local libvirt daemon on machines without systemd, and the choice of accelerator.

Measured here (MACHINE-FACTS): no systemd starts libvirtd, so we start `virtlogd -d` and
`libvirtd -d` by hand when no socket answers; `/dev/kvm` as root:root 0600 makes libvirt
re-probe qemu on every call (32-56 s per defineXML), `chgrp kvm` + `chmod 660` fixes it; and a
present `/dev/kvm` is not a usable one (PVM only: standard guests hang), so KVM is used only
when the CPU advertises vmx/svm or STACKDRILL_VM_ACCEL=kvm says so.
"""

from __future__ import annotations

import fcntl
import grp
import logging
import os
import shutil
import stat
import subprocess
from pathlib import Path

from stackdrill.errors import BackendUnavailableError
from stackdrill.waiting import WaitTimeout, wait_until

log = logging.getLogger(__name__)
SOCKET = Path("/run/libvirt/libvirt-sock")
START_LOCK = Path("/run/stackdrill-libvirtd.lock")
KVM = Path("/dev/kvm")


def kvm_usable() -> bool:
    """True when guests can run under KVM (else they run under TCG, type 'qemu')."""
    forced = os.environ.get("STACKDRILL_VM_ACCEL", "auto").lower()
    if forced in {"kvm", "tcg"}:
        return forced == "kvm"
    if not KVM.exists() or not os.access(KVM, os.R_OK | os.W_OK):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " vmx" in flags or " svm" in flags


def domain_type() -> str:
    return "kvm" if kvm_usable() else "qemu"


def fix_kvm_permissions() -> bool:
    """Give /dev/kvm to group kvm (0660) when it is root-only; returns True if changed."""
    if not KVM.exists() or os.geteuid() != 0:
        return False
    st = KVM.stat()
    try:
        kvm_gid = grp.getgrnam("kvm").gr_gid
    except KeyError:
        return False
    if st.st_gid == kvm_gid and stat.S_IMODE(st.st_mode) & 0o060 == 0o060:
        return False
    os.chown(KVM, -1, kvm_gid)
    KVM.chmod(0o660)
    log.warning("changed /dev/kvm to group kvm, mode 0660 (libvirt re-probes qemu otherwise)")
    return True


def daemon_running() -> bool:
    return SOCKET.exists() and subprocess.run(
        ["virsh", "-c", "qemu:///system", "version"], check=False, capture_output=True,
        timeout=30,
    ).returncode == 0


def ensure_libvirtd(timeout: float = 30.0) -> None:
    """Make qemu:///system answer: start virtlogd and libvirtd by hand if none runs."""
    if os.geteuid() != 0:
        raise BackendUnavailableError("starting libvirtd needs root")
    for binary in ("virtlogd", "libvirtd", "virsh"):
        if shutil.which(binary) is None:
            raise BackendUnavailableError(
                f"{binary} not found (install scripts/system-packages-vm.txt)"
            )
    fix_kvm_permissions()
    if SOCKET.exists() and daemon_running():
        return
    # several processes (pytest-xdist workers) may find no daemon at once; one starts it,
    # the others wait for the lock and then find it running (a second `virtlogd -d`
    # fails: "Unable to obtain pidfile")
    with START_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if SOCKET.exists() and daemon_running():
            return
        if not Path("/run/libvirt/common/virtlogd-sock").exists() and not _pid_alive("virtlogd"):
            subprocess.run(["virtlogd", "-d"], check=True, timeout=30)
        subprocess.run(["libvirtd", "-d"], check=True, timeout=30)
        try:
            wait_until(daemon_running, timeout=timeout, interval=0.2,
                       what="libvirtd answering")
        except WaitTimeout as exc:
            raise BackendUnavailableError(
                f"libvirtd did not answer within {timeout:.0f} s") from exc
        log.info("started libvirtd")


def _pid_alive(name: str) -> bool:
    pidfile = Path(f"/run/{name}.pid")
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return False
    return Path(f"/proc/{pid}").exists()
