"""Opening the inventory: any SQLAlchemy URL, schema brought to head with Alembic, seeded
from the topology.

SQLite is the default (one file next to the lab's state); production Nova runs
on MySQL or PostgreSQL, and the tests run on SQLite and PostgreSQL alike: nothing here
is SQLite-specific except the pragmas that make a local file fast (WAL,
synchronous=NORMAL) and enforce foreign keys, and how a new SQLite file gets its
schema: Alembic migrates an in-memory database once per process, and each new file is
a copy of it (SQLite's backup API), because running the migrations for every drill's
fresh inventory was ~12 % of a random drill's CPU. Alembic stays the schema's only
source: the copy is its output, at head, `alembic_version` row included; an existing
file and every other database are migrated as before. Which URL a run uses is decided
in `recovery.dburl`; who may act on it, in `recovery.lease`.
"""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from stackdrill.recovery.inventory import (
    BlockDeviceMapping,
    ComputeNode,
    Instance,
    Service,
    Volume,
)
from stackdrill.topology import Topology
from stackdrill.topology.model import Role

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
UUID_NAMESPACE = uuid.UUID("6f1d3c9e-3b1a-4c55-9d7e-5a2f0c1e8b42")


def connect(url: str) -> Engine:
    """An engine for `url`; SQLite files get WAL and foreign keys."""
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            if url not in ("sqlite://", "sqlite:///:memory:"):
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    return engine


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (idempotent)."""
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def open_inventory(url: str) -> sessionmaker[Session]:
    """Sessions on the inventory at `url`, its schema at head: a new SQLite file is a
    copy of this process's migrated template, anything else is migrated in place."""
    engine = connect(url)
    if not _copy_template(engine):
        migrate(engine)
    return sessionmaker(engine, expire_on_commit=False)


_template_lock = threading.Lock()  # one backup at a time reads the shared template


@functools.cache
def _sqlite_template() -> sqlite3.Connection:
    """This process's empty inventory at head, migrated by Alembic on first use and held
    in memory; only ever read from afterwards."""
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.execute("PRAGMA foreign_keys=ON")  # as `connect` sets on every connection
    migrate(create_engine("sqlite://", creator=lambda: conn, poolclass=StaticPool))
    return conn


def _copy_template(engine: Engine) -> bool:
    """Give a SQLite file that does not exist yet the template's schema; False (and
    nothing done) for anything else: another dialect, an in-memory database, a file
    that exists, a filesystem without hard links.

    The copy is written beside the target and linked into place, so a file another
    process created meanwhile is never overwritten (that one is migrated instead)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or database in (None, "", ":memory:"):
        return False
    path = Path(str(database))
    if path.exists():
        return False
    template = _sqlite_template()
    scratch = path.with_name(f".{path.name}.{uuid.uuid4().hex}.template")
    try:
        target = sqlite3.connect(scratch)
        try:
            with _template_lock:
                template.backup(target)
        finally:
            target.close()
        os.link(scratch, path)
    except (OSError, sqlite3.Error) as exc:  # exists by now, no hard links: migrate it
        log.debug("inventory %s not copied from the template: %s", path, exc)
        return False
    finally:
        scratch.unlink(missing_ok=True)
    return True


def stable_uuid(kind: str, topology: str, name: str) -> str:
    """The same lab always gets the same UUIDs, so traces and reports are reproducible."""
    return str(uuid.uuid5(UUID_NAMESPACE, f"{kind}/{topology}/{name}"))


def seed_inventory(session: Session, topology: Topology, cpu_ratio: float, ram_ratio: float,
                   reserved: tuple[str, ...]) -> int:
    """Insert what is missing; never overwrite (an engine may already have moved instances).

    Returns the number of rows inserted.
    """
    added = 0
    services = {s.host for s in session.scalars(select(Service))}
    nodes = {n.host for n in session.scalars(select(ComputeNode))}
    for host in topology.hosts_with(Role.COMPUTE):
        spare = host.reserved or host.name in reserved
        if host.name not in services:
            session.add(Service(host=host.name, binary="nova-compute", disabled=spare,
                                disabled_reason="reserved host" if spare else None,
                                forced_down=False, last_seen_up=None, report_count=0))
            added += 1
        if host.name not in nodes:
            session.add(ComputeNode(host=host.name, hypervisor_hostname=host.name,
                                    vcpus=host.vcpus, memory_mb=host.ram_mb, vcpus_used=0,
                                    memory_mb_used=0, cpu_allocation_ratio=cpu_ratio,
                                    ram_allocation_ratio=ram_ratio, reserved=spare))
            added += 1
    session.flush()
    volumes = {v.display_name: v for v in session.scalars(select(Volume))}
    for vol in topology.volumes:
        if vol.name not in volumes:
            row = Volume(id=stable_uuid("volume", topology.name, vol.name), display_name=vol.name,
                         vg=vol.vg, size_gb=vol.size_gb, status="available",
                         attach_status="detached")
            session.add(row)
            volumes[vol.name] = row
            added += 1
    instances = {i.display_name for i in session.scalars(select(Instance))}
    for inst in topology.instances:
        if inst.name in instances:
            continue
        flavor = topology.flavors[inst.flavor]
        inst_uuid = stable_uuid("instance", topology.name, inst.name)
        session.add(Instance(uuid=inst_uuid, display_name=inst.name, host=inst.host,
                             node=inst.host, launched_on=inst.host, vm_state="active",
                             task_state=None, flavor=inst.flavor, vcpus=flavor.vcpus,
                             memory_mb=flavor.ram_mb, server_group=inst.anti_affinity,
                             mac=inst.mac, ip=inst.ip, overlay=inst.overlay))
        session.flush()
        node = session.scalars(select(ComputeNode).where(ComputeNode.host == inst.host)).first()
        if node is not None:
            node.vcpus_used += flavor.vcpus
            node.memory_mb_used += flavor.ram_mb
        for index, vol_name in enumerate(inst.volumes):
            volume = volumes[vol_name]
            volume.status, volume.attach_status = "in-use", "attached"
            session.add(BlockDeviceMapping(instance_uuid=inst_uuid, volume_id=volume.id,
                                           device_name=f"/dev/vd{chr(ord('b') + index)}",
                                           attached_host=inst.host, attach_mode=None,
                                           connection_info=None))
        added += 1
    log.debug("inventory of %s seeded: %d rows added", topology.name, added)
    return added
