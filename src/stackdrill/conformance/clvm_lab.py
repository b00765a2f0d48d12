"""The two-node cluster-LVM lab every LVM and cluster-stack situation runs in.

A small variant of lab/topologies/two-node-clvm.yaml: hosts `a` and `b`, dual-primary r0
(protocol C) on a replication+cluster network, a corosync cluster (two_node, manual
fencing) and one VG on r0 with one LV. Two locking variants: `lvmlockd` (a shared VG,
`vgcreate --shared`, lockspace started on both; what the libvirt backend realises for
`clustered` too, bookworm's lvm2 having no clvmd) and `local` (a plain VG that both
Primaries open, flock on each host only). On libvirt, a recording session keeps at most
one booted lab: asking for the other variant destroys the current one first (one lab of
two guests at a time). Each situation puts the lab back into its declared starting state.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from stackdrill.api import LabOptions
from stackdrill.backends.sim.lab import SimLab
from stackdrill.conformance.drbd_lab import must, run
from stackdrill.topology import Topology, parse_topology

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab

Variant = Literal["lvmlockd", "local"]
RES, VG, LV = "r0", "vgc", "lv1"
A, B = "a", "b"
HOSTS = (A, B)
CLUSTER = "pair"
SIM_SEED = 0
DISK_CAP_MB = 64


def topology(locking: Variant = "lvmlockd", two_node: bool = True) -> Topology:
    """The lab with the VG's `locking` (lvmlockd or local) and corosync's two_node."""
    quorum: dict[str, Any] = {"two_node": True, "expected_votes": 1} if two_node else {}
    return parse_topology({
        "name": "conformance-clvm",
        "hosts": [{"name": h, "roles": ["storage"], "vcpus": 2, "ram_mb": 2048,
                   "disks": [{"name": "sdb", "size_gb": 100}]} for h in HOSTS],
        "networks": [
            {"name": "mgmt", "purposes": ["management"], "cidr": "10.53.0.0/24",
             "addresses": {A: "10.53.0.1", B: "10.53.0.2"}},
            {"name": "repl", "purposes": ["replication", "cluster"], "cidr": "10.63.0.0/30",
             "addresses": {A: "10.63.0.1", B: "10.63.0.2"}},
        ],
        "drbd": [{"name": RES, "nodes": list(HOSTS), "disk": "sdb", "size_gb": 90,
                  "network": "repl", "protocol": "C", "allow_two_primaries": True,
                  "primary": list(HOSTS), "after_sb_0pri": "discard-zero-changes",
                  "after_sb_1pri": "discard-secondary", "after_sb_2pri": "disconnect"}],
        "volume_groups": [{"name": VG, "pv": {"drbd": RES}, "locking": locking}],
        "clusters": [{"name": CLUSTER, "nodes": list(HOSTS), "network": "repl",
                      "fencing": "manual", **quorum}],
        "volumes": [{"name": LV, "vg": VG, "size_gb": 10}],
    }, "conformance-clvm")


def sim_lab(locking: Variant = "lvmlockd", two_node: bool = True) -> SimLab:
    return SimLab(topology(locking, two_node), lab_name="conformance-clvm", seed=SIM_SEED,
                  options=LabOptions(writers=frozenset()))


# ---------------------------------------------------------------- real guests

_LAB: dict[tuple[Variant, bool], LibvirtLab] = {}
_IN_SESSION: list[bool] = []
_VERSIONS: dict[str, str] = {}


@contextmanager
def session() -> Iterator[None]:
    """Situations recorded inside share the lab of their variant; destroyed at the end."""
    _IN_SESSION.append(True)
    try:
        yield
    finally:
        _IN_SESSION.pop()
        _VERSIONS.clear()
        _destroy_all()


def _destroy_all() -> None:
    while _LAB:
        _LAB.pop(next(iter(_LAB))).destroy()


def vm_lab(locking: Variant = "lvmlockd", two_node: bool = True) -> LibvirtLab:
    """The session's lab of this variant, booted on first use; another variant's lab is
    destroyed first (one lab of two guests at a time)."""
    if not _IN_SESSION:
        raise RuntimeError("the cluster-LVM lab is only booted inside clvm_lab.session()")
    key = (locking, two_node)
    if key not in _LAB:
        _destroy_all()
        from stackdrill.backends.libvirt import LibvirtBackend

        lab = LibvirtBackend(disk_cap_mb=DISK_CAP_MB).create(
            topology(locking, two_node), lab_name=f"clvm{os.getpid()}", seed=SIM_SEED)
        _LAB[key] = lab
        _VERSIONS.update(guest_versions(lab))
    return _LAB[key]


def discard() -> None:
    """A situation left the lab unusable (its locks orphaned): the next one boots anew."""
    _destroy_all()


def guest_versions_seen() -> dict[str, str]:
    return dict(_VERSIONS)


def guest_versions(lab: LibvirtLab) -> dict[str, str]:
    """lvm2, corosync and the kernel of the guests (from `a`)."""
    lvm = must(lab, A, "lvm version 2>&1 | head -1")
    coro = run(lab, A, "corosync -v 2>&1 | head -1")[1]
    found = {"guest-lvm2": re.search(r"(\d+\.\d+\.\d+)", lvm),
             "guest-corosync": re.search(r"(\d+\.\d+\.\d+)", coro)}
    out = {k: (m.group(1) if m else "unknown") for k, m in found.items()}
    out["guest-kernel"] = must(lab, A, "uname -r")
    return out


def dm_name(lv: str = LV) -> str:
    return f"{VG}-{lv}".replace("--", "-")


def dm_sectors(lab: LibvirtLab, host: str, lv: str = LV) -> int | None:
    """The LV's mapped size in sectors from `dmsetup table` (None: no dm device)."""
    rc, out = run(lab, host, f"dmsetup table {dm_name(lv)}")
    if rc != 0:
        return None
    return sum(int(line.split()[1]) for line in out.splitlines() if len(line.split()) > 2)


