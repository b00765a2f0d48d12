"""The acceptance gate: the standard drill set against one topology, one verdict per drill.

`standard_drills` builds the drills for a topology (victims chosen and explained, or the
reason a drill does not apply); `run_gate` runs them, with any extra drills, through the
same path as `stackdrill run` and returns a `GateReport`.
"""

from __future__ import annotations

from stackdrill.gate.builders import STANDARD, standard_drills
from stackdrill.gate.plan import Expect, GateDrill, NotApplicable, Planned
from stackdrill.gate.report import DrillResult, GateReport, GateVerdict
from stackdrill.gate.run import run_gate

__all__ = ["STANDARD", "DrillResult", "Expect", "GateDrill", "GateReport", "GateVerdict",
           "NotApplicable", "Planned", "run_gate", "standard_drills"]
