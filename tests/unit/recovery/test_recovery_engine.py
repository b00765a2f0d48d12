"""The engine against a fake lab: the safety rules and workflows of issue 4, checked the way
an operator would (where does each instance run, how often was it started, was its old host
off first)."""

from __future__ import annotations

from pathlib import Path

import pytest
from recovery_fakes import FakeLab, InventoryURL

from stackdrill.api import PowerState
from stackdrill.recovery import (
    EngineKilled,
    InstanceState,
    JournalStep,
    RecoveryConfig,
    RecoveryEngine,
    RecoveryMethod,
)
from stackdrill.topology import Topology, load_topology

TOPOLOGIES = Path(__file__).resolve().parents[3] / "lab" / "topologies"


@pytest.fixture(scope="module")
def nova() -> Topology:
    return load_topology(TOPOLOGIES / "nova-drbd.yaml")


def engine(lab: FakeLab, topo: Topology, db: str, **cfg: object) -> RecoveryEngine:
    return RecoveryEngine(topo, lab.drivers, lab.clock, db,
                          RecoveryConfig(**cfg))  # type: ignore[arg-type]


def crash_at(lab: FakeLab, host: str, t: float) -> None:
    lab.clock.at(t, lambda: lab.crash(host))


def steps(result_journal: list, step: JournalStep, host: str | None = None) -> list:  # type: ignore[type-arg]
    return [r for r in result_journal if r.step == step.value and (host is None or r.host == host)]


def test_host_failure_recovers_every_instance_exactly_once(
        nova: Topology, inventory_url: InventoryURL) -> None:
    """Nova evacuate after a dead host: each of its instances runs again on a survivor, started
    once, after the host was confirmed off and its service forced down (Nova's order)."""
    lab = FakeLab(nova)
    crash_at(lab, "cmp1", 60)
    result = engine(lab, nova, inventory_url("inv")).run(until=600)
    victims = [i.name for i in nova.instances if i.host == "cmp1"]
    running = lab.running()
    for name in victims:
        out = result.instance(name)
        assert out.state is InstanceState.RECOVERED, out
        assert running[name] == [out.host_after] and out.host_after != "cmp1"
        assert lab.starts[name] == 1
        assert out.verified_at is not None and out.verified_at > 60
    assert all(len(hosts) == 1 for hosts in running.values())
    assert lab.violations == []
    fenced = steps(result.journal, JournalStep.FENCE_CONFIRMED, "cmp1")[0].seq
    forced = steps(result.journal, JournalStep.SERVICE_FORCED_DOWN, "cmp1")[0].seq
    first_start = min(r.seq for r in steps(result.journal, JournalStep.START_REQUESTED))
    assert fenced < forced < first_start
    # anti-affinity: web1 cannot join web2 on cmp2, db1 cannot join db2 on cmp3
    assert result.instance("web1").host_after != "cmp2"
    assert result.instance("db1").host_after != "cmp3"
    phases = {p.phase.value for p in result.phases}
    assert {"detection", "fencing", "planning", "storage", "start", "attach", "network",
            "verify"} <= phases


def _end_state(lab: FakeLab, result_instances: list) -> dict[str, object]:  # type: ignore[type-arg]
    return {"running": lab.running(),
            "states": {o.name: (o.state, o.host_after) for o in result_instances}}


def test_killed_after_any_step_a_fresh_engine_converges(
        nova: Topology, inventory_url: InventoryURL) -> None:
    """The engine's journal is a write-ahead log: killed after step k (for every k) and
    started again on the same inventory, it reaches the same end state and never starts
    an instance twice."""
    lab = FakeLab(nova)
    crash_at(lab, "cmp1", 60)
    reference = engine(lab, nova, inventory_url("ref")).run(until=600)
    expected = _end_state(lab, reference.instances)
    total = len(reference.journal)
    assert total > 20
    for k in range(1, total + 1):
        lab = FakeLab(nova)
        crash_at(lab, "cmp1", 60)
        db = inventory_url(f"kill-{k}")
        with pytest.raises(EngineKilled):
            engine(lab, nova, db, stop_after_steps=k).run(until=600)
        result = engine(lab, nova, db).run(until=600)
        assert _end_state(lab, result.instances) == expected, f"killed after step {k}"
        assert all(n == 1 for n in lab.starts.values()), (k, lab.starts)
        assert lab.violations == [], k


def test_unfenceable_host_blocks_its_instances_with_the_reason(nova: Topology,
                                                               inventory_url: InventoryURL) -> None:
    """No STONITH, no failover: when the power controller cannot confirm the host is off,
    nothing of it starts elsewhere and the result says why."""
    lab = FakeLab(nova)
    lab.hosts["cmp1"].fenceable = False
    crash_at(lab, "cmp1", 60)
    result = engine(lab, nova, inventory_url("inv"), fence_timeout_s=20).run(until=400)
    assert "cmp1" in result.blocked_hosts
    for name in ("web1", "db1", "app1"):
        out = result.instance(name)
        assert out.state is InstanceState.BLOCKED
        assert "cannot be fenced" in out.reason or "not confirmed" in out.reason
    assert not lab.starts
    assert not result.ok


