"""The instance ARP cache follows the kernel's neighbour state machine (net/core/neighbour.c)."""

from __future__ import annotations

from stackdrill.backends.sim.neighbour import NeighState, reachable_time
from stackdrill.backends.sim.overlay_pingtrain import ping_train, watch_neighbour
from stackdrill.conformance import labs
from stackdrill.faults import TunnelEndpointDown

FAULT = TunnelEndpointDown(host="a", overlay=labs.OVERLAY)
PEER = labs.INSTANCE_IP["vb"]


def _outage(outage_s: float) -> tuple[list[tuple[float, str]], int, int, float]:
    """va pings vb every 0.2 s; a's vxlan device down at t=1.1 for `outage_s`."""
    lab = labs.sim_lab()
    overlay = lab.overlays[labs.OVERLAY]
    reach = overlay.neighbours("va").reachable_s
    start = lab.kernel.now + 1.1
    lab.kernel.call_later(1.1, lambda: lab.inject(FAULT))
    lab.kernel.call_later(1.1 + outage_s, lambda: lab.heal(FAULT))
    watch = watch_neighbour(overlay, "va", PEER, start, start + outage_s, 0.1)
    result = labs.sim_run(lab, ping_train(overlay, "va", PEER, 0.2, 1.0 + outage_s + 6.0))
    seen = [(t - start, str(s)) for t, s in watch.seen]
    return seen, result.transmitted, result.received, reach


def test_reachable_time_is_drawn_per_device_in_half_to_one_and_a_half_base() -> None:
    draws = {reachable_time(seed, "ov/va") for seed in range(200)}
    assert all(15.0 <= r < 45.0 for r in draws)
    assert max(draws) - min(draws) > 20  # spread over the range, not a constant
    assert reachable_time(7, "ov/va") == reachable_time(7, "ov/va")  # a function of the seed


def test_short_outage_keeps_the_entry_reachable_and_costs_only_its_probes() -> None:
    seen, sent, received, _ = _outage(5.0)
    assert {s for _, s in seen} == {"REACHABLE"}  # MSG_CONFIRM kept it confirmed
    assert sent - received == 25  # 5 s of probes at 0.2 s, nothing more


def test_long_outage_fails_the_entry_after_reachable_delay_and_three_probes() -> None:
    seen, _, received, reach = _outage(60.0)
    failed = next(t for t, s in seen if s == "FAILED")
    # REACHABLE until confirmed + reachable_time, DELAY 5 s, PROBE 3 x 1 s, then FAILED
    assert abs(failed - (reach + 8.0)) <= 0.3
    delay = next(t for t, s in seen if s == "DELAY")
    assert abs(delay - reach) <= 0.3
    assert "PROBE" in {s for _, s in seen}
    assert "INCOMPLETE" in {s for _, s in seen}  # the next probe starts a fresh resolution
    assert received > 0  # and replies resume after the restore


def test_gratuitous_arp_updates_but_never_creates_an_entry() -> None:
    lab = labs.sim_lab()
    table = lab.overlays[labs.OVERLAY].neighbours("va")
    table.heard("10.100.0.99", "fa:16:3e:00:00:99", create=False)
    assert table.state("10.100.0.99") is NeighState.NONE
    table.heard("10.100.0.99", "fa:16:3e:00:00:99", create=True)
    assert table.state("10.100.0.99") is NeighState.STALE
