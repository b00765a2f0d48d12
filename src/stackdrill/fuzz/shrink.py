"""Shrink a failing schedule to the fewest faults that still fail the same way.

Greedy delta debugging over the schedule: drop one fault (with its heal), or
one heal alone (the fault then stays), keep the change when the drill still
fails the same checks, and repeat until no single removal does: the result is
1-minimal. Random schedules have at most a handful of steps, so this costs a
few drill runs; hypothesis's shrinker would need the generator rewritten as a
strategy, for no better result at this size.
"""

from __future__ import annotations

from collections.abc import Callable

from stackdrill.drill.model import Drill, Step
from stackdrill.fuzz.schedule import build

Predicate = Callable[[Drill], bool]


def _without(steps: tuple[Step, ...], index: int) -> tuple[Step, ...]:
    """The schedule minus step `index`; removing an inject also removes its heal."""
    step = steps[index]
    drop = {index}
    if step.inject is not None and step.id is not None:
        drop |= {i for i, s in enumerate(steps) if s.heal == step.id}
    return tuple(s for i, s in enumerate(steps) if i not in drop)


def shrink(drill: Drill, still_fails: Predicate, max_runs: int = 40) -> Drill:
    """The smallest schedule (by greedy 1-minimal removal) for which `still_fails` holds."""
    seed = drill.spec.seed
    topology = drill.topology.name
    protocol = "A" if any(r.protocol.value == "A" for r in drill.topology.drbd) else "C"
    current, runs = drill, 0
    progress = True
    while progress and runs < max_runs:
        progress = False
        steps = current.spec.schedule
        for index, step in enumerate(steps):
            if step.recover is not None:
                continue
            candidate = build(seed, topology, _without(steps, index), protocol,
                              name=current.spec.name)
            runs += 1
            if still_fails(candidate):
                current, progress = candidate, True
                break
            if runs >= max_runs:
                break
    return current
