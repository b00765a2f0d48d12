"""What "intact" means, as code: checkers over the evidence a lab showed.

Each checker takes data any backend can produce (stackdrill.api) and returns a
CheckResult; `table.CHECKERS` maps each expectation a drill may declare to the checker
of one `CheckContext`, and `run_checks` runs them through a Checklist, so a declared
check that never ran fails the drill.
"""

from __future__ import annotations

from stackdrill.api import OverlayProbe
from stackdrill.checks.checklist import Checklist
from stackdrill.checks.context import CheckContext, FaultLog
from stackdrill.checks.drbd import DrbdExpectation, drbd_state, split_brain_detected
from stackdrill.checks.evidence import Evidence
from stackdrill.checks.expectations import Expectation, check_names, verify_now
from stackdrill.checks.fencing import fencing_order, not_evacuated
from stackdrill.checks.lvm import lvm_consistency
from stackdrill.checks.overlay import (
    overlay_arp,
    overlay_checks,
    overlay_mtu,
    overlay_probes,
    overlay_reachability,
    reachable_within,
)
from stackdrill.checks.placement import exactly_once, returning_host_clean
from stackdrill.checks.quorum import quorum_state
from stackdrill.checks.recovery import blocked, recovered, unrecoverable
from stackdrill.checks.result import CheckResult, detected
from stackdrill.checks.table import CHECKERS, run_checks
from stackdrill.checks.writes import (
    WriteFate,
    WriteTally,
    acked_writes,
    foreign_records,
    no_io_errors,
    single_writer,
    tally_writes,
    write_fate,
)

__all__ = [
    "CHECKERS",
    "CheckContext",
    "CheckResult",
    "Checklist",
    "DrbdExpectation",
    "Evidence",
    "Expectation",
    "FaultLog",
    "OverlayProbe",
    "WriteFate",
    "WriteTally",
    "acked_writes",
    "blocked",
    "check_names",
    "detected",
    "drbd_state",
    "exactly_once",
    "fencing_order",
    "foreign_records",
    "lvm_consistency",
    "no_io_errors",
    "not_evacuated",
    "overlay_arp",
    "overlay_checks",
    "overlay_mtu",
    "overlay_probes",
    "overlay_reachability",
    "quorum_state",
    "reachable_within",
    "recovered",
    "returning_host_clean",
    "run_checks",
    "single_writer",
    "split_brain_detected",
    "tally_writes",
    "unrecoverable",
    "verify_now",
    "write_fate",
]