def test_assume_fenced_recovers_an_unfenceable_host(
        nova: Topology, inventory_url: InventoryURL) -> None:
    """--assume-fenced: the operator pulled the plug; the engine proceeds and journals that it
    assumed, not confirmed, the fence."""
    lab = FakeLab(nova)
    lab.hosts["cmp1"].fenceable = False
    crash_at(lab, "cmp1", 60)
    result = engine(lab, nova, inventory_url("inv"), assume_fenced=True).run(until=400)
    assert steps(result.journal, JournalStep.FENCE_ASSUMED, "cmp1")
    assert not steps(result.journal, JournalStep.FENCE_CONFIRMED)
    assert result.instance("app1").state is InstanceState.RECOVERED


def test_management_partition_alone_is_not_a_dead_host(
        nova: Topology, inventory_url: InventoryURL) -> None:
    """A host that only lost its management link still has power and replication: no
    corroboration, so it is neither fenced nor evacuated."""
    lab = FakeLab(nova)

    def isolate() -> None:
        lab.hosts["cmp2"].mgmt = False

    lab.clock.at(60, isolate)
    result = engine(lab, nova, inventory_url("inv")).run(until=300)
    assert not steps(result.journal, JournalStep.HOST_DOWN)
    assert not lab.starts
    assert any(e.kind == "host-suspect" and e.host == "cmp2" for e in result.events)
    assert result.instance("web2").state is InstanceState.RUNNING


def test_fence_on_isolation_policy_fences_then_evacuates(
        nova: Topology, inventory_url: InventoryURL) -> None:
    """The other policy a drill may choose: an isolated host is fenced first, then evacuated."""
    lab = FakeLab(nova)
    lab.clock.at(60, lambda: setattr(lab.hosts["cmp2"], "mgmt", False))
    result = engine(lab, nova, inventory_url("inv"), fence_on_isolation=True).run(until=400)
    assert lab.hosts["cmp2"].power is PowerState.OFF
    assert result.instance("web2").state is InstanceState.RECOVERED
    assert lab.violations == []


def test_returning_host_mid_recovery_runs_none_of_its_evacuated(
        nova: Topology, inventory_url: InventoryURL) -> None:
    """Nova's init_host destroys guests evacuated away while the host was down; the engine
    confirms the cleanup before the host rejoins."""
    lab = FakeLab(nova, boot_s=5.0)
    crash_at(lab, "cmp1", 60)
    lab.clock.at(92, lambda: lab.power_on("cmp1"))  # during the first flows
    result = engine(lab, nova, inventory_url("inv"), parallel=1).run(until=600)
    assert lab.violations == []
    running = lab.running()
    assert all(len(h) == 1 for h in running.values()), running
    assert steps(result.journal, JournalStep.HOST_REJOINED, "cmp1")
    for name in ("web1", "db1", "app1"):
        assert result.instance(name).host_after is not None
    evacuated = {o.name for o in result.instances if o.state is InstanceState.RECOVERED}
    assert evacuated, "at least one instance had been evacuated before cmp1 returned"
    assert not evacuated & set(lab.hosts["cmp1"].guests)


def test_cascade_second_host_dies_during_recovery(
        nova: Topology, inventory_url: InventoryURL) -> None:
    """A second failure during recovery: flows aimed at the new victim are abandoned and
    re-planned; its own instances are evacuated too; nothing runs twice."""
    lab = FakeLab(nova)
    crash_at(lab, "cmp1", 60)
    crash_at(lab, "cmp3", 90)
    result = engine(lab, nova, inventory_url("inv"), parallel=4,
                    ram_allocation_ratio=4.0).run(until=900)
    assert lab.violations == []
    assert all(n == 1 for n in lab.starts.values()), lab.starts
    broken = [r for r in result.journal if r.step in ("flow-aborted", "flow-failed")]
    assert any("cmp3" in str(r.detail.get("reason")) for r in broken), "a flow aimed at cmp3"
    running = lab.running()
    for inst in nova.instances:
        out = result.instance(inst.name)
        if out.state is InstanceState.RECOVERED or out.state is InstanceState.RUNNING:
            assert running[inst.name] == ["cmp2"], (inst.name, running)
        else:  # anti-affinity forbids a second member of a group on cmp2
            assert out.state is InstanceState.UNRECOVERABLE and "anti-affinity" in out.reason
    assert {"cmp1", "cmp3"} <= set(result.failed_hosts)


