"""Scenario 19: the acceptance gate on an operator's own configuration files (issue 18).

The seed's two-node story (clustered LVM on dual-primary DRBD, corosync two_node, manual
fencing), written as real drbd.conf / lvm.conf / corosync.conf / CIB / domain XML files
under fixtures/, is imported and put through the gate: every applicable standard drill
passes. Its variant without corosync's two_node fails the gate on the drill that shows
the danger (the survivor is not quorate). On sim in every run; on real guests in the
`vm_peer` set (scripts/test-vm-peer.sh), where each drill's lab time passes for real."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackdrill.dangers import DangerCode
from stackdrill.gate.dangers import danger_drills
from stackdrill.gate.report import GateVerdict
from stackdrill.gate.run import run_gate
from stackdrill.importer import import_config

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ON_GUESTS = pytest.mark.backends("sim", "libvirt")


@ON_GUESTS
@pytest.mark.vm_peer
def test_the_two_node_story_from_its_config_files_passes_the_gate(lab_backend: str) -> None:
    topology = import_config(FIXTURES / "two-node-clvm").topology
    assert danger_drills(topology) == []  # the story carries no known danger
    report = run_gate(topology, backend=lab_backend)
    verdicts = {r.name: r.verdict for r in report.results}
    assert report.verdict is GateVerdict.PASS, {
        r.name: r.failed or r.reason for r in report.results}
    assert set(verdicts.values()) <= {GateVerdict.PASS, GateVerdict.NOT_APPLICABLE}
    assert verdicts["host-loss"] is GateVerdict.PASS
    assert verdicts["split-brain"] is GateVerdict.PASS


@ON_GUESTS
@pytest.mark.vm_peer
def test_the_two_node_story_without_two_node_fails_the_gate_on_quorum(
        lab_backend: str) -> None:
    topology = import_config(FIXTURES / "dangers/two-node-cluster-without-two-node").topology
    name = f"danger-{DangerCode.COROSYNC_TWO_NODES_WITHOUT_TWO_NODE.value}"
    report = run_gate(topology, backend=lab_backend, extra=danger_drills(topology),
                      only={name})
    [result] = report.results
    assert result.verdict is GateVerdict.FAIL
    assert any("quorate=False" in f for f in result.failed), result.failed


@pytest.mark.backends("sim", "netns")
def test_network_gate_fails_an_overlay_mtu_its_underlay_cannot_carry(lab_backend: str) -> None:
    """The overlay story with its overlay MTU at 1500 over a 1500 underlay: on the real
    kernel (netns) as on the simulator, small packets between two hosts' instances pass
    and full-size frames vanish without an ICMP, so the gate fails on the danger's drill
    naming the black hole (the kernel's behaviour is recorded as the conformance
    situation vxlan-mtu-overlay-over-underlay)."""
    topology = import_config(FIXTURES / "dangers/overlay-mtu-over-underlay").topology
    name = f"danger-{DangerCode.OVERLAY_MTU_OVER_UNDERLAY.value}"
    report = run_gate(topology, backend=lab_backend, extra=danger_drills(topology),
                      only={name})
    [result] = report.results
    assert result.verdict is GateVerdict.FAIL, result.reason
    assert result.failed and all("blackhole" in f for f in result.failed), result.failed
    assert any("small packets pass" in f for f in result.failed), result.failed
