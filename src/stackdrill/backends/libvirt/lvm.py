"""What a guest's LVM says on disk and what device-mapper has mapped, as `LvmView`s.

The seed's clustered-LVM story is about the two disagreeing: without cluster locking a host
keeps an old mapping after another host changed the metadata, and two LVs end up on the same
extents. So the view keeps both: `metadata_lvs` from `lvs seg_pe_ranges` and `active_lvs`
from `dmsetup table`, converted from sectors to physical extents with the PV's pe_start and the
VG's extent size (both read in sectors). A mapped LV the metadata no longer names (the change
that created it was overwritten by the other host's) is found by its device-mapper name,
which LVM builds as VG-LV with each '-' inside a name doubled (libdm's dm_split_lvm_name
reads it back the same way); hidden layers (VG-LV-real, -cow, -tpool...) are not LVs.
"""

from __future__ import annotations

import re
import shlex
from typing import TYPE_CHECKING

from stackdrill.api import LvmView

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab

MARK = "=====stackdrill====="
# A shared VG's lock waits while the DLM waits for fencing, and `vgs` with it: an operator
# sees no answer, so does this read, after LVM_WAIT_S instead of the agent's minute.
LVM_WAIT_S = 10
COMMAND = (
    f"timeout {LVM_WAIT_S} vgs --noheadings --units s --nosuffix"
    " -o vg_name,vg_seqno,vg_attr,vg_extent_size 2>/dev/null;"
    f" echo {MARK};"
    f" timeout {LVM_WAIT_S} pvs --noheadings --units s --nosuffix"
    " -o pv_name,vg_name,pe_start 2>/dev/null;"
    f" echo {MARK};"
    f" timeout {LVM_WAIT_S} lvs --noheadings -o vg_name,lv_name,lv_dm_path,seg_pe_ranges"
    " 2>/dev/null;"
    f" echo {MARK};"
    " dmsetup table 2>/dev/null"
)
_RANGE = re.compile(r"(\S+?):(\d+)-(\d+)")


def split_dm_name(name: str) -> tuple[str, str] | None:
    """(vg, lv) of an LVM device-mapper name, or None for a layer or a non-LVM name."""
    parts: list[str] = [""]
    i = 0
    while i < len(name):
        if name[i] != "-":
            parts[-1] += name[i]
        elif name[i + 1:i + 2] == "-":
            parts[-1] += "-"
            i += 1
        else:
            parts.append("")
        i += 1
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0], parts[1]


def parse(host: str, text: str) -> list[LvmView]:
    parts = [*text.split(MARK), "", "", ""][:4]
    vgs_out, pvs_out, lvs_out, dm_out = parts
    vgs: dict[str, tuple[int, str, int]] = {}
    for line in vgs_out.splitlines():
        f = line.split()
        if len(f) == 4:
            vgs[f[0]] = (int(f[1]), f[2], int(float(f[3])))
    pe_start: dict[str, int] = {}
    for line in pvs_out.splitlines():
        f = line.split()
        if len(f) == 3:
            pe_start[f[0]] = int(float(f[2]))
    meta: dict[str, dict[str, list[tuple[int, int]]]] = {vg: {} for vg in vgs}
    dm_name_to_lv: dict[str, tuple[str, str]] = {}
    for line in lvs_out.splitlines():
        f = line.split()
        if len(f) < 3 or f[0] not in meta:
            continue
        vg, lv, dm_path = f[0], f[1], f[2]
        dm_name_to_lv[dm_path.rsplit("/", 1)[-1]] = (vg, lv)
        for _pv, first, last in _RANGE.findall(" ".join(f[3:])):
            meta[vg].setdefault(lv, []).append((int(first), int(last) - int(first) + 1))
    active: dict[str, dict[str, list[tuple[int, int]]]] = {vg: {} for vg in vgs}
    any_pe_start = next(iter(pe_start.values()), 0)  # the lab's VGs have one PV each
    for line in dm_out.splitlines():
        name, _, table = line.partition(":")
        f = table.split()
        found = dm_name_to_lv.get(name) or split_dm_name(name)
        if found is None or found[0] not in vgs or len(f) < 5 or f[2] != "linear":
            continue
        vg, lv = found
        extent = vgs[vg][2]
        first = (int(f[4]) - any_pe_start) // extent
        active[vg].setdefault(lv, []).append((first, int(f[1]) // extent))
    return [
        LvmView(host=host, vg=vg, metadata_seqno=seqno, metadata_lvs=meta[vg],
                active_lvs=active[vg], clustered=len(attr) > 5 and attr[5] in "cs")
        for vg, (seqno, attr, _extent) in sorted(vgs.items())
    ]


def observe(lab: LibvirtLab, host: str) -> list[LvmView]:
    return parse(host, lab.run(host, COMMAND, timeout=60).stdout)


def scaled_extents(lab: LibvirtLab, host: str, vg: str, extents: int) -> int:
    """`extents` of the topology's VG as the same share of the guest's (smaller) VG."""
    spec = lab.topology.volume_group(vg)
    topology_extents = max(1, ((lab.topology.vg_size_gb(vg) or 0) << 10) // spec.extent_mb)
    out = lab.run(host, f"vgs --noheadings -o vg_extent_count {shlex.quote(vg)}", timeout=60)
    try:
        real = int(out.stdout.split()[0])
    except (IndexError, ValueError):
        return extents
    return share_of(extents, topology_extents, real)


def share_of(extents: int, topology_extents: int, guest_extents: int) -> int:
    """The same share of the guest's VG, at least one extent (lvcreate's minimum)."""
    return max(1, round(extents * guest_extents / topology_extents))
