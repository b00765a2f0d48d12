"""Acknowledged writes, checked Jepsen-style over the workloads' operation history.

Every write the workload saw acknowledged (`ok`) must be on its volume afterwards,
intact: the record at its sequence number carries the same incarnation and checksum.
A record from another incarnation at that seq means a later boot overwrote it (the
acked write is lost); the same incarnation with another checksum is corruption (e.g.
another LV's writes landing on these extents). `info` writes (outcome unknown, e.g. the
host died mid-write) may or may not be present. Records no invoked write explains are
foreign: something other than this volume's workload wrote there.

Records are keyed per volume by seq: a workload numbers its records on a volume and a
new incarnation continues from the last record it can read, so a record the new
primary never received is silently reused — which is exactly what protocol A loses.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from typing import Literal

from stackdrill.api import StoredRecord, WriteOp
from stackdrill.checks.result import CheckResult

NAME = "acked_writes"
WriteFate = Literal["acked", "lost", "corrupt", "failed", "unknown"]


@dataclass
class WriteTally:
    """One instance's writes: how many were acknowledged, and which of those are gone."""

    acked: int = 0
    lost: int = 0
    corrupt: int = 0
    info: int = 0
    info_present: int = 0
    fail_present: int = 0
    lost_seqs: dict[str, list[int]] = field(default_factory=dict)  # volume -> seqs
    corrupt_seqs: dict[str, list[int]] = field(default_factory=dict)
    unread_volumes: list[str] = field(default_factory=list)


def _same(op: WriteOp, rec: StoredRecord) -> bool:
    return rec.incarnation == op.incarnation and rec.checksum == op.checksum


def tally_writes(
    history: Iterable[WriteOp], stored: Mapping[str, Mapping[int, StoredRecord]]
) -> dict[str, WriteTally]:
    """Per instance: acked, lost and corrupt writes, comparing history with what is stored.

    A volume missing from `stored` was never read back: all its acked writes count as
    lost and the volume is listed in `unread_volumes`."""
    tallies: dict[str, WriteTally] = defaultdict(WriteTally)
    for op in history:
        t = tallies[op.instance]
        records = stored.get(op.volume)
        if records is None and op.volume not in t.unread_volumes:
            t.unread_volumes.append(op.volume)
        rec = records.get(op.seq) if records is not None else None
        fate = write_fate(op, rec)
        if fate in ("acked", "lost", "corrupt"):
            t.acked += 1
        if fate == "lost":
            t.lost += 1
            t.lost_seqs.setdefault(op.volume, []).append(op.seq)
        elif fate == "corrupt":
            t.corrupt += 1
            t.corrupt_seqs.setdefault(op.volume, []).append(op.seq)
        elif fate == "unknown":
            t.info += 1
            t.info_present += int(rec is not None and _same(op, rec))
        elif fate == "failed":
            t.fail_present += int(rec is not None and _same(op, rec))
    return dict(sorted(tallies.items()))


def write_fate(op: WriteOp, rec: StoredRecord | None) -> WriteFate:
    """What became of one write, given the record at its seq (None: nothing there): an
    acknowledged write is `acked` (intact), `lost` (absent or from another incarnation) or
    `corrupt`; the others are `failed` or `unknown` (Jepsen's info). The one definition
    the check and the report's timeline share."""
    if op.outcome == "ok":
        if rec is None or rec.incarnation != op.incarnation:
            return "lost"
        return "acked" if rec.checksum == op.checksum else "corrupt"
    if op.outcome == "info":
        return "unknown"
    if op.outcome == "fail":
        return "failed"
    raise ValueError(f"write {op.instance}/{op.volume}#{op.seq}: outcome {op.outcome!r}")


def foreign_records(
    history: Iterable[WriteOp], stored: Mapping[str, Mapping[int, StoredRecord]]
) -> dict[str, list[int]]:
    """volume -> seqs of stored records that no invoked write on that volume produced."""
    invoked: set[tuple[str, int, int, str]] = {
        (op.volume, op.seq, op.incarnation, op.checksum) for op in history
    }
    out: dict[str, list[int]] = {}
    for volume, records in sorted(stored.items()):
        seqs = [
            seq
            for seq, rec in sorted(records.items())
            if (volume, seq, rec.incarnation, rec.checksum) not in invoked
        ]
        if seqs:
            out[volume] = seqs
    return out


def _seqs(seqs: Mapping[str, list[int]], limit: int = 8) -> str:
    parts = []
    for volume, items in seqs.items():
        shown = ",".join(map(str, items[:limit])) + ("…" if len(items) > limit else "")
        parts.append(f"{volume}#{shown}")
    return " ".join(parts)


def _instance_problems(tallies: Mapping[str, WriteTally], *, lost_fails: bool) -> list[str]:
    """Per instance: volumes never read back, lost writes (when they fail the check) and
    corrupt ones."""
    problems: list[str] = []
    for inst, t in tallies.items():
        if t.unread_volumes:
            problems.append(f"{inst}: volume(s) never read back: {', '.join(t.unread_volumes)}")
        if t.lost and lost_fails:
            problems.append(
                f"{inst}: {t.lost} of {t.acked} acked writes lost ({_seqs(t.lost_seqs)})"
            )
        if t.corrupt:
            problems.append(f"{inst}: {t.corrupt} acked writes corrupt ({_seqs(t.corrupt_seqs)})")
    return problems


