"""A seeded generator of random fault schedules over the shipped topologies.

`generate(seed)` always returns the same drill for the same seed (a private
`random.Random(seed)`, never the global one), so a failing seed is a complete
reproduction. Each drill: one shipped topology, a workload, a recovery engine
started at t=0, one to four faults from the catalogue at random times, some of
them healed, and a duration long enough for detection, fencing and recovery.

What the generator avoids, on purpose (each is a scenario of its own, with its
own expected damage, not something a blanket invariant can judge):
- destroying more than one replica of a DRBD resource (crash, hang or disk
  failure on both nodes): the data is then unavailable, not "recovered";
- two faults on the same thing at once (two host-level faults on one host, two
  link faults on one host and network): healing one would undo the other.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from stackdrill.drill.load import parse_drill
from stackdrill.drill.model import Drill, DrillSpec, RecoverSpec, Step, Workload
from stackdrill.faults import (
    DiskFailure,
    Fault,
    HostCrash,
    HostHang,
    HostReboot,
    LinkDown,
    PacketLoss,
    Partition,
    RateLimit,
    SlowDisk,
)
from stackdrill.fuzz.targets import Targets
from stackdrill.shipped import TOPOLOGIES as SHIPPED_TOPOLOGIES
from stackdrill.topology import Topology, load_topology

TOPOLOGIES: tuple[str, ...] = ("nova-drbd", "mirrored-compute", "two-node-clvm")
DURATION_S = 300.0
FIRST_FAULT_S = 20.0
LAST_FAULT_S = 140.0  # leaves >= 150 s for detection (30 s), fencing and recovery
LAST_HEAL_S = 200.0
WRITE_INTERVAL_S = 2.0
PROTOCOL_A_SHARE = 0.15
KIND_WEIGHTS: dict[str, int] = {
    "host_crash": 5, "host_hang": 2, "host_reboot": 2, "disk_failure": 2, "slow_disk": 1,
    "link_down": 3, "partition": 3, "packet_loss": 1, "rate_limit": 1,
}


def topology_dir() -> Path:
    """The shipped topologies (inside the package, so a wheel without a checkout has them)."""
    return SHIPPED_TOPOLOGIES


@cache
def shipped_topology(name: str) -> Topology:
    return load_topology(topology_dir() / f"{name}.yaml")


@dataclass(frozen=True)
class RandomDrill:
    """A generated drill and the seed it came from."""

    seed: int
    drill: Drill

    @property
    def spec(self) -> DrillSpec:
        return self.drill.spec


class _Draw:
    """Draws one schedule; remembers what is already broken to keep faults apart.

    Each fault kind has its generator in `_GENERATORS`: it picks a free target (and
    marks it used), draws the fault's parameters and says whether healing it means
    anything, or returns None when nothing fits. The draws happen in a fixed order:
    a seed always gives the same schedule.
    """

    def __init__(self, rng: random.Random, targets: Targets) -> None:
        self.rng = rng
        self.t = targets
        self.used: set[tuple[str, ...]] = set()
        self.storage_hit = False

    def _free(self, key: tuple[str, ...]) -> bool:
        return key not in self.used

    def fault(self, kind: str) -> tuple[Fault, bool] | None:
        """A fault of `kind` and whether healing it means anything, or None if none fits."""
        try:
            generator = _GENERATORS[kind]
        except KeyError:
            raise ValueError(f"unknown fault kind {kind!r}") from None
        return generator(self)

    # ------------------------------------------------------------ targets

    def _host(self) -> str | None:
        """A host no other host-level fault holds; at most one storage node goes down."""
        pool = [h for h in self.t.hosts if self._free(("host", h))
                and not (h in self.t.storage and self.storage_hit)]
        if not pool:
            return None
        host = self.rng.choice(pool)
        self.used.add(("host", host))
        if host in self.t.storage:
            self.storage_hit = True
        return host

    def _disk(self) -> tuple[str, str] | None:
        """A replica's (host, disk) with no disk fault and no host-level fault on it."""
        disks = [d for d in self.t.disks if self._free(("disk", *d)) and self._free(("host", d[0]))]
        if not disks:
            return None
        host, disk = self.rng.choice(disks)
        self.used.add(("disk", host, disk))
        return host, disk

    def _link(self) -> tuple[str, str] | None:
        """A (host, network) attachment no other link fault holds."""
        links = [lk for lk in self.t.links if self._free(("link", *lk))]
        if not links:
            return None
        host, net = self.rng.choice(links)
        self.used.add(("link", host, net))
        return host, net

    # ------------------------------------------------------------ one per fault kind

    def host_crash(self) -> tuple[Fault, bool] | None:
        host = self._host()
        if host is None:
            return None
        back = self.rng.random() < 0.5
        return HostCrash(host=host, power_back=back), back

    def host_hang(self) -> tuple[Fault, bool] | None:
        host = self._host()
        return None if host is None else (HostHang(host=host), True)

    def host_reboot(self) -> tuple[Fault, bool] | None:
        host = self._host()
        return None if host is None else (HostReboot(host=host), False)

    def disk_failure(self) -> tuple[Fault, bool] | None:
        """A failed disk destroys a replica: never once a storage node is already hit."""
        if self.storage_hit:
            return None
        picked = self._disk()
        if picked is None:
            return None
        self.storage_hit = True
        return DiskFailure(host=picked[0], disk=picked[1]), True

    def slow_disk(self) -> tuple[Fault, bool] | None:
        picked = self._disk()
        if picked is None:
            return None
        latency = self.rng.choice([5.0, 50.0, 500.0])
        return SlowDisk(host=picked[0], disk=picked[1], latency_ms=latency), True

    def link_down(self) -> tuple[Fault, bool] | None:
        picked = self._link()
        return None if picked is None else (LinkDown(host=picked[0], network=picked[1]), True)

    def packet_loss(self) -> tuple[Fault, bool] | None:
        picked = self._link()
        if picked is None:
            return None
        p = self.rng.choice([0.01, 0.1, 0.5])
        return PacketLoss(host=picked[0], network=picked[1], probability=p), True

    def rate_limit(self) -> tuple[Fault, bool] | None:
        picked = self._link()
        if picked is None:
            return None
        mbit = self.rng.choice([1.0, 10.0, 100.0])
        return RateLimit(host=picked[0], network=picked[1], mbit=mbit), True

    def partition(self) -> tuple[Fault, bool] | None:
        """Two random groups of the hosts on one network (or on all, network None)."""
        network: str | None = self.rng.choice([None, *self.t.networks])
        members = list(self.t.hosts if network is None else self.t.hosts_on(network))
        if len(members) < 2 or not self._free(("partition", network or "*")):
            return None
        self.rng.shuffle(members)
        cut = self.rng.randint(1, len(members) - 1)
        groups = (tuple(sorted(members[:cut])), tuple(sorted(members[cut:])))
        self.used.add(("partition", network or "*"))
        return Partition(groups=tuple(sorted(groups)), network=network), True


