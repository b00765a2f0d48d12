"""lvmlockd killed and started again on a host that stays up (lvm2's lvmlockd tests, the
`daemon_kill` fault), on the lvmlockd variant of the cluster-LVM lab.

`a` holds lv1 exclusively. SIGKILL of a's lvmlockd: what `b` is told when it asks for the
LV (the lock lvmlockd held in the DLM stays behind: its lockspace is the kernel's, not the
dead process's), what `a`'s own lvm commands do without their daemon (activation, lock
start, deactivation), and then with lvmlockd started again and a lock start: whether
lock commands work again on `a`, and whether `b` may now take the LV. The guests' lvm2
(bookworm, dlm) does not adopt the orphaned locks on restart; only the node leaving the
cluster (a reboot, fenced) frees them. The recording session discards the lab afterwards.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from stackdrill.conformance import labs
from stackdrill.conformance.clvm_lab import (
    LV,
    VG,
    A,
    B,
    deactivate_all,
    discard,
    dm_sectors,
    sim_lab,
    vm_lab,
)
from stackdrill.conformance.drbd_lab import run
from stackdrill.conformance.model import EXACT, Fields, Observed, Situation
from stackdrill.conformance.situations.lvm_common import answer, names, sim_answer, sim_wait
from stackdrill.faults import DaemonKill

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab
    from stackdrill.backends.sim.lab import SimLab

KILLED = DaemonKill(host=A, daemon="lvmlockd")
STEPS = ("activate_a", "killed_activate_b", "killed_activate_a", "killed_lockstart_a",
         "killed_deactivate_a", "orphan_activate_b", "restarted_lockstart_a",
         "restarted_activate_a", "restarted_activate_b")


def _simulate() -> Fields:
    lab = sim_lab("lvmlockd")
    a, b = lab.lvm_hosts[A], lab.lvm_hosts[B]

    def steps() -> Generator[Any, Any, Fields]:
        for host in (a, b):
            yield from sim_wait(host.deactivate(VG, LV))
        out = sim_answer("activate_a", (yield from sim_wait(a.activate(VG, LV, "ex"))))
        lab.inject(KILLED)
        out |= sim_answer("killed_activate_b", (yield from sim_wait(b.activate(VG, LV, "ex"))))
        out |= sim_answer("killed_activate_a", (yield from sim_wait(a.activate(VG, LV, "ex"))))
        out |= sim_answer("killed_lockstart_a", (yield from sim_wait(a.lock_start(VG))))
        out |= sim_answer("killed_deactivate_a", (yield from sim_wait(a.deactivate(VG, LV))))
        out["killed_a_dm_present"] = Observed(value=a.table(VG, LV) is not None)
        out["killed_a_lists_vg"] = Observed(value=_sim_lists(lab))
        out |= sim_answer("orphan_activate_b", (yield from sim_wait(b.activate(VG, LV, "ex"))))
        lab.heal(KILLED)
        out |= sim_answer("restarted_lockstart_a", (yield from sim_wait(a.lock_start(VG))))
        out |= sim_answer("restarted_activate_a",
                          (yield from sim_wait(a.activate(VG, LV, "ex"))))
        out |= sim_answer("restarted_activate_b",
                          (yield from sim_wait(b.activate(VG, LV, "ex"))))
        out["restarted_a_lists_vg"] = Observed(value=_sim_lists(lab))
        return out
    return labs.sim_run(lab, steps())


def _sim_lists(lab: SimLab) -> bool:
    """`vgs` on a lists the VG (the lab's final read asks the same)."""
    return any(view.host == A and view.vg == VG for view in lab.observe().lvm)


def _vm_lists(lab: LibvirtLab) -> bool:
    rc, out = run(lab, A, "timeout 10 vgs --noheadings -o vg_name 2>/dev/null", 30)
    return rc == 0 and VG in out.split()


def _lvchange(lab: LibvirtLab, host: str, flag: str) -> tuple[int, str]:
    return run(lab, host, f"lvchange {flag} {VG}/{LV}", timeout=60)


def _record() -> Fields:
    lab = vm_lab("lvmlockd")
    try:
        return _record_steps(lab)
    finally:
        discard()  # a's locks stay orphaned: no later situation could start from here


def _record_steps(lab: LibvirtLab) -> Fields:
    deactivate_all(lab)
    out = answer("activate_a", *_lvchange(lab, A, "-aey"))
    lab.inject(KILLED)
    out |= answer("killed_activate_b", *_lvchange(lab, B, "-aey"))
    out |= answer("killed_activate_a", *_lvchange(lab, A, "-aey"))
    out |= answer("killed_lockstart_a", *run(lab, A, f"vgchange --lock-start {VG}", 60))
    out |= answer("killed_deactivate_a", *_lvchange(lab, A, "-an"))
    out["killed_a_dm_present"] = Observed(value=dm_sectors(lab, A) is not None)
    out["killed_a_lists_vg"] = Observed(value=_vm_lists(lab))
    out |= answer("orphan_activate_b", *_lvchange(lab, B, "-aey"))
    lab.heal(KILLED)
    out |= answer("restarted_lockstart_a", *run(lab, A, f"vgchange --lock-start {VG}", 60))
    out |= answer("restarted_activate_a", *_lvchange(lab, A, "-aey"))
    out |= answer("restarted_activate_b", *_lvchange(lab, B, "-aey"))
    out["restarted_a_lists_vg"] = Observed(value=_vm_lists(lab))
    return out


LVMLOCKD_KILLED = Situation(
    name="lvmlockd-killed",
    exercises="lvmlockd (dlm): lv1 active exclusively on a; SIGKILL of a's lvmlockd: b "
              "activates it, a activates, starts its lockspace and deactivates it without "
              "the daemon, b again; lvmlockd started again on a: lock start, a and b "
              "activate",
    tolerances={**dict.fromkeys(names(*STEPS), EXACT),
                **dict.fromkeys(("killed_a_dm_present", "killed_a_lists_vg",
                                 "restarted_a_lists_vg"), EXACT)},
    simulate=_simulate, recorders={"libvirt": _record})

SITUATIONS = (LVMLOCKD_KILLED,)
