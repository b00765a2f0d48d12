"""A recording against the simulator: run the situation on the simulator, compare each
field within the tolerance the situation declares, and show it as a table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from stackdrill.conformance.model import Comparison, FieldComparison, Recording, Situation


def compare(situation: Situation, recording: Recording) -> Comparison:
    simulated = situation.simulate()
    rows = []
    for name in sorted(situation.tolerances):
        tolerance = situation.tolerances[name]
        recorded = recording.fields[name]
        sim = simulated.get(name)
        agrees = sim is not None and tolerance.agrees(recorded.value, sim.value)
        rows.append(FieldComparison(name, recorded, sim, tolerance, agrees,
                                    situation.not_modelled.get(name, "")))
    return Comparison(situation.name, situation.exercises, recording.backend,
                      dict(recording.versions), recording.recorded_on, tuple(rows))


def compare_all(recordings: Iterable[Recording],
                situations: Mapping[str, Situation]) -> list[Comparison]:
    return [compare(situations[r.situation], r) for r in recordings]


def table(comparison: Comparison) -> str:
    """A plain-text per-field table (for a failing test; the CLI draws its own)."""
    head = ("field", f"recorded ({comparison.backend})", "simulated", "tolerance", "")
    body = [(row.name, row.recorded.show(), row.simulated.show() if row.simulated else "(none)",
             row.tolerance.show(), row.verdict)
            for row in comparison.rows]
    widths = [max(len(r[i]) for r in (head, *body)) for i in range(len(head))]
    lines = [f"{comparison.situation}: {comparison.exercises}"]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in (head, *body)]
    return "\n".join(lines)


def to_json(comparisons: Iterable[Comparison]) -> dict[str, Any]:
    """The machine-readable form: per situation, each field recorded vs simulated."""
    items = list(comparisons)
    return {
        "agrees": all(c.agrees for c in items),
        "situations": [{
            "situation": c.situation,
            "exercises": c.exercises,
            "recorded_on": c.recorded_on,
            "backend": c.backend,
            "versions": dict(c.versions),
            "agrees": c.agrees,
            "fields": [{
                "field": row.name,
                "recorded": row.recorded.value,
                "simulated": None if row.simulated is None else row.simulated.value,
                "unit": row.recorded.unit,
                "tolerance": row.tolerance.show(),
                "agrees": row.agrees,
                "not_modelled": row.not_modelled or None,
            } for row in c.rows],
        } for c in items],
    }
