"""Exactly-once placement: every instance runs on one host, no more, no fewer.

Two running copies of one guest are the "zombie" of a returning host: two writers
on one volume. A missing instance is a recovery that forgot someone. Both are
named, so the operator knows which guest to look at.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from stackdrill.api import Observation, PowerState
from stackdrill.checks.result import CheckResult

NAME = "exactly_once"


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
    misplaced: dict[str, str] = {}  # instance -> the host it should run on
    for inst, want in sorted((expected_hosts or {}).items()):
        hosts = running.get(inst)
        if hosts and want not in hosts:
            misplaced[inst] = want
    on_dead = {
        inst: [h for h in hosts if observation.power.get(h, PowerState.ON) is PowerState.OFF]
        for inst, hosts in running.items()
    }
    on_dead = {inst: hosts for inst, hosts in sorted(on_dead.items()) if hosts}

    problems: list[str] = []
    if duplicates:
        problems.append(
            "running more than once: "
            + ", ".join(f"{i} on {'+'.join(h)}" for i, h in duplicates.items())
        )
    if missing:
        problems.append("not running anywhere: " + ", ".join(missing))
    if unexpected and not allow_unexpected:
        problems.append(
            "running but not expected: "
            + ", ".join(f"{i} on {'+'.join(running[i])}" for i in unexpected)
        )
    if misplaced:
        problems.append(
            "on the wrong host: "
            + ", ".join(
                f"{i} on {'+'.join(running[i])} (expected {want})" for i, want in misplaced.items()
            )
        )
    if on_dead:
        problems.append(
            "reported running on a powered-off host: "
            + ", ".join(f"{i} on {'+'.join(h)}" for i, h in on_dead.items())
        )
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
