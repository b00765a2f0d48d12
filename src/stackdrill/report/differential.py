"""The differential check: the same drill on two backends, compared row by row.

The simulator and the real-guest backends must reach the same verdicts and the same
DRBD/LVM end states for the same drill; a row where they differ is a bug in one of
them. Only what a correct backend cannot vary is compared: verdict, each check's
outcome, DRBD roles/disk/connection states, whether a resource is out of sync (not
by how much: a simulated 180 GB disk and a real 64 MiB one never agree on kB), LV
names and clustering per VG and host, power states and where instances run. Times,
seqnos, extents and trace hashes are left out: they legitimately differ.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from stackdrill.report.model import Report

Value = str | bool | list[str] | None  # None: the side has no such row (not observed)
Section = Literal["outcome", "state after", "state before"]
SECTIONS: tuple[Section, ...] = ("outcome", "state after", "state before")
DRBD_FIELDS = ("role", "disk", "connection", "peer_disk")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Difference(_Frozen):
    """One compared item: what it is, each side's value, and whether they agree.

    `agree` is stored so the JSON reads on its own, and validated so it cannot lie."""

    section: Section
    what: str
    left: Value
    right: Value
    agree: bool
    # why each side's check said what it said, kept where a check's outcome differs: the
    # first thing a user asks of such a row (not compared: wording differs by backend)
    left_detail: str | None = None
    right_detail: str | None = None

    @model_validator(mode="after")
    def _agree_is_true(self) -> Difference:
        if self.agree != (self.left == self.right):
            raise ValueError(f"row {self.what!r}: agree={self.agree} but values say otherwise")
        return self

    @classmethod
    def of(cls, section: Section, what: str, left: Value, right: Value) -> Difference:
        return cls(section=section, what=what, left=left, right=right, agree=left == right)


class Differential(_Frozen):
    """One drill on two backends (left, right), as rows in SECTIONS order."""

    drill: str
    left_backend: str
    right_backend: str
    left_seed: int
    right_seed: int
    rows: tuple[Difference, ...] = ()

    @property
    def agrees(self) -> bool:
        """True when every row agrees (an empty comparison agrees: nothing contradicts)."""
        return all(row.agree for row in self.rows)

    @property
    def disagreements(self) -> list[Difference]:
        return [row for row in self.rows if not row.agree]

    def section(self, name: Section) -> list[Difference]:
        return [row for row in self.rows if row.section == name]

    def to_json(self, *, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)


def compare(left: Report, right: Report) -> Differential:
    """Compare two reports of the same drill; raises ValueError for different drills
    (their rows would all be noise)."""
    if left.drill != right.drill:
        raise ValueError(f"reports of different drills: {left.drill!r} and {right.drill!r}")
    damaged = _damaged_vgs(left) & _damaged_vgs(right)
    rows = [*_outcome(left, right),
            *_state("state after", left.state_after, right.state_after, damaged),
            *_state("state before", left.state_before, right.state_before)]
    return Differential(drill=left.drill, left_backend=left.backend,
                       right_backend=right.backend, left_seed=left.seed,
                       right_seed=right.seed, rows=tuple(rows))


def _outcome(left: Report, right: Report) -> Iterator[Difference]:
    """The verdict, then every check's ok by name: a check on one side only is a row
    whose other side is None."""
    yield Difference.of("outcome", "verdict", left.verdict, right.verdict)
    lefts, rights = _checks(left), _checks(right)
    for name in [*lefts, *(n for n in rights if n not in lefts)]:
        lok, ldetail = lefts.get(name, (None, None))
        rok, rdetail = rights.get(name, (None, None))
        row = Difference.of("outcome", f"check {name} ok", lok, rok)
        yield row if row.agree else row.model_copy(
            update={"left_detail": ldetail, "right_detail": rdetail})


def _checks(report: Report) -> dict[str, tuple[bool, str]]:
    """name -> (ok, detail); a repeated name gets ' #2', ' #3' so no check hides another."""
    seen: Counter[str] = Counter()
    out: dict[str, tuple[bool, str]] = {}
    for check in report.checks:
        seen[check.name] += 1
        key = check.name if seen[check.name] == 1 else f"{check.name} #{seen[check.name]}"
        out[key] = (check.ok, check.detail)
    return out


def _damaged_vgs(report: Report) -> set[str]:
    """VGs whose LVM check found damage (LVs active that the metadata lacks or maps
    elsewhere): which concurrent change a VG lost is the outcome of a race, on real lvm2
    as in the simulator's seeded timing, so the LVs it kept are no state to compare."""
    damaged: set[str] = set()
    for check in report.checks:
        if not check.name.startswith("lvm_consistent"):
            continue
        for vg, found in _map(check.data.get("vgs")).items():
            view = _map(found)
            if view.get("orphans") or view.get("stale_mappings"):
                damaged.add(vg)
    return damaged


