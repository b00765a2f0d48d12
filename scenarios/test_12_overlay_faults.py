"""Scenario 12: overlay faults of its own: MTU blackhole, stale FDB, lost VTEP."""

from __future__ import annotations

import pytest
from scenario_helpers import assert_passed, assert_sim_agrees, check, command, drill, probe

pytestmark = pytest.mark.backends("sim", "libvirt")


def test_lowered_underlay_mtu_is_caught_and_named_a_blackhole(run_drill):
    """A 1400-byte underlay link drops full-size VXLAN frames silently while small pings
    pass: the overlay check must fail on it and say 'blackhole', and the drill passes."""
    report = run_drill(drill("overlay-mtu-blackhole"))
    assert_passed(report)
    found = probe(report, "toward-cmp1")
    assert found["reachable"] and not found["full_size_ok"]
    assert "blackhole" in check(report, "overlay").detail


def test_stale_forwarding_entry_heals_within_the_stated_bound(run_drill):
    """After web1 moves, cmp2's stale FDB entry makes it unreachable from web2; once the
    controller can update cmp2, a probe 2 s after the heal reaches it again."""
    report = run_drill(drill("overlay-stale-fdb"))
    assert_passed(report)
    assert not probe(report, "while-stale")["reachable"]
    assert probe(report, "after-heal")["reachable"]
    healed = next(f.healed_at for f in report.faults if f.kind == "overlay_fdb_stale")
    assert healed is not None and command(report, "after-heal")["started"] - healed <= 2.0


@pytest.mark.parametrize(("name", "prober", "cut_off"), [
    ("tunnel-endpoint-down", "web1", "web2"),
    pytest.param("vm-tunnel-endpoint-down", "inst-a", "inst-b", marks=pytest.mark.vm),
])
def test_lost_tunnel_endpoint_cuts_off_its_instances_until_restored(
        run_drill, name, prober, cut_off):
    """cmp2's VTEP disappears: its instance is unreachable over the overlay, and reachable
    again once the endpoint is back. vm-tunnel-endpoint-down sets the VXLAN device down
    inside a real guest (marked vm)."""
    report = run_drill(drill(name))
    assert_passed(report)
    down, back = probe(report, "vtep-down"), probe(report, "vtep-back")
    assert (down["src"], down["dst"]) == (back["src"], back["dst"]) == (prober, cut_off)
    assert not down["reachable"] and back["reachable"]
    assert_sim_agrees(report, run_drill)