def _stalled(ops: list[WriteOp], resumed_after: float) -> list[str]:
    """'instance/volume' for each pair in the history without an acked write invoked at or
    after `resumed_after`."""
    pairs = sorted({(op.instance, op.volume) for op in ops})
    progressed = {
        (op.instance, op.volume) for op in ops if op.outcome == "ok" and op.invoked >= resumed_after
    }
    return [f"{i}/{v}" for i, v in pairs if (i, v) not in progressed]


def acked_writes(
    history: Iterable[WriteOp],
    stored: Mapping[str, Mapping[int, StoredRecord]],
    *,
    max_lost: int = 0,
    expected_lost: int | None = None,
    resumed_after: float | None = None,
    allow_foreign: bool = False,
    name: str = NAME,
) -> CheckResult:
    """Every acknowledged write is present and intact.

    `max_lost` allows that many lost acked writes in total (DRBD protocol A acknowledges
    before the peer has the data); `expected_lost` demands exactly that many (the model's
    prediction for a seed). Corruption, unread volumes and foreign records always fail
    (foreign ones unless `allow_foreign`). With `resumed_after`, every (instance, volume)
    in the history must have an acknowledged write invoked after that lab time — a
    volume the recovery forgot to attach stops making progress. With no acknowledged
    write at all there is nothing to check, and the check fails saying so."""
    ops = list(history)
    tallies = tally_writes(ops, stored)
    foreign = foreign_records(ops, stored)
    lost = sum(t.lost for t in tallies.values())
    problems = _instance_problems(tallies, lost_fails=expected_lost is None and lost > max_lost)
    if expected_lost is not None and lost != expected_lost:
        problems.append(f"{lost} acked writes lost, expected exactly {expected_lost}")
    if foreign and not allow_foreign:
        problems.append(f"records no write explains: {_seqs(foreign)}")
    stalled = _stalled(ops, resumed_after) if resumed_after is not None else []
    if stalled:
        problems.append(f"no acked write after t={resumed_after:g}s on: {', '.join(stalled)}")
    acked = sum(t.acked for t in tallies.values())
    if acked == 0:
        # nothing to check is not a pass: no instance's workload got a write acknowledged
        # (no workload, an interval longer than the run, every write failed)
        problems.insert(0, f"no acknowledged write to check ({len(ops)} writes invoked, "
                        f"none acknowledged)")
    ok_detail = f"{acked} acked writes on {len(stored)} volumes, {lost} lost"
    if max_lost or expected_lost is not None:
        ok_detail += f" (allowed: {expected_lost if expected_lost is not None else max_lost})"
    return CheckResult.of(
        name,
        problems,
        ok_detail,
        acked=acked,
        lost=lost,
        instances={inst: asdict(t) for inst, t in tallies.items()},
        foreign=foreign,
        stalled=stalled,
    )


def no_io_errors(history: Iterable[WriteOp], *, name: str = "no_io_errors") -> CheckResult:
    """No write saw an I/O error: the guest's disk never failed under it (a failover that
    suspends I/O long enough, or a lost path, shows as failed writes)."""
    ops = list(history)
    errors = [op for op in ops if op.outcome == "fail"]
    detail = ", ".join(f"{op.instance}#{op.seq}@{op.completed:.1f}s" for op in errors[:8])
    return CheckResult.of(name, [f"{len(errors)} write(s) saw an I/O error: {detail}"]
                          if errors else [],
                          f"{len(ops)} writes, none saw an I/O error", io_errors=len(errors))


def single_writer(history: Iterable[WriteOp], *, name: str = "single_writer") -> CheckResult:
    """No volume ever had two writers: the write spans of two incarnations of its instance
    (first write invoked .. last write completed or, if unknown, invoked) never overlap.
    The zombie this catches is a returning or thawed host whose old guest keeps writing
    while the recovered copy writes too."""
    spans: dict[str, dict[tuple[int, str], list[float]]] = {}
    for op in history:
        end = op.completed if op.completed is not None else op.invoked
        span = spans.setdefault(op.volume, {}).setdefault((op.incarnation, op.host),
                                                           [op.invoked, end])
        span[0] = min(span[0], op.invoked)
        span[1] = max(span[1], end)
    problems = []
    for volume, writers in sorted(spans.items()):
        ordered = sorted(writers.items(), key=lambda kv: kv[1][0])
        for (a, (_a0, a1)), (b, (b0, _b1)) in pairwise(ordered):
            if b0 < a1:
                problems.append(f"{volume}: incarnation {a[0]} on {a[1]} wrote until {a1:.1f}s, "
                                f"incarnation {b[0]} on {b[1]} from {b0:.1f}s")
    return CheckResult.of(name, problems, f"{len(spans)} volume(s), one writer at a time",
                          volumes=len(spans))
