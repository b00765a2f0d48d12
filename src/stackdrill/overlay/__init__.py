"""The overlay control plane: one controller, whatever programs the hosts' VXLAN FDBs.

`OverlayController` holds the desired state and reconciles it through an `FdbPlane`:
the netns backend's plane speaks netlink into namespaces, `ShellPlane` runs iproute2
commands on hosts reachable only through a command runner (real guests).
"""

from __future__ import annotations

from stackdrill.overlay.controller import OverlayController, OverlayState
from stackdrill.overlay.plane import Entry, FdbPlane, PlaneError, VtepDevices, VtepNaming, VtepSpec
from stackdrill.overlay.shell_plane import ShellPlane

__all__ = [
    "Entry",
    "FdbPlane",
    "OverlayController",
    "OverlayState",
    "PlaneError",
    "ShellPlane",
    "VtepDevices",
    "VtepNaming",
    "VtepSpec",
]
