"""lvm2 and device-mapper on each host, over one PV that several hosts may see.

Every command reads the VG metadata from ITS host's PV device when it starts
(lvm2 2.02 without lvmetad, and 2.03, re-read the metadata on every command;
clvmd and lvmlockd only serialise and validate that reading), computes the
change, and later writes it back with seqno + 1 (vg_write/vg_commit). Under
local locking on a shared PV two overlapping commands on two hosts both read
seqno N and both write N+1: the first change is lost although it reported
success, while its LV stays mapped on its host over extents the surviving
metadata gives to another LV. See lvm_locking for what each locking mode adds.
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any

import simpy

from stackdrill.api import LvmView, PowerState
from stackdrill.backends.sim.cluster_dlm import LockAborted, LockConflict
from stackdrill.backends.sim.disks import BlockDevice
from stackdrill.backends.sim.hosts import SimHost
from stackdrill.backends.sim.kernel import Kernel
from stackdrill.backends.sim.lvm_dm import DmTable, LvDevice
from stackdrill.backends.sim.lvm_locking import (
    ACTIVATION_MODES,
    LV_MODES,
    Release,
    held_elsewhere,
    lv_busy_message,
    lv_resource,
    noop,
    vg_resource,
)
from stackdrill.backends.sim.lvm_meta import (
    LvmError,
    Segment,
    VgMetadata,
    peek_metadata,
    read_metadata,
    write_metadata,
)
from stackdrill.backends.sim.lvm_vg import VolumeGroupSim
from stackdrill.topology.model import Locking

__all__ = ["LAB_START_JITTER_S", "LvmError", "LvmHost", "LvmTimings", "VolumeGroupSim"]

log = logging.getLogger(__name__)
Gen = Generator[simpy.Event, Any, Any]


@dataclass(frozen=True)
class LvmTimings:
    scan_s: float = 0.05  # command start-up and label scan, before the metadata read
    # a metadata-changing command's start-up varies by up to this much (seeded, per host);
    # 0 here, the lab sets LAB_START_JITTER_S
    start_jitter_s: float = 0.0
    write_delay_s: float = 0.2  # metadata read -> commit (allocation, archive, backup)
    activate_s: float = 0.05  # load or remove a dm table (suspend/reload/resume)
    # vgchange --lockstart: one lockspace join. Recorded (cluster-stack-startup, TCG guests):
    # 2.97 s and 4.47 s for a first VG (two joins, lvm_global too), 2.8 s while exploring
    lockstart_s: float = 1.45
    lock_retry_s: float = 1.0  # lvmlockd: sleep between VG lock retries
    lock_retries: int = 3  # global/lvmlockd_lock_retries
    sanlock_expiry_s: float = 80.0  # a dead host's sanlock leases time out


# Two commands started "at once" on two hosts read the VG apart by up to this much. From
# the recording lvm-concurrent-lvcreate-local (lvm2 2.03.16 guests): 4 of 8 truly
# concurrent rounds kept both LVs, so the reads were further apart than read -> commit
# (write_delay_s) about half the time: (1 - 0.2/0.7)^2 ~ 0.5.
LAB_START_JITTER_S = 0.7


class LvmHost:
    """lvm2 + device-mapper on one host: commands, dm tables, LV locks held here."""

    def __init__(self, kernel: Kernel, name: str, host: SimHost,
                 timings: LvmTimings | None = None) -> None:
        self.kernel = kernel
        self.host = host
        self.name = name
        self.t = timings or LvmTimings()
        self.component = f"lvm/{host.name}"
        self.vgs: dict[str, VolumeGroupSim] = {}
        self._tables: dict[tuple[str, str], DmTable] = {}
        self._lv_locks: dict[tuple[str, str], int] = {}
        self._lockspaces: dict[str, str] = {}  # vg -> starting / started
        # lvmlockd killed (daemon_kill): its DLM lockspaces stay joined in the kernel and
        # its LV locks stay granted there, orphaned, until this host leaves the cluster
        self._lvmlockd_up = True
        self._orphaned: set[str] = set()  # VGs whose lockspace a dead lvmlockd left
        self._orphan_locks: dict[tuple[str, str], int] = {}
        self._flocks: dict[str, simpy.Resource] = {}
        self._devices: dict[tuple[str, str], LvDevice] = {}
        self._power_changed = kernel.env.event()
        # its own stream, so that the draws do not shift the kernel's shared one
        self._jitter = random.Random(f"{kernel.seed}/lvm/{name}")
        # whether something on this host holds an LV open (a guest, an iSCSI target); the
        # lab that knows its guests answers it
        self.opened: Callable[[str, str], bool] = lambda _vg, _lv: False
        host.subscribe(self._on_power)

    def attach(self, vg: VolumeGroupSim) -> None:
        self.vgs[vg.name] = vg

    # ------------------------------------------------------------ public commands

    def lvcreate(self, vg: str, lv: str, extents: int) -> simpy.Event:
        def change(md: VgMetadata) -> VgMetadata:
            if lv in md.lvs:
                raise LvmError(f'Logical volume "{lv}" already exists in volume group "{vg}"')
            return md.with_lv(lv, md.allocate(extents))

        return self._command("lvcreate", vg, lambda b: self._modify(vg, lv, change, b,
                                                                    after=self._after_create))

    def lvextend(self, vg: str, lv: str, extents: int) -> simpy.Event:
        """lvextend -l +extents."""
        def change(md: VgMetadata) -> VgMetadata:
            return md.with_lv(lv, _merge(md.segments(lv) + md.allocate(extents)))

        return self._command("lvextend", vg, lambda b: self._modify(
            vg, lv, change, b, before=self._refuse_resize, after=self._after_extend))

    def lvremove(self, vg: str, lv: str) -> simpy.Event:
        """lvremove -f: deactivate (here, or on every node under clvmd), then drop it."""
        def change(md: VgMetadata) -> VgMetadata:
            md.segments(lv)
            return md.without_lv(lv)

        def before(vgs: VolumeGroupSim, lv: str, md: VgMetadata, boot: int) -> Gen:
            yield from self._refuse_if_locked_elsewhere(vgs, lv, md, boot)
            for other in self._clvmd_peers(vgs, lv, include_self=True):
                other.unload(vgs, lv, "lvremove")

        return self._command("lvremove", vg, lambda b: self._modify(vg, lv, change, b,
                                                                    before=before))

    def activate(self, vg: str, lv: str, mode: str = "ex") -> simpy.Event:
        if mode not in ACTIVATION_MODES:
            raise ValueError(f"activation mode must be one of {ACTIVATION_MODES}, not {mode!r}")
        return self._command(f"lvchange -a{_MODE_FLAG[mode]}y", vg,
                             lambda b: self._activate(vg, lv, mode, b))

    def deactivate(self, vg: str, lv: str) -> simpy.Event:
        return self._command("lvchange -aln", vg, lambda b: self._deactivate(vg, lv, b))

    def refresh(self, vg: str) -> simpy.Event:
        return self._command("vgchange --refresh", vg, lambda b: self._refresh(vg, b))

    def lock_start(self, vg: str) -> simpy.Event:
        """vgchange --lockstart (lvmlockd); immediate success for other locking modes."""
        return self._command("vgchange --lockstart", vg, lambda b: self._lock_start(vg, b))

    def lock_stop(self, vg: str) -> simpy.Event:
        """vgchange --lockstop (lvmlockd); immediate success for other locking modes."""
        return self._command("vgchange --lockstop", vg, lambda b: self._lock_stop(vg, b))

    def lockspaces(self) -> tuple[str, ...]:
        """Lockspaces this host's lvmlockd holds in the DLM (starting or started, or left
        behind by a killed one), and clvmd's while it holds LV locks: what keeps
        dlm_controld from stopping."""
        names = [f"lvm_{vg}" for vg in sorted(set(self._lockspaces) | self._orphaned)]
        if any(self.vgs[vg].locking is Locking.CLUSTERED for vg, _lv in self._lv_locks):
            names.append("clvmd")
        return tuple(names)

    def kill_lvmlockd(self) -> None:
        """SIGKILL of lvmlockd (recorded: lvmlockd-killed): its lockspaces and LV locks stay
        in the DLM, which the process does not own; nothing on this host can lock."""
        self._lvmlockd_up = False
        lockd = {vg for vg in self._lockspaces if self.vgs[vg].locking is Locking.LVMLOCKD}
        self._orphaned |= lockd
        for vg in lockd:
            del self._lockspaces[vg]
        for key in [k for k in self._lv_locks if k[0] in lockd]:
            self._orphan_locks[key] = self._lv_locks.pop(key)
        self.kernel.log(self.component, "lvmlockd-killed", orphaned=sorted(lockd),
                        locks=sorted(f"{vg}/{lv}" for vg, lv in self._orphan_locks))

    def start_lvmlockd(self) -> None:
        """lvmlockd started again: without the adopt file it cannot take back what the
        dead one left (its lockspaces stay inactive here until the host leaves)."""
        self._lvmlockd_up = True
        self.kernel.log(self.component, "lvmlockd-started", inactive=sorted(self._orphaned))

    def lv_device(self, vg: str, lv: str) -> BlockDevice:
        key = (vg, lv)
        if key not in self._devices:
            self._devices[key] = LvDevice(self.kernel, self.name, vg, lv, self._pv(vg),
                                          lambda: self._tables.get(key), lambda: self.host.up)
        return self._devices[key]

    def view(self, vg: str) -> LvmView:
        vgs = self._vg(vg)
        md = peek_metadata(self._pv(vg), vg)
        return LvmView(
            host=self.name, vg=vg, metadata_seqno=md.seqno if md else None,
            metadata_lvs=md.as_lists() if md else {},
            active_lvs={lv: list(t.segments) for (g, lv), t in sorted(self._tables.items())
                        if g == vg},
            clustered=(md.clustered or md.lock_type is not None) if md
            else vgs.locking in (Locking.CLUSTERED, Locking.LVMLOCKD))

    def holds(self, vg: str) -> bool:
        """A dm table of an LV of `vg` is loaded here: it holds the PV's device open."""
        return any(name == vg for name, _lv in self._tables)

    def table(self, vg: str, lv: str) -> DmTable | None:
        return self._tables.get((vg, lv))

    # ------------------------------------------------------------ command plumbing

    def _command(self, what: str, vg: str, body: Callable[[int], Gen]) -> simpy.Event:
        env = self.kernel.env
        result = env.event()
        result.defused = True  # nobody has to wait for a command; a waiter still sees errors
        boot = self.host.boot_count

        def run() -> Gen:
            try:
                if not self.host.up:
                    raise LvmError(f"{self.name}: host is not running")
                self.kernel.log(self.component, "command", cmd=what, vg=vg)
                value = yield from body(boot)
            except LvmError as exc:
                self.kernel.log(self.component, "command-failed", cmd=what, vg=vg,
                                error=str(exc).splitlines()[-1])
                result.fail(exc)
                return
            self.kernel.log(self.component, "command-done", cmd=what, vg=vg)
            result.succeed(value)

        env.process(run())
        return result

    def _alive(self, boot: int) -> Gen:
        """A hung host's command freezes where it is and carries on when thawed."""
        while self.host.power is PowerState.HUNG:
            yield self._power_changed
        if not self.host.up or self.host.boot_count != boot:
            raise LvmError(f"{self.name}: command killed, host went down")

    def _wait(self, event: simpy.Event, boot: int) -> Gen:
        value = yield event
        yield from self._alive(boot)
        return value

    def _sleep(self, seconds: float, boot: int) -> Gen:
        yield from self._wait(self.kernel.env.timeout(seconds), boot)

    def _vg(self, vg: str) -> VolumeGroupSim:
        if vg not in self.vgs:
            raise LvmError(f'Volume group "{vg}" not found')
        return self.vgs[vg]

    def _pv(self, vg: str) -> BlockDevice:
        return self._vg(vg).pv_devices[self.name]

    def _read(self, vgs: VolumeGroupSim, boot: int) -> Gen:
        yield from self._sleep(self.t.scan_s, boot)
        md: VgMetadata = yield from read_metadata(self._pv(vgs.name), vgs.name)
        yield from self._alive(boot)
        self.kernel.log(self.component, "vg-read", vg=vgs.name, seqno=md.seqno)
        return md

    # ------------------------------------------------------------ metadata changes

    def _modify(self, vg: str, lv: str, change: Callable[[VgMetadata], VgMetadata], boot: int,
                before: Hook | None = None, after: Hook | None = None) -> Gen:
        vgs = self._vg(vg)
        yield from self._sleep(self._jitter.uniform(0.0, self.t.start_jitter_s), boot)
        release = yield from self._lock_vg(vgs, boot)
        try:
            md = yield from self._read(vgs, boot)
            new = change(md).bumped()
            if before is not None:
                yield from before(vgs, lv, md, boot)
            yield from self._sleep(self.t.write_delay_s, boot)
            yield from write_metadata(self._pv(vg), new, lambda: self._alive(boot))
            yield from self._alive(boot)
            self.kernel.log(self.component, "vg-commit", vg=vg, seqno=new.seqno,
                            lvs=new.as_lists())
            if after is not None:
                yield from after(vgs, lv, new, boot)
        finally:
            release()

    def _refuse_if_locked_elsewhere(self, vgs: VolumeGroupSim, lv: str, _md: VgMetadata,
                                    _boot: int) -> Gen:
        """lvmlockd: resizing or removing needs the LV lock ex; another host's lock refuses it
        (lockd_lv_resize: the gfs2/ocfs2 --lockopt shupdate exception is not modelled)."""
        table = vgs.lock_table()
        if vgs.locking is Locking.LVMLOCKD and table is not None and held_elsewhere(
                table, vgs.locking, self.name, vgs.name, lv):
            raise LvmError(lv_busy_message(vgs.locking, self.name, vgs.name, lv))
        yield from ()

    def _refuse_resize(self, vgs: VolumeGroupSim, lv: str, md: VgMetadata, boot: int) -> Gen:
        """lvmlockd: the resize's ex LV lock is a transient request, which lvmlockd answers
        from this host's own persistent lock before asking the lock manager: granted on ex,
        refused on sh (lvmlockd-core.c res_process: -EEXIST, LD_AF_SH_EXISTS; lvmlockd.c
        lockd_lv: "LV is already locked with incompatible mode"); without one, another
        host's lock refuses it."""
        if vgs.locking is Locking.LVMLOCKD and (vgs.name, lv) in self._lv_locks:
            if LV_MODES[vgs.locking]["ex"] != self._lv_lock_mode(vgs, lv):
                raise LvmError(f"LV is already locked with incompatible mode: {vgs.name}/{lv}")
            return
        yield from self._refuse_if_locked_elsewhere(vgs, lv, md, boot)

    def _lv_lock_mode(self, vgs: VolumeGroupSim, lv: str) -> str | None:
        table = vgs.lock_table()
        lkid = self._lv_locks.get((vgs.name, lv))
        if table is None or lkid is None:
            return None
        held = table.holders(lv_resource(vgs.locking, vgs.name, lv)).get(lkid)
        return held[1] if held else None

    def _after_create(self, vgs: VolumeGroupSim, lv: str, md: VgMetadata, boot: int) -> Gen:
        """lvcreate activates the new LV: here, or on every node under clvmd (the seed)."""
        yield from self._sleep(self.t.activate_s, boot)
        mode = "ex" if vgs.locking is Locking.LVMLOCKD else "sh"
        for other in self._clvmd_peers(vgs, lv, include_self=True, active_only=False):
            try:
                yield from other.lock_lv(vgs, lv, mode, boot if other is self else None)
            except LvmError as exc:
                self.kernel.log(self.component, "activation-failed", host=other.name,
                                lv=lv, error=str(exc))
                continue
            other.load(vgs, lv, md, mode, "lvcreate")

    def _after_extend(self, vgs: VolumeGroupSim, lv: str, md: VgMetadata, boot: int) -> Gen:
        """Suspend/reload/resume where active: here, or every node under clvmd."""
        yield from self._sleep(self.t.activate_s, boot)
        for other in self._clvmd_peers(vgs, lv, include_self=True):
            table = other.table(vgs.name, lv)
            if table is not None:
                other.load(vgs, lv, md, table.mode, "lvextend")

    def _clvmd_peers(self, vgs: VolumeGroupSim, lv: str, include_self: bool,
                     active_only: bool = True) -> list[LvmHost]:
        """Hosts an LV operation reaches: this one, plus clvmd's other cluster members."""
        out = [self] if include_self and (not active_only or self.table(vgs.name, lv)) else []
        if vgs.locking is Locking.CLUSTERED and vgs.cluster is not None:
            for name in sorted(vgs.cluster.members(self.name) - {self.name}):
                other = vgs.lvm.get(name)
                if other is not None and other.host.up and (
                        not active_only or other.table(vgs.name, lv)):
                    out.append(other)
        return out

    # ------------------------------------------------------------ activation

    def _activate(self, vg: str, lv: str, mode: str, boot: int) -> Gen:
        vgs = self._vg(vg)
        release = yield from self._lock_vg(vgs, boot)
        try:
            md = yield from self._read(vgs, boot)
            md.segments(lv)
            current = self.table(vg, lv)
            if current is not None and current.mode == mode:
                return
            self.unlock_lv(vgs, lv)
            try:
                yield from self.lock_lv(vgs, lv, mode, boot)
            except LvmError as exc:
                if current is not None:  # a refused conversion keeps the lock it had
                    yield from self.lock_lv(vgs, lv, current.mode, boot)
                if vgs.locking is Locking.LVMLOCKD:  # lib/metadata/lv.c lv_active_change
                    raise LvmError(f"{exc}\nFailed to lock logical volume {vg}/{lv}.") from exc
                raise
            yield from self._sleep(self.t.activate_s, boot)
            if current is None:
                self.load(vgs, lv, md, mode, "activate")
            else:  # a lock-mode change keeps the table the LV was activated with
                self._tables[(vg, lv)] = DmTable(vg, lv, current.segments, current.extent_blocks,
                                                 current.seqno, mode)
        finally:
            release()

    def _deactivate(self, vg: str, lv: str, boot: int) -> Gen:
        """lvm2 lib/activate/activate.c lv_deactivate: a visible LV whose device is open
        (dm open_count) is refused, "LV vg/lv in use: not deactivating"."""
        vgs = self._vg(vg)
        # lvm2 deactivates without the VG lock lvmlockd cannot give ("Reading VG without a
        # lock"); the LV lock it cannot release stays held (recorded: lvmlockd-killed)
        unlocked = self._lockd_unusable(vgs)
        release = noop if unlocked else (yield from self._lock_vg(vgs, boot))
        try:
            yield from self._sleep(self.t.activate_s, boot)
            if (vg, lv) in self._tables and self.opened(vg, lv):
                raise LvmError(f"LV {vg}/{lv} in use: not deactivating")
            self.unload(vgs, lv, "deactivate")
        finally:
            release()

    def _refresh(self, vg: str, boot: int) -> Gen:
        """Reload every active LV of the VG from the metadata as read now (clvmd: all nodes)."""
        vgs = self._vg(vg)
        release = yield from self._lock_vg(vgs, boot)
        try:
            md = yield from self._read(vgs, boot)
            yield from self._sleep(self.t.activate_s, boot)
            hosts = [self]
            if vgs.locking is Locking.CLUSTERED and vgs.cluster is not None:
                hosts += [vgs.lvm[h] for h in sorted(vgs.cluster.members(self.name))
                          if h != self.name and h in vgs.lvm and vgs.lvm[h].host.up]
            for host in hosts:
                for (g, lv), table in sorted(host._tables.items()):
                    if g != vg:
                        continue
                    if lv in md.lvs:
                        host.load(vgs, lv, md, table.mode, "refresh")
                    else:
                        host.kernel.log(host.component, "dm-orphan", vg=vg, lv=lv,
                                        segments=list(table.segments), seqno=md.seqno)
        finally:
            release()

    def _lock_start(self, vg: str, boot: int) -> Gen:
        vgs = self._vg(vg)
        if vgs.locking is not Locking.LVMLOCKD or self._lockspaces.get(vg) == "started":
            return
        if not self._lvmlockd_up:
            raise LvmError(_LOCKSTART_NO_LVMLOCKD.format(vg=vg))
        if vg in self._orphaned:  # "starts", but the lockspace stays the dead daemon's
            yield from self._sleep(self.t.scan_s, boot)
            return
        self._lockspaces[vg] = "starting"
        self.kernel.log(self.component, "lockspace", vg=vg, state="starting")
        table = vgs.lock_table()
        if table is None or not self._lock_manager_runs(vgs):
            del self._lockspaces[vg]  # lvmlockd's lm_prepare_lockspace_dlm: -EMANAGER
            raise LvmError(_NO_LOCK_MANAGER.format(vg=vg))
        # with dlm, the first VG started on a host also joins lvm_global, where lvmlockd keeps
        # the global lock (lvmlockd-core.c add_lockspace -> add_dlm_global_lockspace)
        first_dlm = vgs.sanlock is None and not any(
            state == "started" for name, state in self._lockspaces.items()
            if name != vg and self.vgs[name].sanlock is None)
        lkid = yield from self._wait_lock(table.request(self.name, f"lvm_{vg}:start", "nl"), boot)
        table.release(lkid)
        yield from self._sleep(self.t.lockstart_s * (2 if first_dlm else 1), boot)
        if self._lockspaces.get(vg) != "starting":
            raise LvmError(f"VG {vg} start failed: lockspace stopped while starting")
        self._lockspaces[vg] = "started"
        self.kernel.log(self.component, "lockspace", vg=vg, state="started")

    def _lock_manager_runs(self, vgs: VolumeGroupSim) -> bool:
        """The VG's lock manager runs here: always for sanlock, the stack for the DLM."""
        return vgs.cluster is None or vgs.lock_table() is not vgs.cluster.dlm \
            or vgs.cluster.stacks.running(self.name)

    def _lock_stop(self, vg: str, boot: int) -> Gen:
        """lvmlockd rem_lockspace: no lockspace is no error (-ENOLS); LV locks held here
        refuse it (-EBUSY, lockd_stop_vg: "LVs must first be deactivated")."""
        vgs = self._vg(vg)
        yield from self._sleep(self.t.scan_s, boot)
        if vgs.locking is not Locking.LVMLOCKD or vg not in self._lockspaces:
            return
        if any(name == vg for name, _lv in self._lv_locks):
            raise LvmError(f"VG {vg} stop failed: LVs must first be deactivated")
        del self._lockspaces[vg]
        self.kernel.log(self.component, "lockspace", vg=vg, state="stopped")

    # ------------------------------------------------------------ locks

    def _wait_lock(self, event: simpy.Event, boot: int) -> Gen:
        try:
            lkid = yield event
        except LockAborted as exc:
            raise LvmError(f"{self.name}: lock request aborted: {exc}") from exc
        yield from self._alive(boot)
        return lkid

    def _lock_vg(self, vgs: VolumeGroupSim, boot: int) -> Generator[simpy.Event, Any, Release]:
        vg, locking = vgs.name, vgs.locking
        if locking is Locking.NONE:
            return noop
        if locking is Locking.LOCAL:
            flock = self._flocks.setdefault(vg, simpy.Resource(self.kernel.env, capacity=1))
            request = flock.request()
            try:
                yield from self._wait(request, boot)
            except LvmError:
                flock.release(request)
                raise

            def release() -> None:
                flock.release(request)

            return release
        table = vgs.lock_table()
        if table is None or (vgs.cluster is not None and table is vgs.cluster.dlm and (
                self.name not in vgs.cluster.node_ids
                or (locking is Locking.CLUSTERED and not self._lock_manager_runs(vgs)))):
            raise LvmError("connect() failed on local socket: No such file or directory\n"
                           "Internal cluster locking initialisation failed.")
        resource = vg_resource(locking, vg)
        if locking is Locking.CLUSTERED:  # clvmd: waits in the DLM for quorum and fencing
            lkid = yield from self._wait_lock(table.request(self.name, resource, "ex"), boot)
            return lambda: table.release(lkid)
        self._refuse_without_lvmlockd(vg)
        state = self._lockspaces.get(vg)
        if state == "starting":
            raise LvmError(f"VG {vg} lock failed: lock start in progress")
        if state is None:
            raise LvmError(f"Cannot access VG {vg} due to failed lock.")
        for attempt in range(self.t.lock_retries + 1):
            try:
                lkid = yield from self._wait_lock(
                    table.request(self.name, resource, "ex", noqueue=True), boot)
            except LockConflict:
                if attempt == self.t.lock_retries:
                    raise LvmError(f"VG {vg} lock failed: held by other host") from None
                self.kernel.log(self.component, "lock-retry", vg=vg, attempt=attempt + 1)
                yield from self._sleep(self.t.lock_retry_s, boot)
                continue
            return lambda: table.release(lkid)
        raise AssertionError("unreachable")

    def _refuse_without_lvmlockd(self, vg: str) -> None:
        """No lock through a killed lvmlockd, nor through one started again over the
        lockspace its predecessor left (recorded: lvmlockd-killed)."""
        if not self._lvmlockd_up:
            raise LvmError(f"{_LVMLOCKD_GONE}\nCannot access VG {vg} due to failed lock.")
        if vg in self._orphaned:
            raise LvmError(f"Cannot access VG {vg} due to failed lock.")

    def reads_shared(self, vg: str) -> bool:
        """Whether `vgs`/`lvs` here list a shared VG: without lvmlockd they read it without
        a lock; a restarted lvmlockd over the lockspace its killed predecessor left answers
        neither the VG's nor the global lock, and the VG is not listed (recorded on the
        guests, lvmlockd-killed's final read)."""
        return not (self._lvmlockd_up and vg in self._orphaned)

    def _lockd_unusable(self, vgs: VolumeGroupSim) -> bool:
        return vgs.locking is Locking.LVMLOCKD and (not self._lvmlockd_up
                                                     or vgs.name in self._orphaned)

    def lock_lv(self, vgs: VolumeGroupSim, lv: str, mode: str, boot: int | None) -> Gen:
        """Take the LV activation lock (clvmd / lvmlockd); refused at once on conflict."""
        table = vgs.lock_table()
        if table is None or vgs.locking not in LV_MODES or (vgs.name, lv) in self._lv_locks:
            return
        event = table.request(self.name, lv_resource(vgs.locking, vgs.name, lv),
                              LV_MODES[vgs.locking][mode], noqueue=True)
        try:
            lkid = yield event
        except LockConflict:
            raise LvmError(lv_busy_message(vgs.locking, self.name, vgs.name, lv)) from None
        except LockAborted as exc:
            raise LvmError(f"{self.name}: lock request aborted: {exc}") from exc
        self._lv_locks[(vgs.name, lv)] = lkid
        if boot is not None:
            yield from self._alive(boot)

    def unlock_lv(self, vgs: VolumeGroupSim, lv: str) -> None:
        lkid = self._lv_locks.pop((vgs.name, lv), None)
        table = vgs.lock_table()
        if lkid is not None and table is not None:
            table.release(lkid)

    # ------------------------------------------------------------ dm tables

    def load(self, vgs: VolumeGroupSim, lv: str, md: VgMetadata, mode: str, why: str) -> None:
        table = DmTable(vgs.name, lv, md.segments(lv), md.extent_blocks, md.seqno, mode)
        old = self._tables.get((vgs.name, lv))
        self._tables[(vgs.name, lv)] = table
        self.kernel.log(self.component, "dm-load", vg=vgs.name, lv=lv, why=why, mode=mode,
                        seqno=md.seqno, segments=list(table.segments),
                        was=list(old.segments) if old else [])

    def unload(self, vgs: VolumeGroupSim, lv: str, why: str) -> None:
        if self._tables.pop((vgs.name, lv), None) is not None:
            self.kernel.log(self.component, "dm-remove", vg=vgs.name, lv=lv, why=why)
        self.unlock_lv(vgs, lv)

    def build_state(self, vgs: VolumeGroupSim, md: VgMetadata,
                    where: Mapping[str, tuple[str, ...]]) -> None:
        """Lab build: lockspace started, LVs active with their locks, without time."""
        if vgs.locking is Locking.LVMLOCKD:
            self._lockspaces[vgs.name] = "started"
        table = vgs.lock_table()
        for lv in md.lvs:
            hosts = where.get(lv, ())
            if self.name not in hosts:
                continue
            mode = "sh" if len(hosts) > 1 else "ex"
            if table is not None and vgs.locking in LV_MODES:
                self._lv_locks[(vgs.name, lv)] = table.grant_now(
                    self.name, lv_resource(vgs.locking, vgs.name, lv), LV_MODES[vgs.locking][mode])
            self.load(vgs, lv, md, mode, "lab-build")

    def _on_power(self, host: SimHost, _old: PowerState, new: PowerState) -> None:
        changed, self._power_changed = self._power_changed, self.kernel.env.event()
        changed.succeed()
        if new in (PowerState.OFF, PowerState.BOOTING) and (
                self._tables or self._lockspaces or self._orphaned or not self._lvmlockd_up):
            self.kernel.log(self.component, "dm-cleared", why=new.value,
                            lvs=[f"{vg}/{lv}" for vg, lv in sorted(self._tables)])
            self._tables.clear()
            self._lockspaces.clear()
            self._flocks.clear()
            self._orphaned.clear()
            self._lvmlockd_up = True  # started at boot
            # a dead host's leases run out; the DLM drops its own once the node left
            # (fenced), a killed lvmlockd's orphans included
            for (vg, _lv), lkid in sorted({**self._lv_locks, **self._orphan_locks}.items()):
                vgs = self.vgs[vg]
                if vgs.sanlock is not None:
                    self.kernel.call_later(self.t.sanlock_expiry_s,
                                           functools.partial(vgs.sanlock.release, lkid))
            self._lv_locks.clear()
            self._orphan_locks.clear()