def test_no_capacity_is_reported_not_skipped(inventory_url: InventoryURL) -> None:
    """An instance with nowhere to go is reported with the reason (never skipped silently)."""
    topo = load_topology(TOPOLOGIES / "mirrored-compute.yaml")
    lab = FakeLab(topo)
    crash_at(lab, "cmp1", 60)
    result = engine(lab, topo, inventory_url("inv"), cpu_allocation_ratio=1.0,
                    ram_allocation_ratio=1.0, recovery_method=RecoveryMethod.AUTO,
                    reserved_hosts=("cmp3",)).run(until=400)
    states = {o.name: o for o in result.instances}
    placed = [o for o in states.values() if o.state is InstanceState.RECOVERED]
    lost = [o for o in states.values() if o.state is InstanceState.UNRECOVERABLE]
    assert len(placed) == 1 and placed[0].host_after == "cmp2"  # cmp2 fits exactly one
    assert len(lost) == 1 and "not enough free capacity" in lost[0].reason


def test_third_node_attaches_remotely_to_the_surviving_replica(inventory_url: InventoryURL) -> None:
    """The seed's hard case: storage mirrored on cmp1/cmp2, recovery onto cmp3 with no copy:
    the result says the volume is attached remotely."""
    topo = load_topology(TOPOLOGIES / "mirrored-compute.yaml")
    lab = FakeLab(topo)
    crash_at(lab, "cmp1", 60)
    result = engine(lab, topo, inventory_url("inv")).run(until=400)
    modes = {o.host_after: o.attach_mode for o in result.instances}
    assert modes == {"cmp2": "local", "cmp3": "remote"}


def test_reserved_host_method_puts_everything_on_the_spare(inventory_url: InventoryURL) -> None:
    """Masakari's reserved_host recovery method: the spare takes every evacuated instance."""
    topo = load_topology(TOPOLOGIES / "mirrored-compute.yaml")
    lab = FakeLab(topo)
    crash_at(lab, "cmp1", 60)
    result = engine(lab, topo, inventory_url("inv"), reserved_hosts=("cmp3",),
                    recovery_method=RecoveryMethod.RESERVED_HOST).run(until=400)
    assert {o.host_after for o in result.instances} == {"cmp3"}


def test_maintenance_drain_moves_reboots_and_resumes(
        nova: Topology, inventory_url: InventoryURL) -> None:
    """Planned maintenance: movable guests move, the rest stop cleanly; after the reboot the
    stopped guests are resumed on the host (resume_guests_state_on_host_boot)."""
    lab = FakeLab(nova, boot_s=20.0)
    eng = engine(lab, nova, inventory_url("inv"), maintenance_move=False)
    result = eng.drain("cmp1", until=400)
    running = lab.running()
    for name in ("web1", "db1", "app1"):
        assert running[name] == ["cmp1"]
        assert result.instance(name).state is InstanceState.RESUMED
    assert steps(result.journal, JournalStep.SERVICE_ENABLED, "cmp1")
    assert lab.violations == []
    assert not steps(result.journal, JournalStep.HOST_DOWN)


def test_maintenance_drain_moves_guests_away(nova: Topology, inventory_url: InventoryURL) -> None:
    """Drain with targets available: each guest is stopped on the host before it starts on
    its target, so there is never a second copy."""
    lab = FakeLab(nova, boot_s=20.0)
    result = engine(lab, nova, inventory_url("inv")).drain("cmp1", until=400)
    for name in ("web1", "db1", "app1"):
        out = result.instance(name)
        assert out.state is InstanceState.RECOVERED and out.host_after != "cmp1"
    assert lab.violations == []
    stopped = {r.instance: r.seq for r in steps(result.journal, JournalStep.SOURCE_STOPPED)}
    for r in steps(result.journal, JournalStep.START_REQUESTED):
        assert stopped[r.instance] < r.seq


def test_masakari_profile_is_slower_by_its_documented_waits(nova: Topology,
                                                            inventory_url: InventoryURL) -> None:
    """The baseline waits Nova's service_down_time (60 s) and Masakari's 180 s after
    disabling the service; the stackdrill profile does neither."""
    times = {}
    for profile in ("stackdrill", "masakari"):
        lab = FakeLab(nova)
        crash_at(lab, "cmp1", 60)
        cfg = RecoveryConfig.for_profile(profile)
        eng = RecoveryEngine(nova, lab.drivers, lab.clock, inventory_url(profile),
                             cfg)
        result = eng.run(until=900)
        times[profile] = max(o.verified_at or 0 for o in result.instances)
        assert result.ok
    assert times["masakari"] - 60 > 240
    assert times["masakari"] - 60 >= 3 * (times["stackdrill"] - 60)
