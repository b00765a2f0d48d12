"""Where the inventory lives, decided in one place: `--inventory URL`, else the
`STACKDRILL_INVENTORY_URL` environment variable, else a SQLite file per run.

A run never shares rows with another run. On PostgreSQL each run gets its own schema
(`sd_<purpose>_<random>`), created when the run starts and dropped with its tables when
it ends; the run's URL carries `search_path`, so the engine, Alembic and anyone else
handed that URL see only that schema. A schema, not a database, because creating one
needs no CREATE DATABASE right and is cheap (milliseconds); the user's URL names the
database they gave stackdrill. A named SQLite file holds one run: a run refuses a file
that exists (another run's, or one left by a crash) and removes it at its end.

Other callers (the fuzz store) call `inventory_url` and `run_namespace` the same way.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import URL, Connection, create_engine, make_url, text
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import NullPool

from stackdrill.errors import InfrastructureError, StackdrillError

log = logging.getLogger(__name__)
ENV = "STACKDRILL_INVENTORY_URL"
DIALECTS = ("sqlite", "postgresql")
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


class InventoryURLError(StackdrillError):
    """The inventory URL is not one stackdrill can use (bad input: exit 2)."""

    exit_code = 2


class InventoryUnreachable(InfrastructureError):
    """The inventory's server did not answer (infrastructure: exit 3)."""


class InventoryLost(InfrastructureError):
    """The inventory's database went away while the engine ran (a server restarted or
    failed over, its connections cut): the recovery under test did not fail, it was cut
    off; exit 3, and a new engine resumes from the journal's committed steps."""


class InventoryRefused(InfrastructureError):
    """The inventory's server answered but refused what a run needs of it, e.g. creating
    the run's schema (infrastructure: exit 3; the recovery under test was never run)."""


def masked(raw: str | URL) -> str:
    """The URL as it may be shown: any password replaced by ***."""
    if isinstance(raw, URL):
        return raw.render_as_string(hide_password=True)
    return _PASSWORD.sub(r"\1***@", raw)


@dataclass(frozen=True)
class InventoryTarget:
    """Where runs put their inventories: a database URL, or None for a SQLite file in
    each run's scratch directory (the default)."""

    url: URL | None = None

    def __str__(self) -> str:
        return "a SQLite file per run" if self.url is None else masked(self.url)

    def check(self) -> None:
        """Fail before a lab is brought up: a server that does not answer or whose user
        may not create the run's schema, a SQLite file another run holds."""
        if self.url is None:
            return
        if self.url.get_backend_name() == "postgresql":
            with _admin(self.url) as conn:
                row = conn.execute(text(
                    "SELECT current_user, current_database(), "
                    "has_database_privilege(current_database(), 'CREATE')")).one()
            if not row[2]:
                raise InventoryRefused(
                    f"inventory {masked(self.url)}: user {row[0]!r} may not create schemas "
                    f"in database {row[1]!r}, and each run creates its own (GRANT CREATE ON "
                    f"DATABASE {row[1]} TO {row[0]})")
        else:
            _refuse_existing(self.url)


def inventory_url(explicit: str | None = None,
                  environ: Mapping[str, str] | None = None) -> InventoryTarget:
    """The one rule: `explicit` (the --inventory option), else the environment variable,
    else the default (a SQLite file per run). Raises InventoryURLError for a URL that
    cannot work, naming where it came from and never showing a password."""
    env = os.environ if environ is None else environ
    if explicit:
        return InventoryTarget(parse(explicit, "--inventory"))
    if env.get(ENV):
        return InventoryTarget(parse(env[ENV], ENV))
    return InventoryTarget()


