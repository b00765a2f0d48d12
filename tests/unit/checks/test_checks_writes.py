"""acked_writes: the Jepsen-style history checker behind "zero acknowledged writes lost"."""

from __future__ import annotations

from stackdrill.api import StoredRecord, WriteOp
from stackdrill.checks import acked_writes, tally_writes


def op(
    seq: int,
    outcome: str = "ok",
    *,
    inst: str = "vm1",
    vol: str = "v1",
    inc: int = 1,
    at: float | None = None,
) -> WriteOp:
    t = float(seq) if at is None else at
    return WriteOp(inst, vol, inc, seq, f"c{inst}{vol}{inc}-{seq}", t, t + 0.01, outcome, "cmp1")


def rec(o: WriteOp) -> StoredRecord:
    return StoredRecord(o.seq, o.incarnation, o.checksum)


def store(*ops: WriteOp) -> dict[str, dict[int, StoredRecord]]:
    out: dict[str, dict[int, StoredRecord]] = {}
    for o in ops:
        out.setdefault(o.volume, {})[o.seq] = rec(o)
    return out


def test_all_acked_present_passes() -> None:
    """Protocol C: every write acknowledged before the crash is on the surviving replica."""
    h = [op(1), op(2), op(3), op(1, vol="v2", inst="vm2")]
    r = acked_writes(h, store(*h))
    assert r.ok, r.detail
    assert r.data["acked"] == 4 and r.data["lost"] == 0


def test_lost_acked_write_fails_with_seqs() -> None:
    """A write the guest saw acknowledged but that is not on the volume is data loss."""
    h = [op(1), op(2), op(3)]
    r = acked_writes(h, store(h[0]))
    assert not r.ok
    assert r.data["lost"] == 2
    assert r.data["instances"]["vm1"]["lost_seqs"] == {"v1": [2, 3]}
    assert "v1#2,3" in r.detail


def test_overwritten_by_next_incarnation_counts_as_lost() -> None:
    """Protocol A: seq 3 was acked by the dead primary but never replicated; the restarted
    guest (incarnation 2) reuses seq 3. The first acked seq 3 is gone."""
    h = [op(1), op(2), op(3), op(3, inc=2, at=50.0), op(4, inc=2, at=51.0)]
    stored = store(h[0], h[1], h[3], h[4])
    r = acked_writes(h, stored)
    assert not r.ok and r.data["lost"] == 1
    assert acked_writes(h, stored, max_lost=1).ok
    assert acked_writes(h, stored, expected_lost=1).ok
    bad = acked_writes(h, stored, expected_lost=2)
    assert not bad.ok and "expected exactly 2" in bad.detail


def test_corrupt_record_fails_even_with_allowed_loss() -> None:
    """Same seq and incarnation with another checksum: another LV's data landed here."""
    h = [op(1), op(2)]
    stored = store(*h)
    stored["v1"][2] = StoredRecord(2, 1, "garbage")
    r = acked_writes(h, stored, max_lost=10)
    assert not r.ok and "corrupt" in r.detail


def test_info_writes_may_be_missing() -> None:
    """A write in flight when the host died (outcome unknown) may or may not survive."""
    h = [op(1), op(2, "info"), op(3, "info"), op(4, "fail")]
    r = acked_writes(h, store(h[0], h[2]))
    assert r.ok, r.detail
    t = tally_writes(h, store(h[0], h[2]))["vm1"]
    assert (t.info, t.info_present) == (2, 1)


def test_forgotten_volume_fails() -> None:
    """A recovery that forgets a volume: it is never read back, and writes stop on it."""
    h = [op(1), op(2), op(1, vol="v2"), op(5, at=60.0), op(2, vol="v2", at=61.0, outcome="fail")]
    r = acked_writes(h, store(h[0], h[1], h[3]))
    assert not r.ok and "never read back: v2" in r.detail
    stalled = acked_writes(h, store(*h[:4]), resumed_after=50.0)
    assert not stalled.ok
    assert stalled.data["stalled"] == ["vm1/v2"]


def test_foreign_records_fail() -> None:
    """A record nobody wrote to this volume (a zombie or an overlapping LV) is a failure."""
    h = [op(1)]
    stored = store(h[0])
    stored["v1"][9] = StoredRecord(9, 7, "x")
    r = acked_writes(h, stored)
    assert not r.ok and r.data["foreign"] == {"v1": [9]}
    assert acked_writes(h, stored, allow_foreign=True).ok


def test_nothing_acknowledged_is_nothing_checked_and_fails() -> None:
    """A workload that never wrote (an interval longer than the run) or whose every
    write failed gives the check nothing to hold: it must not pass."""
    assert not acked_writes([], {}).ok
    failed = [op(1, "fail"), op(2, "info")]
    r = acked_writes(failed, store())
    assert not r.ok and "no acknowledged write to check" in r.detail
    assert acked_writes([op(1)], store(op(1))).ok
