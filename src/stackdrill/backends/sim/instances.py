"""Simulated hypervisors, guests and their workloads, and iSCSI sessions to remote volumes.

A guest's workload behaves like a journaling application: it writes record n
to block n of its volume, waits for the acknowledgement (fsync), logs the
outcome and writes the next one. After a restart elsewhere it first replays
its volume to find the last record and continues after it — so records that
were acknowledged but lost get overwritten by a new incarnation, which is
exactly what the acknowledged-writes checker must catch.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import simpy
from simpy.events import URGENT

from stackdrill.api import GuestStarted, GuestStopped, PowerState, StoredRecord, WriteOp
from stackdrill.backends.sim.disks import BLOCK_BYTES, BlockDevice, BlockIOError
from stackdrill.backends.sim.hosts import SimHost
from stackdrill.backends.sim.kernel import Kernel
from stackdrill.backends.sim.network import Underlay

GUEST_BOOT_S = 12.0  # define + start a guest until its workload runs
REPLAY_S = 2.0  # the workload scans its volume after a restart
# open-iscsi on a lost path (conformance situation iscsi-session-loss, recorded on guests):
# a request in flight goes through about 1 s after the path is back (TCP's retransmission,
# or iscsid's new login); the initiator declares the connection dead when its nop-out
# ping goes unanswered (noop_out_interval 5 s + noop_out_timeout 5 s, with the last ping
# up to 5 s before the loss: 6-7 s after it, recorded), and fails I/O a replacement
# timeout after that, at once for new I/O from then on; once declared dead, the session
# takes iscsid's new login after the path is back (0.5-2 s recorded; I/O fails fast until then)
ISCSI_RETRY_S = 1.0
ISCSI_DETECT_S = 7.0
ISCSI_RELOGIN_S = 2.0


def checksum(volume: str, instance: str, incarnation: int, seq: int) -> str:
    return hashlib.sha256(f"{volume}:{instance}:{incarnation}:{seq}".encode()).hexdigest()[:16]


class IscsiSession:
    """A block device on `client` that reaches a device on `server` over the storage network.

    Requests wait and retry while the path is down. The session is lost from when a
    request first found the path down, failed ISCSI_DETECT_S later (the nop-out ping), and
    its I/O fails once the replacement timeout (the topology's `iscsi.replacement_timeout`)
    has run out after that, new I/O at once, as open-iscsi does; once declared dead it
    needs a new login (ISCSI_RELOGIN_S) after the path is back, and a request that gets
    through makes it whole again. An idle session notices a loss when it is next used (a
    real one pings every 5 s): the lab's workloads write every few seconds.
    """

    def __init__(self, kernel: Kernel, underlay: Underlay, network: str, client: str,
                 server: str, device: BlockDevice, replacement_timeout_s: float) -> None:
        self.kernel = kernel
        self.replacement_timeout_s = replacement_timeout_s
        self.underlay = underlay
        self.network = network
        self.client = client
        self.server = server
        self.device = device
        self.name = f"iscsi:{server}:{device.name}"
        self.lost_since: float | None = None
        self.back_since: float | None = None  # the path seen back while the session was lost

    def _usable(self, now: float) -> bool:
        """Whether a request that reaches the target goes through: always, unless the
        session was declared dead, which then needs a new login once the path is back."""
        if self.lost_since is None or now < self.lost_since + ISCSI_DETECT_S:
            return True  # never declared dead: TCP's retransmission carries it
        if self.back_since is None:
            self.back_since = now
        return now >= self.back_since + ISCSI_RELOGIN_S

    def _gives_up_at(self) -> float:
        """When I/O on a lost session fails: detection, then the replacement timeout."""
        assert self.lost_since is not None
        return self.lost_since + ISCSI_DETECT_S + self.replacement_timeout_s

    def _round_trip(self, addr: int, op: Callable[[], simpy.Event]) -> simpy.Event:
        """One request: a `_Request` driven by callbacks on the events it waits for."""
        done = self.kernel.env.event()
        _Request(self, op, done)
        return done

    def write(self, addr: int, data: Any) -> simpy.Event:
        return self._round_trip(addr, lambda: self.device.write(addr, data))

    def read(self, addr: int) -> simpy.Event:
        return self._round_trip(addr, lambda: self.device.read(addr))

    def peek(self, addr: int) -> Any:
        return self.device.peek(addr)


class _Start(simpy.Event):
    """An URGENT event at once, as SimPy's `Initialize` starts a process: a request starts
    at the place in the event order where its process used to (same trace)."""

    def __init__(self, env: simpy.Environment, action: Callable[[simpy.Event], None]) -> None:
        super().__init__(env)
        self.callbacks.append(action)
        self._ok = True
        self._value = None
        env.schedule(self, URGENT)


class _Request:
    """One iSCSI request through a session, retried while the path is down.

    It waits on the same events, in the same order, as the SimPy process it replaces (one
    per write, four resumes each: a quarter of a large drill's time), minus the process's
    own end event, which nothing waited for."""

    def __init__(self, session: IscsiSession, op: Callable[[], simpy.Event],
                 done: simpy.Event) -> None:
        self.session = session
        self.op = op
        self.done = done
        self.env = session.kernel.env
        self.client = session.underlay.hosts[session.client]
        self.boot = self.client.boot_count
        _Start(self.env, self._attempt)

    def _attempt(self, _event: simpy.Event) -> None:
        """Send the request if the path and the session let it through, else wait."""
        s, env = self.session, self.env
        if not self.client.powered or self.client.boot_count != self.boot:
            # the initiator's queue was in the client's memory: a power cut or a
            # reboot ends the request (its guest died with it), it is never resent
            self.done.fail(BlockIOError(f"{s.name}: {s.client} lost power"))
            return
        out = s.underlay.stream(s.client, s.server, s.network, BLOCK_BYTES)
        if out is None:
            s.back_since = None
        elif s._usable(env.now):
            env.timeout(out).callbacks.append(self._at_target)
            return
        self._wait_or_give_up()

    def _at_target(self, _event: simpy.Event) -> None:
        self.op().callbacks.append(self._served)

    def _served(self, event: simpy.Event) -> None:
        """The target's device answered: the response goes back, or the request retries."""
        s = self.session
        if not event.ok:
            if isinstance(event.value, BlockIOError):
                event.defused = True
                self.done.fail(event.value)
            return  # anything else stays undefused: SimPy raises it, as the process did
        back = s.underlay.stream(s.server, s.client, s.network, 64)
        if back is None:
            self._wait_or_give_up()
            return
        value = event.value
        self.env.timeout(back).callbacks.append(lambda _e: self._answered(value))

    def _answered(self, value: Any) -> None:
        s = self.session
        s.lost_since = s.back_since = None
        self.done.succeed(value)

    def _wait_or_give_up(self) -> None:
        """The path is down (or the answer was lost): retry in a second, until the session
        has been lost for longer than the replacement timeout."""
        s, env = self.session, self.env
        if s.lost_since is None:
            s.lost_since = env.now
        if env.now >= s._gives_up_at():
            self.done.fail(BlockIOError(f"{s.name}: session lost for "
                                        f"{env.now - s.lost_since:.0f} s"))
            return
        env.timeout(min(ISCSI_RETRY_S, s._gives_up_at() - env.now)).callbacks.append(
            self._attempt)


@dataclass
class Guest:
    """One running (or defined) copy of an instance on a host."""

    instance: str
    host: str
    incarnation: int
    volumes: dict[str, BlockDevice]
    running: bool = True
    process: simpy.Process | None = None
    first_ok_at: float | None = None
    pending: list[WriteOp] = field(default_factory=list)


class Hypervisors:
    """All hypervisors of the lab: which guests are defined and running where."""

    def __init__(self, kernel: Kernel, hosts: dict[str, SimHost], write_interval_s: float,
                 writers: set[str]) -> None:
        self.kernel = kernel
        self.hosts = hosts
        self.write_interval_s = write_interval_s
        self.writers = writers  # instances whose workload writes
        self.guests: dict[str, dict[str, Guest]] = {h: {} for h in hosts}
        self.incarnations: dict[str, int] = {}
        self.started_on: dict[str, set[str]] = {}  # instance -> every host it was started on
        self.history: list[WriteOp] = []
        self.io_errors: list[WriteOp] = []
        self.boot_check: Callable[[str, list[str]], list[str]] | None = None
        for host in hosts.values():
            host.subscribe(self._power_changed)

    # ------------------------------------------------------------ queries

    def running(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {name: [] for name in sorted(self.incarnations)}
        for host, guests in sorted(self.guests.items()):
            for name, guest in sorted(guests.items()):
                out.setdefault(name, [])
                if guest.running and self.hosts[host].powered:
                    out[name].append(host)
        return out

    def running_on(self, instance: str) -> list[str]:
        """The hosts where `instance` runs, in `running()`'s order, without building the
        whole map or looking on every host (a reader asks this once per volume: either
        would make it volumes x instances or volumes x hosts)."""
        return [host for host in sorted(self.started_on.get(instance, ()))
                if (guest := self.guests[host].get(instance)) is not None
                and guest.running and self.hosts[host].powered]

    # ------------------------------------------------------------ lifecycle

    def start(self, instance: str, host: str, volumes: dict[str, BlockDevice],
              boot_s: float = 0.0) -> Guest:
        """Define and start a guest; its workload starts after `boot_s`."""
        existing = self.guests[host].get(instance)
        if existing is not None and existing.running:
            return existing
        incarnation = self.incarnations.get(instance, 0) + 1
        self.incarnations[instance] = incarnation
        guest = Guest(instance, host, incarnation, volumes)
        self.guests[host][instance] = guest
        self.started_on.setdefault(instance, set()).add(host)
        self.kernel.emit(GuestStarted(host, instance, incarnation))
        if instance in self.writers and volumes:
            guest.process = self.kernel.env.process(self._workload(guest, boot_s))
        elif boot_s >= 0:
            guest.first_ok_at = self.kernel.now + boot_s
        return guest

    def destroy(self, instance: str, host: str) -> bool:
        guest = self.guests[host].pop(instance, None)
        if guest is None:
            return False
        self._stop(guest, "destroyed")
        return True

    def crash(self, instance: str) -> list[str]:
        """The instance's process dies where it runs now (SIGKILL of its qemu): the guest
        stays defined, not running, and its workload writes nothing more (a write in flight
        keeps an unknown outcome). Its host and other guests are untouched. The hosts it
        ran on; none when it runs nowhere."""
        hosts = []
        for host, guests in sorted(self.guests.items()):
            guest = guests.get(instance)
            if guest is not None and guest.running and self.hosts[host].powered:
                self._stop(guest, "killed")
                hosts.append(host)
        return hosts

    def _stop(self, guest: Guest, why: str) -> None:
        if guest.running:
            guest.running = False
            self.kernel.emit(GuestStopped(guest.host, guest.instance, guest.incarnation, why))

    def _power_changed(self, host: SimHost, _old: Any, new: Any) -> None:
        if new is PowerState.OFF:
            for guest in self.guests[host.name].values():
                self._stop(guest, "host-off")
        elif new is PowerState.ON and _old is PowerState.BOOTING:
            self._resume_on_boot(host.name)

    def _resume_on_boot(self, host: str) -> None:
        """nova-compute's init_host: destroy guests evacuated elsewhere (it asks the control
        plane), then resume the rest (resume_guests_state_on_host_boot)."""
        names = sorted(self.guests[host])
        evacuated = set(self.boot_check(host, names)) if self.boot_check else set()
        for name in names:
            guest = self.guests[host][name]
            if name in evacuated:
                self.destroy(name, host)
                self.kernel.log(f"hv/{host}", "destroy-evacuated", instance=name)
            elif not guest.running:
                self.guests[host].pop(name)
                self.start(name, host, guest.volumes, boot_s=GUEST_BOOT_S)

    # ------------------------------------------------------------ workload

    def _workload(self, guest: Guest, boot_s: float) -> Generator[simpy.Event, Any, None]:
        env = self.kernel.env
        yield env.timeout(boot_s)
        if not self._alive(guest):
            return
        volume, device = next(iter(sorted(guest.volumes.items())))
        seq = self._replay(device)
        if guest.incarnation > 1:
            yield env.timeout(REPLAY_S)
        yield env.timeout(self._phase(guest))
        while self._alive(guest):
            if not self.hosts[guest.host].up:  # hung: no progress, resumes on thaw
                yield env.timeout(self.write_interval_s)
                continue
            seq += 1
            started = env.now
            op = WriteOp(guest.instance, volume, guest.incarnation, seq,
                         checksum(volume, guest.instance, guest.incarnation, seq), started,
                         None, "info", guest.host)
            record = StoredRecord(seq, guest.incarnation, op.checksum)
            index = len(self.history)
            self.history.append(op)
            try:
                yield device.write(seq, record)
                outcome = "ok"
            except BlockIOError:
                outcome = "fail"
            if not self._alive(guest):
                return  # the host died while the write was in flight: outcome unknown
            done = WriteOp(op.instance, volume, op.incarnation, seq, op.checksum, started,
                           env.now, outcome, op.host)  # op, completed (no __dict__ copy)
            self.history[index] = done
            if outcome == "ok" and guest.first_ok_at is None:
                guest.first_ok_at = env.now
            if outcome == "fail":
                self.io_errors.append(done)
                self.kernel.log(f"hv/{guest.host}", "io-error", instance=guest.instance, seq=seq)
                seq -= 1  # the application retries the same record
            yield env.timeout(max(0.0, started + self.write_interval_s - env.now))

    def _phase(self, guest: Guest) -> float:
        """When in its first period this incarnation's writer starts: guests finish booting
        at different instants, so their writers are not phase-locked (with one shared
        phase, protocol A lost writes came in multiples of the writer count). Drawn from
        the lab's seed and the guest alone, so no other random draw moves."""
        rng = random.Random(f"{self.kernel.seed}:{guest.instance}:{guest.incarnation}")
        return rng.uniform(0.0, self.write_interval_s)

    def _alive(self, guest: Guest) -> bool:
        return guest.running and self.guests[guest.host].get(guest.instance) is guest

    @staticmethod
    def _replay(device: BlockDevice) -> int:
        """The highest consecutive record on the volume (what a journal replay finds)."""
        seq = 0
        while isinstance(device.peek(seq + 1), StoredRecord):
            seq += 1
        return seq