def parse(raw: str, source: str) -> URL:
    """A checked URL: a dialect stackdrill supports, with its driver installed.
    A bare `postgresql://` means psycopg 3, the driver the `postgres` extra installs."""
    try:
        url = make_url(raw)
    except ArgumentError:
        raise InventoryURLError(f"{source}: not a database URL: {masked(raw)!r} "
                                "(expected e.g. postgresql://user@host/db)") from None
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    backend = url.get_backend_name()
    if backend not in DIALECTS:
        raise InventoryURLError(f"{source}: {masked(url)}: unsupported database {backend!r} "
                                f"(supported: {', '.join(DIALECTS)})")
    try:
        url.get_dialect().import_dbapi()
    except (NoSuchModuleError, ImportError) as exc:
        hint = " (pip install 'stackdrill[postgres]')" if backend == "postgresql" else ""
        raise InventoryURLError(f"{source}: {masked(url)}: no driver {url.drivername!r}: "
                                f"{first_line(exc)}{hint}") from None
    if backend == "sqlite" and url.database in (None, "", ":memory:"):
        raise InventoryURLError(f"{source}: {masked(url)}: an in-memory SQLite database is "
                                "private to one connection; name a file")
    return url


@contextmanager
def run_namespace(target: InventoryTarget, workdir: Path, purpose: str) -> Iterator[str]:
    """The URL of one run's own inventory, which exists only for the block."""
    url = target.url
    slug = re.sub(r"[^a-z0-9]+", "_", purpose.lower())[:24]
    if url is None:
        path = workdir / f"{slug}.sqlite"
        path.unlink(missing_ok=True)  # a keeper's workdir outlives one run's purpose
        yield f"sqlite:///{path}"
    elif url.get_backend_name() == "sqlite":
        with _sqlite_file(url) as own:
            yield own
    else:
        with _pg_schema(url, slug) as own:
            yield own


@contextmanager
def _sqlite_file(url: URL) -> Iterator[str]:
    path = _refuse_existing(url)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        for leftover in (path, path.with_name(path.name + "-wal"),
                         path.with_name(path.name + "-shm")):
            leftover.unlink(missing_ok=True)


def _refuse_existing(url: URL) -> Path:
    path = Path(str(url.database))
    if path.exists():
        raise InventoryURLError(f"inventory {masked(url)}: {path} exists; a SQLite inventory "
                                "holds one run: remove it or name another file")
    return path


@contextmanager
def _pg_schema(url: URL, slug: str) -> Iterator[str]:
    schema = f"sd_{slug}_{secrets.token_hex(6)}"  # at most 40 of PostgreSQL's 63 bytes
    _ddl(url, f'CREATE SCHEMA "{schema}"')
    log.debug("inventory schema %s created on %s", schema, masked(url))
    own = url.update_query_dict({"options": f"-csearch_path={schema}"})
    ended = False
    try:
        yield own.render_as_string(hide_password=False)
        ended = True
    finally:
        try:
            _ddl(url, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            log.debug("inventory schema %s dropped", schema)
        except InfrastructureError as exc:
            if ended:
                raise
            # the run's own error says what happened (e.g. the server went away): keep it
            log.warning("inventory schema %s left on %s (drop it by hand): %s", schema,
                        masked(url), exc)


def _ddl(url: URL, statement: str) -> None:
    """Create or drop a run's schema; a refusal (a privilege taken away since `check`,
    the server going away) is the infrastructure's, named without the password."""
    with _admin(url) as conn:
        try:
            conn.execute(text(statement))
        except DBAPIError as exc:
            raise InventoryRefused(f"inventory {masked(url)}: {statement} refused: "
                                   f"{first_line(exc.orig, url)}") from None


@contextmanager
def _admin(url: URL) -> Iterator[Connection]:
    """An autocommit connection for CREATE/DROP SCHEMA; a refused connection is the
    infrastructure's fault (exit 3), named without the password."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        try:
            conn = engine.connect()
        except DBAPIError as exc:
            raise InventoryUnreachable(f"inventory {masked(url)}: server unreachable: "
                                       f"{first_line(exc.orig, url)}") from None
        with conn:
            yield conn
    finally:
        engine.dispose()


def first_line(exc: BaseException | None, url: URL | None = None) -> str:
    line = (str(exc).strip().splitlines() or ["(no message)"])[0]
    if url is not None and url.password:
        line = line.replace(str(url.password), "***")
    return line
