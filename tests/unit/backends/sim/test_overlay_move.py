"""A moved instance is reached again by observers on the overlay, with and without a
gratuitous ARP (the overlay's `announce`)."""

from __future__ import annotations

from stackdrill.conformance.situations.overlay_move import MoveCase, simulate_move


def test_without_announcement_an_observer_on_the_new_host_still_reaches_it() -> None:
    """The destination bridge had the MAC learned behind vxlan0; the guest's link-up
    traffic (IPv6 MLD report, sent as its interface comes up) re-teaches it at once."""
    fields = simulate_move(MoveCase(announce=False, observer_host="b"))
    assert fields["reached_within_bound"].value is True
    first = fields["first_reply_after_move_s"].value
    assert isinstance(first, float) and first <= 0.2


def test_without_an_fdb_update_an_observer_elsewhere_never_reaches_it() -> None:
    fields = simulate_move(MoveCase(fdb_update=False))
    assert fields["reached_within_bound"].value is False


def test_without_announcement_nor_ipv6_the_destination_bridge_drops_it() -> None:
    """MACHINE-FACTS: the destination bridge keeps the MAC learned behind vxlan0 (no
    hairpin) until the instance sends something."""
    fields = simulate_move(MoveCase(announce=False, observer_host="b", guest_ipv6=False))
    assert fields["reached_within_bound"].value is False
