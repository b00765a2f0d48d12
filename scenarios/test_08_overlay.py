"""Scenario 8: the overlay before and after a recovery (arping, ping, tracepath 1450)."""

from __future__ import annotations

import pytest
from scenario_helpers import assert_passed, assert_sim_agrees, drill, instance, probe


@pytest.mark.backends("sim", "libvirt")
@pytest.mark.parametrize(("name", "moved", "prober"), [
    ("overlay", "web1", "web2"),
    pytest.param("vm-overlay", "inst-a", "inst-b", marks=pytest.mark.vm),
])
def test_moved_instance_keeps_mac_and_ip_and_is_reached_at_path_mtu_1450(
        run_drill, name, moved, prober):
    """VXLAN over a 1500-byte underlay leaves 1450 for the guests; after the instance moves
    off the dead cmp1, its peer still resolves it by ARP to the same MAC and reaches it
    full-size. vm-overlay is the same between real guests (kernel VXLAN in each guest,
    programmed by the same controller; marked vm)."""
    report = run_drill(drill(name))
    assert_passed(report)
    inst = instance(report, moved)
    assert inst.host_before == "cmp1" and inst.host_after not in (None, "cmp1")
    before, after = probe(report, "before"), probe(report, "after")
    assert before["src"] == after["src"] == prober
    for found in (before, after):
        assert found["reachable"] and found["full_size_ok"] and found["path_mtu"] == 1450
    assert after["arp_mac"] == before["arp_mac"] == after["expected_mac"]
    assert_sim_agrees(report, run_drill)
