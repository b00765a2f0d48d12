"""Prebuilt Core statements for the engine's per-instance updates.

Building an ORM `update()` costs more than running it on SQLite: the engine
issues a few per instance per journal step, and its overhead per instance is a
measured goal (bench/recovery_parallel.py). These statements are built once,
with bound parameters, and run on the step's own connection, so they stay in
the journal step's transaction (a step and its DB change commit together).
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Row, Table, bindparam, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler

from stackdrill.recovery.inventory import (
    BlockDeviceMapping,
    ComputeNode,
    Instance,
    Migration,
    MigrationStatus,
    Service,
    Volume,
)

_nodes = cast(Table, ComputeNode.__table__)
_instances = cast(Table, Instance.__table__)
_migrations = cast(Table, Migration.__table__)
_services = cast(Table, Service.__table__)
_bdms = cast(Table, BlockDeviceMapping.__table__)
_volumes = cast(Table, Volume.__table__)

USAGE = (update(_nodes).where(_nodes.c.host == bindparam("p_host"))
         .values(vcpus_used=_nodes.c.vcpus_used + bindparam("p_vcpus"),
                 memory_mb_used=_nodes.c.memory_mb_used + bindparam("p_ram")))
INSTANCE_STATE = (update(_instances).where(_instances.c.uuid == bindparam("p_uuid"))
                  .values(vm_state=bindparam("p_vm"), task_state=bindparam("p_task")))
INSTANCE_TASK = (update(_instances).where(_instances.c.uuid == bindparam("p_uuid"))
                 .values(task_state=bindparam("p_task")))
MIGRATION_STATUS = (update(_migrations)
                    .where(_migrations.c.instance_uuid == bindparam("p_uuid"),
                           _migrations.c.status == bindparam("p_old"))
                    .values(status=bindparam("p_new")))

INSTANCE_ROW = select(_instances.c.host, _instances.c.vcpus, _instances.c.memory_mb).where(
    _instances.c.uuid == bindparam("p_uuid"))
INSTANCE_HOST = (update(_instances).where(_instances.c.uuid == bindparam("p_uuid"))
                 .values(host=bindparam("p_host"), node=bindparam("p_host"),
                         task_state=bindparam("p_task")))
UNRESERVE_SPARE = (update(_services).where(_services.c.host == bindparam("p_host"),
                                           _services.c.disabled_reason == "reserved host")
                   .values(disabled=False, disabled_reason=None))
NEW_MIGRATION = insert(_migrations)
INSTANCE_VOLUMES = (select(_bdms.c.id, _volumes.c.id, _volumes.c.display_name)
                    .join(_volumes, _volumes.c.id == _bdms.c.volume_id)
                    .where(_bdms.c.instance_uuid == bindparam("p_uuid"))
                    .order_by(_bdms.c.id))
BDM_ATTACHED = (update(_bdms).where(_bdms.c.id == bindparam("p_id"))
                .values(attached_host=bindparam("p_host"), attach_mode=bindparam("p_mode"),
                        connection_info=bindparam("p_info")))
VOLUME_ATTACHED = (update(_volumes).where(_volumes.c.id == bindparam("p_id"))
                   .values(status="in-use", attach_status="attached"))

MIGRATED_AWAY = (select(_instances.c.display_name)
                 .join(_migrations, _migrations.c.instance_uuid == _instances.c.uuid)
                 .where(_migrations.c.source_compute == bindparam("p_host"),
                        _migrations.c.status.in_([MigrationStatus.ACCEPTED.value,
                                                  MigrationStatus.DONE.value])))

# only what placement reads: it reads them on most ticks that start flows
NODES = select(_nodes.c.host, _nodes.c.vcpus, _nodes.c.cpu_allocation_ratio,
               _nodes.c.memory_mb, _nodes.c.ram_allocation_ratio, _nodes.c.vcpus_used,
               _nodes.c.memory_mb_used).order_by(_nodes.c.host)
SERVICES = select(_services.c.host, _services.c.forced_down, _services.c.disabled)


def run(s: Session, statement: Any, **params: Any) -> None:
    """Execute on the session's connection (same transaction, no ORM bookkeeping)."""
    s.connection().execute(statement, params)


_COMPILED: dict[tuple[int, str], SQLCompiler] = {}  # (statement, dialect) -> compiled once


