"""views_agree, Pacemaker CTS's audits: what each node's own tools report of the others
matches what the others report of themselves, at every checkpoint and at the end."""

from __future__ import annotations

from stackdrill.api import DrbdNodeStatus, Observation, QuorumStatus
from stackdrill.checks.audit import views_agree


def _obs(drbd: dict[str, DrbdNodeStatus] | None = None,
         quorum: dict[str, QuorumStatus] | None = None) -> Observation:
    return Observation(time=1.0, running={}, power={}, drbd={"r0": drbd} if drbd else {},
                       lvm=[], quorum={"pair": quorum} if quorum else {})


PRIMARY = DrbdNodeStatus("Primary", "UpToDate", "Connected", "Secondary", "UpToDate")
SECONDARY = DrbdNodeStatus("Secondary", "UpToDate", "Connected", "Primary", "UpToDate")
BOTH = QuorumStatus(quorate=True, members=("a", "b"), votes=2, expected_votes=2)


def test_connected_peers_that_see_each_other_as_they_are_agree() -> None:
    r = views_agree([("start", _obs({"a": PRIMARY, "b": SECONDARY}, {"a": BOTH, "b": BOTH})),
                     ("end", _obs({"a": PRIMARY, "b": SECONDARY}))])
    assert r.ok, r.detail
    assert r.detail == "DRBD peers and cluster members agree at start, end"


def test_a_peer_seen_in_a_role_it_does_not_have_is_named_with_the_moment() -> None:
    stale = DrbdNodeStatus("Secondary", "UpToDate", "Connected", "Secondary", "UpToDate")
    r = views_agree([("mid", _obs({"a": PRIMARY, "b": stale}))])
    assert not r.ok
    assert r.detail == "at mid: r0: b is Connected to a and sees it Secondary; a is Primary"


def test_a_node_connected_to_a_peer_that_is_not_is_a_disagreement() -> None:
    alone = DrbdNodeStatus("Secondary", "UpToDate", "StandAlone")
    r = views_agree([("end", _obs({"a": PRIMARY, "b": alone}))])
    assert r.detail == "at end: r0: a is Connected to b, which is StandAlone"


def test_members_that_count_different_memberships_disagree() -> None:
    alone = QuorumStatus(quorate=True, members=("b",), votes=1, expected_votes=2)
    r = views_agree([("end", _obs(quorum={"a": BOTH, "b": alone}))])
    assert not r.ok
    assert r.detail == "at end: pair: a sees members a,b; b sees b"


def test_a_lab_with_no_views_to_compare_fails_instead_of_passing() -> None:
    r = views_agree([("end", _obs())])
    assert not r.ok and r.detail.startswith("nothing to audit")