Hook = Callable[[VolumeGroupSim, str, VgMetadata, int], Gen]
# vgchange --lock-start with no lock manager running: the command's sh global lock finds
# none (lvmlockd.c lockd_global: LD_RF_NO_LM, then -ENOLS with no lockspace: a warning and
# on without it), then lockd_start_vg fails
_NO_LOCK_MANAGER = ("Start a lock manager, lvmlockd did not find one running.\n"
                    "Skipping global lock: lockspace not found or started\n"
                    "VG {vg} start failed: lock manager dlm is not running")
_MODE_FLAG = {"ex": "e", "sh": "s", "local": "l"}
# lvm's client connecting to a killed lvmlockd (lib/locking/lvmlockd.c _lvmlockd_connect)
_LVMLOCKD_GONE = "/run/lvm/lvmlockd.socket: connect failed: Connection refused"
_LOCKSTART_NO_LVMLOCKD = (f"{_LVMLOCKD_GONE}\nReading without shared global lock.\n"
                          "VG {vg} start failed: lvmlockd is not running")


def _merge(segs: tuple[Segment, ...]) -> tuple[Segment, ...]:
    """Adjacent segments become one, as lvm2's merge_lv_segments does."""
    out: list[Segment] = []
    for first, n in segs:
        if out and out[-1][0] + out[-1][1] == first:
            out[-1] = (out[-1][0], out[-1][1] + n)
        else:
            out.append((first, n))
    return tuple(out)
