"""single_writer: a volume never has two writers at once (the returning-host zombie)."""

from __future__ import annotations

from stackdrill.api import WriteOp
from stackdrill.checks import single_writer


def op(inc: int, host: str, seq: int, at: float, done: float | None = None) -> WriteOp:
    return WriteOp("vm1", "vol1", inc, seq, "x", at, done if done is not None else at + 0.1,
                   "ok", host)


def test_handover_after_the_old_writer_stopped_passes() -> None:
    history = [op(1, "cmp1", 1, 0.0), op(1, "cmp1", 2, 2.0), op(2, "cmp2", 3, 50.0)]
    assert single_writer(history).ok


def test_zombie_writing_after_the_new_copy_started_fails() -> None:
    history = [op(1, "cmp1", 1, 0.0), op(2, "cmp2", 2, 50.0), op(1, "cmp1", 2, 60.0)]
    result = single_writer(history)
    assert not result.ok
    assert "vol1: incarnation 1 on cmp1 wrote until 60.1s, incarnation 2 on cmp2 from 50.0s" \
        in result.detail
