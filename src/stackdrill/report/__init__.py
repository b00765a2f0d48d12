"""Drill reports: the JSON model, pictures, one self-contained HTML page, Allure steps.

Import `stackdrill.report.pictures`, `.html` and `.allure` only where needed: they
pull in jinja2 and graphviz, which the sim path and the JSON report do not need.
"""

from __future__ import annotations

from stackdrill.report.model import (
    FaultRecord,
    InstanceReport,
    Report,
    TimelineEvent,
    TimeSlice,
    WriteRun,
    order_lanes,
    verdict_for,
)
from stackdrill.report.state import state_summary

__all__ = [
    "FaultRecord",
    "InstanceReport",
    "Report",
    "TimeSlice",
    "TimelineEvent",
    "WriteRun",
    "order_lanes",
    "state_summary",
    "verdict_for",
]
