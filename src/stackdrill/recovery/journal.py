"""The engine's write-ahead journal: every decision is a row, committed with the DB change
it stands for, before the engine acts on it.

An engine that dies after any row and is started again reads the journal back
and knows, per host and per instance flow, exactly how far it got. Host steps move
the host through `hoststate.TRANSITIONS`: a step that may not follow the host's
status raises `IllegalTransition` before anything is written, and reading back
replays the same table, so a restarted engine sees the statuses the live one had.
The `stop_after` hook raises `EngineKilled` right after the N-th commit, which is how
the tests kill the engine "after each step".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from stackdrill.recovery.hoststate import HostStates
from stackdrill.recovery.inventory import JournalRow
from stackdrill.recovery.result import JournalRecord
from stackdrill.recovery.steps import FLOW_END, JournalStep

__all__ = ["FLOW_END", "EngineKilled", "Journal", "JournalStep"]

log = logging.getLogger(__name__)
_INSERT = insert(cast(Table, JournalRow.__table__))


class EngineKilled(RuntimeError):
    """Raised by the kill hook: the engine stops as if its process died here."""


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
        self._session = sessions()
        with sessions() as session:
            rows = session.scalars(select(JournalRow).order_by(JournalRow.seq)).all()
            self.records: list[JournalRecord] = []
            self._by_instance: dict[str, list[JournalRecord]] = {}
            self._by_host: dict[str, list[JournalRecord]] = {}
            for row in rows:
                self._index(_record(row))

    def _index(self, record: JournalRecord) -> None:
        self.records.append(record)
        if record.instance is not None:
            self._by_instance.setdefault(record.instance, []).append(record)
        elif record.host is not None:
            self._by_host.setdefault(record.host, []).append(record)
            self.hosts.apply(record.host, record.step)

    @contextmanager
    def step(self, step: JournalStep, *, host: str | None = None, instance: str | None = None,
             attempt: int = 0, **detail: Any) -> Iterator[Session]:
        """Yield a session; its changes and the journal row commit together, or not at all.

        A host step is checked against the host's status first: an illegal one raises
        `IllegalTransition` before the caller changes anything."""
        if instance is None and host is not None:
            self.hosts.check(host, step)
        session = self._session
        with session.begin():  # one long-lived session: it holds no connection between steps
            yield session
            now = self._clock()
            # A prebuilt Core insert: the ORM unit of work cost ~5x more per step, and the
            # engine writes ~10 steps per instance (see bench/recovery_parallel.py).
            result = session.connection().execute(_INSERT, {
                "time": now, "step": step.value, "host": host, "instance": instance,
                "attempt": attempt, "detail": detail})
            key = result.inserted_primary_key
            assert key is not None
            record = JournalRecord(seq=int(key[0]), time=now, step=step.value, host=host,
                                   instance=instance, attempt=attempt, detail=dict(detail))
        self._index(record)
        self.written += 1
        log.debug("journal %d %s host=%s instance=%s %s", record.seq, step, host, instance, detail)
        if self._on_record is not None:
            self._on_record(record)
        if self._stop_after is not None and self.written >= self._stop_after:
            raise EngineKilled(f"engine killed after journal step {self.written} ({step})")

    def append(self, step: JournalStep, *, host: str | None = None, instance: str | None = None,
               attempt: int = 0, **detail: Any) -> None:
        with self.step(step, host=host, instance=instance, attempt=attempt, **detail):
            pass

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

    def attempt_steps(self, instance: str, attempt: int) -> dict[str, JournalRecord]:
        return {r.step: r for r in self.for_instance(instance) if r.attempt == attempt}


def _record(row: JournalRow) -> JournalRecord:
    return JournalRecord(seq=row.seq, time=row.time, step=row.step, host=row.host,
                         instance=row.instance, attempt=row.attempt, detail=dict(row.detail or {}))
