"""Quorum as each member shows it (`corosync-quorumtool -s`), against the drill's rule."""

from __future__ import annotations

from stackdrill.api import Observation, QuorumStatus
from stackdrill.checks import quorum_state


def obs(views: dict[str, QuorumStatus]) -> Observation:
    return Observation(time=60.0, running={}, power={}, drbd={}, lvm=[],
                       quorum={"pair": views})


def member(quorate: bool) -> QuorumStatus:
    return QuorumStatus(quorate=quorate, members=("alice",), votes=1, expected_votes=2)


def test_each_member_quorate_as_expected_passes() -> None:
    r = quorum_state(obs({"alice": member(True), "bob": member(False)}), "pair",
                     {"alice": True, "bob": False})
    assert r.ok and r.detail == "alice quorate=True, bob quorate=False"


def test_a_member_with_the_wrong_view_or_none_fails() -> None:
    r = quorum_state(obs({"alice": member(False)}), "pair", {"alice": True, "bob": False})
    assert r.detail == "alice: quorate=False, expected True; bob: no quorum state (host down?)"


def test_a_cluster_never_observed_never_ran() -> None:
    r = quorum_state(obs({}), "other", {"alice": True})
    assert (r.ok, r.ran) == (False, False)
