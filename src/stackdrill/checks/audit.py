"""Pacemaker CTS's audits, for this lab: after each step the nodes' views agree.

CTS audits the cluster after every test (one partition per expected split, one view of
membership in each, no resource active twice). Here a drill's observe steps and its end
are the moments, and the views are those a node's own tools show: `drbdadm status` on
each DRBD node (the peer's role and disk it reports against the peer's own) and
`corosync-quorumtool` on each cluster member (the members it counts against theirs). A
lab with neither a DRBD resource nor a cluster has no views to compare: the check fails
rather than pass having compared nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from stackdrill.api import DrbdNodeStatus, Observation, QuorumStatus
from stackdrill.checks.result import CheckResult

NAME = "views_agree"
# 8.4 connection states in which the peer's role and disk are current
CONNECTED = frozenset({"Connected", "SyncSource", "SyncTarget", "StartingSyncS",
                       "StartingSyncT", "WFBitMapS", "WFBitMapT", "WFSyncUUID", "PausedSyncS",
                       "PausedSyncT", "VerifyS", "VerifyT", "Ahead", "Behind"})


def _drbd(resource: str, nodes: Mapping[str, DrbdNodeStatus]) -> Iterator[str]:
    for host, view in sorted(nodes.items()):
        if not view.running or view.connection not in CONNECTED:
            continue
        for peer, theirs in sorted(nodes.items()):
            if peer == host:
                continue
            said = f"{resource}: {host} is {view.connection} to {peer}"
            if not theirs.running or theirs.connection not in CONNECTED:
                state = theirs.connection if theirs.running else "down"
                yield f"{said}, which is {state}"
                continue
            if view.peer_role != theirs.role:
                yield f"{said} and sees it {view.peer_role}; {peer} is {theirs.role}"
            if view.peer_disk != theirs.disk:
                yield f"{said} and sees its disk {view.peer_disk}; {peer}'s is {theirs.disk}"


def _membership(cluster: str, views: Mapping[str, QuorumStatus]) -> Iterator[str]:
    for host, view in sorted(views.items()):
        for member in sorted(set(view.members) - {host}):
            theirs = views.get(member)
            if theirs is None:
                yield f"{cluster}: {host} counts {member} as a member, which shows no view"
            elif set(theirs.members) != set(view.members):
                yield (f"{cluster}: {host} sees members {','.join(sorted(view.members))}; "
                       f"{member} sees {','.join(sorted(theirs.members))}")
            elif theirs.quorate != view.quorate:
                yield (f"{cluster}: {host} and {member} share a membership but disagree on "
                       f"quorum ({view.quorate} vs {theirs.quorate})")


def disagreements(observation: Observation) -> list[str]:
    """Every pair of nodes whose views of each other differ, one line each."""
    found = [line for res, nodes in sorted(observation.drbd.items())
             for line in _drbd(res, nodes)]
    found += [line for cluster, views in sorted(observation.quorum.items())
              for line in _membership(cluster, views)]
    return found


def views_agree(moments: Sequence[tuple[str, Observation]]) -> CheckResult:
    """At each (label, observation), the nodes' views agree; `moments` in schedule order."""
    if not any(o.drbd or o.quorum for _, o in moments):
        return CheckResult.failed(NAME, "nothing to audit: no DRBD resource or cluster was "
                                  "observed")
    problems = [f"at {label}: {line}" for label, o in moments for line in disagreements(o)]
    labels = ", ".join(label for label, _ in moments)
    return CheckResult.of(NAME, problems, f"DRBD peers and cluster members agree at {labels}",
                          moments=[label for label, _ in moments])
