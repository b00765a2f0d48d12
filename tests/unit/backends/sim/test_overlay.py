"""The simulated VXLAN overlay, checked the way an operator checks a real one.

Sources cited in the docstrings: Linux Documentation/networking/vxlan.rst and
drivers/net/vxlan (vxlan_snoop, skb_tunnel_check_pmtu), RFC 7348, and the
"Networking facts" measured on this kernel in /work/shared/MACHINE-FACTS.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import simpy

from stackdrill.backends.sim.hosts import SimHost
from stackdrill.backends.sim.kernel import Kernel
from stackdrill.backends.sim.network import Underlay
from stackdrill.backends.sim.overlay import OverlaySim
from stackdrill.overlay.model import (
    ARP_PACKET,
    ICMP_ECHO_OVERHEAD,
    VXLAN_OVERHEAD,
    PingResult,
    TracepathResult,
    blackhole,
    message_too_long,
)
from stackdrill.topology.model import Host, Network, NetworkPurpose, Overlay, Role, Topology

NET = "tunnel"
ADDR = {"a": "10.0.0.1", "b": "10.0.0.2", "c": "10.0.0.3"}
PORTS = {  # port -> (mac, ip, host)
    "p1": ("fa:16:3e:00:00:01", "192.168.87.1", "a"),
    "p2": ("fa:16:3e:00:00:02", "192.168.87.2", "b"),
    "p3": ("fa:16:3e:00:00:03", "192.168.87.3", "c"),
}


@dataclass
class Rig:
    kernel: Kernel
    underlay: Underlay
    hosts: dict[str, SimHost]
    ov: OverlaySim

    def run(self, event: simpy.Event) -> Any:
        return self.kernel.env.run(until=event)

    def settle(self, seconds: float = 1.0) -> None:
        self.kernel.run_until(self.kernel.now + seconds)

    def ping(self, src: str, dst: str, **kw: Any) -> PingResult:
        result = self.run(self.ov.ping(src, PORTS[dst][1], **kw))
        assert isinstance(result, PingResult)
        return result

    def tracepath(self, src: str, dst: str) -> TracepathResult:
        result = self.run(self.ov.tracepath(src, PORTS[dst][1]))
        assert isinstance(result, TracepathResult)
        return result

    def move(self, port: str, to: str) -> None:
        mac, ip, old = PORTS[port]
        self.ov.unplug(port, old)
        self.ov.plug(port, mac, ip, to)


def topology(overlay_mtu: int = 1450) -> Topology:
    return Topology(
        name="ovl",
        hosts=tuple(Host(name=h, roles=(Role.COMPUTE,), boot_s=30.0) for h in ADDR),
        networks=(Network(name=NET, purposes=(NetworkPurpose.TUNNEL,), cidr="10.0.0.0/24",
                          addresses=ADDR),),
        overlays=(Overlay(name="ov", vni=42, network=NET, cidr="192.168.87.0/24",
                          mtu=overlay_mtu),),
    )


def rig(seed: int = 7, plug: bool = True, overlay_mtu: int = 1450, **kw: Any) -> Rig:
    topo = topology(overlay_mtu)
    kernel = Kernel(seed)
    hosts = {h.name: SimHost(kernel, h) for h in topo.hosts}
    underlay = Underlay(kernel, topo, hosts)
    r = Rig(kernel, underlay, hosts, OverlaySim(kernel, topo.overlays[0], underlay, hosts, **kw))
    if plug:
        for port, (mac, ip, host) in PORTS.items():
            r.ov.plug(port, mac, ip, host)
        r.settle()
    return r


def mac(port: str) -> str:
    return PORTS[port][0]


# ------------------------------------------------------------------ control plane


def test_controller_programs_flood_entries_and_remote_macs_after_push_delay() -> None:
    """MACHINE-FACTS: static unicast FDB = one all-zero MAC entry per peer (`bridge fdb
    append 00:00:00:00:00:00 dst PEER`) plus one entry per peer MAC (vxlan.rst: `bridge fdb
    add to MAC dst IP dev vxlan0`); the controller writes them after its push delay."""
    r = rig(push_delay_s=0.2)
    assert r.ov.flood("a") == [ADDR["b"], ADDR["c"]]
    assert r.ov.fdb("a") == {mac("p2"): ADDR["b"], mac("p3"): ADDR["c"]}
    r.ov.plug("p4", "fa:16:3e:00:00:04", "192.168.87.4", "b")
    r.settle(0.1)
    assert "fa:16:3e:00:00:04" not in r.ov.fdb("a")
    r.settle(0.2)
    assert r.ov.fdb("a")["fa:16:3e:00:00:04"] == ADDR["b"]
    assert "fa:16:3e:00:00:04" not in r.ov.fdb("b")  # local ports have no vxlan entry


def test_arp_request_is_replicated_to_every_vtep_and_the_reply_is_unicast() -> None:
    """RFC 7348 §4.2 with head-end replication instead of multicast: the ARP request (a
    broadcast) goes to every VTEP on the all-zero list; the reply uses the MAC entry."""
    r = rig()
    before = {h: v["rx_frames"] for h, v in r.ov.status()["vteps"].items()}
    assert r.run(r.ov.arping("p1", PORTS["p2"][1])) == mac("p2")
    after = {h: v["rx_frames"] for h, v in r.ov.status()["vteps"].items()}
    assert {h: after[h] - before[h] for h in ADDR} == {"a": 1, "b": 1, "c": 1}


def test_arping_answers_with_the_port_mac_and_nobody_answers_for_an_unused_ip() -> None:
    """The seed's `arping -I vcider-net0 192.168.87.1` check: the owner of the IP answers
    with its MAC; an IP nobody holds gets no reply (after arping's 3 probes)."""
    r = rig()
    assert r.run(r.ov.arping("p3", PORTS["p1"][1])) == mac("p1")
    start = r.kernel.now
    assert r.run(r.ov.arping("p3", "192.168.87.99")) is None
    assert r.kernel.now - start == pytest.approx(3.0)


# ------------------------------------------------------------------ MTU


def test_overlay_path_mtu_is_1450_over_a_1500_underlay() -> None:
    """MACHINE-FACTS: VXLAN path MTU 1450 over a 1500 underlay (tracepath); `ping -M do
    -s 1422` passes and 1423 fails (RFC 7348 §5: 50 bytes of encapsulation on IPv4)."""
    r = rig()
    assert r.tracepath("p1", "p2") == TracepathResult(1450, True, "reached")
    assert r.ping("p1", "p2", size=1422).ok
    too_big = r.ping("p1", "p2", size=1423)
    assert not too_big.ok
    assert too_big.reason == message_too_long(1450)


def test_lowered_underlay_mtu_is_a_named_blackhole_and_tracepath_learns_nothing() -> None:
    """RFC 7348 §4.3: VTEPs must not fragment and oversized frames are silently discarded
    on the path, so no ICMP 'frag needed' comes back: small pings pass, full-size ones
    vanish, and tracepath keeps its 1450 guess without reaching the target."""
    r = rig()
    r.underlay.set_mtu("b", NET, 1400)
    assert r.ping("p1", "p2").ok
    full = r.ping("p1", "p2", size=1422)
    assert not full.ok
    assert blackhole(1422 + ICMP_ECHO_OVERHEAD + VXLAN_OVERHEAD, 1400) in full.reason
    trace = r.tracepath("p1", "p2")
    assert (trace.pmtu, trace.reached) == (1450, False)
    assert "blackhole" in trace.reason


def test_lowered_mtu_on_the_sending_host_returns_frag_needed_to_the_instance() -> None:
    """Linux >= 5.9 vxlan_xmit_one -> skb_tunnel_check_pmtu(..., bridged): a frame too big
    for the local underlay route gets an ICMP 'frag needed' (route MTU - 50) back, so
    tracepath from that side discovers 1350; frames towards that host still blackhole."""
    r = rig()
    r.underlay.set_mtu("b", NET, 1400)
    full = r.ping("p2", "p1", size=1422)
    assert not full.ok
    assert full.reason.startswith("Frag needed and DF set (mtu = 1350)")
    assert r.tracepath("p2", "p1") == TracepathResult(1350, True, "reached")
    no_df = r.ping("p2", "p1", size=1422, df=False)
    assert not no_df.ok  # outer fragments reach a, a's 1500-byte reply dies at b
    assert "reply lost" in no_df.reason and "blackhole" in no_df.reason


def test_overlay_mtu_above_underlay_minus_50_black_holes_full_size_frames() -> None:
    """An overlay MTU the underlay cannot carry is the operator's setting for the guests
    and the bridge; vxlan0 itself carries at most the underlay's MTU - 50 (MACHINE-FACTS:
    a vxlan bound with `dev` refuses more, EINVAL; older kernels clamp it). The bridge
    drops a longer frame without an ICMP: small packets pass, full-size ones vanish, and
    tracepath learns nothing."""
    r = rig(overlay_mtu=1500)
    assert r.ping("p1", "p2").ok
    assert r.ping("p1", "p2", size=1422).ok  # 1450 bytes: what vxlan0 carries
    full = r.ping("p1", "p2", size=1500 - ICMP_ECHO_OVERHEAD)
    assert not full.ok
    assert "vxlan0's MTU is 1450" in full.reason
    assert "Frag needed" not in full.reason
    trace = r.tracepath("p1", "p2")
    assert trace.pmtu == 1500 and not trace.reached


# ------------------------------------------------------------------ latency and loss


def test_round_trip_time_is_two_underlay_crossings_of_the_encapsulated_size() -> None:
    """The overlay adds no time of its own: an echo crosses the underlay as size + 28 + 50
    bytes each way (vCider/VXLAN are peer-to-peer, no relay through the controller)."""
    r = rig()
    assert r.ping("p1", "p2").ok  # resolves ARP first
    result = r.ping("p1", "p2", size=1000)
    one_way = r.underlay.delay("a", "b", NET, 1000 + ICMP_ECHO_OVERHEAD + VXLAN_OVERHEAD)
    assert result.ok
    assert result.rtt_s == pytest.approx(2 * one_way)


def test_underlay_loss_drops_encapsulated_frames() -> None:
    """Loss comes from the underlay: a host whose underlay link drops everything can
    neither resolve nor ping across the overlay, and the reason says so."""
    r = rig()
    r.underlay.set_loss("a", NET, 1.0)
    result = r.ping("p2", "p1")
    assert not result.ok
    assert "packet loss" in result.reason


def test_same_seed_same_trace_under_random_loss() -> None:
    """Determinism (DESIGN: same seed, same trace, byte for byte) with loss drawn from the
    kernel's one RNG through Underlay.send."""

    def drill(seed: int) -> tuple[list[bool], list[str]]:
        r = rig(seed=seed)
        r.underlay.set_loss("b", NET, 0.3)
        oks = [r.ping("p1", "p2").ok for _ in range(20)]
        return oks, r.kernel.tracer.lines()

    first, second = drill(11), drill(11)
    assert first == second
    assert True in first[0] and False in first[0]


# ------------------------------------------------------------------ moves and stale FDB


def _prime(r: Rig) -> None:
    """Traffic from p1 seen on b and c: both bridges learn p1 behind vxlan0."""
    assert r.ping("p2", "p1").ok
    assert r.ping("p3", "p1").ok
    assert r.ov.bridge_fdb("b")[mac("p1")] == "vxlan0"


def test_static_fdb_update_alone_leaves_the_moved_mac_learned_behind_vxlan0() -> None:
    """MACHINE-FACTS pitfall: after an instance moves, updating the static FDB is not
    enough; the destination bridge still holds the MAC as learned behind vxlan0 and drops
    frames for it (no hairpin) until the instance itself sends something (here it runs
    no IPv6, whose link-up chatter would: see test_overlay_move)."""
    r = rig(announce=False, guest_ipv6=False)
    _prime(r)
    r.move("p1", "b")
    r.settle(1.0)
    assert r.ov.fdb("c")[mac("p1")] == ADDR["b"]  # the controller did its part
    broken = r.ping("p3", "p1")
    assert not broken.ok
    assert "learned behind vxlan0" in broken.reason
    # "IPv6 chatter can hide that": any frame from the moved instance re-teaches the bridge.
    assert r.ping("p1", "p3").ok
    assert r.ov.bridge_fdb("b")[mac("p1")] == "p1"
    assert r.ping("p3", "p1").ok


def test_arp_broadcast_re_teaches_the_bridge_after_a_move() -> None:
    """MACHINE-FACTS: the stale learned entry lasts 'until an ARP broadcast re-teaches it':
    the broadcast floods to the moved instance's tap, its reply is learned on that tap."""
    r = rig(announce=False, guest_ipv6=False)
    _prime(r)
    r.move("p1", "b")
    r.settle(1.0)
    assert r.run(r.ov.arping("p3", PORTS["p1"][1])) == mac("p1")
    assert r.ping("p3", "p1").ok


def test_gratuitous_arp_after_the_push_restores_reachability_within_the_bound() -> None:
    """MACHINE-FACTS: a controller also makes the moved instance announce itself; bound =
    controller push delay + the gratuitous ARP's one-way trip on the underlay."""
    r = rig(push_delay_s=0.2)
    _prime(r)
    t0 = r.kernel.now
    r.move("p1", "b")
    early = r.ov.ping("p3", PORTS["p1"][1])
    bound = r.ov.reconverge_bound()
    assert bound == pytest.approx(0.2 + r.underlay.delay("a", "b", NET,
                                                         ARP_PACKET + VXLAN_OVERHEAD))
    r.kernel.run_until(t0 + bound)
    late = r.ov.ping("p3", PORTS["p1"][1])
    assert r.run(late).ok
    r.settle(2.0)
    assert not early.value.ok
    assert r.ov.bridge_fdb("b")[mac("p1")] == "p1"


def test_stale_host_keeps_sending_to_the_old_vtep_until_healed() -> None:
    """A host the controller no longer updates keeps its static entry toward the old VTEP;
    frames from the moved MAC arriving from the new VTEP are dropped by its vxlan0
    (vxlan_snoop: 'Don't migrate static entries, drop packets'), so even arping fails.
    Healing resyncs it after one push delay."""
    r = rig(push_delay_s=0.1)
    _prime(r)
    r.ov.stale_fdb("c", True)
    r.move("p1", "b")
    r.settle(1.0)
    assert r.ov.fdb("c")[mac("p1")] == ADDR["a"]
    assert r.ping("p2", "p1").ok  # hosts the controller still updates are fine
    result = r.ping("p3", "p1")
    assert not result.ok
    assert "stale FDB" in result.reason
    assert r.run(r.ov.arping("p3", PORTS["p1"][1])) is None
    r.ov.stale_fdb("c", False)
    r.settle(0.11)
    assert r.ov.fdb("c")[mac("p1")] == ADDR["b"]
    assert r.ping("p3", "p1").ok


# ------------------------------------------------------------------ tunnel endpoint, power


def test_dead_tunnel_endpoint_blocks_encapsulated_traffic_both_ways_not_the_underlay() -> None:
    """TunnelEndpointDown: with vxlan0 gone (and its FDB with it) nothing is encapsulated
    to or from the host although its underlay link is fine; re-created, the controller
    programs it again."""
    r = rig(push_delay_s=0.1)
    r.ov.tunnel_endpoint("b", False)
    assert r.underlay.connected("a", "b", NET)
    assert r.ov.fdb("b") == {} and r.ov.flood("b") == []
    inbound = r.ping("p1", "p2")
    assert not inbound.ok and "vxlan0 on host b is down" in inbound.reason
    outbound = r.ping("p2", "p1")
    assert not outbound.ok and "vxlan0 on host b is down" in outbound.reason
    r.ov.tunnel_endpoint("b", True)
    r.settle(0.11)
    assert r.ov.fdb("b") == {mac("p1"): ADDR["a"], mac("p3"): ADDR["c"]}
    assert r.ping("p1", "p2").ok and r.ping("p2", "p1").ok


def test_recreated_vxlan0_on_a_stale_host_has_no_forwarding_entry() -> None:
    """A vxlan device comes back empty (vxlan.rst: the FDB lives in the device); if the
    controller does not reach that host, nothing tells it where to send anything."""
    r = rig(push_delay_s=0.1)
    r.ov.stale_fdb("b", True)
    r.ov.recreate_device("b")  # deleted and added again; set down/up keeps the FDB
    r.settle(1.0)
    result = r.ping("p2", "p1")
    assert not result.ok
    assert result.reason.startswith("no ARP reply")
    assert "no forwarding entry on host b" in result.reason
    r.ov.stale_fdb("b", False)
    r.settle(0.11)
    assert r.ping("p2", "p1").ok


def test_a_hung_host_answers_nothing_and_is_named() -> None:
    """A hung host keeps its link carrier but its kernel processes nothing (hosts.py)."""
    r = rig()
    r.hosts["c"].hang()
    result = r.ping("p1", "p3")
    assert not result.ok and "host c is hung" in result.reason
    r.hosts["c"].thaw()
    assert r.ping("p1", "p3").ok


def test_a_crashed_host_loses_its_vtep_and_taps_until_it_boots_and_ports_are_replugged() -> None:
    """Everything a host's kernel holds (bridge, vxlan0, FDB, taps) is volatile: after a
    crash the controller re-programs the VTEP once the host is up; instances come back
    only when plugged again."""
    r = rig(push_delay_s=0.1)
    r.hosts["b"].crash()
    down = r.ping("p1", "p2")
    assert not down.ok and "host b is off" in down.reason
    r.hosts["b"].power_on()
    r.settle(30.0 + 0.05)
    assert r.ov.fdb("b") == {} and r.ov.flood("b") == []  # booted, controller not yet there
    r.settle(0.1)
    assert r.ov.fdb("b") == {mac("p1"): ADDR["a"], mac("p3"): ADDR["c"]}
    assert r.ov.status()["vteps"]["b"]["taps"] == []
    assert not r.ping("p1", "p2").ok
    r.ov.plug("p2", *PORTS["p2"])
    r.settle(0.2)
    assert r.ping("p1", "p2").ok


def test_every_change_is_in_the_kernel_trace() -> None:
    """Every state change goes through kernel.log under overlay/<name>."""
    r = rig()
    r.ov.stale_fdb("c", True)
    r.ov.tunnel_endpoint("a", False)
    lines = [line for line in r.kernel.tracer.lines() if " overlay/ov " in line]
    assert any(" plug " in line and "port=p3" in line for line in lines)
    assert any(" fdb " in line and "host=a" in line for line in lines)
    assert any(" garp " in line for line in lines)
    assert any(" stale-fdb " in line and "on=True" in line for line in lines)
    assert any(" vxlan0 " in line and "up=False" in line for line in lines)
