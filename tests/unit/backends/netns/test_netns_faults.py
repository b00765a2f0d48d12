"""Real faults on the kernel, each healed exactly (one lab shared by the module)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest
from netns_helpers import in_ns, needs_root, ping, small_topology

from stackdrill.backends.netns.lab import NetnsLab
from stackdrill.faults.catalogue import (
    HostCrash,
    LinkDown,
    OverlayFdbStale,
    PacketLoss,
    Partition,
    RateLimit,
    TunnelEndpointDown,
    UnderlayMtu,
)

pytestmark = [needs_root, pytest.mark.netns]


@pytest.fixture(scope="module")
def lab() -> Iterator[NetnsLab]:
    with NetnsLab(small_topology("faults", with_volume=False), "faults") as it:
        yield it


@pytest.fixture(autouse=True)
def healed(lab: NetnsLab) -> Iterator[None]:
    yield
    lab.faults.heal_all()
    assert not lab.faults.active


def ns(lab: NetnsLab, host: str) -> str:
    return lab.names.host_ns(host)


def test_link_down_cuts_the_host_and_heal_brings_it_back(lab: NetnsLab) -> None:
    fault = LinkDown(host="cmp1", network="mgmt")
    lab.inject(fault)
    assert not ping(ns(lab, "cmp2"), "10.0.0.11")
    assert "state DOWN" in in_ns(ns(lab, "cmp1"), "ip", "link", "show", lab.names.underlay_if(0))
    lab.heal(fault)
    assert ping(ns(lab, "cmp2"), "10.0.0.11", count=3, wait=2)


def test_partition_separates_groups_only(lab: NetnsLab) -> None:
    """cmp1 | cmp2: they lose each other (and the overlay between them); ctl sees both."""
    fault = Partition(groups=(("cmp1",), ("cmp2",)))
    lab.inject(fault)
    assert not ping(ns(lab, "cmp2"), "10.0.0.11")
    assert not ping(ns(lab, "cmp2"), "10.100.0.10")  # the instance on cmp1, via VXLAN
    assert ping(ns(lab, "ctl"), "10.0.0.11") and ping(ns(lab, "ctl"), "10.0.0.12")
    tables = in_ns(ns(lab, "cmp1"), "nft", "list", "tables")
    assert f"sd_{lab.names.lab_id}_part" in tables
    lab.heal(fault)
    assert in_ns(ns(lab, "cmp1"), "nft", "list", "tables").strip() == ""
    assert ping(ns(lab, "cmp2"), "10.100.0.10")


def test_packet_loss_drops_that_share_of_packets(lab: NetnsLab) -> None:
    lab.inject(PacketLoss(host="cmp1", network="mgmt", probability=1.0))
    assert not ping(ns(lab, "cmp1"), "10.0.0.12")
    lab.faults.heal_all()
    half = PacketLoss(host="cmp1", network="mgmt", probability=0.5)
    lab.inject(half)
    assert "numgen random mod 10000 < 5000" in in_ns(ns(lab, "cmp1"), "nft", "list", "ruleset")
    out = subprocess.run(["ip", "netns", "exec", ns(lab, "cmp1"), "ping", "-n", "-q", "-c",
                          "60", "-i", "0.002", "-W", "0.2", "10.0.0.12"], capture_output=True,
                         text=True, timeout=30, check=False).stdout
    loss = float(out.split("% packet loss")[0].split()[-1])
    assert 20 <= loss <= 80, out  # binomial(60, 0.5): outside this once in ~10^5 runs
    lab.heal(half)
    assert ping(ns(lab, "cmp1"), "10.0.0.12", count=5)


def test_rate_limit_shapes_both_directions_and_heal_removes_every_qdisc(lab: NetnsLab) -> None:
    ifname = lab.names.underlay_if(0)
    before = in_ns(ns(lab, "cmp1"), "tc", "qdisc", "show", "dev", ifname)
    fault = RateLimit(host="cmp1", network="mgmt", mbit=10)
    lab.inject(fault)
    qdiscs = in_ns(ns(lab, "cmp1"), "tc", "qdisc", "show")
    assert "tbf" in qdiscs and "rate 10Mbit" in qdiscs and "ingress" in qdiscs
    assert lab.names.ifb(0) in in_ns(ns(lab, "cmp1"), "ip", "link", "show")
    # what `tc qdisc add dev LINK handle ffff: ingress` and `tc filter add dev LINK parent
    # ffff: protocol all u32 match u32 0 0 action mirred egress redirect dev IFB` made
    ingress = [q for q in json.loads(in_ns(ns(lab, "cmp1"), "tc", "-j", "qdisc", "show", "dev",
                                           ifname)) if q["kind"] == "ingress"]
    assert [(q["handle"], q["parent"]) for q in ingress] == [("ffff:", "ffff:fff1")]
    (*_, rule) = json.loads(in_ns(ns(lab, "cmp1"), "tc", "-j", "filter", "show", "dev",
                                  ifname, "parent", "ffff:"))
    assert (rule["protocol"], rule["kind"], rule["pref"]) == ("all", "u32", 49152)
    assert rule["options"]["match"] == {"value": "0", "mask": "0", "offmask": "", "off": 0}
    (action,) = rule["options"]["actions"]
    assert (action["kind"], action["mirred_action"], action["direction"], action["to_dev"],
            action["control_action"]) == ("mirred", "redirect", "egress", lab.names.ifb(0),
                                          {"type": "stolen"})
    lab.heal(fault)
    assert in_ns(ns(lab, "cmp1"), "tc", "qdisc", "show", "dev", ifname) == before
    assert lab.names.ifb(0) not in in_ns(ns(lab, "cmp1"), "ip", "link", "show")


def test_lowered_underlay_mtu_drops_full_size_overlay_frames_silently(lab: NetnsLab) -> None:
    """The seed's tracepath case: small packets pass, full-size encapsulated frames vanish."""
    fault = UnderlayMtu(host="cmp1", network="mgmt", mtu=1400)
    lab.inject(fault)
    src = ns(lab, "cmp2")
    assert ping(src, "10.100.0.10", "-s", "200")
    assert not ping(src, "10.100.0.10", "-M", "do", "-s", "1422")
    assert not ping(src, "10.0.0.11", "-M", "do", "-s", "1472")  # underlay too
    features = in_ns(ns(lab, "cmp2"), "ethtool", "-k", lab.names.underlay_if(0))
    for off in ("tcp-segmentation-offload: off", "generic-segmentation-offload: off",
                "tx-udp_tnl-segmentation: off", "tx-udp_tnl-csum-segmentation: off"):
        assert off in features
    lab.heal(fault)
    assert ping(src, "10.100.0.10", "-M", "do", "-s", "1422", count=2)
    features = in_ns(ns(lab, "cmp2"), "ethtool", "-k", lab.names.underlay_if(0))
    assert "generic-segmentation-offload: on" in features


