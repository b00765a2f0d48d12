"""Checksum-based resync (net `csums-alg`) as DRBD 8.4 runs it, for the simulator.

drbd_worker.c make_resync_request: the SyncTarget walks the out-of-sync bits and merges
adjacent ones into one request while the request stays within the device's max bio size,
its start sector stays aligned to the request's (growing, power-of-two) size, and it does
not cross a resync extent (BM_BLOCKS_PER_BM_EXT, 16 MiB). With a csums-alg it reads the
request's blocks and sends their digest; the SyncSource (w_e_end_csum_rs_req) answers
P_RS_IS_IN_SYNC where its digest is equal, else the request's data. So one differing
block costs its whole request. The request rate is still the resync rate's (every bit
counts against drbd_rs_number_requests), only the data crosses the link.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

# DRBD_MAX_BIO_SIZE, 1 MiB: recorded on the guests (drbd-checksum-resync), four corrupted
# blocks, each in its own MiB, cost a full resync 4096 KiB of data
MAX_REQUEST_BLOCKS = 256
EXTENT_BLOCKS = 4096  # BM_BLOCKS_PER_BM_EXT: a 16 MiB resync extent
BLOCK_KB = 4


def requests(bits: list[int]) -> Iterator[tuple[int, int]]:
    """(first block, block count) of each resync request for the sorted out-of-sync bits,
    merged as make_resync_request merges them."""
    index = 0
    while index < len(bits):
        first = bit = bits[index]
        size, align = 1, 1
        while (size + 1 <= MAX_REQUEST_BLOCKS and first % (1 << align) == 0
               and (bit + 1) % EXTENT_BLOCKS != 0
               and index + size < len(bits) and bits[index + size] == bit + 1):
            bit += 1
            size += 1
            if (1 << align) <= size:
                align += 1
        yield first, size
        index += size


def transferred_kb(bits: set[int], differs: Callable[[int], bool], full: bool,
                   total_blocks: int) -> int:
    """KiB of data the SyncSource sends: every request holding a block whose contents
    differ. A full resync's bits are all set: its requests are the aligned maximal ones
    (only the blocks that can differ, `bits`, are looked at)."""
    if full:
        chunks = {x // MAX_REQUEST_BLOCKS for x in bits if differs(x)}
        return sum(min(MAX_REQUEST_BLOCKS, total_blocks - c * MAX_REQUEST_BLOCKS)
                   for c in chunks) * BLOCK_KB
    sent = 0
    for first, size in requests(sorted(bits)):
        if any(differs(x) for x in range(first, first + size)):
            sent += size
    return sent * BLOCK_KB
