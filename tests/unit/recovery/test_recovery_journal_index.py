"""Issue 17, engine CPU: what the engine asks of the journal and the inventory every tick
is answered from memory or on the journal's own session, never from a copy that could go
stale. The journal indexes each host's and instance's last step as it reads the table
back and as it writes (a resumed engine must see what the killed one saw); the placer
reads the inventory inside the journal's open transaction (it must see the steps not
committed yet, and cost no commit); while the engine runs, the journal keeps one
connection instead of taking one from the pool per commit. On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recovery_fakes import InventoryURL
from sqlalchemy import event

from stackdrill.recovery import sql
from stackdrill.recovery.db import open_inventory, seed_inventory
from stackdrill.recovery.journal import Journal, JournalStep
from stackdrill.recovery.result import JournalRecord
from stackdrill.topology import load_topology

TOPOLOGY = Path(__file__).resolve().parents[3] / "lab" / "topologies" / "nova-drbd.yaml"
S = JournalStep


def scanned(records: list[JournalRecord], *steps: JournalStep) -> JournalRecord | None:
    """The last of `records` that is one of `steps`: what the index must answer."""
    return next((r for r in reversed(records) if r.step in steps), None)


def incident(journal: Journal, host: str) -> list[int]:
    """The host's and web1's last steps, as sequence numbers (0: none)."""
    asked = [journal.last_for_host(host, S.HOST_DOWN, S.SERVICE_DISABLED),
             journal.last_for_host(host, S.PLANNED),
             journal.last_for_host(host, S.FENCE_CONFIRMED, S.FENCE_ASSUMED),
             journal.last_for_instance("web1", S.FLOW_ABORTED),
             journal.last_for_instance("web1", S.DONE, S.UNRECOVERABLE)]
    return [r.seq if r is not None else 0 for r in asked]


def fail_and_return(journal: Journal, host: str) -> None:
    """One incident of `host`, from its detection to its rejoining, and web1 moved twice."""
    for step in (S.HOST_DOWN, S.FENCE_REQUESTED, S.FENCE_CONFIRMED, S.SERVICE_FORCED_DOWN,
                 S.PLANNED):
        journal.append(step, host=host)
    journal.append(S.FLOW_ABORTED, instance="web1", attempt=1, host_after=host,
                   vm_state="active")
    journal.append(S.DONE, instance="web1", attempt=2, at="cmp2")
    for step in (S.HOST_RETURNED, S.HOST_REJOINED):
        journal.append(step, host=host)


def test_a_resumed_journal_indexes_the_same_last_steps(inventory_url: InventoryURL) -> None:
    """Two incidents of cmp1 written by one engine; a new engine reading the table back
    answers every question about the last steps as the writer did, and as scanning the
    records does; a step written after that (a third failure) is seen at once."""
    url = inventory_url("inv")
    writer = Journal(open_inventory(url), lambda: 1.0)
    fail_and_return(writer, "cmp1")
    fail_and_return(writer, "cmp1")
    resumed = Journal(open_inventory(url), lambda: 2.0)

    records = resumed.for_host("cmp1")
    assert incident(resumed, "cmp1") == incident(writer, "cmp1")
    down = resumed.last_for_host("cmp1", S.HOST_DOWN, S.SERVICE_DISABLED)
    assert down == scanned(records, S.HOST_DOWN, S.SERVICE_DISABLED)
    assert down is not None and down.seq > records[0].seq  # the second incident, not the first
    assert resumed.last_for_instance("web1", S.DONE) == scanned(
        resumed.for_instance("web1"), S.DONE)

    resumed.append(S.HOST_DOWN, host="cmp1")  # the host changes state after the read-back
    again = resumed.last_for_host("cmp1", S.HOST_DOWN, S.SERVICE_DISABLED)
    planned = resumed.last_for_host("cmp1", S.PLANNED)
    assert again is not None and planned is not None and again.seq > planned.seq
    assert resumed.last_for_host("cmp2", S.HOST_DOWN) is None


def test_the_placer_reads_uncommitted_steps_without_committing(
        inventory_url: InventoryURL) -> None:
    """Inside a group commit, a step claims capacity on cmp2; reading the inventory on the
    journal's session sees the claim (a placement must not put a second instance into the
    same room) and commits nothing; a reader on another connection does not see it yet."""
    topology = load_topology(TOPOLOGY)
    sessions = open_inventory(inventory_url("inv"))
    with sessions() as s, s.begin():
        seed_inventory(s, topology, 16.0, 1.5, ())
    journal = Journal(sessions, lambda: 1.0)

    def used(nodes: list[Any]) -> int:
        return next(int(n.vcpus_used) for n in nodes if n.host == "cmp2")

    with sessions() as before:
        seeded = used(list(sql.compute_nodes(before)))
    with journal.deferred():
        with journal.step(S.RESERVED, instance="web1", attempt=1, target="cmp2") as s:
            sql.usage(s, "cmp2", 3, 1024)
        with journal.reading() as r:
            assert used(list(sql.compute_nodes(r))) == seeded + 3
        with sessions() as other:
            assert used(list(sql.compute_nodes(other))) == seeded
        assert journal.commits == 0
    assert journal.commits == 1
    with journal.reading() as r:  # nothing pending: a read of its own, ended at once
        assert used(list(sql.compute_nodes(r))) == seeded + 3
    assert journal.commits == 1


def test_a_running_journal_keeps_one_connection(inventory_url: InventoryURL) -> None:
    """Ten steps, each committed before a lab call would follow: one connection taken
    from the pool for the group, not one per commit (each checkout cost about as much as
    a third of a commit)."""
    sessions = open_inventory(inventory_url("inv"))
    journal = Journal(sessions, lambda: 1.0)
    checkouts: list[int] = []
    event.listen(sessions.kw["bind"], "checkout", lambda *_: checkouts.append(1))
    with journal.deferred():
        for attempt in range(10):
            journal.append(S.START_REQUESTED, instance="web1", attempt=attempt, target="cmp2")
            journal.flush()
    assert journal.commits == 10
    assert len(checkouts) == 1
    fresh = Journal(sessions, lambda: 2.0)  # and every step is in the table
    assert [r.attempt for r in fresh.records] == list(range(10))
