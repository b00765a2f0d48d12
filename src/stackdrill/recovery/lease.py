"""The inventory's lease: of the engines pointed at one database, only one acts.

Two engines acting on one inventory would fence, plan and evacuate the same host twice
and start an instance on two hosts, the very outcome the engine exists to prevent. An
engine takes the lease (a row in `engine_lease`) before it acts, renews it while it acts
and gives it back when it stops, however it stops. A holder that dies without giving it
back (SIGKILL, a lost machine) stops renewing, and its lease expires after `ttl_s`.

Taking the lease is one conditional UPDATE ("set me as holder where the row is free,
mine, or expired"), atomic on every database without dialect-specific SQL: PostgreSQL
locks the row and re-checks the condition against the winner's new version (so of two
concurrent takers exactly one matches), SQLite runs the statement under its database
write lock. Times are each engine's wall clock (the lab clock may be simulated), so
holders on different machines need synchronized clocks, as with any lease.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import cast

from sqlalchemy import Table, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from stackdrill.errors import InfrastructureError
from stackdrill.recovery.inventory import EngineLease
from stackdrill.waiting import WaitTimeout, wait_until

log = logging.getLogger(__name__)
_lease = cast(Table, EngineLease.__table__)
POLL_S = 0.2  # how often a waiting engine tries again


class LeaseHeld(InfrastructureError):
    """Another engine holds the lease: this one refuses to act (no verdict, exit 3)."""


class LeaseLost(InfrastructureError):
    """The lease expired while this engine held it and another engine took it."""


def holder_id() -> str:
    """Names this engine in the lease row and in messages: machine, process, instance."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """The lease of one inventory, as seen by one engine (`holder`)."""

    def __init__(self, sessions: sessionmaker[Session], ttl_s: float, *,
                 holder: str | None = None, name: str = "recovery",
                 wall: Callable[[], float] = time.time) -> None:
        self.holder = holder or holder_id()
        self._sessions, self._ttl, self._name, self._wall = sessions, ttl_s, name, wall
        self.holding = False
        self._renewed = 0.0

    def try_acquire(self) -> bool:
        """Take the lease if it is free, ours, or expired; True when we hold it now."""
        now = self._wall()
        statement = (update(_lease)
                     .where(_lease.c.name == self._name,
                            or_(_lease.c.holder.is_(None), _lease.c.holder == self.holder,
                                _lease.c.expires_at < now))
                     .values(holder=self.holder, expires_at=now + self._ttl, acquired_at=now))
        with self._sessions() as s, s.begin():
            taken = s.connection().execute(statement).rowcount == 1
        if taken:
            self._renewed, self.holding = now, True
        return taken

    def acquire(self, wait_s: float = 0.0) -> None:
        """Take the lease, waiting up to `wait_s` for its holder to stop or its lease to
        expire; then refuse with LeaseHeld naming the holder."""
        try:
            wait_until(self.try_acquire, timeout=wait_s, interval=POLL_S,
                       what=f"the lease {self._name}")
        except WaitTimeout:
            raise LeaseHeld(self._refusal()) from None
        log.debug("lease %s taken by %s", self._name, self.holder)

    def renew(self, before_write: Callable[[], None] = lambda: None) -> None:
        """Called while acting: extends the lease once a third of it has passed (so the
        per-tick cost is a clock read). Raises LeaseLost when another engine took it.
        `before_write` runs only when it writes (the engine commits its journal there, so
        that this connection does not wait on the journal's open transaction)."""
        now = self._wall()
        if now - self._renewed < self._ttl / 3:
            return
        before_write()
        statement = (update(_lease).where(_lease.c.name == self._name,
                                          _lease.c.holder == self.holder)
                     .values(expires_at=now + self._ttl))
        with self._sessions() as s, s.begin():
            kept = s.connection().execute(statement).rowcount == 1
        if not kept:
            self.holding = False
            raise LeaseLost(f"engine {self.holder} lost the inventory's lease (it expired "
                            f"after {self._ttl:g} s without renewal); it stops acting")
        self._renewed = now

    def release(self) -> None:
        statement = (update(_lease).where(_lease.c.name == self._name,
                                          _lease.c.holder == self.holder)
                     .values(holder=None, expires_at=None, acquired_at=None))
        with self._sessions() as s, s.begin():
            s.connection().execute(statement)
        self.holding = False
        log.debug("lease %s given back by %s", self._name, self.holder)

    def _refusal(self) -> str:
        with self._sessions() as s:
            row = s.execute(select(_lease.c.holder, _lease.c.expires_at)
                            .where(_lease.c.name == self._name)).one()
        left = max(0.0, (row.expires_at or 0.0) - self._wall())
        return (f"another recovery engine ({row.holder}) is acting on this inventory; its "
                f"lease runs {left:.0f} s more unless renewed; this engine does not act")
