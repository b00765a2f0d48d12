"""The lab's description: hosts, networks, DRBD, LVM, cluster, overlays, instances, volumes.

Loaded from YAML, validated once, immutable afterwards.
"""

from __future__ import annotations

from stackdrill.topology.load import load_topology, parse_topology
from stackdrill.topology.model import (
    ClusterSpec,
    DrbdResource,
    Flavor,
    Host,
    Instance,
    Network,
    Overlay,
    Topology,
    Volume,
    VolumeGroup,
)

__all__ = [
    "ClusterSpec",
    "DrbdResource",
    "Flavor",
    "Host",
    "Instance",
    "Network",
    "Overlay",
    "Topology",
    "Volume",
    "VolumeGroup",
    "load_topology",
    "parse_topology",
]
