"""Volume groups (from every host's `vgs` report, merged by name) and their logical
volumes (from `lvs`), with Cinder's `volume-<id>` LVs named as Cinder names them."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from stackdrill.importer.draft import NAME, Draft, as_name
from stackdrill.importer.lvm import LvRow, VgRow
from stackdrill.importer.result import Source


def volume_groups(draft: Draft, volume_names: Callable[[str], str | None]) -> None:
    """VGs from every host's vgs report (merged by name), their LVs from lvs."""
    rows = [(name, row, files.vgs_file) for name, files in draft.hosts.items()
            for row in files.vgs]
    done: set[str] = set()
    for host, row, file in rows:
        if row.vg_name in done:
            continue
        done.add(row.vg_name)
        _vg(draft, host, row, Source(file, key=f"vg[{row.vg_name}]"))
    for host, files in draft.hosts.items():
        for lv in files.lvs:
            _lv(draft, host, lv, Source(files.lvs_file, key=f"lv[{lv.lv_name}]"), volume_names)


def _vg(draft: Draft, host: str, row: VgRow, src: Source) -> None:
    item: dict[str, Any] = {}
    pv: dict[str, Any] = {}
    pv_name = row.pv_name or ""
    minor = pv_name.removeprefix("/dev/drbd")
    res = next((r for r in draft.data.get("drbd", []) if minor.isdigit()
                and r.get("minor", 0) == int(minor)), None)
    if res is not None:
        pv["drbd"] = res["name"]
    else:
        disk = draft.need_disk(host, pv_name)
        if disk is None:
            draft.notes.differently(src, row.vg_name, f"PV {pv_name[:40]!r} is neither a DRBD "
                                    "device nor a disk lsblk lists: VG left out")
            return
        pv.update(host=host, disk=disk)
    _index, base = draft.append("volume_groups", item)
    draft.put(f"{base}.name", item, "name", row.vg_name, src)
    draft.put(f"{base}.pv", item, "pv", pv, src)
    if row.vg_extent_size:
        draft.put(f"{base}.extent_mb", item, "extent_mb", math.ceil(row.vg_extent_size), src)
    if row.vg_lock_type in ("dlm", "sanlock"):
        draft.put(f"{base}.lock_manager", item, "lock_manager", row.vg_lock_type, src)
    item["_attr"] = row.vg_attr


def _lv(draft: Draft, host: str, lv: LvRow, src: Source,
        volume_names: Callable[[str], str | None]) -> None:
    vgs = {vg["name"] for vg in draft.data.get("volume_groups", [])}
    if lv.vg_name not in vgs:
        return
    if lv.lv_attr[:1] not in ("-", "o", ""):
        draft.notes.differently(src, lv.lv_name, f"LV type {lv.lv_attr[:1]!r} (thin, cache, "
                                "snapshot...): the lab models plain linear LVs only")
        return
    name = volume_names(lv.lv_name) or lv.lv_name
    if any(v["name"] == name for v in draft.data.get("volumes", [])):
        return
    if not NAME.fullmatch(name):
        draft.notes.differently(src, lv.lv_name, f"named {as_name(name)!r} in the lab "
                                "(topology names are at most 31 lower-case characters)")
        name = as_name(name)
    item: dict[str, Any] = {}
    _i, base = draft.append("volumes", item)
    draft.put(f"{base}.name", item, "name", name, src)
    draft.put(f"{base}.vg", item, "vg", lv.vg_name, src)
    draft.put(f"{base}.size_gb", item, "size_gb", max(1, math.ceil(lv.lv_size)), src)
    item["_lv"] = lv.lv_name
