"""Holding DRBD back on the two-node lab of `drbd_lab`: drbdadm suspend-io and resume-io
(drbd_nl.c drbd_adm_suspend_io / drbd_adm_resume_io): the Primary's I/O is suspended (`s`
in /proc/drbd's flags), a direct write to /dev/drbd0 waits, resume-io lets it complete,
resume-io again with nothing suspended; pause-sync and resume-sync
(drbd_adm_pause_sync / drbd_adm_resume_sync): a resync that starts while the flag is set
stays paused until it is cleared, and setting or clearing it twice is an error.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Mapping
from typing import Any

import simpy

from stackdrill.backends.libvirt.drbd import parse_proc_drbd
from stackdrill.conformance import labs
from stackdrill.conformance.drbd_lab import (
    FREE_OFFSET_MIB,
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
from stackdrill.conformance.model import EXACT, Fields, Observed, Situation
from stackdrill.conformance.situations.drbd_common import answer, sim_answer, sim_call

HELD_S = 3.0  # how long the write is given while suspended
DONE_FILE = "/tmp/sd-write-done"
WRITE = (f"rm -f {DONE_FILE}; nohup sh -c 'dd if=/dev/zero of=/dev/drbd0 bs=4k count=1 "
         f"seek={FREE_OFFSET_MIB * 256} oflag=direct status=none && touch {DONE_FILE}' "
         ">/dev/null 2>&1 &")


def _sim() -> Fields:
    lab = sim_lab()
    res = lab.drbd[RES]
    out = sim_answer("suspend", sim_call(res.suspend_io, PRIMARY))
    out["suspended"] = Observed(value=res.status()[PRIMARY].suspended)
    write = res.device(PRIMARY).write(FREE_OFFSET_MIB * 256, "held")

    def steps() -> Generator[simpy.Event, Any, None]:
        yield lab.kernel.env.timeout(HELD_S)

    labs.sim_run(lab, steps())
    out["write_done_while_suspended"] = Observed(value=write.processed)
    out |= sim_answer("resume", sim_call(res.resume_io_cmd, PRIMARY))
    lab.advance(lab.kernel.now + HELD_S)
    out["suspended_after_resume"] = Observed(value=res.status()[PRIMARY].suspended)
    out["write_done_after_resume"] = Observed(value=write.processed and write.ok)
    return out | sim_answer("resume_again", sim_call(res.resume_io_cmd, PRIMARY))


def _suspended(text: str) -> bool | None:
    status = parse_proc_drbd(text, 0)
    return status.suspended if status is not None else None


def _vm() -> Fields:
    lab = vm_lab()
    reset_connected(lab)
    out = answer("suspend", *run(lab, PRIMARY, f"drbdadm suspend-io {RES}"))
    out["suspended"] = Observed(value=_suspended(must(lab, PRIMARY, "cat /proc/drbd")))
    must(lab, PRIMARY, WRITE)
    time.sleep(HELD_S)
    done = run(lab, PRIMARY, f"test -e {DONE_FILE}")[0] == 0
    out["write_done_while_suspended"] = Observed(value=done)
    out |= answer("resume", *run(lab, PRIMARY, f"drbdadm resume-io {RES}"))
    completed = True
    try:
        wait("the queued write completes",
             lambda: run(lab, PRIMARY, f"test -e {DONE_FILE}")[0] == 0, 10 * HELD_S)
    except RuntimeError:
        completed = False
    out["suspended_after_resume"] = Observed(
        value=_suspended(must(lab, PRIMARY, "cat /proc/drbd")))
    out["write_done_after_resume"] = Observed(value=completed)
    return out | answer("resume_again", *run(lab, PRIMARY, f"drbdadm resume-io {RES}"))


SUSPEND_IO = Situation(
    name="drbd-suspend-io",
    exercises="Connected, a Primary: drbdadm suspend-io, a direct write to /dev/drbd0 while "
              "suspended, resume-io, and resume-io again with nothing suspended",
    tolerances=dict.fromkeys(
        ("suspend_exit", "suspend_message", "suspended", "write_done_while_suspended",
         "resume_exit", "resume_message", "suspended_after_resume", "write_done_after_resume",
         "resume_again_exit", "resume_again_message"), EXACT),
    simulate=_sim, recorders={"libvirt": _vm})



# ---------------------------------------------------------------- pause-sync

PAUSED_BLOCKS = 512  # 4 KiB each: 2 MiB written while the Secondary is away
WRITE_AWAY = (f"dd if=/dev/urandom of=/dev/drbd0 bs=4k count={PAUSED_BLOCKS} "
              f"seek={FREE_OFFSET_MIB * 256} oflag=direct status=none")
SETTLE_S = 3.0


def _paused_states(out: Fields, seen: Mapping[str, str | None], oos: int | None) -> Fields:
    out |= {f"paused_{k}": Observed(value=v) for k, v in seen.items()}
    out["paused_a_oos_kb"] = Observed(value=oos)
    return out


def _sim_pause() -> Fields:
    lab = sim_lab()
    res = lab.drbd[RES]
    sim_call(res.disconnect, SECONDARY)
    device = res.device(PRIMARY)

    def writes() -> Generator[simpy.Event, Any, None]:
        for block in range(PAUSED_BLOCKS):
            yield device.write(FREE_OFFSET_MIB * 256 + block, "while-away")

    labs.sim_run(lab, writes())
    out = sim_answer("pause", sim_call(res.pause_sync, PRIMARY))
    out |= sim_answer("pause_again", sim_call(res.pause_sync, PRIMARY))
    sim_call(res.connect, SECONDARY)
    lab.advance(lab.kernel.now + SETTLE_S)
    status = res.status()
    seen = {"a_connection": status[PRIMARY].connection,
            "b_connection": status[SECONDARY].connection, "b_disk": status[SECONDARY].disk}
    out = _paused_states(out, seen, status[PRIMARY].out_of_sync_kb)
    out |= sim_answer("resume", sim_call(res.resume_sync, PRIMARY))
    lab.advance(lab.kernel.now + 60.0)
    out["resumed_b_disk"] = Observed(value=res.status()[SECONDARY].disk)
    return out | sim_answer("resume_again", sim_call(res.resume_sync, PRIMARY))


def _vm_pause() -> Fields:
    lab = vm_lab()
    reset_connected(lab)
    must(lab, SECONDARY, f"drbdadm disconnect {RES}")
    must(lab, PRIMARY, WRITE_AWAY, timeout=60)
    out = answer("pause", *run(lab, PRIMARY, f"drbdadm pause-sync {RES}"))
    out |= answer("pause_again", *run(lab, PRIMARY, f"drbdadm pause-sync {RES}"))
    must(lab, SECONDARY, f"drbdadm connect {RES}")
    wait("the resync handshake", lambda: proc_drbd(lab, SECONDARY).get("connection")
         not in ("StandAlone", "WFConnection", "WFReportParams"), 30)
    time.sleep(SETTLE_S)
    a, b = proc_drbd(lab, PRIMARY), proc_drbd(lab, SECONDARY)
    seen = {"a_connection": a.get("connection"), "b_connection": b.get("connection"),
            "b_disk": b.get("disk")}
    status = parse_proc_drbd(must(lab, PRIMARY, "cat /proc/drbd"), 0)
    out = _paused_states(out, seen, status.out_of_sync_kb if status is not None else None)
    out |= answer("resume", *run(lab, PRIMARY, f"drbdadm resume-sync {RES}"))
    wait("r0 syncs", lambda: in_sync(lab), 120)
    out["resumed_b_disk"] = Observed(value=proc_drbd(lab, SECONDARY).get("disk"))
    return out | answer("resume_again", *run(lab, PRIMARY, f"drbdadm resume-sync {RES}"))


PAUSE_SYNC = Situation(
    name="drbd-pause-sync",
    exercises="2 MiB written on the Primary while the Secondary was disconnected; pause-sync "
              "(twice) on the Primary, the Secondary reconnects: states and out-of-sync "
              "while paused; resume-sync (twice)",
    tolerances=dict.fromkeys(
        ("pause_exit", "pause_message", "pause_again_exit", "pause_again_message",
         "paused_a_connection", "paused_b_connection", "paused_b_disk", "paused_a_oos_kb",
         "resume_exit", "resume_message", "resumed_b_disk", "resume_again_exit",
         "resume_again_message"), EXACT),
    simulate=_sim_pause, recorders={"libvirt": _vm_pause})

SITUATIONS = (SUSPEND_IO, PAUSE_SYNC)
