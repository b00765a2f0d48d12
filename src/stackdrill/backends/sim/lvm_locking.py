"""How an lvm command on one host locks a VG and an LV, for each lvm.conf locking mode.

- none (locking_type 0): nothing; "risks metadata corruption if commands run
  concurrently" (lvm.conf(5)).
- local (locking_type 1): flock on /run/lock/lvm/V_<vg> — serialises commands on
  this host only and "knows nothing about the cluster" (the seed; lvm.conf(5)).
- clustered (locking_type 3, clvmd): the VG lock is a DLM lock taken by the
  local clvmd (lib/locking/cluster_locking.c, LOCK_VG goes to node "."), so it
  waits for quorum and fencing; LV activation locks are DLM locks on the LV,
  CR for shared, EX for exclusive; a conflict is "Volume is busy on another
  node" (daemons/clvmd/lvm-functions.c).
- lvmlockd: the VG's lockspace must be started (vgchange --lockstart), the VG
  lock is taken ex to change the VG, with lvmlockd_lock_retries retries one
  second apart before "VG <vg> lock failed: held by other host"; LV locks ex or
  sh, refused at once on conflict: "LV locked by other host"
  (lib/locking/lvmlockd.c, lvmlockd(8)).
"""

from __future__ import annotations

from collections.abc import Callable

from stackdrill.backends.sim.cluster_dlm import LockTable
from stackdrill.topology.model import Locking

VG_LOCK = {Locking.CLUSTERED: "V_{vg}", Locking.LVMLOCKD: "lvm_{vg}:VGLK"}
LV_LOCK = {Locking.CLUSTERED: "LV_{vg}/{lv}", Locking.LVMLOCKD: "lvm_{vg}:{lv}"}
# activation mode -> DLM mode
LV_MODES = {
    Locking.CLUSTERED: {"ex": "ex", "sh": "cr", "local": "cr"},
    Locking.LVMLOCKD: {"ex": "ex", "sh": "pr", "local": "ex"},
}
ACTIVATION_MODES = ("ex", "sh", "local")


def vg_resource(locking: Locking, vg: str) -> str:
    return VG_LOCK[locking].format(vg=vg)


def lv_resource(locking: Locking, vg: str, lv: str) -> str:
    return LV_LOCK[locking].format(vg=vg, lv=lv)


def lv_busy_message(locking: Locking, host: str, vg: str, lv: str) -> str:
    if locking is Locking.CLUSTERED:
        return f"Error locking on node {host}: Volume is busy on another node"
    return f"LV locked by other host: {vg}/{lv}"


def held_elsewhere(table: LockTable, locking: Locking, host: str, vg: str,
                   lv: str) -> list[str]:
    """Other hosts that hold the LV's lock, as this host's lock space sees them."""
    return sorted({h for h, _mode in table.holders(lv_resource(locking, vg, lv),
                                                   viewer=host).values() if h != host})


def noop() -> None:
    """Release function of a lock that was never taken."""


Release = Callable[[], None]
