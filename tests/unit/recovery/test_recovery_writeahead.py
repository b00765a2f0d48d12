"""The journal commits in groups while the engine runs; what keeps it a write-ahead log is
that a driver call which changes the lab reaches the lab only after every step before it
is committed. Checked from inside the lab's driver: at the moment the call arrives, a
separate connection already reads the step. A call that only looks commits nothing."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path

import pytest
from recovery_fakes import FakeCompute, FakeLab, InventoryURL
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from stackdrill.api import Drivers, GuestInfo
from stackdrill.recovery.db import open_inventory
from stackdrill.recovery.inventory import JournalRow
from stackdrill.recovery.journal import EngineKilled, Journal, JournalStep
from stackdrill.recovery.writeahead import write_ahead
from stackdrill.topology import load_topology

TOPOLOGY = Path(__file__).resolve().parents[3] / "lab" / "topologies" / "nova-drbd.yaml"


class Witnessing(FakeCompute):
    """The fake hypervisor, noting how many journal rows another connection reads at the
    moment each call arrives."""

    def __init__(self, lab: FakeLab, sessions: sessionmaker[Session]) -> None:
        super().__init__(lab)
        self.sessions = sessions
        self.seen: dict[str, int] = {}

    def rows(self) -> int:
        with self.sessions() as s:
            return int(s.scalar(select(func.count()).select_from(JournalRow)) or 0)

    def start(self, instance: str, host: str, volumes: dict[str, str]) -> Future[None]:
        self.seen["start"] = self.rows()
        return super().start(instance, host, volumes)

    def guests(self, host: str) -> Future[list[GuestInfo]]:
        self.seen["guests"] = self.rows()
        return super().guests(host)


def test_a_lab_changing_call_waits_for_the_steps_before_it_to_commit(
        inventory_url: InventoryURL) -> None:
    lab = FakeLab(load_topology(TOPOLOGY))
    sessions = open_inventory(inventory_url("inv"))
    journal = Journal(sessions, lambda: 1.0)
    compute = Witnessing(lab, sessions)
    drivers = write_ahead(Drivers(lab.drivers.power, compute, lab.drivers.storage,
                                  lab.drivers.network), journal.flush)
    with journal.deferred():
        journal.append(JournalStep.START_REQUESTED, instance="web1", attempt=1, target="cmp2")
        drivers.compute.guests("cmp2")  # only looks: the step may stay uncommitted
        assert compute.seen["guests"] == 0
        drivers.compute.start("web1", "cmp2", {})
        assert compute.seen["start"] == 1  # the request is durable before the start is sent
        journal.append(JournalStep.STARTED, instance="web1", attempt=1)
        assert compute.rows() == 1  # grouped: not committed yet
    assert compute.rows() == 2  # the group's end commits what is left


def test_a_kill_loses_only_what_no_lab_call_followed(inventory_url: InventoryURL) -> None:
    """The kill hook inside a group: the steps since the last lab-changing call die with
    the engine; those before it stay."""
    lab = FakeLab(load_topology(TOPOLOGY))
    url = inventory_url("inv")
    journal = Journal(open_inventory(url), lambda: 1.0, stop_after=3)
    drivers = write_ahead(lab.drivers, journal.flush)
    with pytest.raises(EngineKilled), journal.deferred():
        journal.append(JournalStep.START_REQUESTED, instance="web1", attempt=1, target="cmp2")
        drivers.compute.start("web1", "cmp2", {})
        journal.append(JournalStep.STARTED, instance="web1", attempt=1)
        journal.append(JournalStep.ATTACHED, instance="web1", attempt=1)
    again = Journal(open_inventory(url), lambda: 2.0)
    assert [r.step for r in again.records] == [JournalStep.START_REQUESTED.value]
