"""Segmentation offloads read and set through pyroute2's ethtool, on a real veth inside a
namespace of the test's own (root only, a few milliseconds)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

pytest.importorskip("pyroute2")

from stackdrill.backends.netns import offloads

pytestmark = [pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ethtool") is None,
                                 reason="needs root and ethtool (to read what was set)")]


def sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=10).stdout


@pytest.fixture
def ns(worker_id: str) -> Iterator[str]:
    name = f"sdofftest-{worker_id}-{os.getpid()}"
    sh("ip", "netns", "add", name)
    try:
        sh("ip", "-n", name, "link", "add", "vo0", "type", "veth", "peer", "name", "vo1")
        yield name
    finally:
        sh("ip", "netns", "del", name)


def ethtool_k(ns: str) -> dict[str, str]:
    """`ethtool -k vo0` in the namespace, as feature -> 'on' / 'off' / 'off [fixed]'."""
    lines = sh("ip", "netns", "exec", ns, "ethtool", "-k", "vo0").splitlines()[1:]
    return dict(line.strip().split(": ", 1) for line in lines)


def test_the_changeable_segmentation_features_that_are_on_are_listed(ns: str) -> None:
    shown = ethtool_k(ns)
    on = offloads.segmentation_on(ns, "vo0")
    assert {"tx-tcp-segmentation", "tx-tcp6-segmentation", "tx-generic-segmentation",
            "tx-udp_tnl-segmentation", "tx-udp_tnl-csum-segmentation"} <= set(on)
    # ethtool shows tx-generic-segmentation by its old name
    assert all(shown[name.replace("tx-generic-segmentation", "generic-segmentation-offload")]
               == "on" for name in on)
    assert "tx-gre-segmentation" not in on  # on, but not one the MTU fault turns off
    assert shown["tx-fcoe-segmentation"] == "off [fixed]" and "tx-fcoe-segmentation" not in on


def test_set_features_turns_exactly_those_off_and_back_on(ns: str) -> None:
    before = ethtool_k(ns)
    names = ["tx-generic-segmentation", "tx-tcp-segmentation"]
    offloads.set_features(ns, "vo0", names, False)
    now = ethtool_k(ns)
    assert now["generic-segmentation-offload"] == "off" and now["tx-tcp-segmentation"] == "off"
    # the kernel drops mangleid with plain TSO (a dependency), keeping it requested
    assert {k: v for k, v in now.items() if v != before[k]} == {
        "generic-segmentation-offload": "off", "tx-tcp-segmentation": "off",
        "tx-tcp-mangleid-segmentation": "off [requested on]"}
    assert offloads.segmentation_on(ns, "vo0") == sorted(
        set(offloads.segmentation_on(ns, "vo0")) - set(names))
    offloads.set_features(ns, "vo0", names, True)
    assert ethtool_k(ns) == before

