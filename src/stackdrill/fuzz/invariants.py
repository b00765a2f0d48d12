"""The invariants every random drill must hold, given its declared damage.

The judge runs what can be declared up front (fencing order, acknowledged
writes, a single writer per volume); the checks here need the declared damage:

- `exactly_once_or_declared`: every instance runs on exactly one host, or it
  is one the schedule may legitimately cost (see `oracle`) *and* the engine
  gave it up with a reason (unrecoverable: nowhere to go; or failed: a last
  attempt, e.g. a resume on its returned host, failed for good); or a fault
  that is never healed keeps its storage out of reach to the end and the engine
  is still retrying it or has it queued, with a reason; never more than the
  declared number.
- `divergence_bounded`: on a dual-primary resource, acked writes may be lost
  only if acknowledged after the first fault that could cut replication.
- `writes_progress`: every instance running at the end still gets writes
  acknowledged in the drill's last minute (liveness: a guest "running" on a
  volume nobody serves any more is not recovered), unless a recovery flow that
  began in that minute is still under way.
"""

from __future__ import annotations

from collections.abc import Mapping

from stackdrill.api import WriteOp
from stackdrill.checks import CheckResult, exactly_once
from stackdrill.drill.runner import DrillRun
from stackdrill.fuzz.oracle import Damage
from stackdrill.recovery import InstanceState

# What the engine says when it stops trying, with its reason: an excuse only for an
# instance the schedule may cost (it is never one for the others).
GIVEN_UP = frozenset({InstanceState.UNRECOVERABLE, InstanceState.FAILED})
# Still being worked on, or queued behind an attempt that is: an excuse only for an
# instance whose storage the schedule keeps out of reach to the end (no attempt can
# succeed), never for one whose data may merely be gone for a while.
STILL_TRYING = frozenset({InstanceState.IN_PROGRESS, InstanceState.PENDING})


def exactly_once_or_declared(run: DrillRun, damage: Damage,
                             name: str = "exactly_once_or_declared") -> CheckResult:
    obs = run.final.observation
    names = [i.name for i in run.drill.topology.instances]
    outcomes = {o.name: o for r in run.recoveries for o in r.instances}
    base = exactly_once(obs, names, name=name)
    missing = set(base.data.get("missing", []))
    problems = [p for p in base.detail.split("; ")
                if not base.ok and not p.startswith("not running anywhere")]
    excused = []
    for inst in sorted(missing):
        outcome = outcomes.get(inst)
        state = outcome.state.value if outcome else "not handled by the engine"
        if outcome is not None and outcome.reason and (
                (outcome.state in GIVEN_UP and inst in damage.may_be_unrecoverable)
                or (outcome.state in STILL_TRYING and inst in damage.out_of_reach)):
            excused.append(f"{inst} ({outcome.reason})")
        else:
            why = f" ({outcome.reason})" if outcome is not None and outcome.reason else ""
            problems.append(f"{inst} not running anywhere: {state}{why}")
    if len(excused) > damage.max_unrecoverable:
        problems.append(f"{len(excused)} instances unrecoverable, at most "
                        f"{damage.max_unrecoverable} declared: {'; '.join(excused)}")
    detail = f"{len(names) - len(missing)} of {len(names)} instances run exactly once"
    if excused:
        detail += f"; declared unrecoverable: {'; '.join(excused)}"
    return CheckResult.of(name, problems, detail, excused=excused)


def divergence_bounded(history: list[WriteOp], lost_seqs: dict[str, dict[str, list[int]]],
                       damage: Damage, name: str = "divergence_bounded") -> CheckResult:
    """Lost acked writes are excused only when acknowledged after the first fault that
    could cut replication where the schedule declares losses (dual-primary divergence, a
    lone copy then lost); everywhere else this passes (acked_writes with max_lost 0
    decides). The acknowledgement, not the invocation, is what counts: a write invoked
    before the cut may reach DRBD only after it (an iSCSI session retrying through a
    storage-network outage: seed 1928), and then it was on the lone copy only; one acked
    before the cut was on both disks (protocol C) and must survive."""
    lost = [(inst, vol, seq) for inst, by_vol in sorted(lost_seqs.items())
            for vol, seqs in sorted(by_vol.items()) for seq in seqs]
    since = damage.losses_from
    if since is None or not lost:
        return CheckResult.passed(name, f"{len(lost)} acked writes lost, none to excuse")
    acked = {(op.instance, op.volume, op.seq): op.completed if op.completed is not None
             else op.invoked for op in history if op.outcome == "ok"}
    early = [f"{i}/{v}#{s}@{acked.get((i, v, s), -1.0):.1f}s" for i, v, s in lost
             if acked.get((i, v, s), -1.0) < since]
    if early:
        return CheckResult.failed(name, f"{len(early)} acked writes lost that were acked "
                                  f"before replication could be cut (t={since:g}s):"
                                  f" {', '.join(early[:8])}")
    return CheckResult.passed(name, f"{len(lost)} acked writes lost, all after "
                              f"t={since:g}s (declared)", lost=len(lost))


def recovering_since(run: DrillRun, since: float) -> frozenset[str]:
    """Instances the engine is still recovering at the end, by a flow it started at or
    after `since`: a guest restarted onto a new path late in the drill has not written
    yet because its recovery is under way, not because it runs on a dead volume."""
    state = {o.name: o.state for r in run.recoveries for o in r.instances}
    started: dict[str, float] = {}
    for event in run.events:
        if event.kind == "flow-started" and event.instance is not None:
            started[event.instance] = event.time
    return frozenset(inst for inst, at in started.items()
                     if at >= since and state.get(inst) is InstanceState.IN_PROGRESS)


def writes_progress(history: list[WriteOp], running: Mapping[str, list[str]], since: float,
                    damage: Damage, name: str = "writes_progress",
                    recovering: frozenset[str] = frozenset()) -> CheckResult:
    """Every instance running at the end still gets writes acknowledged after `since` (all
    faults are healed by then): a guest that 'runs' on a dead volume is not recovered.
    One whose recovery began after `since` and is still under way is not judged here
    (with `parallel: 1` five reattachments after a storage node returns take ~100 s:
    random seed 1815); exactly_once_or_declared judges where it runs."""
    alive = {inst for inst, hosts in running.items() if hosts and inst not in recovering}
    pairs = sorted({(op.instance, op.volume) for op in history if op.instance in alive})
    moving = {(op.instance, op.volume) for op in history
              if op.outcome == "ok" and op.invoked >= since}
    stalled = [f"{i}/{v}" for i, v in pairs if (i, v) not in moving]
    if stalled and damage.may_stall:
        return CheckResult.passed(name, f"no acked write after t={since:g}s on "
                                  f"{', '.join(stalled)} (declared: {damage.stall_reason})",
                                  stalled=stalled)
    detail = f"{len(pairs)} running volume(s) all acked writes after t={since:g}s"
    if recovering:
        detail += f"; still being recovered by a flow begun since: {', '.join(sorted(recovering))}"
    return CheckResult.of(name, [f"running but no acked write after t={since:g}s on: "
                                 f"{', '.join(stalled)}"] if stalled else [],
                          detail, stalled=stalled)
