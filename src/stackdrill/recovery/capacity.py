"""How many more flows the lab can take now, per target host and per storage backend.

One global number either idles the lab (4 flows while 20 empty hosts and two storage
servers wait) or overloads one part of it (32 boots on one host). So each flow counts
against the compute host it lands on (Nova's `max_concurrent_builds` per nova-compute)
from reservation to its end, since a second flow on that host boots beside it; and
against each storage backend its volumes live on (a DRBD resource, or the host that
exports a plain VG over iSCSI) while that backend acts for it: until its volumes are
promoted or connected on the target (and released on the source, for a move), or while
it undoes that after a failure. The backend's limit is Pacemaker's `node-action-limit`,
which counts resource actions on the storage node, not the guests that later read
through them (holding it through each guest's boot kept the storage servers idle while
the last waves waited). `RecoveryConfig.parallel`, when set, caps the total on top;
`per_failed_host`, when set, caps the flows for the instances of one failed host
(Masakari's thread pool, made per host-failure notification).

Counted from the flows in flight every tick (`EngineState.flows`, rebuilt from the
journal after a restart), so nothing here needs journaling.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from stackdrill.recovery.config import RecoveryConfig
from stackdrill.recovery.state import EngineState
from stackdrill.topology import Topology

# Pacemaker's node-action-limit default: a node runs up to twice its cores' actions at once
ACTIONS_PER_CORE = 2


@dataclass
class Slots:
    """Free flow slots for one tick, taken as flows are admitted."""

    total: int | None  # None: no global cap
    hosts: dict[str, int]  # compute host -> flows it may still take
    backends: dict[str, int]  # storage backend -> flows it may still take
    per_host: int  # for a host not counted yet
    all_stored: bool = False  # every instance needs a backend slot
    taken: int = 0
    sources: dict[str, int] | None = None  # failed host -> flows it may still have; None: no limit
    per_source: int = 0  # for a failed host not counted yet

    @property
    def exhausted(self) -> bool:
        """Nothing more can start this tick."""
        if self.total is not None and self.taken >= self.total:
            return True
        return self.all_stored and bool(self.backends) and all(
            n <= 0 for n in self.backends.values())

    def host_free(self, host: str) -> int:
        return self.hosts.get(host, self.per_host)

    def source_free(self, source: str) -> int | None:
        """Flows still allowed for instances lost from `source` (None: no such limit)."""
        if self.sources is None:
            return None
        return self.sources.get(source, self.per_source)

    def fits(self, backends: Iterable[str], host: str | None = None,
             source: str | None = None) -> bool:
        """A flow on these backends (and on `host`, if already known; for an instance
        lost from `source`) may start now."""
        left = None if source is None else self.source_free(source)
        return not self.exhausted and all(self.backends[b] > 0 for b in backends) and (
            host is None or self.host_free(host) > 0) and (left is None or left > 0)

    def take(self, backends: Iterable[str], host: str | None = None,
             source: str | None = None) -> None:
        self.taken += 1
        for b in backends:
            self.backends[b] -= 1
        if host is not None:
            self.hosts[host] = self.host_free(host) - 1
        left = None if source is None else self.source_free(source)
        if self.sources is not None and source is not None and left is not None:
            self.sources[source] = left - 1


class Capacity:
    """The lab's limits (from the topology and the config) and what flows use of them."""

    def __init__(self, topology: Topology, config: RecoveryConfig, state: EngineState) -> None:
        self.config, self.state = config, state
        self._backend: dict[str, str] = {}  # volume -> its storage backend
        self.limits: dict[str, int] = {}  # storage backend -> flows it takes at once
        for vol in topology.volumes:
            key, servers = _backend(topology, vol.vg)
            if key is None:
                continue
            self._backend[vol.name] = key
            derived = ACTIONS_PER_CORE * min(topology.host(h).vcpus for h in servers)
            self.limits[key] = config.per_storage_backend or derived
        self._of: dict[str, tuple[str, ...]] = {}  # instance -> its backends (cached)
        self._all_stored: bool | None = None  # every instance has a volume on a backend

    def backends(self, instance: str) -> tuple[str, ...]:
        """The storage backends an instance's volumes live on."""
        out = self._of.get(instance)
        if out is None:
            vols = self.state.info[instance].volumes
            out = self._of[instance] = tuple(sorted({self._backend[v] for v in vols
                                                     if v in self._backend}))
        return out

    def full(self) -> bool:
        """Nothing can start this tick, whatever it needs: the global cap is reached, or
        every storage backend is busy and every instance has a volume on one. (The
        scheduler then skips building its queue: on a large lab that is most ticks.)"""
        cap = self.config.parallel
        if cap is not None and len(self.state.flows) >= cap:
            return True
        return self.all_stored() and bool(self.limits) and all(
            n <= 0 for n in self._backends_free().values())

    def all_stored(self) -> bool:
        if self._all_stored is None:
            self._all_stored = all(self.backends(n) for n in self.state.info)
        return self._all_stored

    def _backends_free(self) -> dict[str, int]:
        backends = dict(self.limits)
        for name, proc in self.state.flows.items():
            if proc.holds_storage():
                for b in self.backends(name):
                    backends[b] -= 1
        return backends

    def free(self) -> Slots:
        """What is left now, after the flows in flight."""
        hosts: dict[str, int] = {}
        sources: dict[str, int] = {}
        backends = self._backends_free()
        for proc in self.state.flows.values():
            if proc.ctx is not None:
                hosts[proc.ctx.target] = hosts.get(proc.ctx.target, 0) + 1
                sources[proc.ctx.source] = sources.get(proc.ctx.source, 0) + 1
        per_host = self.config.per_target_host
        per_source = self.config.per_failed_host
        cap = self.config.parallel
        return Slots(None if cap is None else cap - len(self.state.flows),
                     {h: per_host - n for h, n in hosts.items()}, backends, per_host,
                     self.all_stored(),
                     sources=None if per_source is None else {
                         h: per_source - n for h, n in sources.items()},
                     per_source=per_source or 0)


def _backend(topology: Topology, vg: str) -> tuple[str | None, tuple[str, ...]]:
    """A VG's storage backend: its DRBD resource (either node may serve it), else the
    host whose disk holds it (an iSCSI target for every other host)."""
    pv = topology.volume_group(vg).pv
    if pv.drbd is not None:
        return f"drbd:{pv.drbd}", topology.drbd_resource(pv.drbd).nodes
    if pv.host is not None:
        return f"vg-host:{pv.host}", (pv.host,)
    return None, ()
