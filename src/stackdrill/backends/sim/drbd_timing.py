"""When each side of a DRBD 8.4 connection notices a dead peer, and when it reconnects.

Read from drbd-8.4 (LINBIT/drbd-8.4 at 27deda96, 8.4.12):

- drbd_receiver.c drbd_ack_receiver: the meta socket's receive timeout is ping-int
  (set_idle_timeout). When a receive times out (-EAGAIN) and nothing arrived on the data
  socket since that receive began (`last_received` after `pre_recv_jif`), a P_PING goes
  out and the timeout becomes ping-timeout (set_ping_timeout); if that expires too:
  "PingAck did not arrive in time." -> C_NETWORK_FAILURE. Any meta packet (an ack, a
  P_PING, a P_PING_ACK) restarts the receive; data only postpones the ping by one round.
  So an idle link is noticed by the next ping (within ping-int) plus ping-timeout; a
  side that was receiving data when the link died waits one more ping-int.
- drbd_main.c drbd_send / we_should_drop_the_connection: a data-socket send blocked for
  `timeout` (sk_sndtimeo) decrements ko-count and requests a ping; ko-count reaching 0
  drops the connection at once.
- drbd_req.c request_timer_fn / net_timeout_reached: a request sent to the peer and not
  answered within ent = timeout * ko-count ("Remote failed to finish a request within
  ko-count * timeout") -> C_TIMEOUT, unless the connection is younger than ent.
- drbd_receiver.c conn_connect / drbd_try_connect / drbd_wait_for_connect: a side without
  a connection tries to connect (sk_sndtimeo = connect-int: on a dead link the attempt
  blocks that long) and then listens connect-int +- connect-int/7 ("28.5% random jitter").
  Its listening socket exists for the whole of conn_connect, so a SYN from the other side
  connects at once. A blocked attempt's SYN is retransmitted at 1, 3, 7, ... s (Linux
  TCP_TIMEOUT_INIT 1 s, doubled per retry, include/net/tcp.h).

Power cut vs link cut (no RST either way): a powered-off peer sends nothing, so the
survivor notices exactly as for a link cut, by its own clock; the dead side has no clock.
On a link cut each side runs its own clock. A side that has closed its socket answers the
other side's next segment with a RST once packets flow again (net/ipv4/tcp_ipv4.c
tcp_v4_send_reset), so a heal or a reboot ends the other side's stale connection at once.

Approximations (stated, not hidden): the idle ping exchange is one phase shared by both
sides (they differ by half a round trip); its offset within ping-int is drawn from the
lab's seed, because the moment a fault strikes within the ping cycle is not under a
drill's control on real guests either; an ack in flight at the cut counts as received at
the cut.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from stackdrill.topology.model import DrbdNetOptions

RS_TICK_S = 0.1  # drbd_worker.c SLEEP_TIME (HZ / 10): the SyncTarget's resync request tick
RS_REQUEST_KIB = 4  # BM_BLOCK_SIZE: drbd_rs_number_requests counts 4 KiB requests
SYN_RETRIES_S = (1.0, 3.0, 7.0, 15.0, 31.0, 63.0)  # TCP_TIMEOUT_INIT 1 s, doubled per retry
MAX_CYCLES = 100_000  # conn_connect rounds looked ahead (at least 1 s each)


@dataclass
class SideClock:
    """What one side's ack receiver knows at the cut."""

    meta_rx: float  # last packet received on the meta socket (ack, ping, ping ack)
    data_rx: float  # last packet received on the data socket


def ping_phase(seed: int, resource: str, epoch: int, ping_int_s: float) -> float:
    """Offset of the idle ping exchange within ping-int for one connection (seeded)."""
    return random.Random(f"{seed}/{resource}/ping/{epoch}").uniform(0.0, ping_int_s)


def ping_detection(clock: SideClock, anchor: float, cut: float, opts: DrbdNetOptions) -> float:
    """drbd_ack_receiver: when this side gives up on a peer that went silent at `cut`.

    The meta receive (re)started last at `start`: the shared idle phase (`anchor` plus
    or minus whole ping-ints, at or before the cut) or the last meta packet, whichever is
    later (an anchor drawn after the cut once hid the acks of a busy side). It times out a ping-int
    later; if data arrived during that receive it only restarts, so the ping goes out one
    ping-int later still; the PingAck is then awaited for ping-timeout."""
    period = float(opts.ping_int)
    idle = anchor + math.floor((cut - anchor) / period) * period  # the last idle start <= cut
    since = max(idle, clock.meta_rx)
    start = since + math.floor((cut - since) / period) * period
    ping_at = start + period
    if clock.data_rx > start:
        ping_at += period
    return ping_at + opts.ping_timeout_s


