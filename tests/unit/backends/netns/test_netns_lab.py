"""A netns lab on the real kernel: what an operator checks after `stackdrill up`."""

from __future__ import annotations

import time
from typing import Any

import pytest
from netns_helpers import in_ns, needs_root, ping, small_topology

from stackdrill.api import LabOptions
from stackdrill.backends.netns import NetnsBackend, nsops
from stackdrill.backends.netns import lab as lab_module
from stackdrill.backends.netns.lab import NetnsLab
from stackdrill.backends.netns.volumes import Volumes
from stackdrill.errors import UnsupportedError

pytestmark = [needs_root, pytest.mark.netns]


def _ours(lab_id: str) -> list[str]:
    return [n for n in nsops.list_namespaces() if n.startswith(f"sd-{lab_id}-")]


def test_backend_declares_what_it_realises() -> None:
    caps = NetnsBackend.capabilities
    assert {"partition", "packet_loss", "rate_limit", "underlay_mtu"} <= caps.faults
    assert "disk_failure" not in caps.faults and "drbd" not in caps.features
    assert NetnsBackend.available() is None


def test_lab_comes_up_with_underlay_overlay_and_a_writing_instance() -> None:
    """The seed's checks: hosts reach each other on the underlay and over the VXLAN overlay
    (static unicast FDB, UDP 4789, no learning); the instance's writes are acknowledged."""
    topo = small_topology("up")
    with NetnsLab(topo, "up", options=LabOptions(write_interval_s=0.05)) as lab:
        n = lab.names
        assert set(_ours(n.lab_id)) >= {n.switch_ns, n.host_ns("ctl"), n.host_ns("cmp1"),
                                         n.host_ns("cmp2"), n.instance_ns("web1")}
        assert ping(n.host_ns("cmp1"), "10.0.0.12")
        ov = lab.overlay.overlays["ov"]
        assert ping(n.host_ns("cmp1"), ov.host_ips["cmp2"])
        assert ping(n.host_ns("cmp2"), "10.100.0.10")  # the instance, across the overlay
        details = in_ns(n.host_ns("cmp1"), "ip", "-d", "link", "show", n.vxlan_if(0))
        assert "id 100" in details and "dstport 4789" in details and "nolearning" in details
        fdb = lab.overlay.programmed("ov", "cmp2")
        assert ("00:00:00:00:00:00", "10.0.0.1") in fdb
        assert ("fa:16:3e:00:00:01", "10.0.0.11") in fdb  # the instance, behind cmp1
        # the overlay bridge has the fixed MAC the controller advertises
        assert n.bridge_mac(0, 2) in in_ns(n.host_ns("cmp2"), "ip", "link", "show",
                                           n.overlay_bridge(0))
        deadline = time.monotonic() + 5
        while len([o for o in lab.history() if o.outcome == "ok"]) < 5:
            assert time.monotonic() < deadline, "no acknowledged writes"
            time.sleep(0.05)
        stored = lab.stored_records("vol1")
        for op in lab.history():
            if op.outcome == "ok":
                assert stored[op.seq].checksum == op.checksum
        obs = lab.observe()
        assert obs.running == {"web1": ["cmp1"]}
        assert lab.drivers.compute.health("cmp1").last_heartbeat is not None
        lab_id = n.lab_id
    assert _ours(lab_id) == []


def test_path_mtu_over_the_overlay_is_1450() -> None:
    """MACHINE-FACTS: VXLAN over a 1500 underlay: `ping -M do -s 1422` passes, 1423 fails."""
    with NetnsLab(small_topology("mtu", with_volume=False), "mtu") as lab:
        ns = lab.names.host_ns("cmp2")
        assert ping(ns, "10.100.0.10", "-M", "do", "-s", "1422")
        assert not ping(ns, "10.100.0.10", "-M", "do", "-s", "1423")


def test_two_labs_of_one_topology_run_side_by_side() -> None:
    """Same addresses and VNIs in both: each lab's namespaces keep them apart."""
    topo = small_topology("twin", with_volume=False)
    with NetnsLab(topo, "a") as a, NetnsLab(topo, "b") as b:
        assert a.names.lab_id != b.names.lab_id
        a.power_off_host("cmp1")
        assert not ping(a.names.host_ns("cmp2"), "10.100.0.10")
        assert ping(b.names.host_ns("cmp2"), "10.100.0.10")


def test_a_failed_bring_up_leaves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Volumes, host: str) -> None:
        raise RuntimeError("nbdkit refused")

    monkeypatch.setattr(Volumes, "start_host", broken)
    created: list[str] = []
    real_allocate = lab_module.allocate

    def remember(name: str, **kwargs: Any) -> Any:
        names, stale = real_allocate(name, **kwargs)
        created.append(names.ns_prefix)
        return names, stale

    monkeypatch.setattr(lab_module, "allocate", remember)
    with pytest.raises(RuntimeError, match="nbdkit refused"):
        NetnsLab(small_topology("broken"), "broken")
    assert created  # other labs (parallel tests) may come and go: look at this one's only
    assert not [n for n in nsops.list_namespaces() if n.startswith(created[0])]


def test_drbd_topologies_are_refused_with_the_reason() -> None:
    topo = small_topology("drbd").model_copy(update={"drbd": ("x",)})
    with pytest.raises(UnsupportedError, match="DRBD"):
        NetnsLab(topo, "drbd")
