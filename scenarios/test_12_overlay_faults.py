"""Scenario 12: overlay faults of its own: MTU blackhole, stale FDB, lost VTEP."""

from __future__ import annotations

import pytest
from scenario_helpers import assert_passed, check, drill

pytestmark = pytest.mark.backends("sim", "libvirt")


def test_lowered_underlay_mtu_is_caught_and_named_a_blackhole(run_drill):
    """A 1400-byte underlay link drops full-size VXLAN frames silently while small pings
    pass: the overlay check must fail on it and say 'blackhole', and the drill passes."""
    report = run_drill(drill("overlay-mtu-blackhole"))
    assert_passed(report)
    probe = report.extra["commands"]["toward-cmp1"]
    assert probe["reachable"] and not probe["full_size_ok"]
    assert "blackhole" in check(report, "overlay").detail


def test_stale_forwarding_entry_heals_within_the_stated_bound(run_drill):
    """After web1 moves, cmp2's stale FDB entry makes it unreachable from web2; once the
    controller can update cmp2, a probe 2 s after the heal reaches it again."""
    report = run_drill(drill("overlay-stale-fdb"))
    assert_passed(report)
    probes = report.extra["commands"]
    assert not probes["while-stale"]["reachable"] and probes["after-heal"]["reachable"]
    healed = next(f.healed_at for f in report.faults if f.kind == "overlay_fdb_stale")
    assert healed is not None and probes["after-heal"]["started"] - healed <= 2.0


def test_lost_tunnel_endpoint_cuts_off_its_instances_until_restored(run_drill):
    """cmp2's VTEP disappears: web2 (on cmp2) is unreachable over the overlay, and
    reachable again once the endpoint is back."""
    report = run_drill(drill("tunnel-endpoint-down"))
    assert_passed(report)
    probes = report.extra["commands"]
    assert not probes["vtep-down"]["reachable"] and probes["vtep-back"]["reachable"]
