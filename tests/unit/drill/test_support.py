"""Declared limits: a drill asking a backend for more than it declared is refused up front,
naming the fault (or feature) and the backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackdrill.backends import backend_class
from stackdrill.drill import load_drill
from stackdrill.drill.support import ensure_supported, unsupported
from stackdrill.errors import UnsupportedError

DRILLS = Path(__file__).resolve().parents[3] / "lab" / "drills"


def test_sim_realises_every_shipped_drill() -> None:
    caps = backend_class("sim").capabilities
    for path in sorted(DRILLS.glob("*.yaml")):
        assert unsupported(load_drill(path), "sim", caps) == [], path.name


def test_netns_refuses_a_disk_failure_drill_naming_fault_and_backend() -> None:
    caps = backend_class("netns").capabilities
    drill = load_drill(DRILLS / "disk-failure.yaml")
    with pytest.raises(UnsupportedError) as info:
        ensure_supported(drill, "netns", caps)
    message = str(info.value)
    assert "schedule[0].inject: backend 'netns' cannot realise fault 'disk_failure'" in message
    assert "backend 'netns' cannot realise drbd" in message


def test_libvirt_refuses_sanlock_locking_it_would_otherwise_run_on_the_dlm(
        tmp_path: Path) -> None:
    """The guests run lvmlockd with the DLM only; a topology asking for sanlock leases
    (whose expiry the simulator models) is refused on libvirt, not run as the DLM."""
    topo = (DRILLS.parent / "topologies" / "two-node-clvm.yaml").read_text()
    assert "    locking: clustered\n" in topo
    (tmp_path / "topo.yaml").write_text(topo.replace(
        "    locking: clustered\n", "    locking: lvmlockd\n    lock_manager: sanlock\n"))
    drill = (DRILLS / "clvm-concurrent.yaml").read_text()
    (tmp_path / "drill.yaml").write_text(
        drill.replace("../topologies/two-node-clvm.yaml", "topo.yaml"))
    loaded = load_drill(tmp_path / "drill.yaml")
    assert unsupported(loaded, "sim", backend_class("sim").capabilities) == []
    problems = unsupported(loaded, "libvirt", backend_class("libvirt").capabilities)
    assert problems == ["topology volume_groups[0].lock_manager (sanlock): backend "
                        "'libvirt' cannot realise sanlock"]


def test_libvirt_refuses_an_overlay_without_announcements_it_cannot_switch_off(
        tmp_path: Path) -> None:
    """The guests announce themselves as their own stacks do; `announce: false` (or
    `guest_ipv6: false`) runs on sim and netns and is refused on libvirt, not ignored."""
    topo = (DRILLS.parent / "topologies" / "nova-drbd.yaml").read_text()
    line = "cidr: 192.168.87.0/24}"
    assert line in topo
    (tmp_path / "topo.yaml").write_text(topo.replace(line, line[:-1] + ", announce: false}"))
    drill = (DRILLS / "overlay.yaml").read_text()
    assert "../topologies/nova-drbd.yaml" in drill
    (tmp_path / "drill.yaml").write_text(
        drill.replace("../topologies/nova-drbd.yaml", "topo.yaml"))
    loaded = load_drill(tmp_path / "drill.yaml")
    assert unsupported(loaded, "sim", backend_class("sim").capabilities) == []
    assert "overlay-switches" in backend_class("netns").capabilities.features
    problems = unsupported(loaded, "libvirt", backend_class("libvirt").capabilities)
    assert ("topology overlays[0].announce (tenant: false): backend 'libvirt' cannot "
            "realise overlay-switches") in problems


def test_a_cluster_that_fences_by_power_runs_on_libvirt_through_the_lab_fence_agent() -> None:
    """The guests' DLM and DRBD's stonith handler shoot through the lab's fence agent
    (libvirt/fencing.py), so a cluster with `fencing: power` (split-brain-stonith: the
    cluster shoots one primary) runs there as on the simulator; before that agent it was
    refused, not run with nobody shot."""
    drill = load_drill(DRILLS / "split-brain-stonith.yaml")
    assert unsupported(drill, "sim", backend_class("sim").capabilities) == []
    assert unsupported(drill, "libvirt", backend_class("libvirt").capabilities) == []
    assert "cluster-power-fencing" not in backend_class("netns").capabilities.features


def test_sim_refuses_a_throughput_probe_in_a_drill_that_loses_frames(tmp_path: Path) -> None:
    """The simulator's iperf3 is the link arithmetic of an intact path (recorded:
    tbf-overlay-ratio); what TCP carries under loss or a lowered MTU is not modelled, so
    such a drill is refused on sim, named, and runs on the real kernel."""
    drill = (DRILLS / "net-overlay-throughput.yaml").read_text()
    lossy = drill.replace(
        "  - {at: 2, run:",
        "  - {at: 1.5, inject: {kind: packet_loss, host: cmp2, network: tunnel, "
        "probability: 0.05}}\n  - {at: 2, run:")
    assert lossy != drill
    (tmp_path / "d.yaml").write_text(lossy.replace("../topologies/", f"{DRILLS.parent}/"
                                                   "topologies/"))
    loaded = load_drill(tmp_path / "d.yaml")
    assert unsupported(loaded, "sim", backend_class("sim").capabilities) == [
        "schedule[2].run (iperf3) with schedule[1].inject: backend 'sim' does not model TCP "
        "throughput while frames are lost or refused"]
    assert unsupported(loaded, "netns", backend_class("netns").capabilities) == []


def test_libvirt_refuses_a_disk_swap_up_front_but_runs_a_disk_save_and_restore(
        tmp_path: Path) -> None:
    """No real backend swaps a disk in a running guest yet: a drill asking for `disk
    replace` is refused before its lab boots, not run to a failed command; `save` and
    `restore` (dd in the guest) run on libvirt."""
    revert = DRILLS / "drbd-revert-older-data.yaml"
    caps = backend_class("libvirt").capabilities
    assert unsupported(load_drill(revert), "libvirt", caps) == []
    text = revert.read_text().replace("../topologies/", f"{DRILLS.parent}/topologies/")
    (tmp_path / "swap.yaml").write_text(text.replace("op: restore", "op: replace"))
    assert unsupported(load_drill(tmp_path / "swap.yaml"), "libvirt", caps) == [
        "schedule[6].run: backend 'libvirt' has no disk-swap"]


def test_netns_refuses_iscsi_timeouts_its_nbd_client_does_not_have(tmp_path: Path) -> None:
    """The initiators' timeouts (`iscsi`) are realised by open-iscsi on libvirt and
    modelled on sim; the netns workload's NBD client has none, so a topology that sets
    them is refused there rather than run with different ones."""
    topo = (DRILLS.parent / "topologies" / "nova-mini.yaml").read_text()
    (tmp_path / "topo.yaml").write_text(topo + "iscsi: {replacement_timeout: 10}\n")
    drill = (DRILLS / "vm-storage-primary-loss.yaml").read_text()
    (tmp_path / "drill.yaml").write_text(
        drill.replace("../topologies/nova-mini.yaml", "topo.yaml"))
    loaded = load_drill(tmp_path / "drill.yaml")
    assert loaded.topology.iscsi.replacement_timeout == 10
    for backend in ("sim", "libvirt"):
        assert unsupported(loaded, backend, backend_class(backend).capabilities) == []
    problems = unsupported(loaded, "netns", backend_class("netns").capabilities)
    assert "topology iscsi (replacement_timeout: 10): backend 'netns' cannot realise " \
           "iscsi-timeouts" in problems
