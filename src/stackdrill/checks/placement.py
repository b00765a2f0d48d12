"""Exactly-once placement: every instance runs on one host, no more, no fewer.

Two running copies of one guest are the "zombie" of a returning host: two writers
on one volume. A missing instance is a recovery that forgot someone. Both are
named, so the operator knows which guest to look at.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from stackdrill.api import Observation, PowerState
from stackdrill.checks.result import CheckResult
from stackdrill.recovery import InstanceOutcome

NAME = "exactly_once"


def _listed(what: str, items: Mapping[str, list[str]]) -> list[str]:
    """'<what>: vm1 on cmp1+cmp2, vm2 on cmp3', or nothing when there are no items."""
    if not items:
        return []
    return [f"{what}: " + ", ".join(f"{i} on {'+'.join(h)}" for i, h in items.items())]


def _misplaced(running: Mapping[str, list[str]],
               expected_hosts: Mapping[str, str]) -> dict[str, str]:
    """instance -> the host it should run on, for each running somewhere else."""
    return {inst: want for inst, want in sorted(expected_hosts.items())
            if running.get(inst) and want not in running[inst]}


def _on_powered_off(observation: Observation,
                    running: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """instance -> the hosts reported running it whose power is off."""
    on_dead = {inst: [h for h in hosts
                      if observation.power.get(h, PowerState.ON) is PowerState.OFF]
               for inst, hosts in sorted(running.items())}
    return {inst: hosts for inst, hosts in on_dead.items() if hosts}


def exactly_once(
    observation: Observation,
    expected_instances: Iterable[str],
    *,
    expected_hosts: Mapping[str, str] | None = None,
    allow_unexpected: bool = False,
    name: str = NAME,
) -> CheckResult:
    """Each expected instance runs on exactly one host (that host, when `expected_hosts`
    names it); a copy on a host whose power is off or unknown is still counted, because
    the lab reported it running. Instances running that were not expected fail unless
    `allow_unexpected` (they are stale guests a returning host should have cleaned)."""
    expected = list(dict.fromkeys(expected_instances))
    running = {inst: sorted(set(hosts)) for inst, hosts in observation.running.items() if hosts}
    duplicates = {inst: hosts for inst, hosts in sorted(running.items()) if len(hosts) > 1}
    missing = [inst for inst in expected if inst not in running]
    unexpected = sorted(inst for inst in running if inst not in set(expected))
    misplaced = _misplaced(running, expected_hosts or {})
    on_dead = _on_powered_off(observation, running)

    problems = _listed("running more than once", duplicates)
    if missing:
        problems.append("not running anywhere: " + ", ".join(missing))
    if not allow_unexpected:
        problems += _listed("running but not expected", {i: running[i] for i in unexpected})
    if misplaced:
        problems.append("on the wrong host: " + ", ".join(
            f"{i} on {'+'.join(running[i])} (expected {want})" for i, want in misplaced.items()))
    problems += _listed("reported running on a powered-off host", on_dead)
    return CheckResult.of(
        name,
        problems,
        f"{len(expected)} instances each running on exactly one host",
        duplicates=duplicates,
        missing=missing,
        unexpected=unexpected,
        misplaced=misplaced,
        on_powered_off=on_dead,
    )


def returning_host_clean(observation: Observation, outcomes: Iterable[InstanceOutcome],
                         host: str, *, name: str = "returning_host_clean") -> CheckResult:
    """A failed host that came back runs none of the instances evacuated off it: neither a
    second copy of one running elsewhere too, nor one restarted there after it moved."""
    stale = sorted(inst for inst, hosts in observation.running.items()
                   if host in hosts and len(hosts) > 1)
    moved_back = sorted(o.name for o in outcomes
                        if o.host_before == host and o.host_after not in (host, None)
                        and host in observation.running.get(o.name, []))
    problems = [f"{inst} runs on {host} and elsewhere" for inst in stale]
    problems += [f"{inst} was evacuated but runs on {host} again" for inst in moved_back
                 if inst not in stale]
    return CheckResult.of(name, problems, f"{host} runs none of its evacuated instances")
