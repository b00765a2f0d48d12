"""A two-node DRBD lab for the DRBD model tests, plus the basic steady-state tests.

Other test_drbd_* modules import `Lab` from here (pytest's default import mode
puts this directory on sys.path).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import pytest
import simpy

from stackdrill.backends.sim.disks import BlockIOError, SimDisk
from stackdrill.backends.sim.drbd import DrbdResourceSim
from stackdrill.backends.sim.hosts import SimHost
from stackdrill.backends.sim.kernel import Kernel
from stackdrill.backends.sim.network import Underlay
from stackdrill.topology import DrbdNetOptions, DrbdResource, Host, Network, Topology
from stackdrill.topology.model import NetworkPurpose, Role


class Lab:
    """Kernel + two hosts (n1 Primary, n2 Secondary) + disks + replication network + r0."""

    def __init__(self, seed: int = 7, bandwidth_mbit: float = 1000.0, latency_ms: float = 0.5,
                 stonith: Callable[[str, str], bool] | None = None,
                 outdate_peer: Callable[[str, str], bool] | None = None,
                 res_kw: dict[str, Any] | None = None, boot_s: float = 30.0,
                 **spec_kw: Any) -> None:
        self.k = Kernel(seed)
        hosts = tuple(Host(name=n, roles=(Role.STORAGE,), boot_s=boot_s) for n in ("n1", "n2"))
        net = Network(name="repl", purposes=(NetworkPurpose.REPLICATION,), cidr="10.0.0.0/24",
                      addresses={"n1": "10.0.0.1", "n2": "10.0.0.2"},
                      bandwidth_mbit=bandwidth_mbit, latency_ms=latency_ms)
        spec_kw.setdefault("primary", ("n1",))
        res_kw = dict(res_kw or {})
        if "connect_int_s" in res_kw:  # the resource's net option (drbd_timing)
            spec_kw["net"] = DrbdNetOptions(connect_int=int(res_kw.pop("connect_int_s")))
        self.spec = DrbdResource(name="r0", nodes=("n1", "n2"), disk="sdb", size_gb=1,
                                 network="repl", **spec_kw)
        topo = Topology(name="lab", hosts=hosts, networks=(net,), drbd=(self.spec,))
        self.hosts = {h.name: SimHost(self.k, h) for h in hosts}
        self.disks = {n: SimDisk(self.k, n, "sdb", 1) for n in ("n1", "n2")}
        self.net = Underlay(self.k, topo, self.hosts)
        self.res = DrbdResourceSim(self.k, self.spec, self.hosts, self.disks, self.net,
                                   stonith=stonith, outdate_peer=outdate_peer,
                                   **(res_kw or {}))
        self.acked: dict[str, dict[int, Any]] = {"n1": {}, "n2": {}}
        self.errors: list[tuple[str, int, str]] = []

    @property
    def now(self) -> float:
        return self.k.now

    def st(self, host: str) -> dict[str, Any]:
        return self.res.status()[host]

    def run(self, until: float) -> None:
        self.k.run_until(until)

    def settle(self, ev: simpy.Event, limit: float = 600.0) -> simpy.Event:
        """Run until `ev` is processed (or `limit` more seconds pass)."""
        end = self.now + limit
        while not ev.processed and self.k.env.peek() <= end:
            self.k.env.step()
        return ev

    def write(self, host: str, addr: int, data: Any) -> simpy.Event:
        """Submit a write; record it as acked when it succeeds, as an error when it fails."""
        ev = self.res.device(host).write(addr, data)

        def done(e: simpy.Event) -> None:
            if e.ok:
                self.acked[host][addr] = data
            else:
                e.defused = True
                self.errors.append((host, addr, str(e.value)))
        ev.callbacks.append(done)
        return ev

    def promote(self, host: str, force: bool = False) -> simpy.Event:
        """drbdadm primary: returns the processed event (ok, or failed with DrbdError)."""
        ev = self.res.promote(host, force=force)
        ev.callbacks.append(lambda e: setattr(e, "defused", True))
        return self.settle(ev)

    def read(self, host: str, addr: int) -> simpy.Event:
        ev = self.res.device(host).read(addr)
        ev.callbacks.append(lambda e: setattr(e, "defused", True))
        return ev

    def workload(self, host: str, count: int, interval: float, base: int = 0,
                 tag: str = "w") -> None:
        """A writer issuing `count` writes `interval` apart, without waiting for completion."""
        def proc() -> Generator[simpy.Event, Any, None]:
            for i in range(count):
                if not self.hosts[host].up:
                    return
                self.write(host, base + i, f"{tag}{i}")
                yield self.k.env.timeout(interval)
        self.k.env.process(proc())

    def lost_on(self, host: str, writer: str) -> list[int]:
        """Writes acked on `writer` whose data is not on `host`'s backing disk."""
        dev = self.res.device(host)
        return [a for a, d in self.acked[writer].items() if dev.peek(a) != d]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.res.events() if e.kind == name]


