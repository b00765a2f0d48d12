"""Segmentation offloads of an interface inside a lab namespace, through pyroute2's ethtool.

An underlay MTU fault turns them off on every sender of the network, because veth skips
its MTU check for GSO packets (see faults.py). The features are the kernel's own names (the
ETH_SS_FEATURES string set), so nothing parses `ethtool -k` text: `tcp-segmentation-offload`
is ethtool's name for the group `tx-tcp*-segmentation` (ethtool's own pattern), and
`generic-segmentation-offload` for `tx-generic-segmentation`.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Any

from stackdrill.backends.netns import nsops

SEGMENTATION = ("tx-tcp*-segmentation", "tx-generic-segmentation",
                "tx-udp_tnl-segmentation", "tx-udp_tnl-csum-segmentation")


def _ethtool(ns: str) -> Any:
    """pyroute2's Ethtool with its ioctl socket made inside `ns` (the socket's namespace
    decides which interface a name means)."""
    from pyroute2.ethtool import Ethtool  # here: the backend's declaration imports without it

    with nsops.inside(ns):
        return Ethtool()


def segmentation_on(ns: str, ifname: str) -> list[str]:
    """The segmentation features now on that can be changed (an `on [fixed]` one cannot)."""
    eth = _ethtool(ns)
    try:
        features = eth.get_features(ifname).features
    finally:
        eth.close()
    return sorted(name for name, f in features.items()
                  if f.enable and f.available
                  and any(fnmatchcase(name, pattern) for pattern in SEGMENTATION))


def set_features(ns: str, ifname: str, names: Iterable[str], on: bool) -> None:
    """Turn the named features on or off, leaving every other one as it is."""
    eth = _ethtool(ns)
    try:
        wanted = eth.get_features(ifname)
        for name in names:
            wanted.features[name].enable = on
        eth.set_features(ifname, wanted)
    finally:
        eth.close()