def _state(section: Section, left: Mapping[str, Any], right: Mapping[str, Any],
           damaged: set[str] | frozenset[str] = frozenset()) -> Iterator[Difference]:
    """DRBD per resource and host, LVM per (vg, host), power per host, running per
    instance; a key present on one side only still gets a row. A VG both sides found
    damaged is compared as damaged, not by the LVs it happened to keep."""
    lpower, rpower = _map(left.get("power")), _map(right.get("power"))
    # a host that is off on both sides has no DRBD or LVM anyone could read (an operator's
    # drbdadm cannot reach it; the simulator still knows it): compare only its power
    dark = {h for h in _keys(lpower, rpower)
            if lpower.get(h) == rpower.get(h) and _str(lpower.get(h)) not in ("on", None)}
    yield from _drbd(section, _map(left.get("drbd")), _map(right.get("drbd")), dark)
    yield from _lvm(section, _lvm_views(left.get("lvm")), _lvm_views(right.get("lvm")), dark,
                    damaged)
    for host in _keys(lpower, rpower):
        yield Difference.of(section, f"power {host}", _str(lpower.get(host)),
                            _str(rpower.get(host)))
    lrun, rrun = _map(left.get("running")), _map(right.get("running"))
    for inst in _keys(lrun, rrun):
        # an instance a backend lists nowhere runs nowhere: the same as an empty list
        yield Difference.of(section, f"running {inst}", _names(lrun.get(inst, [])),
                            _names(rrun.get(inst, [])))


def _drbd(section: Section, left: dict[str, Any], right: dict[str, Any], dark: set[str]
          ) -> Iterator[Difference]:
    for res in _keys(left, right):
        lres, rres = _map(left.get(res)), _map(right.get(res))
        for host in (h for h in _keys(lres, rres) if h not in dark):
            lnode, rnode = _map(lres.get(host)), _map(rres.get(host))
            for name in DRBD_FIELDS:
                yield Difference.of(section, f"drbd {res} {host} {name}",
                                    _str(lnode.get(name)), _str(rnode.get(name)))
            yield Difference.of(section, f"drbd {res} {host} out-of-sync",
                                _nonzero(lnode.get("out_of_sync_kb")),
                                _nonzero(rnode.get("out_of_sync_kb")))


def _lvm(section: Section, left: dict[tuple[str, str], dict[str, Any]],
         right: dict[tuple[str, str], dict[str, Any]], dark: set[str],
         damaged: set[str] | frozenset[str]) -> Iterator[Difference]:
    for vg, host in sorted(k for k in set(left) | set(right) if k[1] not in dark):
        lview, rview = left.get((vg, host), {}), right.get((vg, host), {})
        if vg in damaged:
            yield Difference.of(section, f"lvm {vg} {host} lvs", "damaged", "damaged")
        else:
            yield Difference.of(section, f"lvm {vg} {host} lvs", _names(lview.get("lvs")),
                                _names(rview.get("lvs")))
        yield Difference.of(section, f"lvm {vg} {host} clustered",
                            _bool(lview.get("clustered")), _bool(rview.get("clustered")))


# Reports may come from JSON written by another version: read defensively, never crash.


def _map(value: Any) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}


def _keys(*maps: Mapping[str, Any]) -> list[str]:
    return sorted(set[str]().union(*maps))


def _lvm_views(value: Any) -> dict[tuple[str, str], dict[str, Any]]:
    views = value if isinstance(value, list) else []
    return {(str(v.get("vg")), str(v.get("host"))): v for v in views if isinstance(v, dict)}


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _nonzero(value: Any) -> bool | None:
    """out_of_sync_kb as 'anything out of sync?'; None when the side did not report it."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value != 0


def _names(value: Any) -> list[str] | None:
    if isinstance(value, Mapping | list | tuple):
        return sorted(str(v) for v in value)
    return None
