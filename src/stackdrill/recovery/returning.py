"""A returning host: a fenced host that powers on again must run none of the instances
evacuated from it nor touch their volumes. Like Nova's compute at start
(`_destroy_evacuated_instances`), the engine destroys those guests and releases their
storage on it, confirms it, and only then lets the host rejoin; unconfirmed, it is fenced
again.
"""

from __future__ import annotations

import logging

from sqlalchemy import select, update

from stackdrill.recovery import sql
from stackdrill.recovery.base import Proc
from stackdrill.recovery.inventory import Instance, Migration, MigrationStatus, Service, VmState
from stackdrill.recovery.journal import EngineKilled, Step
from stackdrill.recovery.maintenance import Maintenance
from stackdrill.recovery.tasks import StepFailed, TaskGen, gather

log = logging.getLogger(__name__)


class ReturningHosts(Maintenance):
    """A fenced host that powers on again: clean it before it rejoins."""

    def boot_check(self, host: str, guests: list[str]) -> list[str]:
        """Nova's init_host question, asked by a booting host's compute service: which of
        its local guests were evacuated elsewhere (it must destroy, not resume, those)."""
        with self.sessions() as s:
            moved = set(s.scalars(
                select(Instance.display_name).join(
                    Migration, Migration.instance_uuid == Instance.uuid)
                .where(Migration.source_compute == host,
                       Migration.status.in_([MigrationStatus.ACCEPTED.value,
                                             MigrationStatus.DONE.value]))))
        elsewhere = {n for n, (h, _) in self._where.items() if h != host}
        out = sorted(g for g in guests if g in moved or g in elsewhere
                     or self._not_primary_here(g, host))
        if out:
            log.warning("%s boots: not resuming %s", host, ", ".join(out))
        # the hypervisor may ask from its own thread: the engine's loop records them
        self._withheld.extend((g, host) for g in out if g not in moved and g not in elsewhere)
        return out

    def _park_withheld(self) -> None:
        """A guest still placed on its host but not resumed at boot (its replica came back
        Secondary) is stopped, as Nova records a guest its host could not start: the
        scheduler then resumes it through a flow that promotes its storage first. Left
        active, nobody would start it (a plain reboot is no failure to recover from)."""
        while self._withheld:
            name, host = self._withheld.popleft()
            if name in self._flows or self._where[name] != (host, VmState.ACTIVE.value):
                continue
            with self.journal.step(Step.GUEST_STOPPED, instance=name, host=host, at=host,
                                   reason="booted with its DRBD replica Secondary") as s:
                sql.instance_state(s, self._info[name].uuid, VmState.STOPPED.value, None)

    def _not_primary_here(self, name: str, host: str) -> bool:
        """A DRBD replica of the guest's volume lives here but came back Secondary (a
        reboot never promotes): the hypervisor must not resume it on a device that refuses
        every write, or beside another Primary. The engine resumes it instead once the
        host has rejoined, through a flow that prepares its storage first."""
        info = self._info.get(name)
        for vol in info.volumes if info else ():
            here = next((r for r in self.drivers.storage.replicas(vol) if r.host == host), None)
            if here is not None and here.role not in ("Primary", "(local)"):
                return True
        return False

    def _returned(self, host: str, why: str) -> None:
        self.journal.append(Step.HOST_RETURNED, host=host, reason=why)
        self._emit("host-returned", f"{host} {why}; cleaning evacuated guests before it rejoins",
                   host)
        self._procs[host] = Proc(self._cleanup(host), since=self.now())

    def _cleanup(self, host: str) -> TaskGen:
        """What Nova's compute does at start for evacuated instances, confirmed, or re-fence."""
        began = self.now()
        if host in self.storage_hosts:  # no guests here: only its volumes' roles matter
            demoted = sorted(v.name for v in self.topology.volumes
                             if any(r.host == host and r.role != "Primary"
                                    for r in self.drivers.storage.replicas(v.name)))
            # Not fenced, it held the last replica but rebooted (DRBD comes back Secondary):
            # its guests' sessions are dead and they must reattach once it is promoted.
            reattach = bool(demoted) and host in self._served_now()
            self.journal.append(Step.HOST_REJOINED, host=host, began=began, resume=[],
                                reattach=reattach)
            self._emit("host-rejoined", f"{host} rejoined"
                       + (" (its guests reattach to it)" if reattach else ""), host)
            yield from ()
            return
        compute = self.drivers.compute
        try:
            with self.sessions() as s:
                moved = set(s.scalars(
                    select(Instance.display_name).join(
                        Migration, Migration.instance_uuid == Instance.uuid)
                    .where(Migration.source_compute == host,
                           Migration.status.in_([MigrationStatus.ACCEPTED.value,
                                                 MigrationStatus.DONE.value]))))
            guests = yield compute.guests(host)
            stale = sorted({g.name for g in guests if g.name in moved
                            or (g.name in self._where and self._where[g.name][0] != host)})
            for name in stale:
                yield compute.destroy(name, host)
            for name in sorted(moved | set(stale)):
                info = self._info.get(name)
                vols = info.volumes if info else ()
                yield gather([self.drivers.storage.release(v, host) for v in vols])
                self.journal.append(Step.GUEST_CLEANED, host=host, guest=name,
                                    destroyed=name in stale)
            again = yield compute.guests(host)
            left = sorted(g.name for g in again if g.name in stale or g.name in moved)
            if left:
                raise StepFailed(f"guests still defined after cleanup: {', '.join(left)}")
            running = {g.name for g in again if g.running}
            idle = sorted(n for n, (h, vm) in self._where.items()
                          if h == host and n not in moved and n not in self._flows
                          and vm == VmState.ACTIVE.value and n not in running)
        except (EngineKilled, GeneratorExit):
            raise
        except Exception as exc:
            reason = f"cleanup of returning host {host} not confirmed ({exc}); fencing it again"
            log.error("%s", reason)
            self.journal.append(Step.REJOIN_REFUSED, host=host, reason=reason)
            self._emit("rejoin-refused", reason, host)
            return
        with self.journal.step(Step.HOST_REJOINED, host=host, began=began, resume=idle) as s:
            spare = host in self._spares()
            if idle:
                s.execute(update(Instance).where(Instance.display_name.in_(idle))
                          .values(vm_state=VmState.STOPPED.value))
            s.execute(update(Service).where(Service.host == host).values(
                forced_down=False, disabled=spare,
                disabled_reason="reserved host" if spare else None))
            s.execute(update(Migration).where(Migration.source_compute == host,
                                               Migration.status == MigrationStatus.DONE.value)
                      .values(status=MigrationStatus.COMPLETED.value))
        self._emit("host-rejoined", f"{host} cleaned and rejoined", host)
