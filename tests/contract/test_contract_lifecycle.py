"""A lab's life: what it declares, and a teardown that is safe to repeat."""

from __future__ import annotations

from contract_support import HOSTS, topology

from stackdrill.api import Lab, PowerState
from stackdrill.backends import backend_class
from stackdrill.faults import FAULT_KINDS


def test_the_lab_is_the_topology_it_was_given_on_its_backend(lab: Lab) -> None:
    assert lab.topology == topology()
    assert lab.backend in ("sim", "libvirt", "netns")
    declared = backend_class(lab.backend).capabilities.faults
    assert declared and declared <= set(FAULT_KINDS)  # only catalogue faults, derived
    assert {h: lab.drivers.power.state(h) for h in HOSTS} == dict.fromkeys(HOSTS, PowerState.ON)


def test_destroy_twice_is_safe(lab: Lab) -> None:
    lab.destroy()
    lab.destroy()  # the fixture destroys it a third time


def test_a_lab_used_as_a_context_manager_is_destroyed_on_leaving(lab: Lab) -> None:
    with lab as same:
        assert same is lab
        lab.clock.sleep(0.1)
    lab.destroy()  # already destroyed: still safe
