"""Online verify and forced full resyncs (drbd_nl.c drbd_adm_start_ov, drbd_adm_invalidate,
drbd_adm_invalidate_peer; drbd_worker.c's verify), on the two-node lab of `drbd_lab`,
after blocks of the Secondary's backing disk were overwritten behind DRBD's back (the
`corrupt_blocks` fault, the same on both backends):

- verify without a verify-alg, then with one: what verify marks out of sync on each
  node (`oos:`), and what a disconnect and reconnect of the Secondary leaves;
- invalidate on the Connected Secondary, invalidate-remote from the Primary, invalidate
  on the Primary while the peer is away, and on the StandAlone Secondary.

The guests' resource has no verify-alg: each situation writes `verify-alg md5;` into both
nodes' resource file and runs `drbdadm adjust`, and takes it out again at the end (set
with `drbdadm net-options` only, the next `drbdadm connect` re-applies the file and the
handshake fails: "Different verify-alg settings", both StandAlone). The simulator's lab
carries it in its topology.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from stackdrill.backends.libvirt.drbd import parse_proc_drbd
from stackdrill.conformance.drbd_lab import (
    HOSTS,
    PRIMARY,
    RES,
    SECONDARY,
    in_sync,
    must,
    proc_drbd,
    reset_connected,
    run,
    sim_lab,
    topology,
    vm_lab,
    wait,
)
from stackdrill.conformance.model import EXACT, Fields, Observed, Situation
from stackdrill.conformance.situations.drbd_common import answer, sim_answer, sim_call
from stackdrill.faults import CorruptBlocks

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab
    from stackdrill.backends.sim.lab import SimLab

CORRUPTED = CorruptBlocks(host=SECONDARY, disk="sdb", blocks=4)
SIM_SETTLE_S = 3600.0  # a 90 GB verify or full resync at the lab's resync rate fits
VM_SETTLE_S = 180.0


def _exact(*names: str) -> dict[str, Any]:
    return dict.fromkeys(names, EXACT)


def _oos(prefix: str, seen: dict[str, int]) -> Fields:
    return {f"{prefix}_{host}_oos_kb": Observed(value=seen[host]) for host in HOSTS}


def _oos_names(*prefixes: str) -> tuple[str, ...]:
    return tuple(f"{p}_{h}_oos_kb" for p in prefixes for h in HOSTS)


# ---------------------------------------------------------------- the simulator

def _sim_settle(lab: SimLab) -> None:
    """Run until no verify or resync is running (bounded)."""
    res = lab.drbd[RES]
    deadline = lab.kernel.now + SIM_SETTLE_S
    while lab.kernel.now < deadline:
        lab.advance(lab.kernel.now + 5.0)
        if all(s.connection in ("Connected", "StandAlone", "WFConnection")
               for s in res.status().values()) and res.resync is None:
            return


def _sim_oos(lab: SimLab) -> dict[str, int]:
    return {h: s.out_of_sync_kb for h, s in lab.drbd[RES].status().items()}


def _sim_verify() -> Fields:
    plain = sim_lab()
    out = sim_answer("verify_no_alg", sim_call(plain.drbd[RES].verify, PRIMARY))
    lab = sim_lab(topology({"verify_alg": "md5"}))
    res = lab.drbd[RES]
    lab.inject(CORRUPTED)
    out |= sim_answer("verify", sim_call(res.verify, PRIMARY))
    _sim_settle(lab)
    out |= _oos("verified", _sim_oos(lab))
    sim_call(res.disconnect, SECONDARY)
    lab.advance(lab.kernel.now + 2.0)
    sim_call(res.connect, SECONDARY)
    _sim_settle(lab)
    out |= _oos("reconnected", _sim_oos(lab))
    sim_call(res.verify, PRIMARY)
    _sim_settle(lab)
    return out | _oos("verified_again", _sim_oos(lab))


def _sim_invalidate() -> Fields:
    lab = sim_lab(topology({"verify_alg": "md5"}))
    res = lab.drbd[RES]
    lab.inject(CORRUPTED)
    out = sim_answer("invalidate", sim_call(res.invalidate, SECONDARY))
    _sim_settle(lab)
    sim_call(res.verify, PRIMARY)
    _sim_settle(lab)
    out |= _oos("invalidated", _sim_oos(lab))
    lab.inject(CORRUPTED)
    out |= sim_answer("invalidate_remote", sim_call(res.invalidate_remote, PRIMARY))
    _sim_settle(lab)
    sim_call(res.verify, PRIMARY)
    _sim_settle(lab)
    out |= _oos("pushed", _sim_oos(lab))
    sim_call(res.disconnect, SECONDARY)
    lab.advance(lab.kernel.now + 2.0)
    out |= sim_answer("invalidate_alone", sim_call(res.invalidate, PRIMARY))
    out |= sim_answer("invalidate_standalone", sim_call(res.invalidate, SECONDARY))
    out["standalone_disk"] = Observed(value=res.status()[SECONDARY].disk)
    sim_call(res.connect, SECONDARY)
    _sim_settle(lab)
    out["reconnected_disk"] = Observed(value=res.status()[SECONDARY].disk)
    return out


# ---------------------------------------------------------------- the guests

def _vm_oos(lab: LibvirtLab) -> dict[str, int]:
    seen = {}
    for host in HOSTS:
        status = parse_proc_drbd(must(lab, host, "cat /proc/drbd"), 0)
        seen[host] = status.out_of_sync_kb if status is not None else -1
    return seen


def _vm_settle(lab: LibvirtLab) -> None:
    """Until neither node verifies nor syncs (the guests' 64 MiB take seconds)."""
    wait("verify or resync ends", lambda: all(
        proc_drbd(lab, h).get("connection") in ("Connected", "StandAlone", "WFConnection")
        for h in HOSTS), VM_SETTLE_S)


RES_FILE = f"/etc/drbd.d/{RES}.res"


@contextmanager
def _vm_verify_alg(lab: LibvirtLab) -> Iterator[None]:
    """verify-alg md5 in both nodes' resource file (and in force) while the block runs."""
    for host in HOSTS:
        must(lab, host, f"sed -i 's/^  net {{$/  net {{\\n    verify-alg md5;/' {RES_FILE}")
    for host in HOSTS:
        must(lab, host, f"drbdadm adjust {RES}", timeout=60)
    try:
        yield
    finally:
        for host in HOSTS:
            run(lab, host, f"sed -i '/verify-alg md5;/d' {RES_FILE}; drbdadm adjust {RES}",
                timeout=60)


def _vm_reconnect(lab: LibvirtLab) -> None:
    must(lab, SECONDARY, f"drbdadm connect {RES}")
    wait("r0 connects and syncs", lambda: in_sync(lab), VM_SETTLE_S)


def _vm_verify() -> Fields:
    lab = vm_lab()
    reset_connected(lab)
    out = answer("verify_no_alg", *run(lab, PRIMARY, f"drbdadm verify {RES}"))
    with _vm_verify_alg(lab):
        return out | _vm_verify_repair(lab)


def _vm_verify_repair(lab: LibvirtLab) -> Fields:
    lab.inject(CORRUPTED)
    out = answer("verify", *run(lab, PRIMARY, f"drbdadm verify {RES}"))
    _vm_settle(lab)
    out |= _oos("verified", _vm_oos(lab))
    must(lab, SECONDARY, f"drbdadm disconnect {RES}")
    _vm_reconnect(lab)
    out |= _oos("reconnected", _vm_oos(lab))
    must(lab, PRIMARY, f"drbdadm verify {RES}")
    _vm_settle(lab)
    return out | _oos("verified_again", _vm_oos(lab))


def _vm_invalidate() -> Fields:
    lab = vm_lab()
    reset_connected(lab)
    with _vm_verify_alg(lab):
        return _vm_invalidate_steps(lab)


def _vm_invalidate_steps(lab: LibvirtLab) -> Fields:
    lab.inject(CORRUPTED)
    out = answer("invalidate", *run(lab, SECONDARY, f"drbdadm invalidate {RES}"))
    wait("r0 syncs", lambda: in_sync(lab), VM_SETTLE_S)
    must(lab, PRIMARY, f"drbdadm verify {RES}")
    _vm_settle(lab)
    out |= _oos("invalidated", _vm_oos(lab))
    lab.inject(CORRUPTED)
    out |= answer("invalidate_remote",
                  *run(lab, PRIMARY, f"drbdadm invalidate-remote {RES}"))
    wait("r0 syncs", lambda: in_sync(lab), VM_SETTLE_S)
    must(lab, PRIMARY, f"drbdadm verify {RES}")
    _vm_settle(lab)
    out |= _oos("pushed", _vm_oos(lab))
    must(lab, SECONDARY, f"drbdadm disconnect {RES}")
    wait("the Primary sees the disconnect",
         lambda: proc_drbd(lab, PRIMARY).get("connection") != "Connected", 30)
    out |= answer("invalidate_alone", *run(lab, PRIMARY, f"drbdadm invalidate {RES}"))
    out |= answer("invalidate_standalone", *run(lab, SECONDARY, f"drbdadm invalidate {RES}"))
    out["standalone_disk"] = Observed(value=proc_drbd(lab, SECONDARY).get("disk"))
    _vm_reconnect(lab)
    out["reconnected_disk"] = Observed(value=proc_drbd(lab, SECONDARY).get("disk"))
    return out


VERIFY = Situation(
    name="drbd-verify-corrupt-secondary",
    exercises="4 blocks of the Secondary's backing disk overwritten: drbdadm verify without "
              "and with verify-alg; out-of-sync on each node after verify, after a "
              "reconnect of the Secondary, after a second verify",
    tolerances=_exact("verify_no_alg_exit", "verify_no_alg_message", "verify_exit",
                      "verify_message",
                      *_oos_names("verified", "reconnected", "verified_again")),
    simulate=_sim_verify, recorders={"libvirt": _vm_verify})

INVALIDATE = Situation(
    name="drbd-invalidate",
    exercises="the Secondary's disk corrupted: invalidate on it, invalidate-remote from the "
              "Primary (each checked by verify); invalidate on the Primary with the peer "
              "away and on the StandAlone Secondary, then reconnect",
    tolerances=_exact("invalidate_exit", "invalidate_message", "invalidate_remote_exit",
                      "invalidate_remote_message", "invalidate_alone_exit",
                      "invalidate_alone_message", "invalidate_standalone_exit",
                      "invalidate_standalone_message", "standalone_disk", "reconnected_disk",
                      *_oos_names("invalidated", "pushed")),
    simulate=_sim_invalidate, recorders={"libvirt": _vm_invalidate})

SITUATIONS = (VERIFY, INVALIDATE)
