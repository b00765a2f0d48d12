"""The danger pass's drills in the gate: each dangerous setting found in the topology
(stackdrill.dangers) adds the drill that demonstrates it, built for this topology. Its
expectations are the safe outcome, so it is run like a standard drill: it fails where
the danger is, and the gate fails with it, naming the setting."""

from __future__ import annotations

from stackdrill.dangers import DrillUnavailable, find_dangers
from stackdrill.gate.plan import GateDrill, NotApplicable, Planned
from stackdrill.topology import Topology


def danger_drills(topology: Topology) -> list[Planned]:
    """One gate item per danger found: its drill, or NOT APPLICABLE with the danger still
    named when the topology lacks what the drill needs (`stackdrill lint` flags it)."""
    out: list[Planned] = []
    for danger in find_dangers(topology):
        title = f"Danger: {danger.code.value}"
        why = f"{danger.path} = {danger.setting}: {danger.why}"
        try:
            drill = danger.drill(topology)
        except DrillUnavailable as exc:
            out.append(NotApplicable(danger.drill_name, title,
                                     f"{why} (flagged; not demonstrable here: {exc})"))
            continue
        out.append(GateDrill(drill, title, danger.subject, f"{why} Expected: {danger.shows}"))
    return out
