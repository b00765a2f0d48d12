"""The engine's write-ahead journal: every decision is a row, written with the DB change
it stands for, and durable before the engine acts on it in the lab.

An engine that dies after any row and is started again reads the journal back
and knows, per host and per instance flow, exactly how far it got. Host steps move
the host through `hoststate.TRANSITIONS`: a step that may not follow the host's
status raises `IllegalTransition` before anything is written, and reading back
replays the same table, so a restarted engine sees the statuses the live one had.

Group commit (`Journal.deferred`): while the engine runs, a step's row and DB change
are executed at once, in one open transaction, but committed only at the next point
where something outside that transaction could depend on them: before a driver call
that changes the lab (`writeahead`), before another session reads the inventory
(`Journal.sessions`), and before the engine waits on the lab's clock. A crash loses
only steps nothing in the lab has acted on, which the restarted engine takes again;
a flow's steps between two lab actions share one commit instead of one each (a
commit was most of the engine's CPU per recovered instance). The engine's own reads of
the inventory (`Journal.reading`) go inside the open transaction and commit nothing;
while it runs the journal keeps one connection.

The last step of each kind per host and per instance is indexed as records are read back
and written (`last_for_host`, `last_for_instance`): the scheduler and the monitor ask
those of every failed host and queued instance every tick, and a restarted engine
rebuilds the same index from the table.

The `stop_after` hook raises `EngineKilled` right after the N-th step, as if the
process died there: steps not committed yet are lost with it. That is how the tests
kill the engine "after each step".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from stackdrill.recovery.hoststate import HostStates
from stackdrill.recovery.inventory import JournalRow
from stackdrill.recovery.result import JournalRecord
from stackdrill.recovery.steps import FLOW_END, JournalStep

__all__ = ["FLOW_END", "EngineKilled", "Journal", "JournalDiverged", "JournalStep"]

log = logging.getLogger(__name__)
_INSERT = insert(cast(Table, JournalRow.__table__))


class EngineKilled(RuntimeError):
    """Raised by the kill hook: the engine stops as if its process died here."""


class JournalDiverged(RuntimeError):
    """Steps this journal had indexed were rolled back (an error inside a step of a
    group commit): its in-memory copy is ahead of the table, so it writes no more. A new
    engine reads the table afresh."""


class Journal:
    """Append-only; the in-memory copy mirrors the table so reads cost nothing.

    `hosts` is the host state machine the journal moves (the engine shares it with its
    state); by default a fresh one in which every host starts up."""

    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], float],
                 stop_after: int | None = None,
                 on_record: Callable[[JournalRecord], None] | None = None,
                 hosts: HostStates | None = None) -> None:
        self.hosts = hosts if hosts is not None else HostStates()
        self._sessions = sessions
        self._clock = clock
        self._stop_after = stop_after
        self._on_record = on_record
        self.written = 0
        self.commits = 0  # transactions committed (one per step outside `deferred`)
        self._session = sessions()
        self._deferring = False
        self._unwritten = 0  # steps executed in the open transaction, not committed yet
        self._writer: int | None = None  # the thread that opened that transaction
        self._owner = threading.get_ident()  # the engine's, until a step says otherwise
        self._diverged: str | None = None
        self._in_step = False
        with sessions() as session:
            rows = session.scalars(select(JournalRow).order_by(JournalRow.seq)).all()
            self.records: list[JournalRecord] = []
            self._by_instance: dict[str, list[JournalRecord]] = {}
            self._by_host: dict[str, list[JournalRecord]] = {}
            # (instance or host, step) -> its last record: what the scheduler and the
            # monitor ask of every host and queued instance every tick
            self._last_of_instance: dict[tuple[str, str], JournalRecord] = {}
            self._last_of_host: dict[tuple[str, str], JournalRecord] = {}
            self.host_records = 0  # records of a host's own (not an instance's) steps
            for row in rows:
                self._index(_record(row))

    def _index(self, record: JournalRecord) -> None:
        self.records.append(record)
        if record.instance is not None:
            self._by_instance.setdefault(record.instance, []).append(record)
            self._last_of_instance[record.instance, record.step] = record
        elif record.host is not None:
            self._by_host.setdefault(record.host, []).append(record)
            self._last_of_host[record.host, record.step] = record
            self.host_records += 1
            self.hosts.apply(record.host, record.step)

    @contextmanager
    def step(self, step: JournalStep, *, host: str | None = None, instance: str | None = None,
             attempt: int = 0, **detail: Any) -> Iterator[Session]:
        """Yield a session; its changes and the journal row commit together, or not at all.

        A host step is checked against the host's status first: an illegal one raises
        `IllegalTransition` before the caller changes anything. Outside `deferred` the
        step commits before this returns; inside, with the steps around it (see module)."""
        if self._diverged is not None:
            raise JournalDiverged(self._diverged)
        if instance is None and host is not None:
            self.hosts.check(host, step)
        session = self._session  # one long-lived session: no connection between commits
        if not session.in_transaction():
            session.begin()
            self._writer = threading.get_ident()
        self._in_step = True
        try:
            yield session
            self._in_step = False
            session.flush()  # the step's ORM changes go before its row and the next step
            now = self._clock()
            # A prebuilt Core insert: the ORM unit of work cost ~5x more per step, and the
            # engine writes ~10 steps per instance (see bench/recovery_parallel.py).
            result = session.connection().execute(_INSERT, {
                "time": now, "step": step.value, "host": host, "instance": instance,
                "attempt": attempt, "detail": detail})
        except BaseException:
            self._in_step = False
            self._rollback("an error inside a journal step")
            raise
        key = result.inserted_primary_key
        assert key is not None
        record = JournalRecord(seq=int(key[0]), time=now, step=step.value, host=host,
                               instance=instance, attempt=attempt, detail=dict(detail))
        self._unwritten += 1
        if not self._deferring:
            self.flush()
        self._index(record)
        self.written += 1
        log.debug("journal %d %s host=%s instance=%s %s", record.seq, step, host, instance, detail)
        if self._on_record is not None:
            self._on_record(record)
        if self._stop_after is not None and self.written >= self._stop_after:
            self._rollback("the kill hook")  # what the dead process had not committed
            raise EngineKilled(f"engine killed after journal step {self.written} ({step})")

    def append(self, step: JournalStep, *, host: str | None = None, instance: str | None = None,
               attempt: int = 0, **detail: Any) -> None:
        with self.step(step, host=host, instance=instance, attempt=attempt, **detail):
            pass

    # ------------------------------------------------------------ group commit

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Group commit while the engine runs (see module): steps commit at `flush`, and
        all that is left when the block ends; an error discards what was not committed,
        as the crash it stands for would."""
        self._deferring = True
        outer = self._session
        held = self._hold_connection()
        try:
            yield
            self.flush()
        except BaseException:
            self._rollback("the engine stopped with an error")
            raise
        finally:
            self._deferring = False
            if held is not None:
                self._session.close()
                held.close()
                self._session = outer

    def _hold_connection(self) -> Connection | None:
        """While the engine runs, the journal's session keeps one connection: checking
        it out of the pool and resetting it at every commit cost ~35 us beside the ~85 us
        of the commit itself (SQLite). Given back when the run ends: an engine at rest
        holds none."""
        bind = self._sessions.kw.get("bind")
        if not isinstance(bind, Engine):
            return None
        held = bind.connect()
        self._session = self._sessions(bind=held)
        return held

    def flush(self) -> None:
        """Commit the steps written since the last commit (nothing to do: no cost)."""
        if self._in_step:  # a lab call or a reader inside a step's body: a bug
            raise RuntimeError("the journal cannot commit inside a step: its row is not "
                               "written yet, the step would be half durable")
        if self._unwritten:
            try:
                self._session.commit()
            except BaseException:
                self._rollback("their commit failed")
                raise
            self._unwritten = 0
            self.commits += 1

    def sessions(self) -> Session:
        """A new session on the inventory that sees every step written so far: on the
        thread that writes steps, they are committed first. (Another thread, a hypervisor
        asking at boot, sees the last commit: steps after it have not acted in the lab.)"""
        if self._unwritten and threading.get_ident() == self._writer:
            self.flush()
        return self._sessions()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session to read the inventory with, for the thread that writes steps: the
        journal's own, so it sees every step written, committed or not, and commits
        nothing (a new session costs a commit, a connection and a session: the placer
        reads on most ticks that start flows). Outside a transaction the read gets its
        own, ended at once: nothing stays open while the engine waits. Another thread
        gets a new session, as from `sessions`."""
        if threading.get_ident() != (self._writer or self._owner):
            with self.sessions() as other:
                yield other
            return
        session = self._session
        if session.in_transaction():
            yield session
            return
        session.begin()
        try:
            yield session
        finally:
            session.rollback()

    def _rollback(self, why: str) -> None:
        if self._session.in_transaction():
            self._session.rollback()
        if self._unwritten:  # rows already indexed (and applied to the engine's state)
            self._diverged = (f"{self._unwritten} journal steps were rolled back ({why}); "
                              "start a new engine to read the journal afresh")
            self._unwritten = 0

    # ------------------------------------------------------------ reading back

    def behind(self) -> bool:
        """True when the table holds rows this journal has not read (another engine's)."""
        with self._sessions() as session:
            last = session.scalar(select(func.max(JournalRow.seq)))
        mine = self.records[-1].seq if self.records else None
        return last != mine

    def for_host(self, host: str) -> list[JournalRecord]:
        return self._by_host.get(host, [])

    def for_instance(self, instance: str) -> list[JournalRecord]:
        return self._by_instance.get(instance, [])

    def last_for_host(self, host: str, *steps: JournalStep) -> JournalRecord | None:
        """The host's latest record of any of `steps` (the last of `for_host` that is one
        of them, without scanning: indexed as records are read back or written)."""
        return _latest(self._last_of_host, host, steps)

    def last_for_instance(self, instance: str, *steps: JournalStep) -> JournalRecord | None:
        """The instance's latest record of any of `steps` (indexed like `last_for_host`)."""
        return _latest(self._last_of_instance, instance, steps)

    def attempt_steps(self, instance: str, attempt: int) -> dict[str, JournalRecord]:
        return {r.step: r for r in self.for_instance(instance) if r.attempt == attempt}


def _record(row: JournalRow) -> JournalRecord:
    return JournalRecord(seq=row.seq, time=row.time, step=row.step, host=row.host,
                         instance=row.instance, attempt=row.attempt, detail=dict(row.detail or {}))


def _latest(index: dict[tuple[str, str], JournalRecord], key: str,
            steps: tuple[JournalStep, ...]) -> JournalRecord | None:
    found: JournalRecord | None = None
    for step in steps:
        record = index.get((key, step))
        if record is not None and (found is None or record.seq > found.seq):
            found = record
    return found
