"""The random-drill generator, oracle and invariants: what an operator relies on when a
random seed fails (it replays, it names only real things, its excuses are declared)."""

from __future__ import annotations

from stackdrill.api import WriteOp
from stackdrill.drill.model import RecoverSpec, Step
from stackdrill.faults import DiskFailure, HostCrash, HostHang, HostReboot, LinkDown, Partition
from stackdrill.fuzz import build, declared_damage, generate, run_drill
from stackdrill.fuzz.invariants import divergence_bounded, writes_progress
from stackdrill.fuzz.oracle import max_placeable
from stackdrill.fuzz.schedule import DURATION_S, KIND_WEIGHTS, LAST_FAULT_S, shipped_topology
from stackdrill.fuzz.shrink import shrink

RECOVER = Step(at=0, recover=RecoverSpec())


def test_same_seed_same_drill_and_seeds_differ() -> None:
    """A failing seed is a complete reproduction: the generator is a pure function of it."""
    assert generate(7).spec == generate(7).spec
    specs = {generate(s).spec.model_dump_json(exclude={"name", "description", "seed"})
             for s in range(30)}
    assert len(specs) == 30
    assert {generate(s).drill.topology.name for s in range(30)} == {
        "nova-drbd", "mirrored-compute", "two-node-clvm"}


def test_every_weighted_fault_kind_is_drawn() -> None:
    """Each kind the generator weighs has a generator and turns up within a few hundred
    seeds, so the sweep covers the whole catalogue it claims to."""
    drawn = {f.kind for s in range(300) for _step, f in generate(s).drill.faults()}
    assert drawn == set(KIND_WEIGHTS)


def test_every_schedule_recovers_in_time_and_keeps_replicas() -> None:
    """Faults leave time for detection and recovery, and never both DRBD replicas are
    destroyed (the data would be unavailable, which is a scenario of its own)."""
    for seed in range(200):
        drill = generate(seed).drill
        steps = drill.spec.schedule
        assert steps[0].recover is not None and steps[0].at == 0
        assert all(s.at <= LAST_FAULT_S for s in steps if s.inject is not None)
        assert drill.spec.duration_s == DURATION_S
        storage = {n for r in drill.topology.drbd for n in r.nodes}
        destroyed = {f.targets()[0] for _s, f in drill.faults()
                     if isinstance(f, (HostCrash, HostHang, HostReboot, DiskFailure))
                     and f.targets()[0] in storage}
        assert len(destroyed) <= 1, (seed, destroyed)
        for res in drill.topology.drbd:  # DRBD refuses dual-primary with protocol A
            assert not (res.allow_two_primaries and res.protocol.value == "A")


def test_single_host_loss_in_nova_declares_no_damage() -> None:
    """Nova topology: one compute host dies; survivors have room for all its guests under
    anti-affinity, so nothing may be excused as unrecoverable."""
    drill = build(1, "nova-drbd", [RECOVER, Step(at=60, id="x", inject=HostCrash(
        host="cmp1", power_back=False))])
    damage = declared_damage(drill)
    assert damage.displaced == {"web1", "db1", "app1"}
    assert damage.may_be_unrecoverable == frozenset() and damage.max_unrecoverable == 0
    assert not damage.split_brain_possible


def test_two_host_loss_declares_anti_affinity_damage() -> None:
    """The cascade drill: cmp1 and cmp2 die, only cmp3 (which holds db2) is left: one web,
    app1 and app2 fit; the other web and db1 cannot (anti-affinity)."""
    drill = build(1, "nova-drbd", [RECOVER,
                                   Step(at=60, id="a", inject=HostCrash(host="cmp1",
                                                                        power_back=False)),
                                   Step(at=105, id="b", inject=HostCrash(host="cmp2",
                                                                         power_back=False))])
    damage = declared_damage(drill)
    assert damage.max_unrecoverable == 2
    topo = shipped_topology("nova-drbd")
    assert max_placeable(topo, ["web1", "db1", "app1", "web2", "app2"], ["cmp3"]) == 3


def test_dual_primary_link_cut_declares_divergence_from_its_time() -> None:
    """Dual-primary DRBD without fencing diverges when its link is cut (DRBD's warning):
    writes after the cut may be lost, writes before it may not."""
    cut = Partition(groups=(("alice",), ("bob",)), network="eth1")
    drill = build(1, "two-node-clvm", [RECOVER, Step(at=40, id="c", inject=cut)])
    damage = declared_damage(drill)
    assert damage.split_brain_possible and damage.diverge_from == 40
    history = [_op("vm2", 1, 1, "bob", 30.0, 30.1), _op("vm2", 2, 1, "bob", 50.0, 50.1)]
    assert divergence_bounded(history, {"vm2": {"lv-vm2": [2]}}, damage).ok
    late = divergence_bounded(history, {"vm2": {"lv-vm2": [1, 2]}}, damage)
    assert not late.ok and "before replication could be cut" in late.detail


