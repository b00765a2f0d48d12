"""A Secondary's backing disk restored from an old copy (drbd9-tests' revert-older-data),
on the two-node lab of `drbd_lab`, with the Primary staying Primary throughout as in the
lab's drills.

The copy is taken with the `disk save` command while the Secondary is detached (`dd` of
the whole backing disk: data and internal meta-data), and written back by `disk restore`
while it is detached again; the same commands a drill runs. In between the Primary writes,
and the resource goes through one or two new data generations:

- `one`: the Secondary re-attaches after the copy and resyncs (the Primary's detach-time
  generation), then is detached for the restore (another);
- `two`: as `one`, plus a disconnect with writes on the Primary and a reconnect.

What the Primary's sync handshake makes of the old generation (drbd_receiver.c
drbd_uuid_compare, "uuid_compare()=N by rule R" in its kernel log): a full resync toward
the old copy while its UUID is still in the Primary's history, "Unrelated data" once 8.4's
two history slots moved past it. Then the states, the resync, and whether the Primary's
writes are on both backing disks.
"""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, Literal

from stackdrill.api import Note
from stackdrill.api.commands import Command, DiskCommand, DrbdCommand
from stackdrill.conformance.drbd_lab import (
    PRIMARY,
    RES,
    SECONDARY,
    in_sync,
    must,
    proc_drbd,
    reset_connected,
    run,
    sim_lab,
    vm_lab,
    wait,
)
from stackdrill.conformance.model import Fields, Observed, Situation
from stackdrill.conformance.situations.drbd_common import sim_states, state_names, vm_states
from stackdrill.conformance.situations.drbd_data_common import (
    dd_write,
    exact,
    log_since,
    mark,
    region_sum,
    sim_on_both,
    sim_resync,
    sim_until_resynced,
    sim_write,
    vm_on_both,
    vm_resync,
)
from stackdrill.waiting import WaitTimeout, wait_until

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab
    from stackdrill.backends.sim.lab import SimLab

Generations = Literal["one", "two"]
WRITE_MIB = 4
SIM_STEP_S = 60.0  # a 64 MiB resync, a handshake and a reconnect end well within this
VM_SYNC_S = 180.0
_COMPARE = re.compile(r"uuid_compare\(\)=(-?\d+) by rule (\d+)")
SAVE = DiskCommand(host=SECONDARY, op="save", disk="sdb")
RESTORE = DiskCommand(host=SECONDARY, op="restore", disk="sdb")


def _drbdadm(op: Literal["attach", "detach", "connect", "disconnect"]) -> DrbdCommand:
    return DrbdCommand(host=SECONDARY, op=op, resource=RES)


def _compare(text: str | None) -> Fields:
    found = _COMPARE.search(text or "")
    return {"uuid_compare": Observed(value=int(found.group(1)) if found else None),
            "uuid_compare_rule": Observed(value=int(found.group(2)) if found else None)}


def _whole(resync: Fields, size_kb: int) -> Fields:
    """Who resynced, and whether the whole device was (a full sync): the lab's device is
    90 GB on the simulator and 64 MiB on the guests, so the KiB themselves differ."""
    kb = resync["resync_kb"].value
    return {"resync_source": resync["resync_source"],
            "resync_whole_device": Observed(value=None if kb is None else kb == size_kb)}


def _names(case: Generations) -> tuple[str, ...]:
    return tuple(f"{case}_{n}" for n in (
        "save_ok", "restore_ok", "uuid_compare", "uuid_compare_rule", "resync_source",
        "resync_whole_device", "on_both", *state_names("primary"), *state_names("secondary")))


# ---------------------------------------------------------------- the simulator

def _sim_do(lab: SimLab, command: Command, label: str) -> bool:
    lab.execute(command, label)
    lab.advance(lab.kernel.now + SIM_STEP_S)
    return lab.command_results()[label].ok


def _sim_case(case: Generations) -> Fields:
    lab = sim_lab()
    out: Fields = {}
    _sim_do(lab, _drbdadm("detach"), "detach")
    out["save_ok"] = Observed(value=_sim_do(lab, SAVE, "save"))
    _sim_do(lab, _drbdadm("attach"), "attach")
    sim_write(lab, PRIMARY, WRITE_MIB, "after-copy")
    if case == "two":
        _sim_do(lab, _drbdadm("disconnect"), "disconnect")
        sim_write(lab, PRIMARY, WRITE_MIB, "after-copy")
        _sim_do(lab, _drbdadm("connect"), "connect")
    _sim_do(lab, _drbdadm("detach"), "detach-again")
    out["restore_ok"] = Observed(value=_sim_do(lab, RESTORE, "restore"))
    since = len(lab.tracer.events())
    _sim_do(lab, _drbdadm("attach"), "attach-old")
    sim_until_resynced(lab)
    notes = [t.event for t in lab.tracer.events()[since:] if isinstance(t.event, Note)]
    out |= _compare(" ".join(str(dict(n.details).get("msg")) for n in notes
                             if n.what == "handshake" and dict(n.details).get("node") == PRIMARY))
    out |= _whole(sim_resync(lab, since), lab.drbd[RES].size_kb)
    out |= sim_states("primary", lab, PRIMARY) | sim_states("secondary", lab, SECONDARY)
    out["on_both"] = Observed(value=sim_on_both(lab, WRITE_MIB, "after-copy"))
    return {f"{case}_{k}": v for k, v in out.items()}


