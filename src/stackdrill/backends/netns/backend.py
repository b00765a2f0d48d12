"""The netns backend's declaration: what it can realise and whether this machine can run it.

Kept free of pyroute2 imports so `available()` can explain what is missing instead of
failing with an ImportError.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from typing import ClassVar

from stackdrill.backends.base import Backend, Capabilities, Lab, LabOptions
from stackdrill.topology import Topology

FAULT_KINDS = frozenset({
    "host_crash", "host_reboot", "link_down", "partition", "packet_loss", "rate_limit",
    "underlay_mtu", "overlay_fdb_stale", "tunnel_endpoint_down",
})
FEATURES = frozenset({"overlay", "instances", "network-volumes"})
COMMANDS = ("ip", "nft", "tc", "ethtool", "nbdkit", "bash", "ping")


class NetnsBackend(Backend):
    """Real kernel networking on this machine: hosts are network namespaces."""

    name: ClassVar[str] = "netns"
    capabilities: ClassVar[Capabilities] = Capabilities(
        faults=FAULT_KINDS, features=FEATURES,
        needs="root; kernel with netns, veth, bridge, vxlan, ifb, nftables; pyroute2; "
              "iproute2, nftables, ethtool, nbdkit (scripts/system-packages-netns.txt)")

    @classmethod
    def available(cls) -> str | None:
        if os.geteuid() != 0:
            return ("the netns backend needs root (network namespaces, veth, nftables); "
                    "run as root or use the default sim backend")
        if importlib.util.find_spec("pyroute2") is None:
            return "the netns backend needs pyroute2: pip install 'stackdrill[netns]'"
        missing = [c for c in COMMANDS if shutil.which(c) is None]
        if missing:
            return (f"the netns backend needs the commands {', '.join(missing)}: install "
                    "the packages in scripts/system-packages-netns.txt")
        return None

    def create(self, topology: Topology, *, lab_name: str, seed: int,
               options: LabOptions | None = None) -> Lab:
        from stackdrill.backends.netns.lab import NetnsLab
        from stackdrill.errors import BackendUnavailableError

        reason = self.available()
        if reason is not None:
            raise BackendUnavailableError(reason)
        return NetnsLab(topology, lab_name, seed=seed, options=options)