_GENERATORS: dict[str, Callable[[_Draw], tuple[Fault, bool] | None]] = {
    "host_crash": _Draw.host_crash, "host_hang": _Draw.host_hang,
    "host_reboot": _Draw.host_reboot, "disk_failure": _Draw.disk_failure,
    "slow_disk": _Draw.slow_disk, "link_down": _Draw.link_down,
    "partition": _Draw.partition, "packet_loss": _Draw.packet_loss,
    "rate_limit": _Draw.rate_limit,
}


def _schedule(rng: random.Random, targets: Targets) -> list[Step]:
    draw = _Draw(rng, targets)
    kinds = [k for k in KIND_WEIGHTS if k not in ("disk_failure", "slow_disk") or targets.disks]
    weights = [KIND_WEIGHTS[k] for k in kinds]
    steps: list[Step] = [Step(at=0, recover=RecoverSpec(parallel=rng.choice([1, 2, 4])))]
    for i in range(rng.choice([1, 1, 2, 2, 3, 4])):
        drawn = None
        for _ in range(5):
            drawn = draw.fault(rng.choices(kinds, weights)[0])
            if drawn is not None:
                break
        if drawn is None:
            continue
        fault, healable = drawn
        at = round(rng.uniform(FIRST_FAULT_S, LAST_FAULT_S), 1)
        fid = f"f{i + 1}"
        steps.append(Step(at=at, id=fid, inject=fault))
        if healable and rng.random() < 0.7:
            heal_at = round(min(LAST_HEAL_S, at + rng.uniform(5.0, 120.0)), 1)
            steps.append(Step(at=heal_at, heal=fid))
    return _renumbered(sorted(steps, key=lambda s: s.at))


def _renumbered(steps: list[Step]) -> list[Step]:
    """Fault ids f1, f2, ... in the order the faults happen (easier to read in a report)."""
    names = {s.id: f"f{n}" for n, s in enumerate((s for s in steps if s.inject), 1) if s.id}
    return [s.model_copy(update={"id": names[s.id]}) if s.id in names
            else s.model_copy(update={"heal": names[s.heal]}) if s.heal in names else s
            for s in steps]


def build(seed: int, topology: str, steps: list[Step] | tuple[Step, ...],
          protocol: str = "C", name: str | None = None) -> Drill:
    """A drill over a shipped topology with this schedule (also used by the shrinker)."""
    overrides: dict[str, object] = {}
    if protocol != "C":
        topo = shipped_topology(topology)
        overrides = {f"drbd.{r.name}.protocol": protocol for r in topo.drbd}
        overrides |= {f"networks.{r.network}.latency_ms": 30 for r in topo.drbd}
    spec = DrillSpec(
        name=name or f"random-{seed}",
        description=f"random drill, seed {seed}",
        topology=str(topology_dir() / f"{topology}.yaml"),
        topology_overrides=overrides,
        duration_s=DURATION_S,
        seed=seed,
        workload=Workload(write_interval_s=WRITE_INTERVAL_S),
        schedule=tuple(sorted(steps, key=lambda s: s.at)),
        expect=(),
    )
    data = spec.model_dump(mode="json")
    return parse_drill(data, topology_dir() / f"random-{seed}.yaml")


def generate(seed: int) -> RandomDrill:
    """The random drill for `seed` (the same drill every time)."""
    rng = random.Random(seed)
    topology = rng.choice(TOPOLOGIES)
    topo = shipped_topology(topology)
    single_primary = bool(topo.drbd) and not any(r.allow_two_primaries for r in topo.drbd)
    protocol = "A" if single_primary and rng.random() < PROTOCOL_A_SHARE else "C"
    steps = _schedule(rng, Targets.of(topo))
    return RandomDrill(seed, build(seed, topology, steps, protocol))