def _simulate() -> Fields:
    return _sim_case("one") | _sim_case("two")


# ---------------------------------------------------------------- real guests

def _vm_do(lab: LibvirtLab, command: Command, label: str) -> bool:
    lab.execute(command, label)
    return lab.command_results()[label].ok


def _settled(lab: LibvirtLab) -> bool:
    """In sync again, or the handshake refused (either side StandAlone)."""
    return in_sync(lab) or any(proc_drbd(lab, h).get("connection") == "StandAlone"
                               for h in (PRIMARY, SECONDARY))


def _wait_settled(lab: LibvirtLab) -> None:
    """Bounded; what the guests show then is recorded either way (a handshake that
    neither syncs nor refuses is a finding, not a failed recording)."""
    with contextlib.suppress(WaitTimeout):
        wait_until(lambda: _settled(lab), timeout=VM_SYNC_S, interval=1.0,
                   what="the handshake settles")


def _vm_case(lab: LibvirtLab, case: Generations) -> Fields:
    reset_connected(lab)
    out: Fields = {}
    _vm_do(lab, _drbdadm("detach"), f"{case}-detach")
    out["save_ok"] = Observed(value=_vm_do(lab, SAVE, f"{case}-save"))
    _vm_do(lab, _drbdadm("attach"), f"{case}-attach")
    wait("the re-attached Secondary syncs", lambda: in_sync(lab), VM_SYNC_S)
    must(lab, PRIMARY, dd_write(WRITE_MIB), timeout=120)
    if case == "two":
        _vm_do(lab, _drbdadm("disconnect"), f"{case}-disconnect")
        must(lab, PRIMARY, dd_write(WRITE_MIB), timeout=120)
        _vm_do(lab, _drbdadm("connect"), f"{case}-connect")
        wait("the reconnected Secondary syncs", lambda: in_sync(lab), VM_SYNC_S)
    written = must(lab, PRIMARY, region_sum(WRITE_MIB, "/dev/drbd0"))
    _vm_do(lab, _drbdadm("detach"), f"{case}-detach-again")
    out["restore_ok"] = Observed(value=_vm_do(lab, RESTORE, f"{case}-restore"))
    mark(lab, PRIMARY, f"revert-{case}")
    _vm_do(lab, _drbdadm("attach"), f"{case}-attach-old")
    _wait_settled(lab)
    lines = log_since(lab, PRIMARY, f"revert-{case}")
    out |= _compare(" ".join(text for _at, text in lines))
    size_kb = int(must(lab, PRIMARY, "cat /sys/class/block/drbd0/size")) // 2
    out |= _whole(vm_resync(lines, PRIMARY), size_kb)
    out |= vm_states("primary", lab, PRIMARY) | vm_states("secondary", lab, SECONDARY)
    out["on_both"] = Observed(value=vm_on_both(lab, WRITE_MIB, written))
    seen = {f"{case}_{k}": v for k, v in out.items()}
    try:
        _fresh_meta_data_if_refused(lab)
    except RuntimeError as exc:  # what was seen is worth reading even so
        raise RuntimeError(f"{exc}\nseen before: {({k: v.value for k, v in seen.items()})}"
                           ) from exc
    return seen


def _fresh_meta_data_if_refused(lab: LibvirtLab) -> None:
    """A refused handshake leaves the pair apart for good: new meta data on the Secondary
    (a full resync) and a new connection bring it back for the next situation."""
    if in_sync(lab):
        return
    run(lab, SECONDARY, f"drbdadm down {RES}")
    # create-md refuses a disk whose first blocks hold a PV label it cannot size; the
    # full resync that follows writes the Primary's label back
    device = "/dev/" + lab.nodes[SECONDARY].disks["sdb"].target
    must(lab, SECONDARY, f"dd if=/dev/zero of={device} bs=1M count=1 oflag=direct "
                         "status=none")
    must(lab, SECONDARY, f"drbdadm -- --force create-md {RES}", timeout=60)
    run(lab, PRIMARY, f"drbdadm disconnect {RES}; drbdadm connect {RES}")
    must(lab, SECONDARY, f"drbdadm up {RES}", timeout=60)
    wait("new meta data syncs", lambda: in_sync(lab), VM_SYNC_S)


def _record() -> Fields:
    lab = vm_lab()
    return _vm_case(lab, "one") | _vm_case(lab, "two")


REVERT = Situation(
    name="drbd-revert-older-data",
    exercises="the Secondary's backing disk saved while detached, one or two data "
              "generations later restored and re-attached: the Primary's sync handshake "
              "(uuid_compare result and rule), the resync, states, the Primary's writes "
              "on both disks",
    tolerances=exact(*_names("one"), *_names("two")),
    simulate=_simulate, recorders={"libvirt": _record})

SITUATIONS = (REVERT,)
