"""Initial inventory schema: Nova-like services, compute nodes, instances, volumes,
block-device mappings, migrations, and the recovery journal.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "services",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("host", sa.String(64), nullable=False),
        sa.Column("binary", sa.String(64), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("disabled_reason", sa.String(255), nullable=True),
        sa.Column("forced_down", sa.Boolean, nullable=False),
        sa.Column("last_seen_up", sa.Float, nullable=True),
        sa.Column("report_count", sa.Integer, nullable=False),
        sa.UniqueConstraint("host", "binary"),
    )
    op.create_table(
        "compute_nodes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("host", sa.String(64), nullable=False, unique=True),
        sa.Column("hypervisor_hostname", sa.String(255), nullable=False),
        sa.Column("vcpus", sa.Integer, nullable=False),
        sa.Column("memory_mb", sa.Integer, nullable=False),
        sa.Column("vcpus_used", sa.Integer, nullable=False),
        sa.Column("memory_mb_used", sa.Integer, nullable=False),
        sa.Column("cpu_allocation_ratio", sa.Float, nullable=False),
        sa.Column("ram_allocation_ratio", sa.Float, nullable=False),
        sa.Column("reserved", sa.Boolean, nullable=False),
    )
    op.create_table(
        "instances",
        sa.Column("uuid", sa.String(36), primary_key=True),
        sa.Column("display_name", sa.String(255), nullable=False, unique=True),
        sa.Column("host", sa.String(64), nullable=False),
        sa.Column("node", sa.String(255), nullable=False),
        sa.Column("launched_on", sa.String(64), nullable=False),
        sa.Column("vm_state", sa.String(32), nullable=False),
        sa.Column("task_state", sa.String(32), nullable=True),
        sa.Column("flavor", sa.String(64), nullable=False),
        sa.Column("vcpus", sa.Integer, nullable=False),
        sa.Column("memory_mb", sa.Integer, nullable=False),
        sa.Column("server_group", sa.String(64), nullable=True),
        sa.Column("mac", sa.String(17), nullable=True),
        sa.Column("ip", sa.String(45), nullable=True),
        sa.Column("overlay", sa.String(64), nullable=True),
    )
    op.create_index("instances_host_idx", "instances", ["host"])
    op.create_table(
        "volumes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("display_name", sa.String(255), nullable=False, unique=True),
        sa.Column("vg", sa.String(64), nullable=False),
        sa.Column("size_gb", sa.Integer, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("attach_status", sa.String(32), nullable=False),
    )
    op.create_table(
        "block_device_mapping",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("instance_uuid", sa.String(36), sa.ForeignKey("instances.uuid"), nullable=False),
        sa.Column("volume_id", sa.String(36), sa.ForeignKey("volumes.id"), nullable=False),
        sa.Column("device_name", sa.String(32), nullable=False),
        sa.Column("attached_host", sa.String(64), nullable=True),
        sa.Column("attach_mode", sa.String(16), nullable=True),
        sa.Column("connection_info", sa.JSON, nullable=True),
    )
    op.create_table(
        "migrations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("instance_uuid", sa.String(36), sa.ForeignKey("instances.uuid"), nullable=False),
        sa.Column("source_compute", sa.String(64), nullable=False),
        sa.Column("dest_compute", sa.String(64), nullable=True),
        sa.Column("migration_type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("migrations_source_idx", "migrations", ["source_compute", "status"])
    op.create_table(
        "recovery_journal",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("step", sa.String(48), nullable=False),
        sa.Column("host", sa.String(64), nullable=True),
        sa.Column("instance", sa.String(255), nullable=True),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "recovery_journal",
        "migrations",
        "block_device_mapping",
        "volumes",
        "instances",
        "compute_nodes",
        "services",
    ):
        op.drop_table(table)
