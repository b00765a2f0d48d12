"""The conformance corpus: situations recorded on the real software, and the simulator
held to each recording within per-field tolerances (see README, "Conformance")."""

from __future__ import annotations

from stackdrill.conformance.compare import compare, compare_all, table, to_json
from stackdrill.conformance.corpus import DEFAULT_DIR, read, read_all, write
from stackdrill.conformance.model import (
    Comparison,
    FieldComparison,
    Observed,
    Recording,
    Situation,
    Tolerance,
)

__all__ = [
    "DEFAULT_DIR",
    "Comparison",
    "FieldComparison",
    "Observed",
    "Recording",
    "Situation",
    "Tolerance",
    "compare",
    "compare_all",
    "read",
    "read_all",
    "table",
    "to_json",
    "write",
]
