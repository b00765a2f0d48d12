"""The witness rule every backend's replication_links_up follows (see reporting_witness)."""

from __future__ import annotations

from stackdrill.backends.base import WITNESS_AFTER_S, WITNESS_FRESH_S, reporting_witness


def test_a_peer_that_kept_reporting_after_the_host_fell_silent_is_a_witness() -> None:
    assert reporting_witness(peer_beat=58.0, host_beat=30.0, now=60.0)
    assert reporting_witness(peer_beat=58.0, host_beat=None, now=60.0)  # host never heard


def test_everyone_quiet_at_once_leaves_no_witness() -> None:
    """The controller lost every host at the same moment (it is down or cut off): a peer
    whose last report is as old as the host's cannot say what it saw since."""
    assert not reporting_witness(peer_beat=30.0, host_beat=30.0, now=60.0)
    assert not reporting_witness(peer_beat=30.0 + WITNESS_AFTER_S - 0.1, host_beat=30.0,
                                 now=45.0)


def test_a_stale_or_silent_peer_is_no_witness() -> None:
    assert not reporting_witness(peer_beat=None, host_beat=None, now=60.0)
    assert not reporting_witness(peer_beat=50.0, host_beat=10.0, now=50.0 + WITNESS_FRESH_S + 1)
