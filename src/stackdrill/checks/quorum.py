"""Cluster quorum as `corosync-quorumtool -s` shows it on each member.

A drill about a two-node cluster demonstrates votequorum's rules: with `two_node` the
lone survivor of a partition keeps quorum (and must fence its peer before it touches
shared storage); without it neither half is quorate. The check compares each member's
own view with what the drill expects.
"""

from __future__ import annotations

from collections.abc import Mapping

from stackdrill.api import Observation
from stackdrill.checks.result import CheckResult

NAME = "quorum"


def quorum_state(observation: Observation, cluster: str, expected: Mapping[str, bool], *,
                 name: str = NAME) -> CheckResult:
    """Each named member of `cluster` reports quorate as `expected` says; a member with no
    view (its host is down) fails, a cluster never observed makes the check not run."""
    status = observation.quorum.get(cluster)
    if status is None:
        return CheckResult.not_run(name, f"cluster {cluster!r} was not observed")
    problems = []
    for host, want in expected.items():
        view = status.get(host)
        if view is None:
            problems.append(f"{host}: no quorum state (host down?)")
        elif view.quorate != want:
            problems.append(f"{host}: quorate={view.quorate}, expected {want}")
    return CheckResult.of(name, problems, ", ".join(
        f"{h} quorate={v}" for h, v in expected.items()))
