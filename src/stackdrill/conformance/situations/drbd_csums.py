"""Checksum-based resync (`csums-alg`, drbd9-tests' checksum-resync), on the two-node lab
of `drbd_lab`.

drbd_worker.c make_resync_request: with a csums-alg the SyncTarget reads each resync
request's blocks (adjacent out-of-sync bits merged into aligned requests up to the
device's max bio size, never across a 16 MiB resync extent) and sends their digest; the
SyncSource answers "in sync" where its own digest is equal (the bits are cleared, nothing
is sent), the data where it differs. At the end the kernel logs "N % had equal checksums,
eliminated: EK; transferred TK total SK". Two cases:

- `rewritten`: the Secondary disconnected, 16 MiB the Primary had already replicated are
  written again with the same bytes and the first 4 MiB of them with new ones; the
  reconnect's resync runs under a 16 Mbit/s tbf on the SyncSource's replication link:
  only the 4 MiB cross it, so it takes ~2 s where the whole bitmap would take ~8.5;
- `invalidated`: 4 single blocks of the Secondary's disk corrupted, then `drbdadm
  invalidate` on it: a full resync in which only the requests holding those blocks are
  sent; the KiB transferred show the request size (the device sizes differ, 64 MiB on the
  guests and 90 GB on the simulator, so the totals are not compared).

The guests' resource file gets `csums-alg md5;` written in and `drbdadm adjust` (as
verify-alg in drbd_verify); the simulator's lab carries it in its topology.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from stackdrill.conformance.drbd_lab import (
    FREE_OFFSET_MIB,
    PRIMARY,
    RES,
    SECONDARY,
    in_sync,
    must,
    reset_connected,
    run,
    sim_lab,
    topology,
    vm_lab,
    wait,
)
from stackdrill.conformance.model import EXACT, Fields, Observed, Situation, relative
from stackdrill.conformance.situations.drbd_common import sim_call
from stackdrill.conformance.situations.drbd_data_common import (
    BLOCKS_PER_MIB,
    REPL_NIC_OF_A,
    SETTLE_S,
    backing,
    dd_write,
    log_since,
    mark,
    region_sum,
    sim_on_both,
    sim_resync,
    sim_settle,
    sim_until_resynced,
    sim_write,
    vm_on_both,
    vm_resync,
    write_config,
)
from stackdrill.topology import Topology

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab
    from stackdrill.backends.sim.lab import SimLab

Case = Literal["rewritten", "invalidated"]
RATE_MBIT = 16.0
SAME_MIB, NEW_MIB = 16, 4
# single 4 KiB blocks, each in its own 1 MiB (any request size up to 1 MiB holds one)
CORRUPTED = tuple((FREE_OFFSET_MIB + 2 + 3 * i) * BLOCKS_PER_MIB + 17 for i in range(4))
CSUMS = {"csums_alg": "md5"}
TOPOLOGIES: dict[Case, Topology] = {
    "rewritten": topology(resource=CSUMS, replication={"bandwidth_mbit": RATE_MBIT}),
    "invalidated": topology(resource=CSUMS),
}
_EQUAL = re.compile(r"(\d+) % had equal checksums, eliminated: (\d+)K; transferred (\d+)K "
                    r"total (\d+)K")


def _checksums(text: str | None) -> Fields:
    found = _EQUAL.search(text or "")
    eliminated, transferred = ((int(found.group(2)), int(found.group(3))) if found
                               else (None, None))
    return {"eliminated_kb": Observed(value=eliminated, unit="KiB"),
            "transferred_kb": Observed(value=transferred, unit="KiB")}


# ---------------------------------------------------------------- the simulator

def _sim_case(case: Case) -> Fields:
    lab = sim_lab(TOPOLOGIES[case])
    res = lab.drbd[RES]
    if case == "rewritten":
        sim_write(lab, PRIMARY, SAME_MIB, "same")
        sim_call(res.disconnect, SECONDARY)
        sim_settle(lab, SETTLE_S)
        sim_write(lab, PRIMARY, SAME_MIB, "same")
        sim_write(lab, PRIMARY, NEW_MIB, "new")
    else:
        res.nodes[SECONDARY].disk.corrupt(list(CORRUPTED))
    since = len(lab.tracer.events())
    if case == "rewritten":
        res.connect(SECONDARY)
    else:
        res.invalidate(SECONDARY)
    sim_until_resynced(lab)
    return {f"{case}_{k}": v for k, v in _sim_fields(lab, case, since).items()}


def _sim_fields(lab: SimLab, case: Case, since: int) -> Fields:
    out: Fields = {}
    finished = [n for n in lab.drbd[RES].events() if n.kind == "resync-finished"]
    stats = dict(finished[-1].details) if finished else {}
    out["eliminated_kb"] = Observed(value=stats.get("eliminated_kb"), unit="KiB")
    out["transferred_kb"] = Observed(value=stats.get("transferred_kb"), unit="KiB")
    resync = sim_resync(lab, since)
    out["resync_source"] = resync["resync_source"]
    if case == "rewritten":
        out["resync_kb"], out["resync_s"] = resync["resync_kb"], resync["resync_s"]
        on_both = (sim_on_both(lab, NEW_MIB, "new")
                   and _sim_same_after_new(lab))
        out["on_both"] = Observed(value=on_both)
    else:
        del out["eliminated_kb"]  # the rest of a 64 MiB or a 90 GB device: not compared
        disks = [lab.drbd[RES].nodes[h].disk for h in (PRIMARY, SECONDARY)]
        out["on_both"] = Observed(value=all(disks[0].peek(b) == disks[1].peek(b)
                                            for b in CORRUPTED))
    return out


def _sim_same_after_new(lab: SimLab) -> bool:
    """The rewritten-but-equal MiBs past the new ones are equal on both disks."""
    first = (FREE_OFFSET_MIB + NEW_MIB) * BLOCKS_PER_MIB
    last = (FREE_OFFSET_MIB + SAME_MIB) * BLOCKS_PER_MIB
    a, b = (lab.drbd[RES].nodes[h].disk for h in (PRIMARY, SECONDARY))
    return all(a.peek(x) == b.peek(x) for x in range(first, last))


def _simulate() -> Fields:
    return _sim_case("rewritten") | _sim_case("invalidated")


# ---------------------------------------------------------------- real guests

def _vm_rewrite(lab: LibvirtLab) -> None:
    zeros = dd_write(SAME_MIB, "/dev/zero")
    must(lab, PRIMARY, zeros, timeout=120)
    wait("the zeros are replicated", lambda: in_sync(lab), 60)
    must(lab, SECONDARY, f"drbdadm disconnect {RES}")
    must(lab, PRIMARY, zeros, timeout=120)
    must(lab, PRIMARY, dd_write(NEW_MIB), timeout=120)
    must(lab, PRIMARY, f"tc qdisc replace dev {REPL_NIC_OF_A} root tbf rate "
                       f"{RATE_MBIT:g}mbit burst 32kb latency 400ms")


def _vm_corrupt(lab: LibvirtLab) -> None:
    device = backing(lab, SECONDARY)
    for block in CORRUPTED:
        must(lab, SECONDARY, f"dd if=/dev/urandom of={device} bs=4096 seek={block} count=1 "
                             "oflag=direct conv=notrunc status=none")


def _vm_case(lab: LibvirtLab, case: Case) -> Fields:
    reset_connected(lab)
    write_config(lab, TOPOLOGIES[case])
    try:
        if case == "rewritten":
            _vm_rewrite(lab)
        else:
            _vm_corrupt(lab)
        for host in (PRIMARY, SECONDARY):
            mark(lab, host, f"csums-{case}")
        must(lab, SECONDARY, f"drbdadm {'connect' if case == 'rewritten' else 'invalidate'} "
                             f"{RES}")
        wait("the resync ends", lambda: in_sync(lab), 180)
        out = _vm_fields(lab, case)
    finally:
        run(lab, PRIMARY, f"tc qdisc del dev {REPL_NIC_OF_A} root")
        write_config(lab, topology())
    return {f"{case}_{k}": v for k, v in out.items()}


def _vm_fields(lab: LibvirtLab, case: Case) -> Fields:
    logs = {h: log_since(lab, h, f"csums-{case}") for h in (PRIMARY, SECONDARY)}
    out = _checksums(" ".join(text for lines in logs.values() for _at, text in lines))
    resync = vm_resync(logs[SECONDARY], SECONDARY)
    out["resync_source"] = resync["resync_source"]
    if case == "rewritten":
        out["resync_kb"], out["resync_s"] = resync["resync_kb"], resync["resync_s"]
        written = must(lab, PRIMARY, region_sum(SAME_MIB, "/dev/drbd0"))
        out["on_both"] = Observed(value=vm_on_both(lab, SAME_MIB, written))
    else:
        del out["eliminated_kb"]
        sums = {h: must(lab, h, " ; ".join(
            f"dd if={backing(lab, h)} bs=4096 skip={b} count=1 iflag=direct 2>/dev/null"
            for b in CORRUPTED) + " | md5sum") for h in (PRIMARY, SECONDARY)}
        out["on_both"] = Observed(value=sums[PRIMARY] == sums[SECONDARY])
    return out


def _record() -> Fields:
    lab = vm_lab()
    return _vm_case(lab, "rewritten") | _vm_case(lab, "invalidated")


def _tolerances() -> dict[str, Any]:
    exact = ("transferred_kb", "resync_source", "on_both")
    out: dict[str, Any] = {f"{case}_{k}": EXACT for case in ("rewritten", "invalidated")
                           for k in exact}
    out |= dict.fromkeys(("rewritten_eliminated_kb", "rewritten_resync_kb"), EXACT)
    out["rewritten_resync_s"] = relative(0.5)
    return out


CHECKSUM_RESYNC = Situation(
    name="drbd-checksum-resync",
    exercises="csums-alg md5: 16 MiB rewritten with the same bytes and 4 MiB with new ones "
              "while the Secondary was away, resynced under a 16 Mbit/s tbf; 4 corrupted "
              "blocks and an invalidate: KiB eliminated and transferred, direction, "
              "duration, data equal",
    tolerances=_tolerances(), simulate=_simulate, recorders={"libvirt": _record})

SITUATIONS = (CHECKSUM_RESYNC,)
