"""An instance's ARP cache: the kernel's neighbour state machine with its timers.

Read from Linux net/core/neighbour.c (neigh_timer_handler, __neigh_event_send,
neigh_update, neigh_rand_reach_time) and net/ipv4/arp.c (arp_solicit), with the
defaults of net.ipv4.neigh.default.*:

* REACHABLE while `now <= confirmed + reachable_time`; then DELAY if the entry was used
  in the last delay_first_probe_time (5 s), else STALE. reachable_time is drawn per
  device uniformly in [base/2, 3*base/2) (base_reachable_time 30 s): seeded here.
* DELAY: confirmed meanwhile -> REACHABLE, else PROBE: ucast_solicit (3) unicast
  requests to the cached MAC, retrans_time (1 s) apart; none answered -> FAILED.
* A packet to a NONE/FAILED entry makes it INCOMPLETE: mcast_solicit (3) broadcasts
  1 s apart, the first at once; packets wait in the queue (unres_qlen 101) and are sent
  when a reply arrives, or dropped (the sender gets 'host unreachable') at FAILED.
* A packet to a STALE entry is sent with the stale MAC and starts DELAY.
* Confirmation: a reply to our request (neigh_update NUD_REACHABLE) or a sender's
  MSG_CONFIRM (iputils ping sets it after each reply: neigh_confirm).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from stackdrill.backends.sim.kernel import Kernel

BASE_REACHABLE_S = 30.0  # base_reachable_time_ms = 30000
DELAY_FIRST_PROBE_S = 5.0  # delay_first_probe_time
RETRANS_S = 1.0  # retrans_time_ms = 1000
UCAST_SOLICIT = 3
MCAST_SOLICIT = 3
UNRES_QLEN = 101

Send = Callable[[str | None], None]  # a queued packet: called with the MAC, or None (dropped)
Solicit = Callable[[str, str | None], None]  # (ip, unicast MAC or None for broadcast)


class NeighState(StrEnum):
    NONE = "NONE"
    INCOMPLETE = "INCOMPLETE"
    REACHABLE = "REACHABLE"
    STALE = "STALE"
    DELAY = "DELAY"
    PROBE = "PROBE"
    FAILED = "FAILED"


VALID = (NeighState.REACHABLE, NeighState.STALE, NeighState.DELAY, NeighState.PROBE)


@dataclass
class NeighEntry:
    ip: str
    mac: str | None = None
    state: NeighState = NeighState.NONE
    confirmed: float = float("-inf")
    used: float = float("-inf")
    probes: int = 0
    queue: list[Send] = field(default_factory=list)
    timer: int = 0  # generation of the pending timer: a newer one cancels it


def reachable_time(seed: int, device: str) -> float:
    """neigh_rand_reach_time(base): base/2 + a uniform draw below base, per device.

    Its own seeded stream, so the draw never shifts the lab's shared RNG."""
    rng = random.Random(f"{seed}/neigh/{device}")
    return BASE_REACHABLE_S / 2 + rng.random() * BASE_REACHABLE_S


