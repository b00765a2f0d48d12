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
