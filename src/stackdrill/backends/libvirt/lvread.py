"""Reading an LV back where no Primary has it active.

After a drill both replicas may be Secondary (a split brain resolved with both demoted, a
Primary that rebooted): DRBD 8.4 opens /dev/drbdN only on a Primary, so the LV has no
device anywhere, yet its data is on every UpToDate backing disk (internal meta-data sits
at the disk's end: the data starts at offset 0). The LV's first extent is found from the
LVM metadata on that backing disk (pvs/lvs told to see only it, `--readonly`: no lock,
no change) and its first blocks are read there with O_DIRECT (the page cache of a disk
DRBD writes underneath may be stale; device-mapper cannot map a disk DRBD holds
exclusively). Nothing of DRBD or LVM changes.
"""

from __future__ import annotations

import shlex

from stackdrill.backends.libvirt.workload import BLOCK, RECORDS_FILTER


def lvm_config(disk: str) -> str:
    """An lvm --config that sees only `disk` (the image's filter accepts only /dev/drbd*)."""
    accept = f'["a|^{disk}$|", "r|.*|"]'
    return f"devices {{ global_filter={accept} filter={accept} use_devicesfile=0 }}"


def backing_read_script(disk: str, vg: str, lv: str, blocks: int) -> str:
    """A shell script printing the SDREC records of the first `blocks` blocks of `vg/lv`,
    read from the backing `disk`; it fails when the LV's first segment is shorter."""
    opts = f"--readonly --noheadings --units s --nosuffix --config {shlex.quote(lvm_config(disk))}"
    disk_q = shlex.quote(disk)
    return "\n".join([
        "set -e",
        f"ext=$(vgs {opts} -o vg_extent_size {shlex.quote(vg)} | tr -d ' ')",
        f"start=$(pvs {opts} -o pe_start {disk_q} | tr -d ' ')",
        # the first segment: its length and its first extent (seg_pe_ranges DISK:FIRST-LAST)
        f"set -- $(lvs {opts} -o seg_start,seg_size,seg_pe_ranges {shlex.quote(f'{vg}/{lv}')}"
        " | awk '$1 == 0 { split($3, r, \":\"); split(r[2], pe, \"-\"); print $2, pe[1] }')",
        f"[ \"$1\" -ge {blocks * BLOCK // 512} ]",
        f"dd if={disk_q} iflag=direct bs={BLOCK} skip=$((start + $2 * ext)) count={blocks}"
        f" status=none | {RECORDS_FILTER}",
    ])