def test_initial_state_connected_uptodate() -> None:
    """User's Guide 8.4, 2.1 Resource roles / 9.x `drbdadm status`: a configured resource
    starts Connected with UpToDate/UpToDate disks and the configured Primary."""
    lab = Lab()
    st = lab.res.status()
    assert st["n1"].role == "Primary" and st["n2"].role == "Secondary"
    for n in ("n1", "n2"):
        assert st[n].connection == "Connected"
        assert st[n].disk == "UpToDate" and st[n].peer_disk == "UpToDate"
        assert st[n].out_of_sync_kb == 0 and not st[n].split_brain
    assert st["n1"].peer_role == "Secondary"
    # same data generation; the low bit only records the role
    c1, c2 = (int(st[n].uuids.current, 16) for n in ("n1", "n2"))
    assert c1 & ~1 == c2 & ~1 and c1 & 1 == 1 and c2 & 1 == 0


def test_secondary_device_refuses_io() -> None:
    """drbd_main.c drbd_open(): DRBD 8.4 refuses to open a Secondary's device (EROFS for
    writers, EMEDIUMTYPE for readers) — a Secondary is not accessible (UG 2.1)."""
    lab = Lab()
    w = lab.settle(lab.write("n2", 1, "x"))
    r = lab.settle(lab.read("n2", 1))
    assert not w.ok and isinstance(w.value, BlockIOError) and "Read-only" in str(w.value)
    assert not r.ok and isinstance(r.value, BlockIOError)
    assert lab.res.device("n1").peek(1) is None


def test_primary_write_reaches_both_disks_and_reads_back() -> None:
    """UG 1.1 / 2.3: DRBD mirrors every write of the Primary to the peer's backing device."""
    lab = Lab()
    assert lab.settle(lab.write("n1", 5, "hello")).ok
    r = lab.settle(lab.read("n1", 5))
    assert r.ok and r.value == "hello"
    assert lab.disks["n1"].peek(5) == "hello" and lab.res.device("n2").peek(5) == "hello"


def test_every_state_change_is_in_the_trace_and_runs_replay() -> None:
    """Project rule: same seed, same trace; DRBD state changes go through kernel.log."""
    def run() -> tuple[str, list[str]]:
        lab = Lab(seed=3)
        lab.workload("n1", 50, 0.01)
        lab.k.call_later(0.2, lambda: lab.net.set_link("n2", "repl", False))
        lab.k.call_later(20.0, lambda: lab.net.set_link("n2", "repl", True))
        lab.run(60.0)
        return lab.k.tracer.sha256(), lab.k.tracer.lines()
    (sha1, trace), (sha2, _) = run(), run()
    assert sha1 == sha2
    assert any("drbd/r0 connection-lost" in line for line in trace)
    assert any("drbd/r0 resync-finished" in line for line in trace)


def test_unknown_host_and_bad_address() -> None:
    """drbdadm refuses resources not defined on a host; I/O beyond the device end fails."""
    lab = Lab()
    with pytest.raises(Exception, match="not defined"):
        lab.res.device("n3")
    ev = lab.settle(lab.write("n1", 10**9, "x"))
    assert not ev.ok