def lvs_names(lab: LibvirtLab, host: str) -> tuple[str, ...]:
    out = must(lab, host, f"lvs --noheadings -o lv_name {VG}")
    return tuple(sorted(out.split()))


def deactivate_all(lab: LibvirtLab) -> None:
    """No LV of the VG active anywhere (lvchange -an, then any leftover dm device removed)."""
    for host in HOSTS:
        run(lab, host, f"vgchange -an {VG}", timeout=60)
        run(lab, host, f"for d in $(dmsetup ls | awk '/^{VG}-/ {{print $1}}'); do "
                       "dmsetup remove --noudevsync --noudevrules $d; done")


def dlm_fence_pending(lab: LibvirtLab, host: str) -> str:
    """Nodes `host`'s dlm_controld waits to see fenced, by name, comma-separated ("" for
    none): the `fence <nodeid> ...` lines of `dlm_tool status` (nodeid = 1-based position
    in the cluster's node list, as corosync.conf is written)."""
    return fence_pending(run(lab, host, "dlm_tool status")[1])


def fence_pending(dlm_tool_status: str) -> str:
    """The nodes named by `fence <nodeid> ...` lines of `dlm_tool status` output."""
    ids = sorted(int(m) for m in re.findall(r"^fence (\d+) ", dlm_tool_status, re.M))
    return ",".join(HOSTS[i - 1] for i in ids if 0 < i <= len(HOSTS))


def lockspace_waits_fencing(lab: LibvirtLab, host: str) -> bool:
    """`dlm_tool ls` shows a lockspace change held at "wait fencing"."""
    return "wait fencing" in run(lab, host, "dlm_tool ls")[1]


def quorum_of(lab: LibvirtLab, host: str) -> tuple[bool, int]:
    """(quorate, member count) from `corosync-quorumtool -s`."""
    from stackdrill.backends.libvirt.cluster import quorum

    seen = quorum(lab, host)
    return seen.quorate, len(seen.members)


def restart_stack(lab: LibvirtLab, host: str) -> None:
    """Start corosync, dlm_controld (and lvmlockd) on `host` as the lab build did, wait
    until both nodes are members again, then start the VG's lockspace there."""
    from stackdrill.backends.libvirt.cluster import stack_command
    from stackdrill.conformance.drbd_lab import wait

    spec = lab.topology.clusters[0]
    must(lab, host, stack_command(spec, "start"), timeout=120)
    wait("both nodes members", lambda: all(quorum_of(lab, h) == (True, 2) for h in HOSTS), 90)
    # lvmlockd finds dlm through the cluster name dlm_controld writes to configfs
    # (lvmlockd-dlm.c lm_is_running_dlm), a little after `dlm_tool status` answers: until
    # then lock-start says "lock manager dlm is not running"
    said: list[str] = []

    def started() -> bool:
        rc, out = run(lab, host, f"vgchange --lock-start {VG}", timeout=120)
        said[:] = [out]
        return rc == 0
    try:
        wait("lock-start", started, 60)
    except RuntimeError as exc:
        seen = run(lab, host, "dlm_tool status; dlm_tool ls; corosync-quorumtool -s")[1]
        raise RuntimeError(f"{exc}: {said[-1] if said else ''}\n{seen}") from exc


def recover_crashed(lab: LibvirtLab, host: str, *, powered: bool = False) -> None:
    """Power `host` on (unless `powered`: it booted already), let r0 resync and promote it
    again (dual-primary), then its stack and lockspace."""
    from stackdrill.conformance.drbd_lab import in_sync, power_on, wait

    if not powered:
        power_on(lab, host)
    try:
        wait("r0 connects and syncs", lambda: in_sync(lab), 180)
    except RuntimeError as exc:
        look = "cat /proc/drbd; ls -l /etc/drbd.d; dmesg | grep -i drbd | tail -15"
        seen = {h: run(lab, h, look)[1] for h in HOSTS}
        raise RuntimeError(f"{exc}: {seen}") from exc
    must(lab, host, f"drbdadm primary {RES}")
    restart_stack(lab, host)
