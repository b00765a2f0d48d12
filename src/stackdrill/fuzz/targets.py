"""What can break in a topology: the hosts by role, their links, disks and replicas.

The generator draws faults from these lists only, so every fault it writes names
something the topology has (a drill that names a missing host is refused on load).
"""

from __future__ import annotations

from dataclasses import dataclass

from stackdrill.topology import NetworkPurpose, Role, Topology


@dataclass(frozen=True)
class Targets:
    """The parts of one topology a random schedule may hit."""

    compute: tuple[str, ...]  # hosts whose instances the engine evacuates
    storage: tuple[str, ...]  # DRBD nodes (may overlap with compute)
    controller: tuple[str, ...]  # where heartbeats go
    disks: tuple[tuple[str, str], ...]  # (host, disk) under a DRBD resource
    links: tuple[tuple[str, str], ...]  # (host, network) for every attachment
    networks: tuple[str, ...]
    management: tuple[str, ...]  # management networks (heartbeats)
    replication: tuple[str, ...]  # DRBD replication networks

    @classmethod
    def of(cls, topology: Topology) -> Targets:
        drbd_nodes = sorted({n for r in topology.drbd for n in r.nodes})
        disks = sorted({(n, r.disk) for r in topology.drbd for n in r.nodes})
        links = sorted((h, n.name) for n in topology.networks for h in n.addresses)
        return cls(
            compute=tuple(h.name for h in topology.hosts_with(Role.COMPUTE)),
            storage=tuple(drbd_nodes),
            controller=tuple(h.name for h in topology.hosts_with(Role.CONTROLLER)),
            disks=tuple(disks),
            links=tuple(links),
            networks=tuple(n.name for n in topology.networks),
            management=tuple(n.name for n in topology.networks_for(NetworkPurpose.MANAGEMENT)),
            replication=tuple(sorted({r.network for r in topology.drbd})),
        )

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(sorted({*self.compute, *self.storage, *self.controller}))

    def hosts_on(self, network: str) -> tuple[str, ...]:
        return tuple(h for h, n in self.links if n == network)
