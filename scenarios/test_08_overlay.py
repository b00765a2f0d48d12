"""Scenario 8: the overlay before and after a recovery (arping, ping, tracepath 1450)."""

from __future__ import annotations

import pytest
from scenario_helpers import assert_passed, drill, instance


@pytest.mark.backends("sim", "libvirt")
def test_moved_instance_keeps_mac_and_ip_and_is_reached_at_path_mtu_1450(run_drill):
    """VXLAN over a 1500-byte underlay leaves 1450 for the guests; after web1 moves off the
    dead cmp1, web2 still resolves it by ARP to the same MAC and reaches it full-size."""
    report = run_drill(drill("overlay"))
    assert_passed(report)
    web1 = instance(report, "web1")
    assert web1.host_before == "cmp1" and web1.host_after not in (None, "cmp1")
    probes = report.extra["commands"]
    before, after = probes["before"], probes["after"]
    for probe in (before, after):
        assert probe["reachable"] and probe["full_size_ok"] and probe["path_mtu"] == 1450
    assert after["arp_mac"] == before["arp_mac"] == after["expected_mac"]
