"""Scenario 1: a compute host dies for good; its storage is a DRBD pair with protocol C."""

from __future__ import annotations

from pathlib import Path

import pytest
from scenario_helpers import assert_passed, assert_sim_agrees, check, drill, from_host

VAGRANT_STATE = Path("/var/lib/stackdrill/vagrant")


@pytest.mark.backends("sim", "libvirt")
@pytest.mark.parametrize(("name", "survivors"), [
    # the seed's whole lab on guests (6 of them, ~13 min with its comparison): nightly
    pytest.param("nova-host-failure", ("cmp2", "cmp3"), marks=pytest.mark.vm_peer),
    pytest.param("vm-host-failure", ("cmp2",), marks=pytest.mark.vm),
    pytest.param("vm-nova-host-failure", ("cmp2",), marks=pytest.mark.vm),
])
def test_every_instance_of_the_dead_host_runs_on_a_survivor_and_no_write_is_lost(
        run_drill, name, survivors):
    """Protocol C acknowledges a write only once both disks have it, so fencing cmp1 and
    evacuating its guests must lose no acknowledged write and start each exactly once.
    vm-host-failure is the same story on two compute hosts that are also the DRBD pair,
    small enough for real guests (marked vm); vm-nova-host-failure is the seed's shape
    on real guests, a storage pair serving the compute hosts over iSCSI (nova-mini)."""
    report = run_drill(drill(name))
    assert_passed(report)
    moved = from_host(report, "cmp1")
    assert moved, "the topology runs nothing on cmp1: the drill would prove nothing"
    undisturbed = [i.acked_writes for i in report.instances if i.host_before != "cmp1"]
    for inst in moved:
        assert inst.state == "recovered", f"{inst.name}: {inst.state} {inst.reason}"
        assert inst.host_after in survivors, f"{inst.name} runs on {inst.host_after}"
        assert inst.rto_s is not None
        if name.startswith("vm-nova") or name == "nova-host-failure":  # no replica on cmp*
            assert inst.attach_mode == "remote", f"{inst.name}: {inst.attach_mode}"
        # and writing again on its volume: missing only the writes of its downtime (2 s
        # each) next to an instance that never moved, where the topology has one
        if undisturbed:
            assert inst.acked_writes >= min(undisturbed) - (inst.rto_s + 10) / 2, inst
        assert inst.acked_writes > 0, inst
    assert check(report, "acked_writes").data["lost"] == 0
    assert report.state_after["power"]["cmp1"] == "off"
    assert_sim_agrees(report, run_drill)


@pytest.mark.backends("libvirt")
@pytest.mark.vm_peer
def test_machines_made_by_vagrant_recover_the_same_and_vagrant_destroy_leaves_nothing(
        run_drill):
    """Issue 15: the pair's story with the machines made by `vagrant up` (the Vagrantfile,
    the box built from the guest image, Vagrant reaching them over SSH through the lab's
    own namespace), then provisioned and driven by the libvirt lab: it recovers as on the
    libvirt backend's own guests and agrees with the simulator, and its teardown (`vagrant
    destroy`, then what is left) leaves no state directory and no namespace behind."""
    report = run_drill(drill("vm-host-failure"), backend="vagrant")
    assert report.backend == "vagrant"
    assert_passed(report)
    moved = from_host(report, "cmp1")
    assert {i.name for i in moved} == {"inst-a", "inst-b"}
    assert all(i.state == "recovered" and i.host_after == "cmp2" for i in moved), moved
    assert check(report, "acked_writes").data["lost"] == 0
    assert_sim_agrees(report, run_drill)
    assert [p.name for p in VAGRANT_STATE.iterdir()] in (["home"], []), "state left behind"
    netns = Path("/run/netns")
    left = [n.name for n in netns.iterdir() if n.name.endswith("_ssh")] if netns.is_dir() else []
    assert not left, f"SSH namespaces left behind: {left}"
