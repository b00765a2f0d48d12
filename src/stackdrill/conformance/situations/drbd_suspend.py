"""drbdadm suspend-io and resume-io (drbd_nl.c drbd_adm_suspend_io / drbd_adm_resume_io) on
the two-node lab of `drbd_lab`: the Primary's I/O is suspended (`s` in /proc/drbd's
flags), a direct write to /dev/drbd0 waits, resume-io lets it complete; resume-io again
when nothing is suspended.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any

import simpy

from stackdrill.backends.libvirt.drbd import parse_proc_drbd
from stackdrill.conformance import labs
from stackdrill.conformance.drbd_lab import (
    FREE_OFFSET_MIB,
    PRIMARY,
    RES,
    must,
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

SITUATIONS = (SUSPEND_IO,)
