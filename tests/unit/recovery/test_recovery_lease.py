"""Two engines pointed at one inventory: only the lease holder acts; the other refuses (or
waits), and takes over once the holder stops or its lease expires. On SQLite and on
PostgreSQL (the `inventory_url` fixture)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from recovery_fakes import FakeLab, InventoryURL

from stackdrill.recovery import EngineKilled, InstanceState, RecoveryConfig, RecoveryEngine
from stackdrill.recovery.db import open_inventory
from stackdrill.recovery.lease import Lease, LeaseHeld, LeaseLost
from stackdrill.recovery.result import RecoveryEvent
from stackdrill.topology import Topology, load_topology

TOPOLOGIES = Path(__file__).resolve().parents[3] / "lab" / "topologies"


@pytest.fixture(scope="module")
def nova() -> Topology:
    return load_topology(TOPOLOGIES / "nova-drbd.yaml")


def test_a_second_engine_refuses_while_the_first_acts_then_takes_over(
        nova: Topology, inventory_url: InventoryURL) -> None:
    """A second engine pointed at A's inventory while A recovers (started from inside A's
    own event stream, so the overlap is certain) refuses, naming the holder, and writes
    nothing. Once A dies (killed mid-recovery), a new engine takes over and finishes the
    job; every victim is started exactly once."""
    lab = FakeLab(nova)
    lab.clock.at(60, lambda: lab.crash("cmp1"))
    url = inventory_url("shared")
    refusals: list[str] = []

    def on_event(event: RecoveryEvent) -> None:
        if event.kind == "fence-confirmed":  # A is mid-recovery and holds the lease
            with pytest.raises(LeaseHeld) as refused:
                RecoveryEngine(nova, lab.drivers, lab.clock, url).run(until=lab.clock.now())
            refusals.append(str(refused.value))

    a = RecoveryEngine(nova, lab.drivers, lab.clock, url, RecoveryConfig(stop_after_steps=12),
                       events=on_event)
    with pytest.raises(EngineKilled):
        a.run(until=600)
    assert len(refusals) == 1 and a.lease.holder in refusals[0], refusals
    assert len(a.journal.records) == 12  # the refused engine wrote no row of its own
    result = RecoveryEngine(nova, lab.drivers, lab.clock, url).run(until=600)
    victims = [i.name for i in nova.instances if i.host == "cmp1"]
    assert victims
    for name in victims:
        assert result.instance(name).state is InstanceState.RECOVERED
        assert lab.starts[name] == 1, lab.starts
    assert lab.violations == []


def test_an_engine_whose_view_went_stale_does_not_act_again(
        nova: Topology, inventory_url: InventoryURL) -> None:
    """Engine A ran and gave the lease back; B then acted on the same inventory. A, asked
    to run again, takes the lease but refuses: what it knows of the journal is old."""
    lab = FakeLab(nova)
    url = inventory_url("shared")
    a = RecoveryEngine(nova, lab.drivers, lab.clock, url)
    a.run(until=120)
    lab.clock.at(150, lambda: lab.crash("cmp1"))
    RecoveryEngine(nova, lab.drivers, lab.clock, url).run(until=600)
    with pytest.raises(LeaseLost, match="another engine acted"):
        a.run(until=900)


def test_a_dead_holders_lease_expires_and_a_waiting_engine_takes_it(
        inventory_url: InventoryURL) -> None:
    """A holder that stops renewing without giving the lease back (killed with SIGKILL):
    the other engine is refused until the lease's time runs out, then, waiting, gets it;
    the old holder, if it wakes, learns it lost the lease."""
    sessions = open_inventory(inventory_url("inv"))
    dead = Lease(sessions, ttl_s=1.0, holder="dead-engine")
    dead.acquire()
    other = Lease(sessions, ttl_s=1.0, holder="other-engine")
    with pytest.raises(LeaseHeld, match="dead-engine"):
        other.acquire(wait_s=0)
    started = time.monotonic()
    other.acquire(wait_s=5.0)
    assert 0.5 < time.monotonic() - started < 5.0
    with pytest.raises(LeaseLost):
        dead.renew()


def test_a_renewing_holder_keeps_its_lease_past_its_first_term(
        inventory_url: InventoryURL) -> None:
    sessions = open_inventory(inventory_url("inv"))
    holder = Lease(sessions, ttl_s=1.0, holder="live-engine")
    holder.acquire()
    time.sleep(0.5)
    holder.renew()
    time.sleep(0.7)  # past the first term: only the renewal keeps it
    assert not Lease(sessions, ttl_s=1.0, holder="other").try_acquire()
    holder.release()
    assert Lease(sessions, ttl_s=1.0, holder="other").try_acquire()


def test_of_two_engines_taking_the_lease_at_once_exactly_one_gets_it(
        inventory_url: InventoryURL) -> None:
    """The real race: two threads, each with its own connection, try at the same instant;
    the database lets exactly one win, every round."""
    url = inventory_url("inv")
    leases = [Lease(open_inventory(url), ttl_s=30.0, holder=f"engine-{i}") for i in range(2)]

    def take(lease: Lease, barrier: threading.Barrier, won: list[Lease]) -> None:
        barrier.wait()
        if lease.try_acquire():
            won.append(lease)

    for _round in range(15):
        barrier = threading.Barrier(2)
        won: list[Lease] = []
        threads = [threading.Thread(target=take, args=(lease, barrier, won)) for lease in leases]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert len(won) == 1, [lease.holder for lease in won]
        won[0].release()
