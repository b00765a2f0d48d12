"""A VXLAN device set down keeps the controller's entries; a recreated one starts empty."""

from __future__ import annotations

from stackdrill.backends.sim.lab import SimLab
from stackdrill.conformance import labs
from stackdrill.faults import TunnelEndpointDown

VB_MAC = "fa:16:3e:00:00:02"


def _built() -> SimLab:
    lab = labs.sim_lab()
    lab.advance(1.0)  # the controller's first pushes
    return lab


def test_down_up_keeps_the_permanent_entries_without_a_push() -> None:
    lab = _built()
    overlay = lab.overlays[labs.OVERLAY]
    overlay.set_device("a", False)
    overlay.set_device("a", True)
    assert overlay.flood("a") == [labs.ADDRESS["b"]]
    assert overlay.fdb("a") == {VB_MAC: labs.ADDRESS["b"]}


def test_the_fault_keeps_them_while_down_and_resyncs_on_heal() -> None:
    lab = _built()
    overlay = lab.overlays[labs.OVERLAY]
    fault = TunnelEndpointDown(host="a", overlay=labs.OVERLAY)
    lab.inject(fault)
    assert overlay.vteps["a"].static == {VB_MAC: labs.ADDRESS["b"]}
    lab.heal(fault)
    assert overlay.fdb("a") == {VB_MAC: labs.ADDRESS["b"]}


def test_a_recreated_device_is_empty_until_the_controller_resyncs() -> None:
    lab = _built()
    overlay = lab.overlays[labs.OVERLAY]
    overlay.recreate_device("a")
    assert overlay.flood("a") == [] and overlay.fdb("a") == {}
    overlay.resync("a")
    lab.advance(lab.kernel.now + 1.0)
    assert overlay.flood("a") == [labs.ADDRESS["b"]]
    assert overlay.fdb("a") == {VB_MAC: labs.ADDRESS["b"]}
