"""Where a sweep keeps its verdicts: one row per (code version, target, parameters, seed)
in any SQLAlchemy database (a SQLite file by default, like the inventory).

Each result is committed as it arrives, so a sweep stopped anywhere (Ctrl-C, a lost
worker, a killed client) keeps everything it finished and a second run skips those seeds.
The unique key makes a seed stored twice — two sweeps over one range — a no-op, not a
duplicate. The table is created on first use (one table, no migrations yet).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    make_url,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from stackdrill.errors import InfrastructureError, InputError, Problem
from stackdrill.fuzz.sweep import SeedResult, Verdict

DEFAULT_URL = "sqlite:///stackdrill-fuzz.sqlite"  # in the current directory


class Base(DeclarativeBase):
    pass


class StoredResult(Base):
    __tablename__ = "fuzz_results"
    __table_args__ = (UniqueConstraint("commit", "target", "parameters", "seed"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    commit: Mapped[str] = mapped_column(String(96), index=True)  # CodeVersion.key
    dirty: Mapped[bool] = mapped_column(Boolean)
    target: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[str] = mapped_column(String(256))
    seed: Mapped[int] = mapped_column(Integer)
    verdict: Mapped[str] = mapped_column(String(8))
    topology: Mapped[str] = mapped_column(String(64))
    failed: Mapped[str] = mapped_column(Text)  # JSON list of check names
    details: Mapped[str] = mapped_column(Text)  # JSON {check: detail} of the failed ones
    trace_sha256: Mapped[str] = mapped_column(String(64))
    duration_s: Mapped[float] = mapped_column(Float)
    worker: Mapped[str] = mapped_column(String(128))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    def to_result(self) -> SeedResult:
        return SeedResult(seed=self.seed, verdict=Verdict(self.verdict), topology=self.topology,
                          failed=tuple(json.loads(self.failed)),
                          details=json.loads(self.details), trace_sha256=self.trace_sha256,
                          version=self.commit, duration_s=self.duration_s, worker=self.worker)


def _sqlite_wal(dbapi_connection: object, _record: object) -> None:
    """WAL and normal sync: a commit per seed costs a write, not an fsync of the file."""
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def shown(url: str) -> str:
    """The URL as printed (header, resume line): a password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def open_engine(url: str) -> Engine:
    try:
        engine = create_engine(url)
    except (ArgumentError, ImportError, ValueError) as exc:
        raise InputError("command line", [Problem("--results", f"{shown(url)!r}: {exc}")]) \
            from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_wal)
    with refused_as_infrastructure(url):
        Base.metadata.create_all(engine)
    return engine


@contextmanager
def refused_as_infrastructure(url: str) -> Iterator[None]:
    """A results database that cannot be reached or refuses (a user who may not create
    or read its table): the sweep says nothing about any seed, so exit 3, not exit 1
    (which means a seed failed), in one line and without a password."""
    try:
        yield
    except DBAPIError as exc:
        said = str(exc.orig).split("\nLINE ")[0]  # (not the statement it quotes)
        why = " ".join(said.split())  # one line (libpq's messages have several)
        raise InfrastructureError(f"results database {shown(url)}: {why}") from None


class ResultStore:
    """The verdicts of one code version, target and parameter set."""

    def __init__(self, url: str, version: str, *, dirty: bool = False,
                 target: str = "random-drill", parameters: str = '{"backend": "sim"}') -> None:
        self.url = url
        self.engine = open_engine(url)
        self.version, self.dirty = version, dirty
        self.target, self.parameters = target, parameters

    def _mine(self, start: int, stop: int):  # type: ignore[no-untyped-def]  # a Select
        return select(StoredResult).where(
            StoredResult.commit == self.version, StoredResult.target == self.target,
            StoredResult.parameters == self.parameters,
            StoredResult.seed >= start, StoredResult.seed < stop)

    def stored_seeds(self, start: int, stop: int) -> set[int]:
        query = self._mine(start, stop).with_only_columns(StoredResult.seed)
        with refused_as_infrastructure(self.url), Session(self.engine) as session:
            return set(session.scalars(query))

    def results(self, start: int, stop: int) -> Iterator[SeedResult]:
        with refused_as_infrastructure(self.url), Session(self.engine) as session:
            for row in session.scalars(self._mine(start, stop).order_by(StoredResult.seed)):
                yield row.to_result()

    def add(self, result: SeedResult) -> bool:
        """Store and commit one result; False when that seed was already stored."""
        row = StoredResult(
            commit=self.version, dirty=self.dirty, target=self.target,
            parameters=self.parameters, seed=result.seed, verdict=result.verdict.value,
            topology=result.topology, failed=json.dumps(list(result.failed)),
            details=json.dumps(result.details, sort_keys=True),
            trace_sha256=result.trace_sha256, duration_s=result.duration_s,
            worker=result.worker[:128], created=datetime.now(UTC))
        with Session(self.engine) as session:
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                return False
        return True