def test_heal_of_a_lowered_mtu_restores_exactly_the_offloads_it_turned_off(
        lab: NetnsLab) -> None:
    """One TCP segmentation feature already off stays off: heal turns back on only what
    the fault turned off (`ethtool -K tso on` turned on the whole group)."""
    dev = lab.names.underlay_if(0)
    in_ns(ns(lab, "cmp2"), "ethtool", "-K", dev, "tx-tcp-mangleid-segmentation", "off")
    try:
        before = in_ns(ns(lab, "cmp2"), "ethtool", "-k", dev)
        assert "tx-tcp-mangleid-segmentation: off" in before
        fault = UnderlayMtu(host="cmp1", network="mgmt", mtu=1400)
        lab.inject(fault)
        assert "tcp-segmentation-offload: off" in in_ns(ns(lab, "cmp2"), "ethtool", "-k", dev)
        lab.heal(fault)
        assert in_ns(ns(lab, "cmp2"), "ethtool", "-k", dev) == before
    finally:
        in_ns(ns(lab, "cmp2"), "ethtool", "-K", dev, "tx-tcp-mangleid-segmentation", "on")


def test_stale_fdb_loses_a_moved_instance_until_healed(lab: NetnsLab) -> None:
    """A host the controller no longer updates keeps sending to the old location."""
    fault = OverlayFdbStale(host="ctl", overlay="ov")
    lab.inject(fault)
    lab.drivers.network.plug("web1", "cmp2").result(timeout=10)
    try:
        assert ping(ns(lab, "cmp1"), "10.100.0.10", count=2)  # updated host: fine
        assert not ping(ns(lab, "ctl"), "10.100.0.10", count=2)
        assert ("fa:16:3e:00:00:01", "10.0.0.11") in lab.overlay.programmed("ov", "ctl")
        lab.heal(fault)
        assert ("fa:16:3e:00:00:01", "10.0.0.12") in lab.overlay.programmed("ov", "ctl")
        assert ping(ns(lab, "ctl"), "10.100.0.10", count=3, wait=2)
    finally:
        lab.drivers.network.plug("web1", "cmp1").result(timeout=10)


def test_dead_tunnel_endpoint_keeps_the_underlay(lab: NetnsLab) -> None:
    fault = TunnelEndpointDown(host="cmp1", overlay="ov")
    before = lab.overlay.programmed("ov", "cmp1")
    lab.inject(fault)
    assert not ping(ns(lab, "cmp2"), "10.100.0.10")
    assert ping(ns(lab, "cmp2"), "10.0.0.11")
    lab.heal(fault)
    assert lab.overlay.programmed("ov", "cmp1") == before
    assert ping(ns(lab, "cmp2"), "10.100.0.10", count=3, wait=2)


def test_host_crash_kills_processes_and_links_and_power_back_boots_it(lab: NetnsLab) -> None:
    fault = HostCrash(host="cmp1")
    lab.inject(fault)
    assert lab.drivers.power.state("cmp1").value == "off"
    assert lab.observe().running["web1"] == []
    from stackdrill.backends.netns import nsops

    assert nsops.ns_pids(ns(lab, "cmp1")) == []
    assert not ping(ns(lab, "ctl"), "10.0.0.11")
    switch = lab.drivers.compute.witnesses("cmp1")
    assert [w.name for w in switch] == ["switch"] and not switch[0].sees_host
    lab.heal(fault)
    assert lab.drivers.power.state("cmp1").value == "on"
    assert ping(ns(lab, "ctl"), "10.0.0.11", count=3, wait=2)
    assert lab.observe().running["web1"] == ["cmp1"]  # resumed: nobody evacuated it
