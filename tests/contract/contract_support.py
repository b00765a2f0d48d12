"""What the contract suite brings up on every backend, and what each backend cannot do by
its nature (with the reason the tests assert or skip with).

One small topology every backend can realise: a storage host (also the controller) and
two compute hosts, a management network that also carries the overlay, a storage network,
a plain volume group on the storage host with one volume per instance, and two instances
on the overlay. No DRBD and no cluster stack: the netns backend's kernel has neither.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from stackdrill.api import Lab, LabOptions, Traced
from stackdrill.backends import backend_class
from stackdrill.faults import (
    FAULT_KINDS,
    ClockSkew,
    CorruptBlocks,
    Cut,
    DaemonKill,
    DiskFailure,
    Fault,
    HostCrash,
    HostHang,
    HostReboot,
    InstanceCrash,
    LinkDown,
    OverlayFdbStale,
    PacketLoss,
    Partition,
    PowerControllerDown,
    RateLimit,
    SlowDisk,
    TunnelEndpointDown,
    UnderlayMtu,
)
from stackdrill.topology import Topology, parse_topology

T = TypeVar("T")
BACKENDS = ("sim", "libvirt", "netns")
TEST_URI = "test:///default"
HOSTS = ("stor", "cmp1", "cmp2")
INSTANCES = {"web1": ("cmp1", "vol1"), "web2": ("cmp2", "vol2")}  # instance -> (host, volume)
# real backends write every 0.2 s so a history fills within a second of wall time
WRITE_INTERVAL_S = 0.2


def topology() -> Topology:
    """The one topology of the suite (hosts boot in 0.3 s: netns waits it for real)."""
    addresses = {"stor": 1, "cmp1": 11, "cmp2": 12}
    data: dict[str, Any] = {
        "name": "contract",
        "hosts": [
            {"name": "stor", "roles": ["controller", "storage"], "boot_s": 0.3,
             "disks": [{"name": "sdb", "size_gb": 10}]},
            {"name": "cmp1", "roles": ["compute"], "boot_s": 0.3},
            {"name": "cmp2", "roles": ["compute"], "boot_s": 0.3},
        ],
        "networks": [
            {"name": "mgmt", "purposes": ["management", "tunnel"], "cidr": "10.0.0.0/24",
             "addresses": {h: f"10.0.0.{n}" for h, n in addresses.items()}},
            {"name": "storage", "purposes": ["storage"], "cidr": "10.1.0.0/24",
             "addresses": {h: f"10.1.0.{n}" for h, n in addresses.items()}},
        ],
        "overlays": [{"name": "ov", "vni": 100, "network": "mgmt", "cidr": "10.100.0.0/24"}],
        "volume_groups": [{"name": "vg1", "pv": {"host": "stor", "disk": "sdb"}}],
        "volumes": [{"name": "vol1", "vg": "vg1", "size_gb": 1},
                    {"name": "vol2", "vg": "vg1", "size_gb": 1}],
        "flavors": {"small": {"vcpus": 1, "ram_mb": 512}},
        "instances": [
            {"name": name, "flavor": "small", "host": host, "overlay": "ov",
             "mac": f"fa:16:3e:00:00:0{i}", "ip": f"10.100.0.{10 + i}", "volumes": [volume]}
            for i, (name, (host, volume)) in enumerate(INSTANCES.items(), start=1)],
    }
    return parse_topology(data, "<contract>")


# One fault of every catalogue kind on this topology: a new kind must get an entry here,
# and then the suite injects and heals it on every backend that declares it.
FAULTS: dict[str, Fault] = {
    "host_crash": HostCrash(host="cmp2"),
    "host_hang": HostHang(host="cmp2"),
    "host_reboot": HostReboot(host="cmp2"),
    "disk_failure": DiskFailure(host="stor", disk="sdb"),
    "slow_disk": SlowDisk(host="stor", disk="sdb", latency_ms=20),
    "corrupt_blocks": CorruptBlocks(host="stor", disk="sdb", blocks=4),
    "instance_crash": InstanceCrash(instance="web2"),
    "link_down": LinkDown(host="cmp2", network="storage"),
    "partition": Partition(groups=(("cmp1",), ("cmp2", "stor")), network="mgmt"),
    "cut": Cut(pairs=(("cmp1", "cmp2"),), network="mgmt", one_way=True),
    "packet_loss": PacketLoss(host="cmp2", network="storage", probability=0.5),
    "rate_limit": RateLimit(host="cmp2", network="storage", mbit=10),
    "underlay_mtu": UnderlayMtu(host="cmp2", network="mgmt", mtu=1400),
    "overlay_fdb_stale": OverlayFdbStale(host="cmp2", overlay="ov"),
    "tunnel_endpoint_down": TunnelEndpointDown(host="cmp2", overlay="ov"),
    "power_controller_down": PowerControllerDown(host="cmp2"),
    "clock_skew": ClockSkew(host="cmp2", seconds=-45),
    "daemon_kill": DaemonKill(host="stor"),
}
assert set(FAULTS) == set(FAULT_KINDS), "every catalogue fault needs a case in FAULTS"


@dataclass(frozen=True)
class Nature:
    """What a backend cannot do by its nature; None where it can. Each reason is what the
    tests assert the backend says instead, or skip with."""

    guests: str | None = None  # no guest runs: guest-side operations fail with DriverError
    heartbeats: str | None = None  # no compute heartbeats are received
    witnesses: str | None = None  # no witness of the hosts' storage links


NO_AGENT = "libvirt's test driver has no guest agent"
NATURE = {
    "sim": Nature(),
    "netns": Nature(),
    "libvirt": Nature(
        guests=f"{NO_AGENT}: no workload runs and guest-side operations fail",
        heartbeats=f"{NO_AGENT}: heartbeats are pings from inside the guests",
        witnesses="libvirt's witnesses are the hosts' DRBD peers; this topology has none"),
}


def unavailable(backend: str) -> str | None:
    """Why `backend` cannot run the contract here, or None."""
    if backend == "libvirt":
        if importlib.util.find_spec("libvirt") is None:
            return "libvirt-python is not installed (pip install 'stackdrill[vm]')"
        return None  # the test driver runs in-process: no daemon, no root, no image
    return backend_class(backend).available()


def declared_faults(backend: str) -> frozenset[str]:
    return backend_class(backend).capabilities.faults


_serial = itertools.count()


def create(backend: str) -> Lab:
    """The suite's lab on `backend` (libvirt on its in-process test driver)."""
    name = f"ct{os.getpid() % 10000}-{next(_serial)}"
    options = LabOptions(write_interval_s=WRITE_INTERVAL_S)
    if backend == "libvirt":
        from stackdrill.backends.libvirt import LibvirtBackend

        return LibvirtBackend(TEST_URI, lab_root=Path("/stackdrill-contract")).create(
            topology(), lab_name=name, seed=1, options=options)
    return backend_class(backend)().create(topology(), lab_name=name, seed=1, options=options)


# ---------------------------------------------------------------- waiting on lab time


def settle(lab: Lab, future: Future[T], timeout: float = 60.0) -> T:
    """A driver operation's result, waiting on the lab's own clock (the simulator only
    runs while someone waits on it)."""
    lab.clock.wait([future], timeout=timeout)
    assert future.done(), f"not done within {timeout} lab seconds"
    return future.result()


def failure(lab: Lab, future: Future[Any], timeout: float = 60.0) -> BaseException:
    """The error a driver operation failed with (it must fail)."""
    lab.clock.wait([future], timeout=timeout)
    assert future.done(), f"not done within {timeout} lab seconds"
    error = future.exception()
    assert error is not None, f"succeeded with {future.result()!r}"
    return error


def wait_for(lab: Lab, condition: Callable[[], object], what: str,
             timeout: float = 30.0, step: float = 0.1) -> None:
    """Let lab time pass until `condition` holds."""
    deadline = lab.clock.now() + timeout
    while not condition():
        assert lab.clock.now() < deadline, f"{what}: not within {timeout} lab seconds"
        lab.clock.sleep(step)


def of_type(events: list[Traced], kind: type[T]) -> list[T]:
    return [t.event for t in events if isinstance(t.event, kind)]