def test_mgmt_link_fault_on_controller_makes_every_host_unsure() -> None:
    """The controller collects heartbeats: cut it off and no host is a known-good target."""
    drill = build(1, "nova-drbd", [RECOVER, Step(at=50, id="l", inject=LinkDown(
        host="ctl1", network="mgmt"))])
    assert declared_damage(drill).unsure_hosts == {"cmp1", "cmp2", "cmp3"}


def _op(inst: str, seq: int, inc: int, host: str, t0: float, t1: float) -> WriteOp:
    return WriteOp(inst, f"lv-{inst}", inc, seq, f"c{seq}", t0, t1, "ok", host)


def test_shrink_keeps_only_the_fault_that_matters() -> None:
    """Delta debugging drops every fault (with its heal) the failure does not need."""
    steps = [RECOVER,
             Step(at=30, id="a", inject=LinkDown(host="cmp2", network="tunnel")),
             Step(at=40, heal="a"),
             Step(at=50, id="b", inject=HostCrash(host="cmp1")),
             Step(at=60, id="c", inject=HostHang(host="cmp3"))]
    drill = build(3, "nova-drbd", steps)

    def fails(candidate: object) -> bool:
        return any(getattr(s.inject, "host", None) == "cmp1"
                   for s in candidate.spec.schedule)  # type: ignore[attr-defined]

    small = shrink(drill, fails)
    assert [s.inject for s in small.spec.schedule if s.inject] == [HostCrash(host="cmp1")]
    assert small.spec.schedule[0].recover is not None


def test_writes_progress_flags_a_guest_running_on_a_dead_volume() -> None:
    """Liveness: a guest that runs but gets no write acknowledged any more is not recovered
    — unless the schedule leaves a storage path cut to the end (declared)."""
    drill = build(1, "nova-drbd", [RECOVER])
    damage = declared_damage(drill)
    history = [_op("vm", 1, 1, "cmp1", 100, 101), _op("vm", 2, 1, "cmp1", 250, 251)]
    assert writes_progress(history, {"vm": ["cmp1"]}, 240, damage).ok
    stalled = writes_progress(history[:1], {"vm": ["cmp1"]}, 240, damage)
    assert not stalled.ok and "vm/lv-vm" in stalled.detail
    assert writes_progress(history[:1], {"vm": []}, 240, damage).ok  # not running: not here
    cut = build(1, "nova-drbd", [RECOVER, Step(at=50, id="s", inject=LinkDown(
        host="cmp1", network="storage"))])
    assert declared_damage(cut).may_stall
    assert writes_progress(history[:1], {"vm": ["cmp1"]}, 240, declared_damage(cut)).ok


def test_writes_progress_leaves_a_recovery_begun_in_the_window_to_the_other_checks() -> None:
    """Random seed 1815, shrunk: a wide partition cuts sto1 and sto2 off the controller
    from 109.5 s to 200 s; with one flow slot, five guests are reattached one after the
    other once sto2 rejoins (~20 s each), the last from ~288 s. It has not written by the
    end because its recovery is under way: the progress check leaves it out and says so.
    A guest whose recovery began before the window is still judged (the unit test above:
    `recovering` names only flows begun in the window)."""
    drill = build(1815, "nova-drbd", [
        Step(at=0, recover=RecoverSpec(parallel=1)),
        Step(at=109.5, id="f3", inject=Partition(groups=(("cmp1", "cmp2", "ctl1"),
                                                          ("cmp3", "sto1", "sto2")))),
        Step(at=200.0, heal="f3")])
    outcome = run_drill(1815, drill)
    assert outcome.ok, outcome.summary()
    progress = next(c for c in outcome.checks if c.name == "writes_progress")
    assert "still being recovered by a flow begun since: web2" in progress.detail
    history = [_op("vm", 1, 1, "cmp1", 100, 101)]
    stalled = writes_progress(history, {"vm": ["cmp1"]}, 240, outcome.damage,
                              recovering=frozenset({"other"}))
    assert not stalled.ok, "a guest not being recovered must still have written"
