"""DRBD 8.4 data-path situations around roles and failing disks (the rest of `drbd_data`):

- `drbdadm outdate` on a disconnected Secondary and Primary, then promoting the Outdated
  node without and with --force (drbd_nl.c drbd_adm_outdate; drbd_set_role, which forces
  an Outdated or Inconsistent disk to UpToDate only with --force);
- the old Primary rejoining after a failover: its power cut, the Secondary promoted and
  written, the old Primary booted: who syncs which way and how much (drbd_receiver.c
  drbd_sync_handshake, drbd_uuid_compare);
- a backing-disk I/O error under `on-io-error detach` (drbd_int.h __drbd_chk_io_error_:
  the disk goes D_FAILED, then D_DISKLESS; the Primary keeps serving from the peer). On the
  guests the Primary's disk is put under a device-mapper linear target, swapped for the
  `error` target: every I/O fails, as the simulator's failed disk does.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from stackdrill.backends.sim.disks import BlockIOError
from stackdrill.conformance import labs
from stackdrill.conformance.drbd_lab import (
    FREE_OFFSET_MIB,
    PRIMARY,
    RES,
    SECONDARY,
    in_sync,
    must,
    power_on,
    proc_drbd,
    reset_connected,
    run,
    sim_lab,
    vm_lab,
    wait,
)
from stackdrill.conformance.model import EXACT, Fields, Observed, Situation, within
from stackdrill.conformance.situations.drbd_common import (
    answer,
    sim_answer,
    sim_call,
    sim_states,
    sim_wait,
    state_names,
    vm_states,
)
from stackdrill.conformance.situations.drbd_data import UNTHROTTLED_RESYNC_S
from stackdrill.conformance.situations.drbd_data_common import (
    BLOCKS_PER_MIB,
    LOSS_WAIT_S,
    backing,
    cut_link,
    dd_write,
    disk_states,
    log_since,
    mark,
    region_sum,
    rejoin_discarding,
    sim_disk_changes,
    sim_on_both,
    sim_resync,
    sim_settle,
    sim_write,
    vm_on_both,
    vm_resync,
)
from stackdrill.faults import DiskFailure, HostCrash, LinkDown

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab


def exact(*names: str) -> dict[str, Any]:
    return dict.fromkeys(names, EXACT)


# ---------------------------------------------------------------- outdate

def sim_outdate_answer(prefix: str, refused: Exception | None) -> Fields:
    """What `drbdadm outdate` shows: drbdsetup's exit status, and no message, since
    drbd-utils user/v84/drbdadm_main.c adm_outdate runs drbdsetup with SUPRESS_STDERR
    (17, "is primary and thus cannot be outdated", is returned as is)."""
    out = sim_answer(prefix, refused)
    out[f"{prefix}_message"] = Observed(value=None)
    return out


def _sim_outdate() -> Fields:
    lab = sim_lab()
    res = lab.drbd[RES]
    lab.inject(LinkDown(host=SECONDARY, network="repl"))
    sim_settle(lab, LOSS_WAIT_S)
    out = sim_outdate_answer("outdate_secondary", sim_call(res.outdate, SECONDARY))
    out["secondary_disk"] = Observed(value=res.status()[SECONDARY].disk)
    out |= sim_outdate_answer("outdate_primary", sim_call(res.outdate, PRIMARY))
    out["primary_disk"] = Observed(value=res.status()[PRIMARY].disk)
    out |= sim_answer("promote", labs.sim_run(lab, sim_wait(res.promote(SECONDARY))))
    out["promote_role"] = Observed(value=res.status()[SECONDARY].role)
    out |= sim_answer("promote_force",
                      labs.sim_run(lab, sim_wait(res.promote(SECONDARY, force=True))))
    return out | sim_states("forced", lab, SECONDARY)


def _record_outdate() -> Fields:
    lab = vm_lab()
    reset_connected(lab)
    fault = cut_link(lab)
    try:
        out = answer("outdate_secondary", *run(lab, SECONDARY, f"drbdadm outdate {RES}"))
        out["secondary_disk"] = Observed(value=proc_drbd(lab, SECONDARY).get("disk"))
        out |= answer("outdate_primary", *run(lab, PRIMARY, f"drbdadm outdate {RES}"))
        out["primary_disk"] = Observed(value=proc_drbd(lab, PRIMARY).get("disk"))
        out |= answer("promote", *run(lab, SECONDARY, f"drbdadm primary {RES}", timeout=120))
        out["promote_role"] = Observed(value=proc_drbd(lab, SECONDARY).get("role"))
        out |= answer("promote_force", *run(lab, SECONDARY, f"drbdadm primary --force {RES}",
                                            timeout=120))
        out |= vm_states("forced", lab, SECONDARY)
    finally:
        run(lab, SECONDARY, f"drbdadm secondary {RES}")
        lab.heal(fault)
    rejoin_discarding(lab, SECONDARY)  # b's forced data is the younger: discarded
    return out


OUTDATE = Situation(
    name="drbd-outdate-disconnected",
    exercises="the replication link cut: drbdadm outdate on the Secondary, then on the "
              "Primary; drbdadm primary on the Outdated Secondary, then primary --force",
    tolerances=exact("outdate_secondary_exit", "outdate_secondary_message",
                      "secondary_disk", "outdate_primary_exit", "outdate_primary_message",
                      "primary_disk", "promote_exit", "promote_message", "promote_role",
                      "promote_force_exit", "promote_force_message",
                      *state_names("forced")),
    simulate=_sim_outdate, recorders={"libvirt": _record_outdate})


# ---------------------------------------------------------------- old Primary rejoins

REJOIN_MIB = 4


def _sim_rejoin() -> Fields:
    lab = sim_lab()
    res = lab.drbd[RES]
    lab.inject(HostCrash(host=PRIMARY, power_back=False))
    sim_settle(lab, LOSS_WAIT_S)  # the loss declared, as an operator would wait
    out = sim_answer("promote", labs.sim_run(lab, sim_wait(res.promote(SECONDARY))))
    sim_write(lab, SECONDARY, REJOIN_MIB, "rejoin")
    since = len(lab.tracer.events())
    lab.hosts[PRIMARY].power_on()
    sim_settle(lab, 120.0)
    out |= sim_resync(lab, since)
    out |= sim_states("old", lab, PRIMARY) | sim_states("new", lab, SECONDARY)
    out["on_both"] = Observed(value=sim_on_both(lab, REJOIN_MIB, "rejoin"))
    return out


def _record_rejoin() -> Fields:
    lab = vm_lab()
    reset_connected(lab)
    lab.inject(HostCrash(host=PRIMARY, power_back=False))
    wait("b declares the peer lost", lambda: proc_drbd(lab, SECONDARY).get("connection")
         not in (None, "Connected"), LOSS_WAIT_S)
    out = answer("promote", *run(lab, SECONDARY, f"drbdadm primary {RES}", timeout=120))
    must(lab, SECONDARY, dd_write(REJOIN_MIB), timeout=120)
    written = must(lab, SECONDARY, region_sum(REJOIN_MIB, "/dev/drbd0"))
    power_on(lab, PRIMARY)
    run(lab, PRIMARY, f"grep -q ' 0: cs:' /proc/drbd 2>/dev/null || drbdadm up {RES}",
        timeout=60)
    wait("the old Primary resyncs", lambda: in_sync(lab), 180)
    out |= vm_resync(log_since(lab, PRIMARY, None), PRIMARY)  # booted: its whole log
    out |= vm_states("old", lab, PRIMARY) | vm_states("new", lab, SECONDARY)
    out["on_both"] = Observed(value=vm_on_both(lab, REJOIN_MIB, written))
    run(lab, SECONDARY, f"drbdadm secondary {RES}")
    must(lab, PRIMARY, f"drbdadm primary {RES}")
    return out


REJOIN = Situation(
    name="drbd-old-primary-rejoins",
    exercises="the Primary's power cut, the Secondary promoted once it declared the loss, "
              "4 MiB written there, "
              "the old Primary booted: the resync's direction and KiB, final states, "
              "whether the new Primary's writes are on both disks",
    tolerances={**exact("promote_exit", "promote_message", "resync_source", "resync_kb",
                         *state_names("old"), *state_names("new"), "on_both"),
                "resync_s": within(0.1)},
    simulate=_sim_rejoin, recorders={"libvirt": _record_rejoin},
    not_modelled={"resync_s": UNTHROTTLED_RESYNC_S})


# ---------------------------------------------------------------- I/O error

ERROR_MIB = 1
DM = "sd-failing"


def _sim_io_error() -> Fields:
    lab = sim_lab()
    res = lab.drbd[RES]
    lab.inject(DiskFailure(host=PRIMARY, disk="sdb"))
    device = res.device(PRIMARY)
    first = FREE_OFFSET_MIB * BLOCKS_PER_MIB

    def writes() -> Generator[simpy.Event, Any, int]:
        try:
            for block in range(first, first + ERROR_MIB * BLOCKS_PER_MIB):
                yield device.write(block, f"err-{block}")
        except BlockIOError:
            return 1
        return 0
    since = len(lab.tracer.events())
    out: Fields = {"write_exit": Observed(value=labs.sim_run(lab, writes()))}
    sim_settle(lab, 5.0)
    out["disk_states"] = Observed(value=sim_disk_changes(lab, PRIMARY, since))
    out |= sim_states("a", lab, PRIMARY) | sim_states("b", lab, SECONDARY)
    out["read_back_ok"] = Observed(value=all(
        device.peek(b) == f"err-{b}" for b in range(first, first + ERROR_MIB * BLOCKS_PER_MIB)))
    out["on_peer"] = Observed(value=all(
        res.nodes[SECONDARY].disk.peek(b) == f"err-{b}"
        for b in range(first, first + ERROR_MIB * BLOCKS_PER_MIB)))
    return out


def _vm_under_dm(lab: LibvirtLab) -> None:
    """Re-attach a's DRBD disk through a dm linear target over its backing disk (drbdadm's
    own attach command with the device replaced)."""
    dev = backing(lab, PRIMARY)
    must(lab, PRIMARY, f"drbdadm detach {RES}", timeout=60)
    must(lab, PRIMARY, f'dmsetup create {DM} --table "0 $(blockdev --getsz {dev}) linear '
                       f'{dev} 0" && dmsetup mknodes {DM} && for i in $(seq 20); do '
                       f'test -b /dev/mapper/{DM} && exit 0; sleep 0.5; done; exit 1')
    must(lab, PRIMARY, f"drbdadm -d attach {RES} | sed 's#{dev}#/dev/mapper/{DM}#g' | "
                       "PATH=$PATH:/lib/drbd:/usr/lib/drbd sh -e", timeout=60)
    wait("a is UpToDate on the dm disk", lambda: in_sync(lab), 120)


def _vm_error_table(lab: LibvirtLab) -> None:
    must(lab, PRIMARY, f'n=$(dmsetup table {DM} | cut -d" " -f2); dmsetup suspend {DM} && '
                       f'dmsetup load {DM} --table "0 $n error" && dmsetup resume {DM}')


def _vm_off_dm(lab: LibvirtLab) -> None:
    run(lab, PRIMARY, f"drbdadm detach {RES}", timeout=60)
    must(lab, PRIMARY, f"for i in $(seq 40); do dmsetup remove {DM} 2>/dev/null && exit 0; "
                       "sleep 0.5; done; exit 1", timeout=60)
    must(lab, PRIMARY, f"drbdadm attach {RES}", timeout=60)
    wait("a resyncs its own disk", lambda: in_sync(lab), 120)


def _record_io_error() -> Fields:
    lab = vm_lab()
    reset_connected(lab)
    _vm_under_dm(lab)
    try:
        mark(lab, PRIMARY, "ioerr")
        _vm_error_table(lab)
        rc, _text = run(lab, PRIMARY, dd_write(ERROR_MIB), timeout=120)
        out: Fields = {"write_exit": Observed(value=0 if rc == 0 else 1)}
        wait("a's disk is gone", lambda: proc_drbd(lab, PRIMARY).get("disk") == "Diskless",
             30)
        out["disk_states"] = Observed(value=disk_states(log_since(lab, PRIMARY, "ioerr")))
        out |= vm_states("a", lab, PRIMARY) | vm_states("b", lab, SECONDARY)
        written = must(lab, PRIMARY, region_sum(ERROR_MIB, "/dev/drbd0"))
        out["read_back_ok"] = Observed(value=rc == 0 and len(written) == 32)
        out["on_peer"] = Observed(value=must(
            lab, SECONDARY, region_sum(ERROR_MIB, backing(lab, SECONDARY))) == written)
    finally:
        _vm_off_dm(lab)
    return out


IO_ERROR = Situation(
    name="drbd-io-error-detach",
    exercises="every I/O of the Primary's backing disk fails (on-io-error detach), then "
              "1 MiB written on the Primary: the write's outcome, the disk states it goes "
              "through, states on both, the data read back and on the peer",
    tolerances=exact("write_exit", "disk_states", *state_names("a"), *state_names("b"),
                      "read_back_ok", "on_peer"),
    simulate=_sim_io_error, recorders={"libvirt": _record_io_error})

SITUATIONS = (OUTDATE, REJOIN, IO_ERROR)
