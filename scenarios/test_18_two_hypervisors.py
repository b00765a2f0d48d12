"""A lab across two libvirt daemons: scenario 1 with the replica's host on a second daemon.

On libvirt the second daemon is scripts/second-libvirtd.sh's (its own network and mount
namespace, its own bridges, a veth underlay): this test starts it when it is not running
and stops it again afterwards; DRBD replication, the heartbeats and the management network
cross VXLAN between the two daemons' bridges. Nightly (`vm_peer`, ~6 min on guests)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from scenario_helpers import ROOT, assert_passed, assert_sim_agrees, check, drill, from_host

from stackdrill.backends.libvirt.records import local_daemons

SCRIPT = ROOT / "scripts" / "second-libvirtd.sh"


@pytest.fixture
def second_daemon(lab_backend: str) -> Iterator[None]:
    """hv2, on libvirt: started here unless it runs already (then left running)."""
    if lab_backend != "libvirt":
        yield
        return
    if os.geteuid() != 0:
        pytest.skip("a second libvirt daemon needs root")
    running = any("/hv/hv2/" in uri for uri in local_daemons())
    if not running:
        subprocess.run(["bash", str(SCRIPT), "start", "hv2"], check=True, timeout=120)
    try:
        yield
    finally:
        if not running:
            subprocess.run(["bash", str(SCRIPT), "stop", "hv2"], check=True, timeout=120)
            assert not Path("/run/netns/sdhv-hv2").exists()


@pytest.mark.backends("sim", "libvirt")
@pytest.mark.vm_peer
def test_a_host_on_another_daemon_takes_over_as_on_one_daemon(
        run_drill, second_daemon) -> None:
    """cmp1 (this machine's daemon) dies; cmp2, its DRBD peer on the second daemon, is
    promoted and runs both instances: protocol C across VXLAN loses no acknowledged write,
    and the simulator (which ignores where a host runs) reaches the same end."""
    report = run_drill(drill("vm-host-failure-two-hv"))
    assert_passed(report)
    moved = from_host(report, "cmp1")
    assert moved
    for inst in moved:
        assert (inst.state, inst.host_after) == ("recovered", "cmp2"), inst
        assert inst.acked_writes > 0, inst
    assert check(report, "acked_writes").data["lost"] == 0
    assert_sim_agrees(report, run_drill)
