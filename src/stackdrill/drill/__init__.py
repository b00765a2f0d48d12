"""Drills: a topology, a workload, a fault schedule and expectations -> a report."""

from __future__ import annotations

from stackdrill.drill.load import load_drill, parse_drill
from stackdrill.drill.model import Drill, DrillSpec

__all__ = ["Drill", "DrillSpec", "load_drill", "parse_drill"]
