"""Fault values the backends share: where a corruption lands is part of the fault, so the
simulator and the guests overwrite the same blocks."""

from __future__ import annotations

import pytest

from stackdrill.faults import CorruptBlocks


def test_corrupt_blocks_spreads_its_blocks_past_the_first_mib_the_same_on_every_backend(
        ) -> None:
    fault = CorruptBlocks(host="a", disk="sdb", blocks=4)
    assert fault.addresses(1280) == [384, 640, 896, 1152]  # 5 MiB: 1024 blocks past the MiB
    assert all(a >= 256 for a in fault.addresses(10_000))
    with pytest.raises(ValueError, match="no 4 data blocks"):
        fault.addresses(258)


def test_a_clock_skew_steps_by_whole_seconds_at_most_a_day_and_never_by_zero() -> None:
    import pytest
    from pydantic import ValidationError

    from stackdrill.faults import ClockSkew, FaultAdapter, describe

    skew = FaultAdapter.validate_python({"kind": "clock_skew", "host": "cmp2", "seconds": -45})
    assert isinstance(skew, ClockSkew) and describe(skew) == "clock_skew host=cmp2 seconds=-45"
    for bad in (0, 86_401, -86_401, 1.5):
        with pytest.raises(ValidationError):
            ClockSkew(host="cmp2", seconds=bad)  # type: ignore[arg-type]


def test_a_clock_skew_on_the_simulator_moves_that_hosts_wall_clock_and_no_lab_time() -> None:
    """Nothing modelled reads a wall clock (as on the guests: the clock-skew drill): the
    step is kept on the host, and healed it is undone."""
    from pathlib import Path

    from stackdrill.api import LabOptions
    from stackdrill.backends.sim import SimBackend
    from stackdrill.faults import ClockSkew
    from stackdrill.topology import load_topology

    topo = load_topology(Path(__file__).resolve().parents[3] / "lab/topologies/drbd-pair.yaml")
    lab = SimBackend().create(topo, lab_name="t", seed=1, options=LabOptions())
    before = lab.clock.now()
    skew = ClockSkew(host="cmp2", seconds=-45)
    lab.inject(skew)
    assert lab.hosts["cmp2"].wall_clock_offset_s == -45  # type: ignore[attr-defined]
    assert lab.clock.now() == before
    lab.heal(skew)
    assert lab.hosts["cmp2"].wall_clock_offset_s == 0  # type: ignore[attr-defined]