class NeighTable:
    """One device's ARP cache. `solicit` sends an ARP request; replies come back through
    `reply`, requests heard from others through `heard`."""

    def __init__(self, kernel: Kernel, device: str, solicit: Solicit) -> None:
        self.kernel = kernel
        self.device = device
        self.solicit = solicit
        self.reachable_s = reachable_time(kernel.seed, device)
        self.entries: dict[str, NeighEntry] = {}

    def state(self, ip: str) -> NeighState:
        entry = self.entries.get(ip)
        return entry.state if entry is not None else NeighState.NONE

    def mac(self, ip: str) -> str | None:
        entry = self.entries.get(ip)
        return entry.mac if entry is not None and entry.state in VALID else None

    # ------------------------------------------------------------ the send path

    def output(self, ip: str, send: Send) -> None:
        """neigh_resolve_output: send now with the cached MAC, or queue and resolve."""
        entry = self.entries.setdefault(ip, NeighEntry(ip))
        entry.used = self.kernel.now
        if entry.state in (NeighState.NONE, NeighState.FAILED):
            entry.state, entry.probes = NeighState.INCOMPLETE, UCAST_SOLICIT
            self._log(entry)
            self._arm(entry, RETRANS_S)
            self._probe(entry)
        if entry.state is NeighState.INCOMPLETE:
            if len(entry.queue) < UNRES_QLEN:
                entry.queue.append(send)
            else:
                send(None)
            return
        if entry.state is NeighState.STALE:
            entry.state = NeighState.DELAY
            self._log(entry)
            self._arm(entry, DELAY_FIRST_PROBE_S)
        send(entry.mac)

    def confirm(self, ip: str) -> None:
        """MSG_CONFIRM / dst_confirm: forward progress seen, without changing the state."""
        entry = self.entries.get(ip)
        if entry is not None:
            entry.confirmed = self.kernel.now

    # ------------------------------------------------------------ what arrives

    def reply(self, ip: str, mac: str) -> None:
        """An ARP reply to our request: REACHABLE, and the queue goes out."""
        entry = self.entries.setdefault(ip, NeighEntry(ip))
        entry.mac, entry.state, entry.confirmed = mac, NeighState.REACHABLE, self.kernel.now
        self._log(entry)
        self._arm(entry, self.reachable_s)
        self._flush(entry, mac)

    def heard(self, ip: str, mac: str, create: bool) -> None:
        """A request or gratuitous ARP from `ip` (neigh_update NUD_STALE): a new MAC or an
        unresolved entry becomes STALE with it; a known, valid MAC keeps its state.
        `create`: a request addressed to us creates the entry, a gratuitous one does not
        (arp_accept = 0)."""
        entry = self.entries.get(ip)
        if entry is None:
            if not create:
                return
            entry = self.entries[ip] = NeighEntry(ip)
        if entry.state in VALID and entry.mac == mac:
            return
        entry.mac, entry.state = mac, NeighState.STALE
        entry.timer += 1
        self._log(entry)
        self._flush(entry, mac)

    # ------------------------------------------------------------ timers

    def _arm(self, entry: NeighEntry, delay: float) -> None:
        entry.timer += 1
        generation = entry.timer
        self.kernel.call_later(delay, lambda: self._expire(entry, generation))

    def _expire(self, entry: NeighEntry, generation: int) -> None:
        """neigh_timer_handler."""
        if generation != entry.timer:
            return
        now = self.kernel.now
        if entry.state is NeighState.REACHABLE:
            if now < entry.confirmed + self.reachable_s:
                self._arm(entry, entry.confirmed + self.reachable_s - now)
                return
            if now <= entry.used + DELAY_FIRST_PROBE_S:
                entry.state = NeighState.DELAY
                self._arm(entry, DELAY_FIRST_PROBE_S)
            else:
                entry.state = NeighState.STALE
            self._log(entry)
            return
        if entry.state is NeighState.DELAY:
            if now <= entry.confirmed + DELAY_FIRST_PROBE_S:
                entry.state = NeighState.REACHABLE
                self._arm(entry, entry.confirmed + self.reachable_s - now)
            else:
                entry.state, entry.probes = NeighState.PROBE, 0
                self._arm(entry, RETRANS_S)
                self._probe(entry)
            self._log(entry)
            return
        if entry.state in (NeighState.PROBE, NeighState.INCOMPLETE):
            limit = UCAST_SOLICIT + MCAST_SOLICIT if entry.state is NeighState.INCOMPLETE \
                else UCAST_SOLICIT
            if entry.probes >= limit:
                entry.state = NeighState.FAILED
                self._log(entry)
                self._flush(entry, None)
                return
            self._arm(entry, RETRANS_S)
            self._probe(entry)

    def _probe(self, entry: NeighEntry) -> None:
        """arp_solicit: unicast to the cached MAC while probes < ucast_solicit, else broadcast."""
        unicast = entry.mac if entry.probes < UCAST_SOLICIT else None
        entry.probes += 1
        self.solicit(entry.ip, unicast)

    def _flush(self, entry: NeighEntry, mac: str | None) -> None:
        queued, entry.queue = entry.queue, []
        for send in queued:
            send(mac)

    def _log(self, entry: NeighEntry) -> None:
        self.kernel.log(f"neigh/{self.device}", "state", ip=entry.ip, state=str(entry.state),
                        mac=entry.mac or "-")
