"""LVM on a VG both DRBD Primaries open, under local locking and under lvmlockd (dlm), run
on the cluster-LVM lab of `clvm_lab` from its starting state: LV `lv1` exists and is
active nowhere (lvmlockd: the VG's lockspace started on both).

- stale activation: the LV active on both hosts under local locking; lvextend and lvremove
  on one leave the other's dm table as it was (lvm2 only (re)loads tables on the host
  that runs the command: lib/activate/activate.c);
- lvmlockd refuses to resize or remove an LV another host holds (lockd_lv_resize,
  lockd_lv: "LV locked by other host"), and refuses conflicting activations;
- truly concurrent lvcreate on both hosts, several rounds: under local locking both read
  seqno N and write N+1 (vg_write/vg_commit), so one LV is lost although both succeeded;
  under lvmlockd the VG lock (ex) serialises them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import simpy

from stackdrill.conformance import labs
from stackdrill.conformance.clvm_lab import (
    HOSTS,
    LV,
    VG,
    A,
    B,
    Variant,
    deactivate_all,
    dm_sectors,
    lvs_names,
    sim_lab,
    vm_lab,
)
from stackdrill.conformance.drbd_lab import run
from stackdrill.conformance.model import EXACT, Fields, Observed, Situation, Tolerance, within
from stackdrill.conformance.situations.lvm_common import answer, names, sim_answer, sim_wait

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab
    from stackdrill.backends.sim.lab import SimLab

Gen = Generator[simpy.Event, Any, Any]
ROUNDS = 8
# Which rounds keep both LVs varies on the real software (the two commands' start-up):
# lvm2 2.03.16 kept both in 4 of 8. As a binomial draw at that rate, a re-recording lands
# within 4 +- 3 of 8 rounds 95% of the time; so does the seeded simulator, or it is wrong.
ROUND_SPREAD = 3
RECREATE = f"lvcreate -y -an -Zn -l 2 -n {LV} {VG}"


def _exact(*fields: str) -> dict[str, Tolerance]:
    return dict.fromkeys(fields, EXACT)


def _sim_extents(lab: SimLab, host: str) -> int | None:
    table = lab.lvm_hosts[host].table(VG, LV)
    return None if table is None else sum(n for _first, n in table.segments)


def _sim_deactivate_all(lab: SimLab) -> Gen:
    for host in HOSTS:
        yield from sim_wait(lab.lvm_hosts[host].deactivate(VG, LV))


# ---------------------------------------------------------------- stale activation (local)

def _sim_stale_local() -> Fields:
    lab = sim_lab("local")
    a, b = lab.lvm_hosts[A], lab.lvm_hosts[B]

    def steps() -> Gen:
        yield from _sim_deactivate_all(lab)
        out = sim_answer("activate_a", (yield from sim_wait(a.activate(VG, LV))))
        out |= sim_answer("activate_b", (yield from sim_wait(b.activate(VG, LV))))
        a0, b0 = _sim_extents(lab, A), _sim_extents(lab, B)
        out |= sim_answer("extend_a", (yield from sim_wait(a.lvextend(VG, LV, 1))))
        out["a_table_grew"] = Observed(value=(_sim_extents(lab, A) or 0) > (a0 or 0))
        out["b_table_unchanged"] = Observed(value=_sim_extents(lab, B) == b0)
        out |= sim_answer("refresh_b", (yield from sim_wait(b.refresh(VG))))
        out["b_table_grew_after_refresh"] = Observed(value=(_sim_extents(lab, B) or 0) > (b0 or 0))
        out |= sim_answer("remove_a", (yield from sim_wait(a.lvremove(VG, LV))))
        out["a_dm_present_after_remove"] = Observed(value=a.table(VG, LV) is not None)
        out["b_dm_present_after_remove"] = Observed(value=b.table(VG, LV) is not None)
        out["b_lvs_lists_lv"] = Observed(value=LV in b.view(VG).metadata_lvs)
        return out
    return labs.sim_run(lab, steps())


def _vm_stale_local() -> Fields:
    lab = vm_lab("local")
    deactivate_all(lab)
    out = answer("activate_a", *run(lab, A, f"lvchange -ay {VG}/{LV}"))
    out |= answer("activate_b", *run(lab, B, f"lvchange -ay {VG}/{LV}"))
    a0, b0 = dm_sectors(lab, A), dm_sectors(lab, B)
    out |= answer("extend_a", *run(lab, A, f"lvextend -l +1 {VG}/{LV}"))
    out["a_table_grew"] = Observed(value=(dm_sectors(lab, A) or 0) > (a0 or 0))
    out["b_table_unchanged"] = Observed(value=dm_sectors(lab, B) == b0)
    out |= answer("refresh_b", *run(lab, B, f"vgchange --refresh {VG}"))
    out["b_table_grew_after_refresh"] = Observed(value=(dm_sectors(lab, B) or 0) > (b0 or 0))
    out |= answer("remove_a", *run(lab, A, f"lvremove -f {VG}/{LV}"))
    out["a_dm_present_after_remove"] = Observed(value=dm_sectors(lab, A) is not None)
    out["b_dm_present_after_remove"] = Observed(value=dm_sectors(lab, B) is not None)
    out["b_lvs_lists_lv"] = Observed(value=LV in lvs_names(lab, B))
    deactivate_all(lab)
    run(lab, A, RECREATE)
    return out


STALE_LOCAL = Situation(
    name="lvm-stale-activation-local",
    exercises="local locking, lv1 active on both Primaries: lvextend on a (b's dm table), "
              "vgchange --refresh on b, then lvremove on a (b's dm device and lvs)",
    tolerances=_exact(*names("activate_a", "activate_b", "extend_a", "refresh_b", "remove_a"),
                      "a_table_grew", "b_table_unchanged", "b_table_grew_after_refresh",
                      "a_dm_present_after_remove", "b_dm_present_after_remove",
                      "b_lvs_lists_lv"),
    simulate=_sim_stale_local, recorders={"libvirt": _vm_stale_local})


# ---------------------------------------------------------------- lvmlockd: held elsewhere

def _sim_locked() -> Fields:
    lab = sim_lab("lvmlockd")
    a, b = lab.lvm_hosts[A], lab.lvm_hosts[B]

    def steps() -> Gen:
        yield from _sim_deactivate_all(lab)
        out = sim_answer("activate_ex_a", (yield from sim_wait(a.activate(VG, LV, "ex"))))
        out |= sim_answer("activate_ex_b", (yield from sim_wait(b.activate(VG, LV, "ex"))))
        out |= sim_answer("activate_sh_b", (yield from sim_wait(b.activate(VG, LV, "sh"))))
        out |= sim_answer("extend_b", (yield from sim_wait(b.lvextend(VG, LV, 1))))
        out |= sim_answer("remove_b", (yield from sim_wait(b.lvremove(VG, LV))))
        out["a_dm_present"] = Observed(value=a.table(VG, LV) is not None)
        out |= sim_answer("extend_a", (yield from sim_wait(a.lvextend(VG, LV, 1))))
        yield from _sim_deactivate_all(lab)
        out |= sim_answer("activate_sh_a", (yield from sim_wait(a.activate(VG, LV, "sh"))))
        out |= sim_answer("activate_sh_b2", (yield from sim_wait(b.activate(VG, LV, "sh"))))
        out |= sim_answer("activate_ex_b2", (yield from sim_wait(b.activate(VG, LV, "ex"))))
        out |= sim_answer("extend_shared_a", (yield from sim_wait(a.lvextend(VG, LV, 1))))
        return out
    return labs.sim_run(lab, steps())


def _vm_locked() -> Fields:
    lab = vm_lab("lvmlockd")
    deactivate_all(lab)
    out = answer("activate_ex_a", *run(lab, A, f"lvchange -aey {VG}/{LV}"))
    out |= answer("activate_ex_b", *run(lab, B, f"lvchange -aey {VG}/{LV}"))
    out |= answer("activate_sh_b", *run(lab, B, f"lvchange -asy {VG}/{LV}"))
    out |= answer("extend_b", *run(lab, B, f"lvextend -l +1 {VG}/{LV}"))
    out |= answer("remove_b", *run(lab, B, f"lvremove -f {VG}/{LV}"))
    out["a_dm_present"] = Observed(value=dm_sectors(lab, A) is not None)
    out |= answer("extend_a", *run(lab, A, f"lvextend -l +1 {VG}/{LV}"))
    deactivate_all(lab)
    out |= answer("activate_sh_a", *run(lab, A, f"lvchange -asy {VG}/{LV}"))
    out |= answer("activate_sh_b2", *run(lab, B, f"lvchange -asy {VG}/{LV}"))
    out |= answer("activate_ex_b2", *run(lab, B, f"lvchange -aey {VG}/{LV}"))
    out |= answer("extend_shared_a", *run(lab, A, f"lvextend -l +1 {VG}/{LV}"))
    deactivate_all(lab)
    return out


LOCKED = Situation(
    name="lvm-lock-conflict-lvmlockd",
    exercises="lvmlockd (dlm): lv1 active exclusively on a; b activates it ex and sh, "
              "extends and removes it; a extends it; then shared on both: b ex, a extends",
    tolerances=_exact(*names("activate_ex_a", "activate_ex_b", "activate_sh_b", "extend_b",
                             "remove_b", "extend_a", "activate_sh_a", "activate_sh_b2",
                             "activate_ex_b2", "extend_shared_a"), "a_dm_present"),
    simulate=_sim_locked, recorders={"libvirt": _vm_locked})


# ---------------------------------------------------------------- concurrent lvcreate

def _counts(kept: list[tuple[str, ...]], exits: list[int], seqno_agree: list[bool]) -> Fields:
    both = sum(1 for k in kept if len(k) == 2)
    return {"rounds": Observed(value=len(kept)),
            "rounds_both_kept": Observed(value=both),
            "rounds_one_lost": Observed(value=sum(1 for k in kept if len(k) == 1)),
            "failed_commands": Observed(value=sum(1 for rc in exits if rc != 0)),
            "seqno_agree_every_round": Observed(value=all(seqno_agree))}


def _sim_concurrent(locking: Variant) -> Callable[[], Fields]:
    def simulate() -> Fields:
        lab = sim_lab(locking)
        kept: list[tuple[str, ...]] = []
        exits: list[int] = []
        agree: list[bool] = []

        def steps() -> Gen:
            yield from _sim_deactivate_all(lab)
            for n in range(ROUNDS):
                made = [lab.lvm_hosts[h].lvcreate(VG, f"c{n}{h}", 1) for h in HOSTS]
                for event in made:
                    exc = yield from sim_wait(event)
                    exits.append(0 if exc is None else 5)
                views = [lab.lvm_hosts[h].view(VG) for h in HOSTS]
                kept.append(tuple(sorted(lv for lv in views[0].metadata_lvs
                                         if lv.startswith(f"c{n}"))))
                agree.append(views[0].metadata_seqno == views[1].metadata_seqno)
                for lv in kept[-1]:
                    yield from sim_wait(lab.lvm_hosts[A].lvremove(VG, lv))
                for h in HOSTS:  # lvcreate activated it where it ran
                    for lv in (f"c{n}{x}" for x in HOSTS):
                        lab.lvm_hosts[h].unload(lab.vgs[VG], lv, "cleanup")
            return _counts(kept, exits, agree)
        return labs.sim_run(lab, steps())
    return simulate


def _vm_round(lab: LibvirtLab, n: int) -> list[int]:
    exits = [0, 0]
    barrier = threading.Barrier(2, timeout=60)

    def create(i: int, host: str) -> None:
        barrier.wait()
        exits[i] = lab.run(host, f"lvcreate -y -an -Zn -l 1 -n c{n}{host} {VG}",
                           timeout=120).rc
    threads = [threading.Thread(target=create, args=(i, h)) for i, h in enumerate(HOSTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    return exits


def _vm_seqno(lab: LibvirtLab, host: str) -> str:
    return run(lab, host, f"vgs --noheadings -o vg_seqno {VG}")[1].strip()


def _vm_concurrent(locking: Variant) -> Callable[[], Fields]:
    def record() -> Fields:
        lab = vm_lab(locking)
        deactivate_all(lab)
        kept: list[tuple[str, ...]] = []
        exits: list[int] = []
        agree: list[bool] = []
        for n in range(ROUNDS):
            exits += _vm_round(lab, n)
            kept.append(tuple(lv for lv in lvs_names(lab, A) if lv.startswith(f"c{n}")))
            agree.append(_vm_seqno(lab, A) == _vm_seqno(lab, B))
            for lv in kept[-1]:
                run(lab, A, f"lvremove -f {VG}/{lv}")
        deactivate_all(lab)
        return _counts(kept, exits, agree)
    return record


_CONCURRENT_FIELDS = ("rounds", "failed_commands", "seqno_agree_every_round")

CONCURRENT_LOCAL = Situation(
    name="lvm-concurrent-lvcreate-local",
    exercises=f"local locking: lvcreate of a new LV on both Primaries at the same instant, "
              f"{ROUNDS} rounds; which LVs the metadata keeps",
    tolerances={**_exact(*_CONCURRENT_FIELDS),
                "rounds_both_kept": within(ROUND_SPREAD), "rounds_one_lost": within(ROUND_SPREAD)},
    simulate=_sim_concurrent("local"), recorders={"libvirt": _vm_concurrent("local")})

CONCURRENT_LVMLOCKD = Situation(
    name="lvm-concurrent-lvcreate-lvmlockd",
    exercises=f"lvmlockd (dlm): lvcreate of a new LV on both hosts at the same instant, "
              f"{ROUNDS} rounds; the VG lock serialises them",
    tolerances=_exact(*_CONCURRENT_FIELDS, "rounds_both_kept", "rounds_one_lost"),
    simulate=_sim_concurrent("lvmlockd"), recorders={"libvirt": _vm_concurrent("lvmlockd")})

SITUATIONS = (STALE_LOCAL, LOCKED, CONCURRENT_LOCAL, CONCURRENT_LVMLOCKD)
