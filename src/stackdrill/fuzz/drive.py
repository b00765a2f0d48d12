"""Run one random drill end to end and say whether its invariants held.

`run_seed(seed)` generates the drill, declares its expectations from the
oracle's damage, runs it on the simulator, judges it, adds the invariants the
judge cannot express, and returns an `Outcome` a test, the CLI and the bench
all read. A failure names the seed and the command that reproduces it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from stackdrill.checks import CheckResult
from stackdrill.checks.expectations import (
    ExpectAckedWrites,
    Expectation,
    ExpectFencingOrder,
    ExpectSingleWriter,
)
from stackdrill.drill.judge import judge
from stackdrill.drill.model import Drill, Step
from stackdrill.drill.runner import execute
from stackdrill.faults import describe
from stackdrill.fuzz.invariants import (
    divergence_bounded,
    exactly_once_or_declared,
    recovering_since,
    writes_progress,
)
from stackdrill.fuzz.oracle import Damage, declared_damage
from stackdrill.fuzz.schedule import generate
from stackdrill.fuzz.shrink import shrink
from stackdrill.fuzz.version import replay_command

log = logging.getLogger(__name__)
PROGRESS_WINDOW_S = 60.0  # every running guest must get a write acked in the last minute


def reproduce_command(seed: int) -> str:
    return replay_command(seed)


@dataclass
class Outcome:
    seed: int
    drill: Drill
    damage: Damage
    checks: list[CheckResult] = field(default_factory=list)
    trace_sha256: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def failed(self) -> list[str]:
        return sorted(c.name for c in self.checks if not c.ok)

    def summary(self) -> str:
        lines = [f"seed {self.seed}: {'pass' if self.ok else 'FAIL'} "
                 f"({self.drill.topology.name}, {describe_protocol(self.drill)})",
                 f"  declared damage: {self.damage.describe()}",
                 "  schedule:",
                 *(f"    {line}" for line in schedule_lines(self.drill.spec.schedule))]
        lines += [f"  {'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}" for c in self.checks]
        if not self.ok:
            lines.append(f"  reproduce: {reproduce_command(self.seed)}")
        return "\n".join(lines)


def describe_protocol(drill: Drill) -> str:
    return "protocol " + ",".join(sorted({r.protocol.value for r in drill.topology.drbd})) \
        if drill.topology.drbd else "no DRBD"


def schedule_lines(steps: tuple[Step, ...] | list[Step]) -> list[str]:
    out = []
    for step in steps:
        if step.inject is not None:
            what = f"inject {describe(step.inject)}" + (f"  [id {step.id}]" if step.id else "")
        elif step.heal is not None:
            what = f"heal {step.heal}"
        elif step.recover is not None:
            what = f"recover (parallel {step.recover.parallel})"
        else:
            what = "run command"
        out.append(f"t={step.at:7.1f}s {what}")
    return out


def expectations(damage: Damage) -> tuple[Expectation, ...]:
    """What the judge checks. Where the schedule declares losses (divergence, a lone copy),
    divergence_bounded judges them by when they were acknowledged, on protocol A too: the
    model's prediction counts the writes a dead link took, not the ones a failed disk
    took later, so it cannot be the count there."""
    if damage.losses_from is not None:
        writes = ExpectAckedWrites(max_lost=None)  # divergence_bounded judges the losses
    elif damage.protocol_a:
        writes = ExpectAckedWrites(max_lost=None, predicted_lost=True)
    else:
        writes = ExpectAckedWrites(max_lost=0)
    return (ExpectFencingOrder(), writes, ExpectSingleWriter())


def run_drill(seed: int, drill: Drill, lab_name: str | None = None) -> Outcome:
    """Run `drill` (generated from `seed`, possibly shrunk) and check every invariant."""
    damage = declared_damage(drill)
    spec = drill.spec.model_copy(update={"expect": expectations(damage)})
    drill = drill.model_copy(update={"spec": spec})
    try:
        run = execute(drill, backend="sim", seed=seed, lab_name=lab_name)
        report = judge(run)
    except Exception as exc:  # a crash is a finding, reported like a failed invariant
        log.exception("random drill seed %d crashed", seed)
        crash = CheckResult.failed("drill_completes", f"{type(exc).__name__}: {exc}")
        return Outcome(seed, drill, damage, [crash])
    checks = list(report.checks)
    writes = next((c for c in checks if c.name == "acked_writes"), None)
    tallies = writes.data.get("instances", {}) if writes is not None else {}
    lost = {inst: t.get("lost_seqs", {}) for inst, t in tallies.items()}
    history = list(run.final.history)
    running = run.final.observation.running
    since = drill.spec.duration_s - PROGRESS_WINDOW_S
    checks += [exactly_once_or_declared(run, damage),
               divergence_bounded(history, lost, damage),
               writes_progress(history, running, since, damage,
                               recovering=recovering_since(run, since))]
    return Outcome(seed, drill, damage, checks, run.trace_sha256)


def run_seed(seed: int, lab_name: str | None = None) -> Outcome:
    return run_drill(seed, generate(seed).drill, lab_name)


def shrink_outcome(seed: int, failed: list[str], max_runs: int = 40) -> list[str]:
    """The 1-minimal schedule that fails the same checks as seed `seed`, as lines."""

    def same(drill: Drill) -> bool:
        return run_drill(seed, drill).failed == failed

    small = shrink(generate(seed).drill, same, max_runs=max_runs)
    return schedule_lines(small.spec.schedule)
