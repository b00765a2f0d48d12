"""Each VG's locking from the lvm.conf of every host that uses it: the lab has one
locking per VG, so where hosts differ the weakest is modelled (a host that locks only
locally breaks the cluster's serialisation whatever the others do) and the difference
is reported."""

from __future__ import annotations

from typing import Any

from stackdrill.importer.draft import Draft
from stackdrill.importer.lvm import LvmSetting
from stackdrill.importer.result import Source

STRENGTH = {"none": 0, "local": 1, "clustered": 2, "lvmlockd": 2}
KNOWN = {"global/locking_type", "global/use_lvmlockd"}
FILTERS = {"devices/filter", "devices/global_filter"}


def host_locking(settings: tuple[LvmSetting, ...]) -> tuple[str, Source | None]:
    """What this host's lvm.conf says (lvm2's defaults where it says nothing)."""
    by_key = {s.key: s for s in settings}
    lockd = by_key.get("global/use_lvmlockd")
    if lockd is not None and lockd.value == 1:
        return "lvmlockd", lockd.source
    kind = by_key.get("global/locking_type")
    if kind is not None and kind.value == 3:
        return "clustered", kind.source
    if kind is not None and kind.value == 0:
        return "none", kind.source
    said = kind or lockd
    return "local", said.source if said is not None else None


def vg_locking(draft: Draft) -> None:
    for i, vg in enumerate(draft.data.get("volume_groups", [])):
        users = _users(draft, vg)
        said = {h: host_locking(draft.hosts[h].lvm) for h in users if h in draft.hosts}
        if not said:
            continue
        weakest = min(said.items(), key=lambda kv: STRENGTH[kv[1][0]])
        host, (locking, src) = weakest
        if len({v[0] for v in said.values()}) > 1:
            detail = ", ".join(f"{h}: {v[0]}" for h, v in sorted(said.items()))
            draft.notes.differently(src or Source(f"{host}/etc/lvm/lvm.conf"), "locking",
                                    f"hosts differ ({detail}); the lab models one locking "
                                    f"per VG, the weakest ({locking})")
        draft.put(f"volume_groups[{i}].locking", vg, "locking", locking,
                  src or Source(f"{host}/etc/lvm/lvm.conf"))
        attr = str(vg.get("_attr", ""))
        if locking in ("clustered", "lvmlockd") or attr[5:6] in ("c", "s"):
            _dual_primary(draft, vg, src)


def _users(draft: Draft, vg: dict[str, Any]) -> list[str]:
    pv = vg["pv"]
    if "drbd" in pv:
        res = next(r for r in draft.data["drbd"] if r["name"] == pv["drbd"])
        return list(res["nodes"])
    return [pv["host"]]


def _dual_primary(draft: Draft, vg: dict[str, Any], src: Source | None) -> None:
    """A cluster-locked VG on a DRBD device is used from both nodes: dual-primary."""
    name = vg["pv"].get("drbd")
    for i, res in enumerate(draft.data.get("drbd", [])):
        if res["name"] == name and len(res.get("primary", [])) < 2:
            draft.put(f"drbd[{i}].primary", res, "primary", list(res["nodes"]),
                      src or Source("lvm.conf"))


def lvm_options(draft: Draft) -> None:
    """The rest of each lvm.conf: filters named, everything else ignored."""
    for files in draft.hosts.values():
        for setting in files.lvm:
            if setting.key in KNOWN:
                continue
            if setting.key in FILTERS:
                draft.notes.differently(setting.source, setting.key, "the lab's LVM sees "
                                        "exactly the PV the topology names; a filter that "
                                        "also accepts a DRBD device's backing disk shows "
                                        "duplicate PVs in reality")
            else:
                draft.notes.ignored(setting.source, setting.key, "not relevant to the lab")
