"""A returning host: a fenced host that powers on again must run none of the instances
evacuated from it nor touch their volumes. Like Nova's compute at start
(`_destroy_evacuated_instances`), the engine destroys those guests and releases their
storage on it, confirms it, and only then lets the host rejoin; unconfirmed, it is fenced
again. The same question is answered for a host that boots with guests defined
(`boot_check`, asked by its hypervisor): which of them must not be resumed.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any

from sqlalchemy import update

from stackdrill.api import HostHealth, PowerState
from stackdrill.recovery import fence, sql
from stackdrill.recovery.config import FenceAction
from stackdrill.recovery.detect import alive
from stackdrill.recovery.inventory import Instance, Migration, MigrationStatus, Service, VmState
from stackdrill.recovery.placer import Placer
from stackdrill.recovery.shared import Shared
from stackdrill.recovery.state import Proc
from stackdrill.recovery.steps import JournalStep
from stackdrill.recovery.taskbase import STEP_ERRORS, StepFailed, TaskGen, Yieldable, gather

log = logging.getLogger(__name__)


class Returning:
    def __init__(self, shared: Shared, placer: Placer) -> None:
        self.topology, self.drivers, self.config = shared.topology, shared.drivers, shared.config
        self.clock, self.sessions = shared.clock, shared.sessions
        self.journal, self.state, self.emit = shared.journal, shared.state, shared.emit
        self.placer = placer

    def boot_check(self, host: str, guests: list[str]) -> list[str]:
        """Nova's init_host question, asked by a booting host's compute service: which of
        its local guests were evacuated elsewhere (it must destroy, not resume, those)."""
        with self.sessions() as s:
            moved = sql.migrated_away(s, host)
        elsewhere = {n for n, (h, _) in self.state.where.items() if h != host}
        out = sorted(g for g in guests if g in moved or g in elsewhere
                     or self._not_primary_here(g, host) or self._in_error(g))
        if out:
            log.warning("%s boots: not resuming %s", host, ", ".join(out))
        # the hypervisor may ask from its own thread: the engine's loop records them
        self.state.withheld.extend(
            (g, host) for g in out if g not in moved and g not in elsewhere)
        return out

    def park_withheld(self) -> None:
        """A guest still placed on its host but not resumed at boot (its replica came back
        Secondary) is stopped, as Nova records a guest its host could not start: the
        scheduler then resumes it through a flow that promotes its storage first. Left
        active, nobody would start it (a plain reboot is no failure to recover from)."""
        withheld = self.state.withheld
        while withheld:
            name, host = withheld.popleft()
            if name in self.state.flows or self.state.where[name] != (host, VmState.ACTIVE.value):
                continue
            with self.journal.step(JournalStep.GUEST_STOPPED, instance=name, host=host, at=host,
                                   reason="booted with its DRBD replica Secondary") as s:
                sql.instance_state(s, self.state.info[name].uuid, VmState.STOPPED.value, None)

    def _not_primary_here(self, name: str, host: str) -> bool:
        """A DRBD replica of the guest's volume lives here but came back Secondary (a
        reboot never promotes): the hypervisor must not resume it on a device that refuses
        every write, or beside another Primary. The engine resumes it instead once the
        host has rejoined, through a flow that prepares its storage first."""
        info = self.state.info.get(name)
        for vol in info.volumes if info else ():
            here = next((r for r in self.drivers.storage.replicas(vol) if r.host == host), None)
            if here is not None and here.role not in ("Primary", "(local)"):
                return True
        return False

    def _in_error(self, name: str) -> bool:
        """Nova's init_host leaves an instance in ERROR alone (`_init_instance` returns
        early for vm_state ERROR): the engine gave up on it or its last flow failed, e.g.
        its volume server was fenced, and resumed as it was it would write into a dead
        iSCSI session for good. A flow that prepares its storage first resumes it."""
        return name in self.state.where and self.state.where[name][1] == VmState.ERROR.value

    # ------------------------------------------------------------ the monitor's handlers

    def on_evacuating(self, host: str, health: HostHealth, now: float) -> None:
        fenced = self.journal.last_for_host(host, JournalStep.FENCE_CONFIRMED,
                      JournalStep.FENCE_ASSUMED)
        if alive(health, now, fenced.time if fenced else 0.0, self.config.grace_s):
            self.returned(host, "powered on again after it was fenced")
        elif self._reboot_due(host, health):
            self.emit("fence-reboot", f"{host}: nothing left to evacuate; powering it on "
                      "again (fence action reboot)", host)
            self.state.procs[host] = Proc(
                fence.power_on(self.drivers.power, self.emit, host, "fencing"), since=now)

    def _reboot_due(self, host: str, health: HostHealth) -> bool:
        """Fence action reboot, a host confirmed off, none of its guests still placed there
        nor moving away (an instance given up on keeps it off: its guest would resume)."""
        state = self.state
        return (self.config.fence_action is FenceAction.REBOOT and host not in state.procs
                and health.power is PowerState.OFF and not state.hosted.get(host)
                and not any(p.ctx is not None and p.ctx.source == host
                            for p in state.flows.values()))

    def on_returning(self, host: str, health: HostHealth, now: float) -> None:
        if host not in self.state.procs:  # resumed after a restart: clean it again
            self.state.procs[host] = Proc(self._cleanup(host), since=now)

    def returned(self, host: str, why: str) -> None:
        self.journal.append(JournalStep.HOST_RETURNED, host=host, reason=why)
        self.emit("host-returned",
                  f"{host} {why}; cleaning evacuated guests before it rejoins", host)
        self.state.procs[host] = Proc(self._cleanup(host), since=self.clock.now())

    # ------------------------------------------------------------ the cleanup

    def _cleanup(self, host: str) -> TaskGen:
        """What Nova's compute does at start for evacuated instances, confirmed, or re-fence."""
        began = self.clock.now()
        if host in self.state.storage_hosts:  # no guests here: only its volumes' roles matter
            self._rejoin_storage(host, began)
            return
        try:
            idle = yield from self._clean_guests(host)
        except STEP_ERRORS as exc:
            reason = f"cleanup of returning host {host} not confirmed ({exc}); fencing it again"
            log.error("%s", reason)
            self.journal.append(JournalStep.REJOIN_REFUSED, host=host, reason=reason)
            self.emit("rejoin-refused", reason, host)
            return
        self._rejoin(host, began, idle)

    def _clean_guests(self, host: str) -> Generator[Yieldable, Any, list[str]]:
        """Destroy the guests moved away from `host` and release their volumes there; the
        guests still placed here but not running (to be resumed by a flow)."""
        compute, where = self.drivers.compute, self.state.where
        with self.sessions() as s:
            moved = sql.migrated_away(s, host)
        guests = yield compute.guests(host)
        stale = sorted({g.name for g in guests if g.name in moved
                        or (g.name in where and where[g.name][0] != host)})
        for name in stale:
            yield compute.destroy(name, host)
        yield from self._release(host, sorted(moved | set(stale)), stale)
        again = yield compute.guests(host)
        left = sorted(g.name for g in again if g.name in stale or g.name in moved)
        if left:
            raise StepFailed(f"guests still defined after cleanup: {', '.join(left)}")
        running = {g.name for g in again if g.running}
        return sorted(n for n in self.state.hosted.get(host, ())
                      if n not in moved and n not in self.state.flows
                      and where[n][1] == VmState.ACTIVE.value and n not in running)

    def _release(self, host: str, names: list[str], destroyed: list[str]) -> TaskGen:
        """Release each moved guest's volumes on `host`; journal it cleaned there."""
        for name in names:
            info = self.state.info.get(name)
            vols = info.volumes if info else ()
            yield gather([self.drivers.storage.release(v, host) for v in vols])
            self.journal.append(JournalStep.GUEST_CLEANED, host=host, guest=name,
                                destroyed=name in destroyed)

    def _rejoin(self, host: str, began: float, idle: list[str]) -> None:
        with self.journal.step(JournalStep.HOST_REJOINED, host=host, began=began,
                               resume=idle) as s:
            spare = host in self.placer.spares()
            if idle:
                s.execute(update(Instance).where(Instance.display_name.in_(idle))
                          .values(vm_state=VmState.STOPPED.value))
            s.execute(update(Service).where(Service.host == host).values(
                forced_down=False, disabled=spare,
                disabled_reason="reserved host" if spare else None))
            s.execute(update(Migration).where(Migration.source_compute == host,
                                               Migration.status == MigrationStatus.DONE.value)
                      .values(status=MigrationStatus.COMPLETED.value))
        self.emit("host-rejoined", f"{host} cleaned and rejoined", host)

    def rejoin_unseen(self, host: str, now: float) -> None:
        """A suspected storage host heartbeats again, and its replicas came back Secondary
        while no other replica took over: it rebooted while the controller could not see
        it (the controller itself was down: random seed 7556). Nobody promotes after a
        reboot, so its guests' sessions stay dead unless they reattach to it, as after a
        held host's return; a host whose replicas stayed Primary needs nothing."""
        if self._needs_reattach_to(host):
            self._rejoin_storage(host, now)

    def _needs_reattach_to(self, host: str) -> bool:
        storage = self.drivers.storage
        demoted = [v.name for v in self.topology.volumes
                   if any(r.host == host and r.role != "Primary"
                          for r in storage.replicas(v.name))
                   and not any(r.role == "Primary" for r in storage.replicas(v.name))]
        return bool(demoted) and any(
            self.placer.waits_for(name, host) for name, (_, vm) in self.state.where.items()
            if vm == VmState.ACTIVE.value)

    def _rejoin_storage(self, host: str, began: float) -> None:
        storage = self.drivers.storage
        demoted = sorted(v.name for v in self.topology.volumes
                         if any(r.host == host and r.role != "Primary"
                                for r in storage.replicas(v.name)))
        # Not fenced, it held the last replica but rebooted (DRBD comes back Secondary):
        # its guests' sessions are dead and they must reattach once it is promoted. So must
        # the guests of a fenced peer that could not reattach to it while it was away.
        waiting = (VmState.ACTIVE.value, VmState.ERROR.value)
        reattach = bool(demoted) and any(self.placer.waits_for(name, host)
                                         for name, (_, vm) in self.state.where.items()
                                         if vm in waiting)
        self.journal.append(JournalStep.HOST_REJOINED, host=host, began=began, resume=[],
                            reattach=reattach)
        self.emit("host-rejoined", f"{host} rejoined"
                  + (" (its guests reattach to it)" if reattach else ""), host)
