"""Guests' uptime stamps mapped to the hypervisor's clock: the sample with the shortest
round trip wins for its boot, a boot never sampled is no verdict."""

from __future__ import annotations

from typing import Any

import pytest

from stackdrill.backends.libvirt.guestclock import GuestClocks, parse_sample
from stackdrill.errors import LabNotReadyError

BOOT = "0b1e0c2c-5a55-4b69-9a3e-2f1c1a1d0a01"


def test_a_sample_maps_uptime_to_the_middle_of_its_round_trip() -> None:
    sample = parse_sample(f"{BOOT}\n120.50 230.10\n", sent=1000.0, received=1001.0)
    assert (sample.boot_id, sample.offset, sample.round_trip) == (BOOT, 880.0, 1.0)
    with pytest.raises(ValueError, match="not a boot id and an uptime"):
        parse_sample("", 0.0, 0.1)


def test_the_shortest_round_trip_is_kept_per_boot_and_an_unsampled_boot_is_no_verdict() -> None:
    lab: Any = object()
    clocks = GuestClocks(lab)
    clocks.keep("alice", parse_sample(f"{BOOT}\n100.0 0", 1000.0, 1004.0))  # offset 902
    clocks.keep("alice", parse_sample(f"{BOOT}\n103.0 0", 1003.0, 1003.2))  # offset 900.1
    clocks.keep("alice", parse_sample(f"{BOOT}\n110.0 0", 1009.0, 1012.0))  # offset 900.5
    assert clocks.wall_time("alice", BOOT, 5.0) == pytest.approx(905.1)
    with pytest.raises(LabNotReadyError, match="bob: no clock sample of its boot"):
        clocks.wall_time("bob", BOOT, 5.0)
