"""The host state machine is a table the journal enforces: a host step that may not follow
the host's status is refused before anything is written, a journal read back by a
restarted engine yields the statuses the live one had, and every host step the shipped
drills journal is a transition of the table."""

from __future__ import annotations

from pathlib import Path

import pytest
from recovery_fakes import InventoryURL
from sqlalchemy import insert, select

from stackdrill.drill import load_drill
from stackdrill.drill.runner import execute
from stackdrill.recovery.db import open_inventory
from stackdrill.recovery.hoststate import (
    TRANSITIONS,
    HostStates,
    HostStatus,
    IllegalTransition,
    status_of,
)
from stackdrill.recovery.inventory import JournalRow
from stackdrill.recovery.journal import Journal, JournalStep

DRILLS = sorted((Path(__file__).resolve().parents[3] / "lab" / "drills").glob("*.yaml"))
S = JournalStep


def journal(inventory_url: InventoryURL) -> Journal:
    return Journal(open_inventory(inventory_url("inv")), lambda: 1.0,
                   hosts=HostStates(["cmp1", "cmp2"]))


def test_an_illegal_host_step_is_refused_before_it_is_written(inventory_url: InventoryURL) -> None:
    """Fencing confirmed for a host nobody declared down, or its evacuation before it was
    fenced, is an engine bug: the journal raises at once and writes no row."""
    j = journal(inventory_url)
    with pytest.raises(IllegalTransition, match="fence-confirmed may not follow host cmp1"):
        j.append(S.FENCE_CONFIRMED, host="cmp1")
    j.append(S.HOST_DOWN, host="cmp1", reason="test")
    with pytest.raises(IllegalTransition, match="being down"):
        j.append(S.SERVICE_FORCED_DOWN, host="cmp1")
    with pytest.raises(IllegalTransition), j.step(S.SERVICE_ENABLED, host="cmp2"):
        pytest.fail("the step's body must not run")
    assert [r.step for r in j.records] == ["host-down"]
    assert j.hosts.status == {"cmp1": HostStatus.DOWN, "cmp2": HostStatus.UP}
    with open_inventory(inventory_url("inv"))() as s:
        assert s.scalars(select(JournalRow.step)).all() == ["host-down"]


def test_instance_steps_are_not_host_transitions(inventory_url: InventoryURL) -> None:
    """A flow's steps name a host too (where the instance runs) but move no host."""
    j = journal(inventory_url)
    j.append(S.GUEST_STOPPED, instance="web1", host="cmp1", at="cmp1")
    assert j.hosts.status["cmp1"] is HostStatus.UP


def test_a_restarted_engine_reads_back_the_statuses_the_live_one_had(
        inventory_url: InventoryURL) -> None:
    """Down, fenced, evacuated, returned and refused, fenced again: a journal opened anew
    replays the same table to the same statuses."""
    live = journal(inventory_url)
    for step in (S.HOST_DOWN, S.FENCE_REQUESTED, S.FENCE_CONFIRMED, S.SERVICE_FORCED_DOWN,
                 S.PLANNED, S.HOST_RETURNED, S.REJOIN_REFUSED, S.FENCE_REQUESTED):
        live.append(step, host="cmp1")
    live.append(S.SERVICE_DISABLED, host="cmp2")
    again = journal(inventory_url)
    assert again.hosts.status == live.hosts.status == {"cmp1": HostStatus.FENCING,
                                                       "cmp2": HostStatus.MAINTENANCE}
    assert status_of(again.for_host("cmp1")) is HostStatus.FENCING


def test_a_journal_with_an_illegal_sequence_is_not_read_back(inventory_url: InventoryURL) -> None:
    """A row written behind the journal's back (a start on an up host's fence) is refused
    when read back, rather than believed into a state the engine never was in."""
    sessions = open_inventory(inventory_url("inv"))
    with sessions() as s, s.begin():
        s.execute(insert(JournalRow).values(time=1.0, step=S.FENCE_CONFIRMED.value, host="cmp1",
                                            instance=None, attempt=0, detail={}))
    with pytest.raises(IllegalTransition):
        Journal(sessions, lambda: 2.0)


@pytest.mark.parametrize("path", DRILLS, ids=[p.stem for p in DRILLS])
def test_every_host_step_of_the_shipped_drills_is_a_transition_of_the_table(
        path: Path) -> None:
    finished = execute(load_drill(path), backend="sim")
    for result in finished.recoveries:
        by_host: dict[str, HostStatus] = {}
        for record in result.journal:
            if record.instance is not None or record.host is None:
                continue
            status = by_host.get(record.host, HostStatus.UP)
            assert record.step in TRANSITIONS[status], (record.host, status, record.step)
            by_host[record.host] = TRANSITIONS[status][record.step]
