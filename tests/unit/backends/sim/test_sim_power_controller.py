"""The `power_controller_down` fault in the simulator: a host whose BMC cannot be reached.

Real behaviour encoded: with the BMC unreachable, `ipmitool -I lanplus ... chassis power
off` retries and then fails with "Unable to establish IPMI v2 / RMCP+ session", and
`chassis power status` cannot say anything; the host itself is not affected (its power
controller is a separate board on its own network port).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stackdrill.api import Lab, PowerState
from stackdrill.backends.sim import SimBackend
from stackdrill.backends.sim.drivers import IPMI_TIMEOUT_S, DriverError
from stackdrill.faults import FAULT_KINDS, FaultAdapter, HostHang, PowerControllerDown
from stackdrill.topology import load_topology

TOPO = Path(__file__).resolve().parents[4] / "lab" / "topologies" / "nova-drbd.yaml"


@pytest.fixture
def lab() -> Lab:
    return SimBackend().create(load_topology(TOPO), lab_name="bmc", seed=1)


def test_the_fault_is_in_the_catalogue_and_parses_from_a_drill() -> None:
    assert "power_controller_down" in FAULT_KINDS
    fault = FaultAdapter.validate_python({"kind": "power_controller_down", "host": "cmp1"})
    assert fault == PowerControllerDown(host="cmp1")
    assert fault.targets() == ("cmp1",)


def test_unreachable_bmc_reads_unknown_and_refuses_power_off(lab: Lab) -> None:
    """State reads unknown, power-off fails after ipmitool's retries, the host runs on."""
    lab.clock.sleep(20)
    lab.inject(PowerControllerDown(host="cmp1"))
    assert lab.drivers.power.state("cmp1") is PowerState.UNKNOWN
    assert lab.drivers.compute.health("cmp1").power is PowerState.UNKNOWN
    began = lab.clock.now()
    op = lab.drivers.power.power_off("cmp1")
    lab.clock.wait([op], timeout=60)
    assert op.done()
    with pytest.raises(DriverError, match="Unable to establish IPMI"):
        op.result()
    assert lab.clock.now() - began == pytest.approx(IPMI_TIMEOUT_S)
    obs = lab.observe()
    assert obs.power["cmp1"] is PowerState.ON  # the host itself never noticed
    assert obs.running["web1"] == ["cmp1"]
    assert lab.drivers.power.state("cmp2") is PowerState.ON  # only that host's BMC


def test_heal_restores_control(lab: Lab) -> None:
    fault = PowerControllerDown(host="cmp1")
    lab.inject(fault)
    lab.inject(HostHang(host="cmp1"))
    lab.heal(fault)
    assert lab.drivers.power.state("cmp1") is PowerState.HUNG
    op = lab.drivers.power.power_off("cmp1")
    lab.clock.wait([op], timeout=60)
    assert op.exception() is None
    assert lab.drivers.power.state("cmp1") is PowerState.OFF
