"""Scenario 3: planned maintenance reboot of cmp1 with guests on remote volumes."""

from __future__ import annotations

import pytest
from scenario_helpers import assert_passed, assert_sim_agrees, check, drill, from_host


@pytest.mark.backends("sim", "libvirt")
@pytest.mark.vm_peer  # the whole nova-drbd lab on 6 guests: ~13 min on libvirt, nightly
def test_drained_guests_come_back_writing_including_remote_volumes(run_drill):
    """Draining cmp1 must leave every guest running exactly once, with its iSCSI volume
    reattached (the seed's failure: a plain reboot left such guests without their disk)."""
    report = run_drill(drill("maintenance-reboot"))
    assert_passed(report)
    drained = from_host(report, "cmp1")
    undisturbed = min(i.acked_writes for i in report.instances if i.host_before != "cmp1")
    assert drained
    for inst in drained:
        assert inst.state in ("recovered", "resumed", "running"), f"{inst.name}: {inst.state}"
        assert inst.host_after is not None and "," not in inst.host_after
        # back and writing: at most 40 s (20 writes at one per 2 s) without progress
        assert inst.acked_writes >= undisturbed - 20, (inst.name, inst.acked_writes)
    assert any(i.attach_mode == "remote" for i in drained), "no guest with a remote volume"
    assert check(report, "acked_writes").data["lost"] == 0
    assert_sim_agrees(report, run_drill)
