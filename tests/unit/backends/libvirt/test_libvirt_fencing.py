"""The cluster's fence path on libvirt: which guests get the fence channel, what the agent
and dlm.conf say, and the lab's fence device acting through the power driver on libvirt's
test driver (real libvirt code: domains are destroyed and read back off). The agent in a
real guest runs in split-brain-stonith on libvirt (scenario 6)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("libvirt")

from libvirt_support import TEST_URI, clvm_pair, unique_lab

from stackdrill.api import PowerState
from stackdrill.backends.libvirt import LibvirtBackend, fencing
from stackdrill.backends.libvirt.cluster import boot_command, dlm_controld_command
from stackdrill.backends.libvirt.drbd import fence_peer_script
from stackdrill.backends.libvirt.lab import LibvirtLab
from stackdrill.backends.libvirt.xmlgen import domain_xml
from stackdrill.topology import ClusterFencing, Topology, parse_topology


def _power_fenced() -> Topology:
    data = clvm_pair().model_dump(mode="json")
    data["clusters"][0]["fencing"] = "power"
    data["drbd"][0]["fencing"] = "resource-and-stonith"
    return parse_topology(data, "<test>")


@pytest.fixture
def lab(monkeypatch: pytest.MonkeyPatch) -> Iterator[LibvirtLab]:
    monkeypatch.setattr(fencing, "FENCE_S", 0.0)
    monkeypatch.setattr(fencing, "FENCE_DELAY_S", 0.2)
    backend = LibvirtBackend(TEST_URI, lab_root=Path("/stackdrill-test"))
    with backend.create(_power_fenced(), lab_name=unique_lab("fence"), seed=1) as created:
        yield created


def test_only_the_nodes_of_a_power_fenced_cluster_get_the_fence_channel() -> None:
    assert fencing.fenced_hosts(_power_fenced()) == ["alice", "bob"]
    assert fencing.fenced_hosts(clvm_pair()) == []  # fencing: manual


def test_the_agent_is_dlm_controlds_fence_all_device_and_drbds_stonith_handler() -> None:
    topo = _power_fenced()
    setup = fencing.install_command(topo, "alice")
    assert f"echo 'fence_all {fencing.AGENT}' > /etc/dlm/dlm.conf" in setup
    assert "1 alice\n2 bob\n" in setup  # node=ID on the agent's stdin names the victim
    assert dlm_controld_command(topo.clusters[0]) == "dlm_controld"  # fencing on
    assert setup in (boot_command(topo, "alice") or "")  # a returning node has it again
    handler = fence_peer_script(topo, "alice")
    assert "r0) peer=bob stonith=1 ;;" in handler
    assert f'{fencing.AGENT} --host "$peer" && exit 7' in handler
    resource_only = topo.model_copy(update={"drbd": (topo.drbd[0].model_copy(
        update={"fencing": "resource-only"}),)})
    assert "stonith=1" not in fence_peer_script(resource_only, "alice")
    manual = topo.clusters[0].model_copy(update={"fencing": ClusterFencing.MANUAL})
    assert fencing.install_command(topo, "alice") not in (
        boot_command(topo.model_copy(update={"clusters": (manual,)}), "alice") or "")


def test_a_fenced_guest_has_the_channel_and_the_lab_reads_its_socket(lab: LibvirtLab) -> None:
    xml = domain_xml(lab.domain_spec("alice"))
    assert f'name="{fencing.CHANNEL}"' in xml
    live = ('<domain><devices><channel type="unix"><source mode="bind" '
            'path="/run/libvirt/qemu/channel/1-x/org.stackdrill.fence.0"/>'
            f'<target type="virtio" name="{fencing.CHANNEL}"/></channel></devices></domain>')
    assert fencing.channel_path(live) == "/run/libvirt/qemu/channel/1-x/org.stackdrill.fence.0"


def test_the_fence_device_powers_the_victim_off_for_a_requester_that_is_on(
        lab: LibvirtLab) -> None:
    assert lab.fence.fence("bob", "alice")
    assert lab.drivers.power.state("bob") is PowerState.OFF
    assert lab.drivers.power.state("alice") is PowerState.ON


def test_a_requester_that_lost_power_meanwhile_fences_nobody(lab: LibvirtLab) -> None:
    """A two-node race: the loser (higher node id, longer delay) is off by the time its
    request would act, so it must not shoot the winner."""
    lab.drivers.power.power_off("bob").result(timeout=10)
    assert not lab.fence.fence("alice", "bob")
    assert lab.drivers.power.state("alice") is PowerState.ON
    assert not lab.fence.fence("carol", "alice")  # not a lab host


def test_a_cluster_that_only_fences_runs_corosync_and_dlm_without_lvmlockd() -> None:
    """nova-drbd's storage cluster locks no VG (cinder-volumes is local) but fences by
    power: its nodes run corosync and dlm_controld with the agent, not lvmlockd, and
    lvm.conf keeps use_lvmlockd = 0 (LVM would otherwise want a global lockspace)."""
    from stackdrill.backends.libvirt.cluster import ENABLE_LVMLOCKD, stack_needed
    from stackdrill.topology import load_topology

    nova = load_topology(Path(__file__).resolve().parents[4] / "lab" / "topologies"
                         / "nova-drbd.yaml")
    assert stack_needed(nova)
    boot = boot_command(nova, "sto1") or ""
    assert fencing.install_command(nova, "sto1") in boot and "dlm_controld" in boot
    assert "lvmlockd" not in boot and ENABLE_LVMLOCKD not in boot
    shared = boot_command(_power_fenced(), "alice") or ""
    assert "lvmlockd -g dlm" in shared and ENABLE_LVMLOCKD in shared
