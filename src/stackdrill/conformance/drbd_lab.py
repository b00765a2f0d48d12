"""The two-node DRBD lab every DRBD situation runs in: on the simulator, and as real guests.

Hosts `a` (Primary) and `b` on a replication network, one resource r0 (protocol C,
`fencing resource-only`, the fence-peer handler the libvirt backend installs) and a VG on
it with one LV, active on `a` (what holds /dev/drbd0 open in real use). On libvirt, one
booted lab serves every DRBD situation of a recording run (`session`): each situation
puts it back into its declared starting state (`reset_*`), so the guests boot once (and
again only where a situation cuts a guest's power). The lab is destroyed when the session
ends, however it ends.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from stackdrill.api import LabOptions
from stackdrill.backends.sim.lab import SimLab
from stackdrill.topology import Topology, parse_topology
from stackdrill.waiting import WaitTimeout, wait_until

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab

RES, VG, LV = "r0", "vg0", "vol1"
PRIMARY, SECONDARY = "a", "b"
HOSTS = (PRIMARY, SECONDARY)
SIM_SEED = 0
DISK_CAP_MB = 64  # the guests' disks: a full resync takes seconds under TCG
FREE_OFFSET_MIB = 40  # raw writes to /dev/drbd0 go past the PV label and the LV
WAIT_POLL_S = 0.5  # how often a recorder looks again at the guests it waits for


def topology(resource: Mapping[str, Any] | None = None,
             replication: Mapping[str, Any] | None = None) -> Topology:
    """The lab; `resource` and `replication` override fields of r0 and of the replication
    network (e.g. {"protocol": "A"}, {"after_sb_0pri": "discard-younger-primary"},
    {"delay_ms": 5}) for a situation that runs on a variant."""
    repl = {"name": "repl", "purposes": ["replication"], "cidr": "10.62.0.0/30",
            "addresses": {"a": "10.62.0.1", "b": "10.62.0.2"}, **(replication or {})}
    drbd = {"name": RES, "nodes": list(HOSTS), "disk": "sdb", "size_gb": 90,
            "network": "repl", "primary": [PRIMARY], "fencing": "resource-only",
            **(resource or {})}
    return parse_topology({
        "name": "conformance-drbd",
        "hosts": [{"name": h, "roles": ["storage"], "vcpus": 2, "ram_mb": 2048,
                   "disks": [{"name": "sdb", "size_gb": 100}]} for h in HOSTS],
        "networks": [
            {"name": "mgmt", "purposes": ["management"], "cidr": "10.52.0.0/24",
             "addresses": {"a": "10.52.0.1", "b": "10.52.0.2"}},
            repl,
        ],
        "drbd": [drbd],
        "volume_groups": [{"name": VG, "pv": {"drbd": RES}}],
        "volumes": [{"name": LV, "vg": VG, "size_gb": 10}],
    }, "conformance-drbd")


def sim_lab(topo: Topology | None = None) -> SimLab:
    """The simulated lab (of `topo`, a `topology(...)` variant, when given)."""
    return SimLab(topo or topology(), lab_name="conformance-drbd", seed=SIM_SEED,
                  options=LabOptions(writers=frozenset()))


# ---------------------------------------------------------------- real guests

_LAB: list[LibvirtLab] = []
_IN_SESSION: list[bool] = []
_VERSIONS: dict[str, str] = {}  # read from the guest once, when the lab is up


@contextmanager
def session() -> Iterator[None]:
    """Situations recorded inside share one lab, destroyed when the block ends."""
    _IN_SESSION.append(True)
    try:
        yield
    finally:
        _IN_SESSION.pop()
        _VERSIONS.clear()
        while _LAB:
            _LAB.pop().destroy()


def vm_lab() -> LibvirtLab:
    """The session's lab, booted on first use (outside a session: an error, since nothing
    would tear it down)."""
    if not _IN_SESSION:
        raise RuntimeError("the DRBD lab is only booted inside drbd_lab.session()")
    if not _LAB:
        from stackdrill.backends.libvirt import LibvirtBackend

        lab = LibvirtBackend(disk_cap_mb=DISK_CAP_MB).create(
            topology(), lab_name=f"conf{os.getpid()}", seed=SIM_SEED)
        _LAB.append(lab)
        _VERSIONS.update(guest_versions(lab))
    return _LAB[0]


def guest_versions_seen() -> dict[str, str]:
    """The guests' software of this session's lab ({} before it boots)."""
    return dict(_VERSIONS)


def run(lab: LibvirtLab, host: str, command: str, timeout: float = 60.0) -> tuple[int, str]:
    """rc and stdout+stderr of a shell command in a guest."""
    done = lab.run(host, command, timeout=timeout)
    return done.rc, (done.stdout + done.stderr).strip()


def must(lab: LibvirtLab, host: str, command: str, timeout: float = 60.0) -> str:
    rc, out = run(lab, host, command, timeout)
    if rc != 0:
        raise RuntimeError(f"{host}: `{command}` failed ({rc}): {out}")
    return out


_CS = re.compile(r"^\s*\d+: cs:(\S+) ro:(\S+)/(\S+) ds:(\S+)/(\S+)", re.M)


def proc_drbd(lab: LibvirtLab, host: str) -> dict[str, str]:
    """connection, role, peer_role, disk, peer_disk of minor 0 (from /proc/drbd);
    {} when the minor is down."""
    found = _CS.search(must(lab, host, "cat /proc/drbd"))
    if not found:
        return {}
    keys = ("connection", "role", "peer_role", "disk", "peer_disk")
    return dict(zip(keys, found.groups(), strict=True))


def wait(what: str, cond: Callable[[], bool], timeout: float) -> None:
    """`wait_until` at the recorders' 0.5 s pace, its timeout a RuntimeError like every
    other failure of a recorder (`must`), which is what the situations catch to add what
    the guests said."""
    try:
        wait_until(cond, timeout=timeout, interval=WAIT_POLL_S, what=what)
    except WaitTimeout as exc:
        raise RuntimeError(str(exc)) from exc


def in_sync(lab: LibvirtLab) -> bool:
    states = [proc_drbd(lab, h) for h in HOSTS]
    return all(s.get("connection") == "Connected" and s.get("disk") == "UpToDate"
               and s.get("peer_disk") == "UpToDate" for s in states)


def reset_connected(lab: LibvirtLab, lv_active: bool = False) -> None:
    """The declared starting state: both guests up, r0 Connected, UpToDate/UpToDate, `a`
    Primary and `b` Secondary, the LV active on `a` only when `lv_active`."""
    for host in HOSTS:
        run(lab, host, f"vgchange -an {VG} >/dev/null 2>&1; drbdadm secondary {RES}")
    for host in HOSTS:
        run(lab, host, f"drbdadm down {RES}", timeout=60)
    for host in HOSTS:
        must(lab, host, f"drbdadm up {RES}", timeout=60)
    wait("r0 connects and syncs", lambda: in_sync(lab), 180)
    must(lab, PRIMARY, f"drbdadm primary {RES}")
    if lv_active:
        must(lab, PRIMARY, f"vgchange -ay {VG}", timeout=60)


def power_on(lab: LibvirtLab, host: str) -> None:
    """Boot a guest the lab powered off, and wait until its agent answers."""
    lab.drivers.power.power_on(host).result(timeout=300)


def guest_versions(lab: LibvirtLab) -> dict[str, str]:
    """The guest's DRBD kernel module, drbd-utils, kernel, and its iSCSI initiator and
    target library (from `a`)."""
    proc = must(lab, PRIMARY, "head -1 /proc/drbd")
    utils = must(lab, PRIMARY, "drbdadm --version 2>&1 | grep -i DRBDADM_VERSION= || true")
    kernel = must(lab, PRIMARY, "uname -r")
    found: dict[str, Any] = {
        "guest-drbd": re.search(r"version:\s*(\S+)", proc),
        "guest-drbd-utils": re.search(r"=\s*(\S+)", utils),
    }
    out = {k: (m.group(1) if m else "unknown") for k, m in found.items()}
    out["guest-kernel"] = kernel
    packages = must(lab, PRIMARY, "dpkg-query -W open-iscsi python3-rtslib-fb || true")
    for line in packages.splitlines():
        name, _, version = line.partition("\t")
        if version:
            out[f"guest-{name}"] = version
    return out
