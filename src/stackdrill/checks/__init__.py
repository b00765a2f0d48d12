"""What "intact" means, as code: pure checkers over observations, histories and probes.

Each checker takes data any backend can produce (stackdrill.api) and returns
a CheckResult; a Checklist makes sure a declared check that never ran fails the drill.
"""

from __future__ import annotations

from stackdrill.api import OverlayProbe
from stackdrill.checks.checklist import Checklist
from stackdrill.checks.drbd import DrbdExpectation, drbd_state, split_brain_detected
from stackdrill.checks.fencing import fencing_order, not_evacuated
from stackdrill.checks.lvm import lvm_consistency
from stackdrill.checks.overlay import (
    overlay_arp,
    overlay_checks,
    overlay_mtu,
    overlay_reachability,
    reachable_within,
)
from stackdrill.checks.placement import exactly_once
from stackdrill.checks.result import CheckResult
from stackdrill.checks.writes import (
    WriteTally,
    acked_writes,
    foreign_records,
    single_writer,
    tally_writes,
)

__all__ = [
    "CheckResult",
    "Checklist",
    "DrbdExpectation",
    "OverlayProbe",
    "WriteTally",
    "acked_writes",
    "drbd_state",
    "exactly_once",
    "fencing_order",
    "foreign_records",
    "lvm_consistency",
    "not_evacuated",
    "overlay_arp",
    "overlay_checks",
    "overlay_mtu",
    "overlay_reachability",
    "reachable_within",
    "single_writer",
    "split_brain_detected",
    "tally_writes",
]
