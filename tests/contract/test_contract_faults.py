"""Faults: every kind a backend declares (derived from its handler table) is injected and
healed on the contract topology, traced as FaultInjected then FaultHealed (one test per
kind: `[netns-link_down]`); every kind it does not declare is refused with
UnsupportedError before anything happens."""

from __future__ import annotations

import pytest
from contract_support import FAULTS, HOSTS, Nature, of_type, settle, wait_for

from stackdrill.api import FaultHealed, FaultInjected, GuestStopped, Lab, PowerState
from stackdrill.backends import backend_class
from stackdrill.errors import LabStateError, UnsupportedError
from stackdrill.faults import Fault, HostCrash, InstanceCrash, LinkDown, describe

# What the power controller reports for the target while a host fault is in force; every
# other fault leaves every host on. A reboot heals by itself.
POWER_DURING = {
    "host_crash": {PowerState.OFF},
    "host_hang": {PowerState.HUNG},
    "host_reboot": {PowerState.OFF, PowerState.BOOTING, PowerState.ON},
    "power_controller_down": {PowerState.UNKNOWN},
}


def test_a_declared_fault_is_injected_and_healed(lab: Lab, declared_fault: Fault) -> None:
    fault, power = declared_fault, lab.drivers.power
    lab.inject(fault)
    for target in fault.targets() or HOSTS:  # a killed instance names no host: all stay on
        assert power.state(target) in POWER_DURING.get(fault.kind, {PowerState.ON})
    lab.clock.sleep(0.2)
    lab.heal(fault)
    wait_for(lab, lambda: all(power.state(h) is PowerState.ON for h in HOSTS),
             f"every host on after healing {fault.kind}")
    observed = lab.observe()
    assert dict(observed.power) == dict.fromkeys(HOSTS, PowerState.ON)
    said = describe(fault)
    injected = [t for t in lab.events() if t.event == FaultInjected(said)]
    healed = [t for t in lab.events() if t.event == FaultHealed(said)]
    assert len(injected) == 1 and len(healed) == 1
    assert injected[0].at + 0.2 <= healed[0].at + 0.01  # in order, at their lab times


def test_every_undeclared_fault_is_refused_before_anything_happens(lab: Lab) -> None:
    undeclared = sorted(set(FAULTS) - backend_class(lab.backend).capabilities.faults)
    if not undeclared:
        pytest.skip(f"{lab.backend} declares every fault of the catalogue")
    for kind in undeclared:
        before = len(lab.events())
        with pytest.raises(UnsupportedError, match=kind):
            lab.inject(FAULTS[kind])
        assert not of_type(lab.events()[before:], FaultInjected), kind  # no trace of it
    assert all(lab.drivers.power.state(h) is PowerState.ON for h in HOSTS)


def test_a_crash_without_power_back_stays_off_after_heal(lab: Lab) -> None:
    fault = HostCrash(host="cmp1", power_back=False)
    lab.inject(fault)
    lab.heal(fault)
    lab.clock.sleep(0.6)  # twice the hosts' boot time
    assert lab.drivers.power.state("cmp1") is PowerState.OFF


def test_a_storage_link_down_is_seen_by_the_hosts_witnesses(lab: Lab, nature: Nature) -> None:
    """The corroboration recovery relies on: a witness of the host's storage links stops
    seeing it when its link loses carrier, and sees it again once healed."""
    compute = lab.drivers.compute
    if nature.witnesses is not None:
        assert compute.witnesses("cmp2") == ()  # none, as the backend says
        pytest.skip(nature.witnesses)
    assert compute.witnesses("cmp2")
    assert all(w.sees_host for w in compute.witnesses("cmp2"))
    fault = LinkDown(host="cmp2", network="storage")
    lab.inject(fault)
    lab.clock.sleep(0.5)
    assert not any(w.sees_host for w in compute.witnesses("cmp2"))
    lab.heal(fault)
    wait_for(lab, lambda: all(w.sees_host for w in compute.witnesses("cmp2")),
             "every witness sees cmp2 again")


def test_an_instance_crash_stops_that_instance_only_and_its_host_lists_it_stopped(
        lab: Lab, nature: Nature) -> None:
    """The instance's process is killed where it runs (web2 on cmp2): the compute driver's
    guests(cmp2) lists it not running, read from the real process; web1 runs on, every
    host stays on; the lab traced the stop. The instance monitor relies on exactly this."""
    if nature.guests is not None:
        pytest.skip(nature.guests)
    compute = lab.drivers.compute
    assert {g.name: g.running for g in settle(lab, compute.guests("cmp2"))} == {"web2": True}
    lab.inject(InstanceCrash(instance="web2"))
    assert {g.name: g.running for g in settle(lab, compute.guests("cmp2"))} == {"web2": False}
    assert {g.name: g.running for g in settle(lab, compute.guests("cmp1"))} == {"web1": True}
    assert all(lab.drivers.power.state(h) is PowerState.ON for h in HOSTS)
    assert dict(lab.observe().running) == {"web1": ["cmp1"], "web2": []}
    stops = of_type(lab.events(), GuestStopped)
    assert [(s.host, s.instance, s.why) for s in stops] == [("cmp2", "web2", "killed")]
    with pytest.raises(LabStateError, match="runs on no host"):
        lab.inject(InstanceCrash(instance="web2"))
