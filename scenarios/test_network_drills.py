"""The network-realisable drills (lab/drills/net-*.yaml) on the simulator and on real kernel
networking: scenarios 1, 3, 8, 11, 12a/b/c, 13 and the network half of 6, on the nova-nbd
topology (volumes served over the network by a storage host instead of a DRBD pair).

Each drill must pass on both backends: the same expectations hold in the model and in
namespaces with kernel VXLAN, nftables and NBD, which cross-checks the simulator against
the real kernel. On netns time is real, so the drills are short (RTO in wall-clock time).
Run them for real as root: `pytest scenarios -k network --lab-backend netns -n 4`.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from scenario_helpers import assert_passed, check, command, drill, from_host, probe

from stackdrill.report.model import Report

pytestmark = pytest.mark.backends("sim", "netns")


def _host_failure(report: Report) -> None:
    """cmp1's instances run on cmp2/cmp3, attached to their volumes over the network."""
    moved = from_host(report, "cmp1")
    assert moved, "nothing ran on cmp1: the drill would prove nothing"
    for inst in moved:
        assert inst.state == "recovered", f"{inst.name}: {inst.state} {inst.reason}"
        assert inst.host_after in ("cmp2", "cmp3"), f"{inst.name} runs on {inst.host_after}"
        assert inst.attach_mode == "remote", f"{inst.name} attached {inst.attach_mode}"
        assert inst.rto_s is not None and inst.rto_s > 0, f"{inst.name}: no RTO measured"
    assert check(report, "acked_writes").data["lost"] == 0
    assert report.state_after["power"]["cmp1"] == "off"


def _maintenance(report: Report) -> None:
    """Every guest of cmp1 was moved off it and runs on another host (CTS's StandbyTest: no
    resource on a node in standby), and cmp1 is powered on again."""
    assert report.state_after["power"]["cmp1"] == "on"
    moved = from_host(report, "cmp1")
    assert moved, "nothing ran on cmp1: the drill would prove nothing"
    for inst in moved:
        assert inst.host_after not in (None, "cmp1"), f"{inst.name} is on {inst.host_after}"


def _overlay(report: Report) -> None:
    """web1 answers ARP with its own MAC on its new host, and the path MTU is 1450."""
    after = probe(report, "after")
    assert after["reachable"] and after["arp_mac"] == after["expected_mac"]
    assert after["path_mtu"] == 1450 and after["full_size_ok"]
    assert "cmp1" not in (report.state_after["running"]["web1"] or [])


def _returning(report: Report) -> None:
    """cmp1 is on again and runs no second copy of anything."""
    assert report.state_after["power"]["cmp1"] == "on"
    for name, hosts in report.state_after["running"].items():
        assert len(hosts) == 1, f"{name} runs on {hosts}"


def _blackhole(report: Report) -> None:
    found = probe(report, "toward-cmp1")
    assert found["reachable"] and not found["full_size_ok"]
    assert "blackhole" in check(report, "overlay").detail


def _stale(report: Report) -> None:
    assert not probe(report, "while-stale")["reachable"]
    assert probe(report, "after-heal")["reachable"]
    healed = next(f.healed_at for f in report.faults if f.kind == "overlay_fdb_stale")
    assert healed is not None and command(report, "after-heal")["started"] - healed <= 2.5


def _vtep(report: Report) -> None:
    assert not probe(report, "vtep-down")["reachable"] and probe(report, "vtep-back")["reachable"]


def _unseen_but_kept(*hosts: str) -> Callable[[Report], None]:
    """The controller lost these hosts' heartbeats (the cut did something) and evacuated
    none of them: each kept its instances and stayed powered on."""
    def check_it(report: Report) -> None:
        detected = [e.label for e in report.timeline if e.lane == "detection"]
        for host in hosts:
            assert any(label.startswith(f"{host}: no heartbeat") for label in detected), \
                f"the controller never missed {host}'s heartbeats: {detected}"
            assert report.state_after["power"][host] == "on"
            for inst in from_host(report, host):
                assert inst.host_after == host, f"{inst.name} moved to {inst.host_after}"
    return check_it


def _partition(report: Report) -> None:
    assert not probe(report, "cut")["reachable"] and probe(report, "healed")["reachable"]
    assert check(report, "acked_writes").data["lost"] == 0


def _throughput(report: Report) -> None:
    """iperf3 measured the 10 Mbit/s limit (TCP payload of full frames: ~9.6 Mbit/s) and the
    overlay's share of it, VXLAN's 50 bytes per frame (0.966)."""
    found = command(report, "web2-to-web1")["throughput"]
    assert 9.0 < found["underlay_mbit"] < 10.0, found
    assert (found["src_host"], found["dst_host"]) == ("cmp2", "cmp1")


DRILLS: dict[str, Callable[[Report], None]] = {
    "net-host-failure": _host_failure,  # scenario 1
    "net-maintenance-reboot": _maintenance,  # 3
    "net-overlay": _overlay,  # 8
    "net-overlay-throughput": _throughput,  # 8, the seed's iperf measurement
    "net-returning-host": _returning,  # 11, during recovery
    "net-returning-host-late": _returning,  # 11, after recovery
    "net-mtu-blackhole": _blackhole,  # 12a
    "net-stale-fdb": _stale,  # 12b
    "net-tunnel-endpoint-down": _vtep,  # 12c
    "net-mgmt-partition": _unseen_but_kept("cmp2"),  # 13
    "net-one-way-heartbeat": _unseen_but_kept("cmp2"),  # Jepsen's one-way partition
    "net-majorities-ring": _unseen_but_kept("cmp2", "cmp3"),  # Jepsen's majorities ring
    "net-partition": _partition,  # 6, the network half
}


@pytest.mark.parametrize("name", sorted(DRILLS))
def test_network_drill(run_drill, name: str) -> None:
    """The drill's own expectations hold, plus what an operator would look at after it."""
    report = run_drill(drill(name))
    assert_passed(report)
    DRILLS[name](report)
