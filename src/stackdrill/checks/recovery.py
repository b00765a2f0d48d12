"""The recovery engine's answers, checked against what a drill expects of them.

Other checks look at the lab's ground truth; these look at the engine's report, because
what it *says* is part of the job: an instance it could not recover must be reported
unrecoverable with a reason, a host it could not fence must be named with why, and an
instance it recovered must be where the drill allows. Each fails "never ran" when the
engine never ran: a drill that expected recovery and got none did not pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from stackdrill.checks.result import CheckResult
from stackdrill.recovery import InstanceOutcome, InstanceState, RecoveryResult

OK_STATES = frozenset({InstanceState.RECOVERED, InstanceState.RESUMED, InstanceState.RESTARTED,
                       InstanceState.RUNNING})
# states in which the engine started the instance somewhere: `hosts_after` applies
_STARTED = frozenset({InstanceState.RECOVERED, InstanceState.RESTARTED})
NEVER_RAN = "the recovery engine never ran"


def _outcomes(recoveries: Iterable[RecoveryResult]) -> dict[str, InstanceOutcome]:
    return {o.name: o for r in recoveries for o in r.instances}


def _not_fine(inst: str, outcome: InstanceOutcome | None, attach_mode: str | None,
              hosts_after: tuple[str, ...], state: str | None = None) -> str | None:
    """Why one instance is not recovered as expected, or None when it is."""
    if outcome is None:
        return f"{inst}: not handled by the recovery engine"
    if outcome.state not in OK_STATES:
        return f"{inst}: {outcome.state.value} ({outcome.reason})"
    if state is not None and outcome.state.value != state:
        return f"{inst}: {outcome.state.value}, expected {state}"
    if attach_mode is not None and outcome.attach_mode not in (attach_mode, None):
        return f"{inst}: attached {outcome.attach_mode}, expected {attach_mode}"
    if hosts_after and outcome.state in _STARTED and outcome.host_after not in hosts_after:
        return (f"{inst}: {outcome.state.value} on {outcome.host_after}, expected on "
                f"{', '.join(hosts_after)}")
    return None


def recovered(recoveries: Sequence[RecoveryResult],
              instances: Literal["all"] | tuple[str, ...] = "all", *,
              attach_mode: str | None = None, hosts_after: tuple[str, ...] = (),
              state: str | None = None, name: str = "recovered") -> CheckResult:
    """Each instance (every one the engine handled, for "all") ends recovered, resumed,
    restarted or running, attached as `attach_mode` and (recovered or restarted) on one of
    `hosts_after` when given, and in exactly `state` when given; "all" also demands that
    something needed the engine at all."""
    if not recoveries:
        return CheckResult.not_run(name, NEVER_RAN)
    outcomes = _outcomes(recoveries)
    names = list(outcomes) if instances == "all" else list(instances)
    problems = [p for inst in names
                if (p := _not_fine(inst, outcomes.get(inst), attach_mode, hosts_after, state))]
    moved = [o for o in outcomes.values() if o.state is InstanceState.RECOVERED]
    resumed = [o for o in outcomes.values() if o.state is InstanceState.RESUMED]
    restarted = [o for o in outcomes.values() if o.state is InstanceState.RESTARTED]
    if instances == "all" and not (moved or resumed or restarted or problems):
        # only when nothing failed: a recovery that failed did need the engine
        problems.append("no instance was recovered, resumed or restarted: the failure the "
                        "drill expected recovery from never needed the engine")
    return CheckResult.of(name, problems, _fine_detail(len(names), moved, resumed, restarted),
                          instances=names)


def _fine_detail(count: int, moved: list[InstanceOutcome], resumed: list[InstanceOutcome],
                 restarted: list[InstanceOutcome]) -> str:
    """'3 instance(s) fine: 1 recovered on another host, 1 resumed', naming only the ways
    that happened (a restart where its process died names the instance and its count)."""
    elsewhere = sum(o.host_after != o.host_before for o in moved)
    ways = [f"{elsewhere} recovered on another host" if elsewhere else "",
            f"{len(moved) - elsewhere} restarted in place on a new volume path"
            if len(moved) > elsewhere else "",
            f"{len(resumed)} resumed" if resumed else "",
            *(f"{o.name} restarted on {o.host_after} after its process died ({o.restarts}x)"
              for o in restarted)]
    return f"{count} instance(s) fine: " + (", ".join(w for w in ways if w) or "running")


def unrecoverable(recoveries: Sequence[RecoveryResult], instances: tuple[str, ...],
                  reason_contains: str = "", *, name: str = "unrecoverable") -> CheckResult:
    """Each instance is reported unrecoverable, its reason saying `reason_contains`."""
    if not recoveries:
        return CheckResult.not_run(name, NEVER_RAN)
    outcomes = _outcomes(recoveries)
    problems = []
    for inst in instances:
        outcome = outcomes.get(inst)
        if outcome is None or outcome.state is not InstanceState.UNRECOVERABLE:
            state = outcome.state.value if outcome else "not handled"
            problems.append(f"{inst}: {state}, expected to be reported unrecoverable")
        elif not outcome.reason or reason_contains.lower() not in outcome.reason.lower():
            problems.append(f"{inst}: reason {outcome.reason!r} does not say "
                            f"{reason_contains!r}")
    reasons = "; ".join(f"{i}: {outcomes[i].reason}" for i in instances if i in outcomes)
    return CheckResult.of(name, problems, f"reported with reasons: {reasons}")


def blocked(recoveries: Sequence[RecoveryResult], hosts: tuple[str, ...],
            placement: Mapping[str, str], reason_contains: str = "", *,
            name: str = "blocked") -> CheckResult:
    """Each host is reported as blocking recovery, with `reason_contains` in why, and every
    instance `placement` (instance -> host at the start) puts on one is left blocked."""
    if not recoveries:
        return CheckResult.not_run(name, NEVER_RAN)
    why_blocked = {h: why for r in recoveries for h, why in r.blocked_hosts.items()}
    problems = []
    for host in hosts:
        why = why_blocked.get(host)
        if why is None:
            problems.append(f"{host}: not reported as blocking recovery")
        elif reason_contains.lower() not in why.lower():
            problems.append(f"{host}: reason {why!r} does not say {reason_contains!r}")
    outcomes = _outcomes(recoveries)
    for inst, host in placement.items():
        outcome = outcomes.get(inst)
        if host in hosts and (outcome is None or outcome.state is not InstanceState.BLOCKED):
            state = outcome.state.value if outcome else "not handled"
            problems.append(f"{inst}: {state}, expected blocked on {host}")
    reasons = "; ".join(f"{h}: {why_blocked[h]}" for h in hosts if h in why_blocked)
    return CheckResult.of(name, problems, f"recovery blocked: {reasons}")
