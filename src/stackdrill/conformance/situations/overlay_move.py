"""An instance moved to another host, seen by an observer on a third host that pings it.

Three hosts a, b, c; `vm` runs on a and moves to b by a cold move of its port (unplugged
from a's bridge, plugged on b's: what the engine does when it moves an instance, without
any host failing); `vo` on c pings vm every 0.2 s throughout. Three variants:

* the controller updates every FDB and vm announces itself (gratuitous ARP);
* the controller updates every FDB, vm sends no announcement (overlay `announce: false`);
* c's FDB is not updated (the `overlay_fdb_stale` fault on c), vm announces itself.

Observed: when the first reply came after vm's port was up on b, and how many probes
were lost, within BOUND_S after it. The netns move takes 0.1-0.2 s (a new namespace and
veth): a probe sent meanwhile is lost wherever it goes; the sim's move is instantaneous.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import simpy

from stackdrill.conformance import labs
from stackdrill.conformance.model import EXACT, Fields, Observed, Situation, within
from stackdrill.conformance.situations.overlay import PING_INTERVAL_S, PingTrain, _parse_ping
from stackdrill.faults import OverlayFdbStale
from stackdrill.topology import Topology, parse_topology

LEAD_S = 1.0
BOUND_S = 10.0
MOVER, OBSERVER = "vm", "vo"
MOVER_IP, OBSERVER_IP = "10.100.0.21", "10.100.0.23"
MOVER_MAC = "fa:16:3e:00:00:21"
ADDRESS = {"a": "10.0.0.1", "b": "10.0.0.2", "c": "10.0.0.3"}


@dataclass(frozen=True)
class MoveCase:
    announce: bool = True  # vm sends a gratuitous ARP once plugged on b
    fdb_update: bool = True  # False: the observer's host's FDB is stale
    observer_host: str = "c"
    guest_ipv6: bool = True  # vm's link-up IPv6 chatter (MLD, DAD)


def topology(case: MoveCase) -> Topology:
    return parse_topology({
        "name": "conformance-move",
        "hosts": [{"name": h, "roles": ["compute"]} for h in ("a", "b", "c")],
        "networks": [{"name": labs.NETWORK, "purposes": ["tunnel"], "cidr": "10.0.0.0/24",
                      "mtu": 1500, "addresses": ADDRESS}],
        "overlays": [{"name": labs.OVERLAY, "vni": 100, "network": labs.NETWORK, "mtu": 1450,
                      "cidr": "10.100.0.0/24", "announce": case.announce,
                      "guest_ipv6": case.guest_ipv6}],
        "flavors": {"tiny": {"vcpus": 1, "ram_mb": 256}},
        "instances": [
            {"name": MOVER, "flavor": "tiny", "host": "a", "overlay": labs.OVERLAY,
             "mac": MOVER_MAC, "ip": MOVER_IP},
            {"name": OBSERVER, "flavor": "tiny", "host": case.observer_host,
             "overlay": labs.OVERLAY,
             "mac": "fa:16:3e:00:00:23", "ip": OBSERVER_IP},
        ],
    }, "conformance-move")


def stale(case: MoveCase) -> OverlayFdbStale:
    return OverlayFdbStale(host=case.observer_host, overlay=labs.OVERLAY)


def _fields(train: PingTrain) -> Fields:
    after = [t for t in train.replies if t >= 0]
    lost = train.transmitted - train.received
    return {
        "reached_within_bound": Observed(value=bool(after)),
        "first_reply_after_move_s": Observed(value=round(after[0], 3) if after else None,
                                             unit="s"),
        "probes_lost": Observed(value=lost, unit="probes"),
    }


# ---------------------------------------------------------------- real kernel

def record_move(case: MoveCase) -> Fields:
    from stackdrill.backends.netns import nsops

    with labs.netns_lab(topology(case)) as lab:
        vo = lab.names.instance_ns(OBSERVER)
        nsops.run(vo, ["ping", "-n", "-q", "-c", "1", "-W", "2", MOVER_IP], timeout=10)
        if not case.fdb_update:
            lab.inject(stale(case))
        ping = subprocess.Popen(["ip", "netns", "exec", vo, "ping", "-D", "-n", "-i",
                                 str(PING_INTERVAL_S), MOVER_IP], stdout=subprocess.PIPE,
                                text=True)
        try:
            time.sleep(LEAD_S)
            lab.instances.plug(MOVER, "b")
            t0 = time.time()  # vm's port is up on b (the plug itself takes ~0.1-0.2 s)
            time.sleep(BOUND_S)
        finally:
            ping.send_signal(signal.SIGINT)
            out, _ = ping.communicate(timeout=10)
    return _fields(_parse_ping(out, t0))


# ---------------------------------------------------------------- simulator

def simulate_move(case: MoveCase) -> Fields:
    from stackdrill.backends.sim.overlay_pingtrain import PingTrainResult, ping_train

    lab = labs.sim_lab(topology(case))
    overlay = lab.overlays[labs.OVERLAY]
    built = 1.0  # the controller's first pushes

    def run() -> Generator[simpy.Event, Any, PingTrainResult]:
        yield lab.kernel.env.timeout(built)
        yield overlay.ping(OBSERVER, MOVER_IP)
        if not case.fdb_update:
            lab.inject(stale(case))
        start = lab.kernel.now + LEAD_S + PING_INTERVAL_S / 2
        lab.kernel.call_later(start - lab.kernel.now,
                              lambda: overlay.plug(MOVER, MOVER_MAC, MOVER_IP, "b"))
        result = yield from ping_train(overlay, OBSERVER, MOVER_IP, PING_INTERVAL_S,
                                       LEAD_S + BOUND_S)
        result.replies = [t - start for t in result.replies]
        return result

    result = labs.sim_run(lab, run())
    return _fields(PingTrain(result.transmitted, result.received, tuple(result.replies)))


# ---------------------------------------------------------------- situations

def _move(name: str, case: MoveCase, what: str) -> Situation:
    return Situation(
        name=name,
        exercises=f"vm moved a -> b (cold, no host failure), {what}: vo on "
                  f"{case.observer_host} pings it every {PING_INTERVAL_S:g} s",
        # the next probe after the move comes 0..0.2 s later; one probe may fall in the
        # real move's own 0.1-0.2 s (recorded twice: 1 lost each time, 0.23-0.25 s from
        # the plug's start)
        tolerances={"reached_within_bound": EXACT,
                    "first_reply_after_move_s": within(PING_INTERVAL_S),
                    "probes_lost": within(1)},
        simulate=lambda: simulate_move(case),
        recorders={"netns": lambda: record_move(case)})


MOVE = (
    _move("vxlan-move-fdb-and-garp", MoveCase(), "FDB updated and a gratuitous ARP"),
    _move("vxlan-move-fdb-no-garp", MoveCase(announce=False), "FDB updated, no announcement"),
    _move("vxlan-move-no-fdb-update", MoveCase(fdb_update=False),
          "c's FDB not updated (stale), a gratuitous ARP"),
    _move("vxlan-move-no-garp-no-ipv6", MoveCase(announce=False, guest_ipv6=False),
          "FDB updated, no announcement, vm without IPv6"),
    _move("vxlan-move-no-garp-observer-on-new-host",
          MoveCase(announce=False, observer_host="b"), "no announcement"),
    _move("vxlan-move-no-garp-no-ipv6-observer-on-new-host",
          MoveCase(announce=False, observer_host="b", guest_ipv6=False),
          "no announcement, vm without IPv6"),
)
