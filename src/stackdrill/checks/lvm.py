"""LVM consistency as an operator establishes it: on every host, compare what the
on-disk metadata says (`lvs`, `vgs -o seqno`) with what device-mapper really maps
(`dmsetup table`), and compare hosts with each other.

Local locking on a shared PV lets two hosts change the VG metadata concurrently: one
change is lost although its command succeeded, and a host keeps an LV mapped over
extents the metadata has since given to another LV, so one LV's writes land in the
other (lvmlockd(8): "without lvmlockd, ... LVs can be corrupted"). Looking only at the
metadata misses this; the device-mapper tables of every host show it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from stackdrill.api import LvmView
from stackdrill.checks.result import CheckResult

NAME = "lvm_consistency"
Segments = list[tuple[int, int]]


@dataclass(frozen=True)
class _Use:
    """One LV's extents as one source sees them (a host's dm table, or on-disk metadata)."""

    lv: str
    extents: frozenset[int]
    source: str  # "dm@cmp1" or "metadata@cmp1 seqno 7"


def _extents(segments: Segments) -> frozenset[int]:
    return frozenset(pe for first, count in segments for pe in range(first, first + count))


def _ranges(pes: Iterable[int]) -> str:
    """1,2,3,7 -> '1-3,7' (physical extents, grouped as `pvdisplay -m` shows them)."""
    runs: list[list[int]] = []
    for pe in sorted(pes):
        if runs and pe == runs[-1][1] + 1:
            runs[-1][1] = pe
        else:
            runs.append([pe, pe])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)


def _collisions(uses: list[_Use]) -> list[str]:
    """Pairs of different LVs whose extents intersect, once per LV pair and source pair."""
    found: dict[tuple[str, str], str] = {}
    for i, a in enumerate(uses):
        for b in uses[i + 1 :]:
            if a.lv == b.lv:
                continue
            shared = a.extents & b.extents
            key = (min(a.lv, b.lv), max(a.lv, b.lv))
            if shared and key not in found:
                found[key] = (
                    f"{a.lv} ({a.source}) and {b.lv} ({b.source}) share PE {_ranges(shared)}"
                )
    return [found[k] for k in sorted(found)]


def _disagreement(vg: str, what: str, values: dict[str, str]) -> list[str]:
    """One problem when hosts see different values of `what` (host -> value as shown)."""
    if len(set(values.values())) <= 1:
        return []
    shown = ", ".join(f"{h}={v}" for h, v in sorted(values.items()))
    return [f"vg {vg}: hosts disagree on {what} ({shown})"]


def _metadata_uses(view: LvmView, source: str) -> list[_Use]:
    return [_Use(lv, _extents(s), source) for lv, s in sorted(view.metadata_lvs.items())]


def _collision_problems(vg: str, views: list[LvmView], newest: LvmView | None) -> list[str]:
    """Two LVs on the same extents: within any host's metadata, then in what is really
    mapped on every host together with the newest metadata."""
    problems: list[str] = []
    for view in views:
        if view.metadata_seqno is not None:
            uses = _metadata_uses(view, f"metadata@{view.host} seqno {view.metadata_seqno}")
            problems += [f"vg {vg}: {c}" for c in _collisions(uses)]
    mapped = [
        _Use(lv, _extents(s), f"dm@{v.host}")
        for v in sorted(views, key=lambda v: v.host)
        for lv, s in sorted(v.active_lvs.items())
    ]
    reference = []
    if newest is not None:
        reference = _metadata_uses(newest, f"metadata seqno {newest.metadata_seqno}")
    return problems + [f"vg {vg}: {c}" for c in _collisions(mapped + reference)]


def _mapping_problems(vg: str, views: list[LvmView], newest: LvmView
                      ) -> tuple[list[str], list[str], list[str]]:
    """(problems, orphans, stale): LVs mapped on a host that the newest metadata no longer
    has (orphans) or maps over other extents (stale), as 'lv@host'."""
    problems: list[str] = []
    orphans: list[str] = []
    stale: list[str] = []
    seqno = newest.metadata_seqno
    for view in sorted(views, key=lambda v: v.host):
        for lv, segs in sorted(view.active_lvs.items()):
            meta = newest.metadata_lvs.get(lv)
            mapped = _ranges(_extents(segs))
            if meta is None:
                orphans.append(f"{lv}@{view.host}")
                problems.append(f"vg {vg}: {lv} active on {view.host} over PE {mapped}"
                                f" but absent from the metadata (seqno {seqno})")
            elif _extents(meta) != _extents(segs):
                stale.append(f"{lv}@{view.host}")
                problems.append(f"vg {vg}: {lv} on {view.host} maps PE {mapped},"
                                f" metadata (seqno {seqno}) says {_ranges(_extents(meta))}")
    return problems, orphans, stale


def _check_vg(vg: str, views: list[LvmView]) -> tuple[list[str], dict[str, object]]:
    readable = [v for v in views if v.metadata_seqno is not None]
    seqnos = {v.host: v.metadata_seqno for v in readable}
    problems = _disagreement(vg, "metadata seqno", {h: str(s) for h, s in seqnos.items()})
    newest = max(readable, key=lambda v: (v.metadata_seqno or 0, v.host), default=None)
    problems += _collision_problems(vg, views, newest)
    orphans: list[str] = []
    stale: list[str] = []
    if newest is not None:
        mapping, orphans, stale = _mapping_problems(vg, views, newest)
        problems += mapping
    problems += _disagreement(vg, "the clustered flag",
                              {v.host: "c" if v.clustered else "-" for v in views})
    return problems, {"seqnos": seqnos, "orphans": orphans, "stale_mappings": stale}


def lvm_consistency(views: Iterable[LvmView], *, name: str = NAME) -> CheckResult:
    """No two LVs on the same extents (in any host's dm table or in the metadata), no LV
    active that the on-disk metadata no longer has or maps elsewhere, every host reading
    the same metadata seqno. Fails listing what collides; not run when nothing was seen."""
    by_vg: dict[str, list[LvmView]] = defaultdict(list)
    for view in views:
        by_vg[view.vg].append(view)
    if not by_vg:
        return CheckResult.not_run(name, "no LVM view was observed on any host")
    problems: list[str] = []
    data: dict[str, object] = {}
    for vg in sorted(by_vg):
        vg_problems, vg_data = _check_vg(vg, by_vg[vg])
        problems += vg_problems
        data[vg] = vg_data
    hosts = sorted({v.host for vs in by_vg.values() for v in vs})
    return CheckResult.of(
        name,
        problems,
        f"{len(by_vg)} VG(s) consistent on {', '.join(hosts)}",
        vgs=data,
    )
