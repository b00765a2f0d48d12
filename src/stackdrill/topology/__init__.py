"""The lab's description: hosts, networks, DRBD, LVM, cluster, overlays, instances, volumes.

Loaded from YAML, validated once, immutable afterwards.
"""

from __future__ import annotations

from stackdrill.topology.load import load_topology, parse_topology
from stackdrill.topology.model import (
    ClusterFencing,
    ClusterSpec,
    Disk,
    DrbdNetOptions,
    DrbdResource,
    Flavor,
    Host,
    Hypervisor,
    Instance,
    IscsiInitiator,
    Locking,
    Network,
    NetworkPurpose,
    Overlay,
    PhysicalVolume,
    Protocol,
    Role,
    Topology,
    Volume,
    VolumeGroup,
)

__all__ = [
    "ClusterFencing",
    "ClusterSpec",
    "Disk",
    "DrbdNetOptions",
    "DrbdResource",
    "Flavor",
    "Host",
    "Hypervisor",
    "Instance",
    "IscsiInitiator",
    "Locking",
    "Network",
    "NetworkPurpose",
    "Overlay",
    "PhysicalVolume",
    "Protocol",
    "Role",
    "Topology",
    "Volume",
    "VolumeGroup",
    "load_topology",
    "parse_topology",
]