def driver(s: Session, statement: Any, **params: Any) -> CursorResult[Any]:
    """Execute a prebuilt statement as the dialect's SQL string (`exec_driver_sql`),
    compiled once per dialect: SQLAlchemy's per-execution cache lookup and parameter
    processing cost ~28 us where this costs ~10 (SQLite), ~12 times per recovered
    instance. Only for values the driver takes as they are (strings, numbers, booleans,
    None): a JSON value goes through `run`."""
    conn = s.connection()
    key = (id(statement), conn.dialect.name)
    compiled = _COMPILED.get(key)
    if compiled is None:
        compiled = _COMPILED[key] = cast(SQLCompiler, statement.compile(dialect=conn.dialect))
    values: dict[str, Any] = dict(compiled.construct_params(params))
    if compiled.positiontup is not None:  # qmark / format paramstyles
        return conn.exec_driver_sql(compiled.string,
                                    tuple(values[name] for name in compiled.positiontup))
    return conn.exec_driver_sql(compiled.string, values)


def usage(s: Session, host: str, vcpus: int, ram_mb: int) -> None:
    """Claim (or with negative numbers give back) capacity on a compute node."""
    driver(s, USAGE, p_host=host, p_vcpus=vcpus, p_ram=ram_mb)


def instance_state(s: Session, uuid: str, vm_state: str, task_state: str | None) -> None:
    driver(s, INSTANCE_STATE, p_uuid=uuid, p_vm=vm_state, p_task=task_state)


def instance_task(s: Session, uuid: str, task_state: str | None) -> None:
    driver(s, INSTANCE_TASK, p_uuid=uuid, p_task=task_state)


def migration_status(s: Session, uuid: str, old: str, new: str) -> None:
    driver(s, MIGRATION_STATUS, p_uuid=uuid, p_old=old, p_new=new)


def instance_row(s: Session, uuid: str) -> tuple[str, int, int]:
    """(host, vcpus, memory_mb) of an instance as the inventory has it."""
    row: Any = driver(s, INSTANCE_ROW, p_uuid=uuid).one()
    return str(row[0]), int(row[1]), int(row[2])


def instance_host(s: Session, uuid: str, host: str, task_state: str | None) -> None:
    driver(s, INSTANCE_HOST, p_uuid=uuid, p_host=host, p_task=task_state)


def unreserve_spare(s: Session, host: str) -> None:
    """A reserved host that receives an instance is a spare no more (Masakari enables it)."""
    driver(s, UNRESERVE_SPARE, p_host=host)


def new_migration(s: Session, uuid: str, source: str, target: str, mtype: str, status: str,
                  created_at: float) -> None:
    s.connection().execute(NEW_MIGRATION, {
        "instance_uuid": uuid, "source_compute": source, "dest_compute": target,
        "migration_type": mtype, "status": status, "created_at": created_at})


def instance_volumes(s: Session, uuid: str) -> list[tuple[int, str, str]]:
    """(bdm id, volume id, volume name) of each volume the instance has, in BDM order."""
    rows: list[Any] = list(driver(s, INSTANCE_VOLUMES, p_uuid=uuid).all())
    return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]


def attach(s: Session, bdm_id: int, volume_id: str, host: str, mode: str,
           info: dict[str, Any]) -> None:
    run(s, BDM_ATTACHED, p_id=bdm_id, p_host=host, p_mode=mode, p_info=info)
    driver(s, VOLUME_ATTACHED, p_id=volume_id)


def compute_nodes(s: Session) -> list[Row[Any]]:
    """Every compute node's capacity and usage by host (read-only: attribute access like
    the ORM class)."""
    return cast("list[Row[Any]]", list(s.connection().execute(NODES).all()))


def services(s: Session) -> dict[str, Row[Any]]:
    """host -> whether its compute service is forced down, disabled."""
    rows = cast("list[Row[Any]]", s.connection().execute(SERVICES).all())
    return {row.host: row for row in rows}


def migrated_away(s: Session, host: str) -> set[str]:
    """Instances evacuated or moved away from `host` whose source was not cleaned yet:
    what the host must destroy, not resume, when it comes back (the question Nova's
    compute asks at start in `_destroy_evacuated_instances`)."""
    rows = s.connection().execute(MIGRATED_AWAY, {"p_host": host}).all()
    return {str(r[0]) for r in rows}
