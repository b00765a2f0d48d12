"""Placement: where each instance of a failed host goes, and why an instance cannot go anywhere.

Deterministic by construction: instances are taken largest first (first-fit
decreasing packs best), then by name; hosts are ranked by a key with the host
name last. Filters follow Nova's scheduler: capacity with allocation ratios
(ComputeFilter/RAM/CPU), server-group anti-affinity; then the storage question
Nova does not ask: can the target reach an up-to-date copy of every volume.
Weighers: a host holding a local replica of the volumes first (no network hop
on every I/O), then the most free RAM (Nova's RAMWeigher spreads).
Reserved hosts (Masakari's spares) are used according to the recovery method.
Given each host's free flow slots (capacity.py), a host with none left is passed over,
and an instance whose every fitting host is busy waits for the next round instead of
being declared unplaceable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from stackdrill.api import AttachMode, Replica
from stackdrill.recovery.config import RecoveryMethod

USABLE_DISK_STATES = frozenset({"UpToDate"})


@dataclass(frozen=True)
class Need:
    """What one instance needs from a target host."""

    instance: str
    source: str
    vcpus: int
    ram_mb: int
    volumes: tuple[str, ...] = ()
    server_group: str | None = None
    exclude: frozenset[str] = frozenset()  # targets an earlier attempt failed on


@dataclass
class Candidate:
    """A possible target host and what is left on it (mutated as the plan fills it)."""

    host: str
    vcpus_total: float  # vcpus * allocation ratio
    ram_total: float
    vcpus_used: int
    ram_used: int
    reserved: bool = False
    groups: set[str] = field(default_factory=set)  # server groups with a member here

    def fits(self, need: Need) -> bool:
        return (self.vcpus_used + need.vcpus <= self.vcpus_total
                and self.ram_used + need.ram_mb <= self.ram_total)

    @property
    def ram_free(self) -> float:
        return self.ram_total - self.ram_used


@dataclass(frozen=True)
class Placement:
    instance: str
    source: str
    target: str
    attach: dict[str, AttachMode]  # volume -> how the target reaches it
    served_by: dict[str, str]  # volume -> host whose replica serves it

    @property
    def mode(self) -> str | None:
        modes = {m.value for m in self.attach.values()}
        if not modes:
            return None
        return modes.pop() if len(modes) == 1 else "mixed"


@dataclass(frozen=True)
class Unplaceable:
    instance: str
    source: str
    reason: str


@dataclass(frozen=True)
class Plan:
    placements: tuple[Placement, ...]
    unplaceable: tuple[Unplaceable, ...]
    waiting: tuple[str, ...] = ()  # instances that fit only on hosts with no free flow slot

    def render(self) -> str:
        lines = [f"{'instance':<24} {'from':<12} {'to':<12} attach"]
        for p in self.placements:
            lines.append(f"{p.instance:<24} {p.source:<12} {p.target:<12} {p.mode or '-'}")
        for u in self.unplaceable:
            lines.append(f"{u.instance:<24} {u.source:<12} {'-':<12} cannot recover: {u.reason}")
        return "\n".join(lines)


def usable_replicas(replicas: Iterable[Replica], failed: Iterable[str]) -> list[Replica]:
    """Replicas that can serve data: reachable, up to date, not on a failed host, and not
    left behind. DRBD 8.4 lets you promote a Secondary that lost its link while the
    Primary kept writing (resource-only fencing that failed leaves it UpToDate); doing so
    silently drops every write the Primary acked since the cut. Such a replica is not
    used: the instance is reported unplaceable with that reason instead."""
    dead = set(failed)
    return sorted((r for r in replicas if r.reachable and r.host not in dead
                   and r.disk_state in USABLE_DISK_STATES and r.behind_since is None),
                  key=lambda r: r.host)


def tiers(method: RecoveryMethod) -> tuple[tuple[bool, ...], ...]:
    """Which host kinds (reserved?) to try, in order."""
    return {
        RecoveryMethod.AUTO: ((False,),),
        RecoveryMethod.RESERVED_HOST: ((True,),),
        RecoveryMethod.AUTO_PRIORITY: ((False,), (True,)),
        RecoveryMethod.RH_PRIORITY: ((True,), (False,)),
    }[method]


def order(needs: Iterable[Need]) -> list[Need]:
    return sorted(needs, key=lambda n: (-n.ram_mb, -n.vcpus, n.instance))


def place(needs: Iterable[Need], candidates: Iterable[Candidate],
          replicas: Mapping[str, list[Replica]], failed: Iterable[str],
          method: RecoveryMethod = RecoveryMethod.AUTO_PRIORITY,
          slots: Mapping[str, int] | None = None) -> Plan:
    """Place every need; candidates are updated in place as instances land on them.
    `slots`: flows each host may still take now (None: no limit)."""
    dead = set(failed)
    hosts = sorted((c for c in candidates if c.host not in dead), key=lambda c: c.host)
    free = None if slots is None else dict(slots)
    placements: list[Placement] = []
    unplaceable: list[Unplaceable] = []
    waiting: list[str] = []
    for need in order(needs):
        served: dict[str, list[str]] = {}
        missing = []
        for volume in need.volumes:
            good = usable_replicas(replicas.get(volume, []), dead)
            if not good:
                states = ", ".join(_describe(r, dead) for r in replicas.get(volume, []))
                states = states or "none known"
                missing.append(f"no reachable up-to-date replica of volume {volume} ({states})")
            served[volume] = [r.host for r in good]
        if missing:
            unplaceable.append(Unplaceable(need.instance, need.source, "; ".join(missing)))
            continue
        chosen = _choose(need, hosts, served, method, free)
        if chosen is None:
            waiting.append(need.instance)
            continue
        if isinstance(chosen, str):
            unplaceable.append(Unplaceable(need.instance, need.source, chosen))
            continue
        if free is not None:
            free[chosen.host] = free.get(chosen.host, 0) - 1
        chosen.vcpus_used += need.vcpus
        chosen.ram_used += need.ram_mb
        if need.server_group:
            chosen.groups.add(need.server_group)
        attach = {v: AttachMode.LOCAL if chosen.host in served[v] else AttachMode.REMOTE
                  for v in need.volumes}
        by = {v: chosen.host if chosen.host in served[v] else served[v][0] for v in need.volumes}
        placements.append(Placement(need.instance, need.source, chosen.host, attach, by))
    return Plan(tuple(placements), tuple(unplaceable), tuple(waiting))


def _choose(need: Need, hosts: list[Candidate], served: Mapping[str, list[str]],
            method: RecoveryMethod, free: Mapping[str, int] | None = None
            ) -> Candidate | str | None:
    """The best host for the need; why none can take it; or None: every host that
    could take it has no flow slot free now (of the first tier that fits)."""
    rejected: dict[str, list[str]] = {}
    considered = False
    for tier in tiers(method):
        fitting = []
        for cand in hosts:
            if (cand.reserved not in tier or cand.host == need.source
                    or cand.host in need.exclude):
                continue
            considered = True
            if need.server_group and need.server_group in cand.groups:
                why = f"anti-affinity group {need.server_group}"
                rejected.setdefault(why, []).append(cand.host)
            elif not cand.fits(need):
                rejected.setdefault("not enough free capacity", []).append(cand.host)
            else:
                fitting.append(cand)
        if fitting and free is not None:
            fitting = [c for c in fitting if free.get(c.host, 0) > 0]
            if not fitting:
                return None
        if fitting:
            def key(c: Candidate) -> tuple[int, float, str]:
                local = sum(1 for v in need.volumes if c.host in served[v])
                return (-local, -(c.ram_free - need.ram_mb), c.host)

            return min(fitting, key=key)
    if not considered:
        return f"no candidate host (recovery method {method.value})"
    parts = [f"{why}: {', '.join(sorted(h))}" for why, h in sorted(rejected.items())]
    return (f"no host can take it (needs {need.vcpus} vCPU, {need.ram_mb} MB): "
            + "; ".join(parts))


def _describe(replica: Replica, dead: set[str]) -> str:
    text = f"{replica.host}: {replica.disk_state}"
    if not replica.reachable:
        text += " unreachable"
    if replica.behind_since is not None:
        text += (f" but stale (cut off from its primary at t={replica.behind_since:.1f}s "
                 "while it kept writing)")
    if replica.host in dead:
        text += " (failed host)"
    return text