def shared_anchor(anchor: float, clocks: list[SideClock], cut: float,
                  opts: DrbdNetOptions) -> float:
    """A side whose meta socket went quiet for a ping-int before the cut pinged, and that
    ping restarted the other side's receive too: the idle phase moves there."""
    period = float(opts.ping_int)
    for clock in clocks:
        if anchor <= clock.meta_rx and clock.data_rx <= clock.meta_rx and (
                clock.meta_rx + period <= cut):
            quiet = clock.meta_rx + math.floor((cut - clock.meta_rx) / period) * period
            anchor = max(anchor, quiet)
    return anchor


def request_detection(oldest_sent: float | None, connected_at: float,
                      opts: DrbdNetOptions) -> float:
    """request_timer_fn: the oldest request waiting for the peer times out after
    timeout * ko-count (never with ko-count 0, never before the connection is that old)."""
    ent = opts.effective_timeout_s
    if oldest_sent is None or ent <= 0:
        return math.inf
    return max(oldest_sent + ent, connected_at + ent)


def send_block_detection(blocked_at: float, opts: DrbdNetOptions) -> float:
    """we_should_drop_the_connection: a send blocked `timeout` long drops the connection
    when ko-count counts down to 0 (ko-count 1), else requests a ping (ping-timeout)."""
    at = blocked_at + opts.timeout_s
    return at if opts.ko_count == 1 else at + opts.ping_timeout_s


def connect_syns(waiting_since: float, rng: random.Random, opts: DrbdNetOptions,
                 not_before: float) -> float:
    """conn_connect's outgoing SYNs of a side waiting since `waiting_since` on a link that
    was dead until `not_before`: the first SYN at or after `not_before`. Each round an
    attempt (its SYN unanswered, retransmitted while it blocks connect-int), then a listen of
    connect-int +- connect-int/7 (drbd_wait_for_connect's jitter, drawn from `rng`)."""
    cint = float(opts.connect_int)
    start = waiting_since
    for _ in range(MAX_CYCLES):
        for offset in (0.0, *SYN_RETRIES_S):
            if offset >= cint:
                break
            if start + offset >= not_before:
                return start + offset
        listen = cint + (cint / 7 if rng.random() < 0.5 else -cint / 7)
        start += cint + listen  # the attempt blocked connect-int, then the listen
    return math.inf


def resync_kib_per_s(resync_rate_kib: int, goodput_mbit: float) -> float:
    """How fast a bitmap resync moves data under `c-plan-ahead 0` (drbd_worker.c
    drbd_rs_number_requests: each 100 ms tick the SyncTarget requests
    SLEEP_TIME * resync_rate / (BM_BLOCK_SIZE/1024 * HZ) blocks, an integer: 1953 KiB/s
    gives 48 requests, 1920 KiB/s), capped by what one TCP stream carries over the
    replication link (its goodput: a tbf charges every frame's headers)."""
    return min(_requested_kib_per_s(resync_rate_kib), goodput_mbit * 1e6 / 8 / 1024)


def _requested_kib_per_s(resync_rate_kib: int) -> float:
    per_tick = max(1, math.floor(resync_rate_kib * RS_TICK_S / RS_REQUEST_KIB))
    return per_tick * RS_REQUEST_KIB / RS_TICK_S


def resync_s(kb: float, sent_kb: float, resync_rate_kib: int, goodput_mbit: float) -> float:
    """How long a resync of `kb` takes when only `sent_kb` of data cross the link (less
    than `kb` with a csums-alg): the SyncTarget requests every bit at the resync rate,
    and the data replies move at the link's goodput."""
    if sent_kb >= kb:
        return kb / resync_kib_per_s(resync_rate_kib, goodput_mbit)
    return max(kb / _requested_kib_per_s(resync_rate_kib),
               sent_kb / (goodput_mbit * 1e6 / 8 / 1024))
