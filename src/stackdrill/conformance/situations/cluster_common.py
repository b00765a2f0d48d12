"""What the cluster situations observe on the survivor `a`, on guests and on the simulator:
quorum, members, the nodes its dlm_controld waits to see fenced, whether a lockspace waits
for fencing, and a lock request bounded by `timeout 20` (exit 124 when it blocks; on the
simulator, the request still waiting after 20 s)."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from stackdrill.conformance.clvm_lab import (
    CLUSTER,
    LV,
    VG,
    A,
    dlm_fence_pending,
    lockspace_waits_fencing,
    quorum_of,
)
from stackdrill.conformance.drbd_lab import run
from stackdrill.conformance.model import EXACT, Fields, Observed, Tolerance
from stackdrill.conformance.situations.lvm_common import sim_bounded

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab
    from stackdrill.backends.sim.lab import SimLab

Gen = Generator[simpy.Event, Any, Any]
BLOCK_S = 20  # `timeout 20 lvchange ...`
LEAVE_SETTLE_S = 5.0  # a leave message is handled at once; this is ample
CRASH_SETTLE_S = 8.0  # token (1 s) + consensus + dlm's fence request, with TCG slack
ACK_SETTLE_S = 2.0


def exact(*fields: str) -> dict[str, Tolerance]:
    return dict.fromkeys(fields, EXACT)


def _survivor(prefix: str, quorate: bool, members: int, pending: str,
              waits: bool) -> Fields:
    return {f"{prefix}_quorate": Observed(value=quorate),
            f"{prefix}_members": Observed(value=members),
            f"{prefix}_fence_pending": Observed(value=pending),
            f"{prefix}_lockspace_waits_fencing": Observed(value=waits)}


def survivor_names(prefix: str) -> tuple[str, ...]:
    return tuple(f"{prefix}_{k}" for k in ("quorate", "members", "fence_pending",
                                           "lockspace_waits_fencing"))


def sim_survivor(lab: SimLab, prefix: str) -> Fields:
    status = lab.clusters[CLUSTER].status()[A]
    pending = ",".join(status.fencing_pending)
    return _survivor(prefix, status.quorate, len(status.members), pending, bool(pending))


def vm_survivor(lab: LibvirtLab, prefix: str) -> Fields:
    quorate, members = quorum_of(lab, A)
    return _survivor(prefix, quorate, members, dlm_fence_pending(lab, A),
                     lockspace_waits_fencing(lab, A))


def vm_bounded_activate(lab: LibvirtLab, name: str) -> Fields:
    rc, _out = run(lab, A, f"timeout {BLOCK_S} lvchange -aey {VG}/{LV}", timeout=BLOCK_S + 30)
    return {name: Observed(value=rc)}


def sim_bounded_activate(lab: SimLab, name: str) -> Gen:
    rc = yield from sim_bounded(lab.lvm_hosts[A].activate(VG, LV, "ex"), lab.kernel.env,
                                BLOCK_S)
    return {name: Observed(value=rc)}
