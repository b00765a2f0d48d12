"""The engine tells the lab saying no from a bug. A driver that refuses an operation
(`DriverError`) fails the recovery step: the flow is reverted, retried, and finally
reported failed with the driver's reason. Anything else a driver raises is a bug (in the
backend or the engine): it stops the engine with the bug's own traceback instead of
being reverted and retried as if the lab had refused, which would hide it behind a
plausible "recovery failed" verdict."""

from __future__ import annotations

from pathlib import Path

import pytest
from recovery_fakes import FakeLab, InventoryURL

from stackdrill.recovery import InstanceState, JournalStep, RecoveryConfig, RecoveryEngine
from stackdrill.topology import Topology, load_topology

TOPOLOGIES = Path(__file__).resolve().parents[3] / "lab" / "topologies"


@pytest.fixture(scope="module")
def nova() -> Topology:
    return load_topology(TOPOLOGIES / "nova-drbd.yaml")


def crashed_cmp1(nova: Topology, inventory_url: InventoryURL) -> tuple[FakeLab, RecoveryEngine]:
    lab = FakeLab(nova)
    lab.clock.at(60, lambda: lab.crash("cmp1"))
    eng = RecoveryEngine(nova, lab.drivers, lab.clock, inventory_url("inv"),
                         RecoveryConfig(parallel=1))
    return lab, eng


def test_a_driver_refusal_fails_the_step_and_is_retried_then_reported(
        nova: Topology, inventory_url: InventoryURL) -> None:
    """The control: the storage driver refuses to promote web1's volume every time."""
    lab, eng = crashed_cmp1(nova, inventory_url)
    lab.fail_prepare.add(nova.instance("web1").volumes[0])
    result = eng.run(until=900)
    out = result.instance("web1")
    assert out.state is InstanceState.FAILED
    assert "refusing to be Primary" in out.reason
    aborted = [r for r in result.journal
               if r.instance == "web1" and r.step == JournalStep.FLOW_ABORTED.value]
    assert len(aborted) == 2  # three attempts in all
    assert result.instance("db1").state is InstanceState.RECOVERED


def test_a_driver_bug_stops_the_engine_instead_of_failing_a_step(
        nova: Topology, inventory_url: InventoryURL) -> None:
    """A KeyError out of the compute driver's start future is not "the start failed": the
    engine raises it, and journals no aborted or failed flow for it."""
    lab, eng = crashed_cmp1(nova, inventory_url)
    lab.buggy_start.add("web1")
    with pytest.raises(KeyError, match="driver bug"):
        eng.run(until=900)
    ends = [r for r in eng.journal.records
            if r.step in (JournalStep.FLOW_ABORTED.value, JournalStep.FLOW_FAILED.value)]
    assert ends == []
    assert lab.starts.get("web1", 0) == 0
