"""Never fence the last copy: whether a host holds data nobody else has.

Fencing powers a host off. When the host holds the only current replica of a volume,
that would stop the volume for good (nothing could take over), or throw away the writes
only its disk has. The monitor asks these two questions before declaring a host down
(compute hosts stay suspect) and before fencing a storage host (it is held instead).
"""

from __future__ import annotations

from collections.abc import Mapping

from stackdrill.api import PowerState, StorageDriver
from stackdrill.recovery.hoststate import FAILED_STATES, HostStatus
from stackdrill.recovery.plan import usable_replicas
from stackdrill.topology import Topology

# Power states under which a host's disks still hold what it wrote, reachable again once it
# thaws: fencing it on link evidence (or for a hang) would cut off the only current copy.
POWERED = frozenset({PowerState.ON, PowerState.HUNG})


def last_replica(topology: Topology, status: Mapping[str, HostStatus], host: str) -> bool:
    """Every other holder of a replica `host` holds has failed: fencing it would stop
    the volume for good, and nothing could take over. (Pacemaker's no-quorum-policy
    and DRBD's fencing keep a lone survivor's data too.)"""
    holders = [topology.replica_hosts(vol.name) for vol in topology.volumes]
    peers = {h for hs in holders if host in hs for h in hs if h != host}
    return bool(peers) and all(status.get(p, HostStatus.UP) in FAILED_STATES for p in peers)


def sole_current_copy(topology: Topology, storage: StorageDriver,
                      status: Mapping[str, HostStatus], host: str) -> str | None:
    """A volume of which `host` holds the only current copy: every other replica is on
    a failed host, unreachable, not UpToDate, or left behind by a cut. While `host` is
    powered (on, or hung: its disk keeps the data for when it thaws) fencing it would
    throw that data away, so it is not declared down (compute hosts stay suspect,
    storage hosts are held); a power controller reporting it off still condemns it."""
    for vol in topology.volumes:
        holders = topology.replica_hosts(vol.name)
        if host not in holders or len(holders) < 2:
            continue
        others = [r for r in storage.replicas(vol.name) if r.host != host]
        if not usable_replicas(others, [h for h, st in status.items() if st in FAILED_STATES]):
            return vol.name
    return None
