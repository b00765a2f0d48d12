"""Checksum-based resync on the simulator: requests merged as drbd_worker.c
make_resync_request merges them, and only requests whose digests differ send data (the
KiB eliminated and transferred are compared with the guests in drbd-checksum-resync)."""

from __future__ import annotations

from stackdrill.backends.sim.drbd_checksums import (
    MAX_REQUEST_BLOCKS,
    requests,
    transferred_kb,
)


def test_adjacent_bits_merge_into_aligned_requests_up_to_the_max_size() -> None:
    assert list(requests(list(range(2 * MAX_REQUEST_BLOCKS)))) == [
        (0, MAX_REQUEST_BLOCKS), (MAX_REQUEST_BLOCKS, MAX_REQUEST_BLOCKS)]
    # a run starting on an odd block grows only as far as its start is aligned
    assert list(requests(list(range(3, 13)))) == [(3, 1), (4, 4), (8, 5)]
    assert list(requests([1, 2, 5])) == [(1, 1), (2, 1), (5, 1)]


def test_a_request_never_crosses_a_resync_extent() -> None:
    assert list(requests(list(range(4090, 4101)))) == [(4090, 2), (4092, 4), (4096, 5)]


def test_one_differing_block_sends_its_whole_request_equal_ones_send_nothing() -> None:
    bits = set(range(0, 4 * MAX_REQUEST_BLOCKS))
    assert transferred_kb(bits, lambda x: False, full=False, total_blocks=10**6) == 0
    one = transferred_kb(bits, lambda x: x == 40, full=False, total_blocks=10**6)
    assert one == MAX_REQUEST_BLOCKS * 4
    # a full resync: the maximal requests, the last one cut at the device's end
    assert transferred_kb({5, 6, 999}, lambda x: x in (5, 999), full=True,
                          total_blocks=1000) == (MAX_REQUEST_BLOCKS + 1000 % MAX_REQUEST_BLOCKS) * 4
