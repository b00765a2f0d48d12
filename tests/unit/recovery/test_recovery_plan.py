"""The planner: Nova scheduler filters (capacity with allocation ratios, anti-affinity),
replica access, local-replica and RAM weighers, Masakari recovery methods. Deterministic."""

from __future__ import annotations

from stackdrill.api import AttachMode, Replica
from stackdrill.recovery.config import RecoveryMethod
from stackdrill.recovery.plan import Candidate, Need, place


def hosts(**free_ram: int) -> list[Candidate]:
    return [Candidate(h, 16.0, float(ram), 0, 0) for h, ram in free_ram.items()]


def replicas(*live: str, dead: str = "cmp1") -> dict[str, list[Replica]]:
    reps = [Replica(h, "Secondary", "UpToDate", True) for h in live]
    return {"vol": [Replica(dead, "Primary", "DUnknown", False), *reps]}


def test_prefers_the_host_with_a_local_replica() -> None:
    """A target holding an up-to-date copy attaches locally; others would go over iSCSI."""
    plan = place([Need("a", "cmp1", 1, 1024, ("vol",))], hosts(cmp2=4096, cmp3=65536),
                 replicas("cmp2"), failed={"cmp1"})
    (p,) = plan.placements
    assert p.target == "cmp2" and p.attach == {"vol": AttachMode.LOCAL}


def test_third_node_gets_a_remote_attachment_served_by_the_survivor() -> None:
    """The seed's hard case: the replica host is full, the third node attaches remotely."""
    plan = place([Need("a", "cmp1", 1, 2048, ("vol",)), Need("b", "cmp1", 1, 2048, ("vol",))],
                 hosts(cmp2=2048, cmp3=16384), replicas("cmp2"), failed={"cmp1"})
    by = {p.instance: p for p in plan.placements}
    assert by["a"].target == "cmp2" and by["a"].mode == "local"
    assert by["b"].target == "cmp3" and by["b"].mode == "remote"
    assert by["b"].served_by == {"vol": "cmp2"}


def test_no_usable_replica_is_reported_with_the_replica_states() -> None:
    """A volume whose only survivor is Outdated cannot be used (it would lose writes)."""
    reps = {"vol": [Replica("cmp1", "Primary", "DUnknown", False),
                    Replica("cmp2", "Secondary", "Outdated", True)]}
    plan = place([Need("a", "cmp1", 1, 1024, ("vol",))], hosts(cmp2=4096), reps, {"cmp1"})
    assert not plan.placements
    (u,) = plan.unplaceable
    assert "cmp2: Outdated" in u.reason and "failed host" in u.reason


def test_anti_affinity_and_capacity_reasons() -> None:
    """Nova's ServerGroupAntiAffinityFilter and RAM filter, named in the reason."""
    cands = hosts(cmp2=8192, cmp3=1024)
    cands[0].groups.add("web")
    plan = place([Need("w", "cmp1", 1, 2048, (), "web")], cands, {}, {"cmp1"})
    (u,) = plan.unplaceable
    assert "anti-affinity group web: cmp2" in u.reason
    assert "not enough free capacity: cmp3" in u.reason


def test_spreads_by_free_ram_and_is_deterministic() -> None:
    """RAM weigher: most free RAM first; same input, same plan."""
    needs = [Need(f"i{n}", "cmp1", 1, 1024) for n in range(6)]
    first = place(needs, hosts(cmp2=4096, cmp3=4096, cmp4=4096), {}, {"cmp1"})
    again = place(list(reversed(needs)), hosts(cmp2=4096, cmp3=4096, cmp4=4096), {}, {"cmp1"})
    assert first == again
    counts: dict[str, int] = {}
    for p in first.placements:
        counts[p.target] = counts.get(p.target, 0) + 1
    assert counts == {"cmp2": 2, "cmp3": 2, "cmp4": 2}


def test_recovery_methods_choose_spares_as_masakari_documents() -> None:
    """auto never uses a spare; reserved_host only spares; auto_priority falls back to one."""
    def cands() -> list[Candidate]:
        return [Candidate("cmp2", 16.0, 2048.0, 0, 0),
                Candidate("spare", 16.0, 65536.0, 0, 0, reserved=True)]

    needs = [Need("a", "cmp1", 1, 2048), Need("b", "cmp1", 1, 2048)]
    auto = place(needs, cands(), {}, {"cmp1"}, RecoveryMethod.AUTO)
    assert [p.target for p in auto.placements] == ["cmp2"] and len(auto.unplaceable) == 1
    rh = place(needs, cands(), {}, {"cmp1"}, RecoveryMethod.RESERVED_HOST)
    assert {p.target for p in rh.placements} == {"spare"}
    ap = place(needs, cands(), {}, {"cmp1"}, RecoveryMethod.AUTO_PRIORITY)
    assert sorted(p.target for p in ap.placements) == ["cmp2", "spare"]


def test_a_host_without_a_free_flow_slot_is_passed_over_and_none_free_means_wait() -> None:
    """Given each host's free flow slots: the busy host (most free RAM, so it would win)
    is skipped while another fits; once every fitting host is busy the rest wait for a
    later round, and are not declared unplaceable."""
    needs = [Need(f"i{n}", "cmp1", 1, 1024) for n in range(4)]
    plan = place(needs, hosts(cmp2=65536, cmp3=8192, cmp4=8192), {}, {"cmp1"},
                 slots={"cmp2": 0, "cmp3": 1, "cmp4": 1})
    assert sorted(p.target for p in plan.placements) == ["cmp3", "cmp4"]
    assert plan.waiting == ("i2", "i3") and plan.unplaceable == ()
    unlimited = place(needs, hosts(cmp2=65536, cmp3=8192, cmp4=8192), {}, {"cmp1"})
    assert {p.target for p in unlimited.placements} == {"cmp2"} and unlimited.waiting == ()
