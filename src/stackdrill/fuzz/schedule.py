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
HOST_KINDS = ("host_crash", "host_hang", "host_reboot")


def topology_dir() -> Path:
    """lab/topologies of the source tree this package lives in (editable install)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "lab" / "topologies"
        if candidate.is_dir():
            return candidate
    return Path.cwd() / "lab" / "topologies"


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
    """Draws one schedule; remembers what is already broken to keep faults apart."""

    def __init__(self, rng: random.Random, targets: Targets) -> None:
        self.rng = rng
        self.t = targets
        self.used: set[tuple[str, ...]] = set()
        self.storage_hit = False

    def _free(self, key: tuple[str, ...]) -> bool:
        return key not in self.used

    def fault(self, kind: str) -> tuple[Fault, bool] | None:
        """A fault of `kind` and whether healing it means anything, or None if none fits."""
        rng, t = self.rng, self.t
        if kind in HOST_KINDS:
            pool = [h for h in t.hosts if self._free(("host", h))
                    and not (h in t.storage and self.storage_hit)]
            if not pool:
                return None
            host = rng.choice(pool)
            self.used.add(("host", host))
            if host in t.storage:
                self.storage_hit = True
            if kind == "host_crash":
                back = rng.random() < 0.5
                return HostCrash(host=host, power_back=back), back
            if kind == "host_hang":
                return HostHang(host=host), True
            return HostReboot(host=host), False
        if kind in ("disk_failure", "slow_disk"):
            disks = [d for d in t.disks if self._free(("disk", *d)) and self._free(("host", d[0]))]
            if kind == "disk_failure" and self.storage_hit:
                return None
            if not disks:
                return None
            host, disk = rng.choice(disks)
            self.used.add(("disk", host, disk))
            if kind == "disk_failure":
                self.storage_hit = True
                return DiskFailure(host=host, disk=disk), True
            return SlowDisk(host=host, disk=disk, latency_ms=rng.choice([5.0, 50.0, 500.0])), True
        if kind in ("link_down", "packet_loss", "rate_limit"):
            links = [lk for lk in t.links if self._free(("link", *lk))]
            if not links:
                return None
            host, net = rng.choice(links)
            self.used.add(("link", host, net))
            if kind == "link_down":
                return LinkDown(host=host, network=net), True
            if kind == "packet_loss":
                p = rng.choice([0.01, 0.1, 0.5])
                return PacketLoss(host=host, network=net, probability=p), True
            return RateLimit(host=host, network=net, mbit=rng.choice([1.0, 10.0, 100.0])), True
        if kind == "partition":
            network: str | None = rng.choice([None, *t.networks])
            members = list(t.hosts if network is None else t.hosts_on(network))
            if len(members) < 2 or not self._free(("partition", network or "*")):
                return None
            rng.shuffle(members)
            cut = rng.randint(1, len(members) - 1)
            groups = (tuple(sorted(members[:cut])), tuple(sorted(members[cut:])))
            self.used.add(("partition", network or "*"))
            return Partition(groups=tuple(sorted(groups)), network=network), True
        raise ValueError(f"unknown fault kind {kind!r}")


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
