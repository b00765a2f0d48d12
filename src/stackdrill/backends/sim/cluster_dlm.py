"""A lock table with the DLM's modes, FIFO queues and "who can see whom" scoping.

Used twice: as the cluster's DLM (gated on quorum and finished fencing, scoped
to the requester's corosync membership, so two partitions that never fenced
each other each believe they own a lock) and as lvmlockd's sanlock lock space
(gated only on the host being up). Mode compatibility is the classic VMS/DLM
matrix (NL, CR, CW, PR, PW, EX) that linux/fs/dlm implements; "sh" is PR.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass

import simpy

from stackdrill.backends.sim.kernel import Kernel

log = logging.getLogger(__name__)

ALIASES = {"sh": "pr"}
_ALL = frozenset({"nl", "cr", "cw", "pr", "pw", "ex"})
COMPATIBLE: dict[str, frozenset[str]] = {
    "nl": _ALL,
    "cr": frozenset({"nl", "cr", "cw", "pr", "pw"}),
    "cw": frozenset({"nl", "cr", "cw"}),
    "pr": frozenset({"nl", "cr", "pr"}),
    "pw": frozenset({"nl", "cr"}),
    "ex": frozenset({"nl"}),
}


class LockConflict(Exception):
    """A NOQUEUE request met an incompatible granted lock (the DLM's -EAGAIN)."""


class LockAborted(Exception):
    """The request died with its host, or was cancelled."""


def normalise_mode(mode: str) -> str:
    mode = ALIASES.get(mode.lower(), mode.lower())
    if mode not in COMPATIBLE:
        raise ValueError(f"unknown lock mode {mode!r}")
    return mode


@dataclass
class _Lock:
    lkid: int
    host: str
    resource: str
    mode: str
    noqueue: bool
    event: simpy.Event
    granted: bool = False


class LockTable:
    """Granted and waiting locks on named resources."""

    def __init__(self, kernel: Kernel, component: str, usable: Callable[[str], bool],
                 scope: Callable[[str], Collection[str] | None],
                 on_grant: Callable[[str], None] | None = None) -> None:
        self.kernel = kernel
        self.component = component
        self._usable = usable  # may this host's requests be granted at all right now?
        self._scope = scope  # hosts whose locks this host's lock space knows (None: all)
        self._on_grant = on_grant  # told the host of every grant (its lock space is in use)
        self._locks: dict[int, _Lock] = {}
        self._next = 1

    # ------------------------------------------------------------ requests

    def request(self, host: str, resource: str, mode: str, noqueue: bool = False) -> simpy.Event:
        """An event that succeeds with the lock id once granted (fails on conflict if noqueue)."""
        event = self.kernel.env.event()
        event.defused = True  # a failed request nobody waits for must not stop the simulation
        lock = _Lock(self._next, host, resource, normalise_mode(mode), noqueue, event)
        self._next += 1
        self._locks[lock.lkid] = lock
        self.kernel.log(self.component, "lock-request", host=host, resource=resource,
                        mode=lock.mode, lkid=lock.lkid, noqueue=noqueue)
        self.kick()
        return event

    def grant_now(self, host: str, resource: str, mode: str) -> int:
        """Install a granted lock without time or checks (lab build)."""
        lock = _Lock(self._next, host, resource, normalise_mode(mode), False,
                     self.kernel.env.event(), granted=True)
        self._next += 1
        self._locks[lock.lkid] = lock
        lock.event.succeed(lock.lkid)
        self.kernel.log(self.component, "lock-granted", host=host, resource=resource,
                        mode=lock.mode, lkid=lock.lkid)
        self._granted(host)
        return lock.lkid

    def _granted(self, host: str) -> None:
        if self._on_grant is not None:
            self._on_grant(host)

    def release(self, lkid: int) -> None:
        lock = self._locks.pop(lkid, None)
        if lock is None:
            return
        if not lock.granted and not lock.event.triggered:
            lock.event.fail(LockAborted(f"{lock.resource}: request cancelled"))
        self.kernel.log(self.component, "unlock", host=lock.host, resource=lock.resource,
                        lkid=lkid)
        self.kick()

    def drop_host(self, host: str, why: str) -> None:
        """Forget every lock of `host` (it died, or was fenced and recovery purged it)."""
        mine = [lk for lk in self._locks.values() if lk.host == host]
        for lock in mine:
            del self._locks[lock.lkid]
            if not lock.event.triggered:
                lock.event.fail(LockAborted(f"{lock.resource}: {host} {why}"))
        if mine:
            self.kernel.log(self.component, "locks-dropped", host=host, why=why,
                            count=len(mine))
        self.kick()

    # ------------------------------------------------------------ queries

    def holders(self, resource: str, viewer: str | None = None) -> dict[int, tuple[str, str]]:
        """Granted locks on `resource` (lkid -> (host, mode)) that `viewer`'s lock space sees."""
        scope = self._scope(viewer) if viewer is not None else None
        return {lk.lkid: (lk.host, lk.mode) for lk in self._locks.values()
                if lk.granted and lk.resource == resource
                and (scope is None or lk.host in scope)}

    def held_by(self, host: str) -> list[tuple[str, str]]:
        return sorted((lk.resource, lk.mode) for lk in self._locks.values()
                      if lk.granted and lk.host == host)

    # ------------------------------------------------------------ granting

    def _conflicts(self, lock: _Lock) -> bool:
        scope = self._scope(lock.host)
        return any(other.granted and other.resource == lock.resource
                   and other.lkid != lock.lkid
                   and (scope is None or other.host in scope)
                   and other.mode not in COMPATIBLE[lock.mode]
                   for other in self._locks.values())

    def kick(self) -> None:
        """Grant whatever can be granted now, oldest request first per resource."""
        blocked: set[str] = set()
        for lock in sorted(self._locks.values(), key=lambda lk: lk.lkid):
            if lock.granted or not self._usable(lock.host):
                continue
            if lock.resource in blocked or self._conflicts(lock):
                if lock.noqueue and self._conflicts(lock):
                    del self._locks[lock.lkid]
                    self.kernel.log(self.component, "lock-refused", host=lock.host,
                                    resource=lock.resource, mode=lock.mode, lkid=lock.lkid)
                    lock.event.fail(LockConflict(f"{lock.resource} is locked by another node"))
                else:
                    blocked.add(lock.resource)
                continue
            lock.granted = True
            self.kernel.log(self.component, "lock-granted", host=lock.host,
                            resource=lock.resource, mode=lock.mode, lkid=lock.lkid)
            self._granted(lock.host)
            lock.event.succeed(lock.lkid)
