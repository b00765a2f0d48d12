"""The inventory database, modelled on Nova's own tables.

Nova keeps a compute `services` row per host (heartbeat `last_seen_up`,
`disabled`, `forced_down`), a `compute_nodes` row with capacity and usage,
`instances` with `host`, `vm_state` and `task_state`, `block_device_mapping`
rows tying volumes to instances, and a `migrations` row per evacuation (its
`source_compute` is what a returning host looks up to destroy guests that were
evacuated away from it). We add `recovery_journal`, the engine's write-ahead log.

Times are lab seconds (floats): the simulator has no wall clock.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class VmState(StrEnum):
    """Nova's vm_states that matter here."""

    ACTIVE = "active"
    STOPPED = "stopped"
    ERROR = "error"


class TaskState(StrEnum):
    """Nova's task_states used by evacuation (rebuild) and maintenance."""

    REBUILDING = "rebuilding"
    REBUILD_SPAWNING = "rebuild_spawning"
    POWERING_OFF = "powering-off"
    POWERING_ON = "powering-on"
    REBOOTING_HARD = "rebooting_hard"  # storage failover: restarted on a new volume path


class MigrationStatus(StrEnum):
    """Nova's evacuation migration statuses: accepted -> done -> completed (source cleaned)."""

    ACCEPTED = "accepted"
    DONE = "done"
    FAILED = "failed"
    COMPLETED = "completed"


class Service(Base):
    __tablename__ = "services"
    __table_args__ = (UniqueConstraint("host", "binary"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    host: Mapped[str] = mapped_column(String(64))
    binary: Mapped[str] = mapped_column(String(64), default="nova-compute")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_reason: Mapped[str | None] = mapped_column(String(255), nullable=True)
    forced_down: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen_up: Mapped[float | None] = mapped_column(Float, nullable=True)
    report_count: Mapped[int] = mapped_column(Integer, default=0)


class ComputeNode(Base):
    __tablename__ = "compute_nodes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    host: Mapped[str] = mapped_column(String(64), unique=True)
    hypervisor_hostname: Mapped[str] = mapped_column(String(255))
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    vcpus_used: Mapped[int] = mapped_column(Integer, default=0)
    memory_mb_used: Mapped[int] = mapped_column(Integer, default=0)
    cpu_allocation_ratio: Mapped[float] = mapped_column(Float, default=16.0)
    ram_allocation_ratio: Mapped[float] = mapped_column(Float, default=1.5)
    reserved: Mapped[bool] = mapped_column(Boolean, default=False)  # a spare (Masakari)


class Instance(Base):
    __tablename__ = "instances"
    __table_args__ = (Index("instances_host_idx", "host"),)

    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(255), unique=True)
    host: Mapped[str] = mapped_column(String(64))
    node: Mapped[str] = mapped_column(String(255))
    launched_on: Mapped[str] = mapped_column(String(64))
    vm_state: Mapped[str] = mapped_column(String(32), default=VmState.ACTIVE.value)
    task_state: Mapped[str | None] = mapped_column(String(32), nullable=True)
    flavor: Mapped[str] = mapped_column(String(64))
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    server_group: Mapped[str | None] = mapped_column(String(64), nullable=True)
    mac: Mapped[str | None] = mapped_column(String(17), nullable=True)
    ip: Mapped[str | None] = mapped_column(String(45), nullable=True)
    overlay: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Volume(Base):
    __tablename__ = "volumes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(255), unique=True)
    vg: Mapped[str] = mapped_column(String(64))
    size_gb: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32), default="available")  # in-use / available
    attach_status: Mapped[str] = mapped_column(String(32), default="detached")


class BlockDeviceMapping(Base):
    __tablename__ = "block_device_mapping"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_uuid: Mapped[str] = mapped_column(ForeignKey("instances.uuid"))
    volume_id: Mapped[str] = mapped_column(ForeignKey("volumes.id"))
    device_name: Mapped[str] = mapped_column(String(32))
    attached_host: Mapped[str | None] = mapped_column(String(64), nullable=True)
    attach_mode: Mapped[str | None] = mapped_column(String(16), nullable=True)  # local/remote
    connection_info: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class Migration(Base):
    __tablename__ = "migrations"
    __table_args__ = (Index("migrations_source_idx", "source_compute", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_uuid: Mapped[str] = mapped_column(ForeignKey("instances.uuid"))
    source_compute: Mapped[str] = mapped_column(String(64))
    dest_compute: Mapped[str | None] = mapped_column(String(64), nullable=True)
    migration_type: Mapped[str] = mapped_column(String(32), default="evacuation")
    status: Mapped[str] = mapped_column(String(32), default=MigrationStatus.ACCEPTED.value)
    created_at: Mapped[float] = mapped_column(Float)


class JournalRow(Base):
    """One step of the engine's write-ahead journal; appended, never updated."""

    __tablename__ = "recovery_journal"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    time: Mapped[float] = mapped_column(Float)
    step: Mapped[str] = mapped_column(String(48))
    host: Mapped[str | None] = mapped_column(String(64), nullable=True)
    instance: Mapped[str | None] = mapped_column(String(255), nullable=True)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class EngineLease(Base):
    """Which engine may act on this inventory, until when (wall-clock epoch seconds).

    One row per lease name, created by the migration; `holder` is NULL when free."""

    __tablename__ = "engine_lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(128), nullable=True)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    acquired_at: Mapped[float | None] = mapped_column(Float, nullable=True)
