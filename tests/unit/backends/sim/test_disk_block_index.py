"""A disk's sorted index of written blocks (`BlockMap`) and the LV read built on it.

`VolumeGroupSim.read_lv_records` used to sort every written block of every PV on each
read; it now asks each disk for the addresses in the LV's extents. These tests hold the
index to a full sort after every kind of change a disk sees, and the LV read to the old
full rebuild while real drills write, resync, replace and corrupt disks.
"""

from __future__ import annotations

import bisect
import copy
import pickle
import random
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest
import simpy

from stackdrill.api import LabOptions
from stackdrill.backends.sim import SimBackend
from stackdrill.backends.sim.disks import BlockMap
from stackdrill.backends.sim.lvm_meta import pe_block, peek_metadata
from stackdrill.backends.sim.lvm_vg import VolumeGroupSim, _backing_disk
from stackdrill.drill import load_drill
from stackdrill.drill.player import Player

ROOT = Path(__file__).resolve().parents[4]


def full_sort(blocks: dict[int, Any], start: int, end: int) -> list[int]:
    return sorted(a for a in blocks if start <= a < end)


def _mutations(rng: random.Random) -> list[Callable[[BlockMap], object]]:
    """Every way code can change a disk's blocks, with random addresses."""
    def addr() -> int:
        return rng.randrange(200)

    return [
        lambda m: m.__setitem__(addr(), "w"),
        lambda m: m.__setitem__(addr(), "w"),
        lambda m: m.__setitem__(addr(), "w"),
        lambda m: m.pop(addr(), None),
        lambda m: m.__delitem__(a) if (a := addr()) in m else None,
        lambda m: m.popitem() if m else None,
        lambda m: m.update({addr(): "u", addr(): "u"}),
        lambda m: m.setdefault(addr(), "d"),
        lambda m: m.__ior__({addr(): "o"}),
        lambda m: m.clear() if rng.random() < 0.05 else None,
    ]


@pytest.mark.parametrize("seed", range(5))
def test_range_query_equals_a_full_sort_after_every_kind_of_change(seed: int) -> None:
    rng = random.Random(seed)
    blocks = BlockMap({5: "a", 150: "b"})
    mutations = _mutations(rng)
    for _ in range(3000):
        rng.choice(mutations)(blocks)
        if rng.random() < 0.3:  # let new addresses pile up between some queries
            lo = rng.randrange(200)
            hi = lo + rng.randrange(100)
            assert blocks.addresses(lo, hi) == full_sort(blocks, lo, hi)


def test_copies_and_pickles_carry_the_blocks_but_never_share_the_index() -> None:
    blocks = BlockMap({3: "a", 1: "b"})
    assert blocks.addresses(0, 10) == [1, 3]
    for other in (copy.copy(blocks), copy.deepcopy(blocks), pickle.loads(pickle.dumps(blocks))):
        assert isinstance(other, BlockMap) and other == blocks
        other[2] = "c"
        assert other.addresses(0, 10) == [1, 2, 3]
        assert blocks.addresses(0, 10) == [1, 3]


def old_read_lv_records(vg: VolumeGroupSim, lv: str, host: str | None) -> dict[int, Any]:
    """`read_lv_records` as it was: the sorted set of every PV's written blocks, rebuilt."""
    candidates = [host] if host is not None else (
        [h for h in vg.lvm if vg.lvm[h].host.up] + list(vg.pv_devices))
    for name in candidates:
        device = vg.pv_devices[name]
        md = peek_metadata(device, vg.name)
        if md is None or lv not in md.lvs:
            continue
        out: dict[int, Any] = {}
        written = sorted({addr for dev in vg.pv_devices.values()
                          if (disk := _backing_disk(dev)) is not None for addr in disk.blocks})
        lv_block = 0
        for first, count in md.lvs[lv]:
            start = pe_block(first, vg.extent_blocks)
            end = start + count * vg.extent_blocks
            lo, hi = bisect.bisect_left(written, start), bisect.bisect_left(written, end)
            for addr in written[lo:hi]:
                value = device.peek(addr)
                if value is not None:
                    out[lv_block + addr - start] = value
            lv_block += count * vg.extent_blocks
        return out
    return {}


def _compare(vgs: dict[str, VolumeGroupSim]) -> int:
    """Every LV read through every host (and the default) both ways; how many had data."""
    seen = 0
    for vg in vgs.values():
        lvs = {lv for dev in vg.pv_devices.values()
               if (md := peek_metadata(dev, vg.name)) is not None for lv in md.lvs}
        for lv in sorted(lvs):
            for host in (None, *vg.pv_devices):
                new, old = vg.read_lv_records(lv, host), old_read_lv_records(vg, lv, host)
                assert list(new.items()) == list(old.items()), (vg.name, lv, host)
                seen += bool(new)
    return seen


@pytest.mark.parametrize("name", [
    "disk-failure",            # a disk fails and is replaced, then resyncs
    "drbd-invalidate",         # a full resync onto a discarded replica
    "drbd-verify",             # silent corruption found by online verify
    "drbd-revert-older-data",  # a disk overwritten from a saved copy
    "drbd-checksum-resync",    # checksum-based resync skips equal blocks
    "split-brain",             # a victim's changes discarded on reconnect
    "lvm-local-race",          # concurrent metadata changes, LVs created and lost
])
def test_lv_reads_equal_the_old_full_rebuild_throughout_a_drill(name: str,
                                                                 tmp_path: Path) -> None:
    drill = load_drill(ROOT / "lab" / "drills" / f"{name}.yaml")
    workload = drill.spec.workload
    writers = None if workload.instances == "all" else frozenset(workload.instances)
    lab: Any = SimBackend().create(drill.topology, lab_name=name, seed=drill.spec.seed,
                                   options=LabOptions(write_interval_s=workload.write_interval_s,
                                                      writers=writers))
    checks: list[int] = []
    every = drill.spec.duration_s / 40  # forty looks, between writes, resyncs and faults

    def checker() -> Generator[simpy.Event, Any, None]:
        while True:
            yield lab.kernel.env.timeout(every)
            checks.append(_compare(lab.vgs))

    lab.kernel.env.process(checker())
    Player(lab, drill.topology, tmp_path).play(drill.spec.schedule, end=drill.spec.duration_s)
    lab.quiesce()
    checks.append(_compare(lab.vgs))
    assert len(checks) > 30 and any(checks), "the drill never wrote an LV the check could read"
