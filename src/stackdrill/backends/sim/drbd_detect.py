"""Each side of a simulated DRBD 8.4 connection notices a dead peer on its own clock.

Why: real 8.4 has no shared "the link is dead" moment. Each node's ack receiver gives up
when its own ping goes unanswered, a request of its own times out, or a send of its own
blocks (the rules and their sources are in `drbd_timing`); the other node may still
believe it is Connected, with its writes waiting. This module arms one timer per side
from the resource's `net` options, ends that side's connection when it fires, and ends
the whole connection when the last side with a running clock gives up, or when packets
flow again and meet the closed socket (a RST). Reconnects follow conn_connect's rounds.
"""

from __future__ import annotations

import itertools
import math
import random
from typing import Any

from stackdrill.api import DrbdConnectionLost
from stackdrill.backends.sim.drbd_io import ReplicationCore
from stackdrill.backends.sim.drbd_model import Conn, Node
from stackdrill.backends.sim.drbd_timing import (
    SideClock,
    connect_syns,
    ping_detection,
    ping_phase,
    request_detection,
    send_block_detection,
    shared_anchor,
)

PING_LOST = "PingAck did not arrive in time"
REQUEST_LOST = "Remote failed to finish a request within ko-count * timeout"
SEND_LOST = "sock_sendmsg time expired"
RESET = "connection reset by peer"


class PeerLossCore(ReplicationCore):
    """Per-side peer-loss timers and conn_connect's reconnect rounds."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connected_at = 0.0
        self.lost_sides: set[str] = set()  # gave up on the peer; the other side has not
        # why each side ended its connection: each logs its own (the ping, the request
        # timer, the send timeout, a RST), not one reason for the connection
        self.loss_reasons: dict[str, str] = {}
        self.waiting_since: dict[str, float] = {}  # in conn_connect since
        self._detect: dict[str, tuple[float, int]] = {}  # node -> (when, token)
        self._send_blocked_at: dict[str, float] = {}
        self._timer_ids = itertools.count(1)
        self._outage_reported = False

    # ------------------------------------------------------------ hooks

    def _end_connection(self, cut: float, graceful: bool) -> None:  # pragma: no cover
        raise NotImplementedError

    def _lose_peer(self, node: Node, graceful: bool) -> None:  # pragma: no cover
        raise NotImplementedError

    def _schedule_connect(self, delay: float) -> None:  # pragma: no cover
        raise NotImplementedError

    def _quick_connect_s(self) -> float:  # pragma: no cover
        raise NotImplementedError

    def exposed_uuid(self, node: Node) -> int:  # pragma: no cover
        raise NotImplementedError

    # ------------------------------------------------------------ detection

    def link_died(self) -> None:
        """The link went silent now: every side with a running clock arms its timer."""
        self.lost_sides.clear()
        self.loss_reasons.clear()
        self._detect.clear()
        self._send_blocked_at.clear()
        self._outage_reported = False
        for node in self.nodes.values():
            self.rearm_detection(node)
        self.log("peer-unreachable", **{n: round(at, 6) for n, (at, _t) in
                                        sorted(self._detect.items())})

    def link_back(self) -> None:
        self._detect.clear()
        self._send_blocked_at.clear()

    def peer_waiting(self, node: Node) -> None:
        """A request of `node` waits for the peer during an outage (request timer path)."""
        armed = self._detect.get(node.name)
        if armed is not None and armed[0] <= self.kernel.now + self.spec.net.effective_timeout_s:
            return  # a younger request cannot time out first
        self.rearm_detection(node)

    def send_blocked(self, node: Node) -> None:
        """`node`'s data socket send blocks (full send buffer): the sndtimeo path."""
        self._send_blocked_at.setdefault(node.name, self.kernel.now)
        self.rearm_detection(node)

    def rearm_detection(self, node: Node, at: float | None = None,
                        reason: str | None = None) -> None:
        """Arm `node`'s timer at its earliest detection time (never later than armed)."""
        if (not self.established or self.link_down_at is None or not node.running
                or not node.host.up or node.name in self.lost_sides):
            return
        if at is None or reason is None:
            at, reason = self.detection_time(node)
        at = max(at, self.kernel.now)
        armed = self._detect.get(node.name)
        if armed is not None and armed[0] <= at:
            return
        token = next(self._timer_ids)
        self._detect[node.name] = (at, token)
        why = reason
        self.kernel.call_later(at - self.kernel.now,
                               lambda: self._side_gives_up(node, token, why))

    def detection_time(self, node: Node) -> tuple[float, str]:
        """The earliest of the ping, request-timer and send-timeout paths for `node`."""
        cut = self.link_down_at if self.link_down_at is not None else self.kernel.now
        opts = self.spec.net
        clocks = {n: self._clock(n, cut) for n in self.nodes}
        anchor = self.connected_at + ping_phase(self.kernel.seed, self.spec.name, self.epoch,
                                                float(opts.ping_int))
        anchor = shared_anchor(anchor, list(clocks.values()), cut, opts)
        paths = [(ping_detection(clocks[node.name], anchor, cut, opts), PING_LOST),
                 (request_detection(self._oldest_request(node), self.connected_at, opts),
                  REQUEST_LOST)]
        blocked = self._send_blocked_at.get(node.name)
        if blocked is not None:
            paths.append((send_block_detection(blocked, opts), SEND_LOST))
        return min(paths)

    def _clock(self, name: str, cut: float) -> SideClock:
        meta = min(self.rx_meta.get(name, -math.inf), cut)
        data = min(self.rx_data.get(name, -math.inf), cut)
        resync = getattr(self, "resync", None)
        if resync is not None:  # the resync stream: data to the target, acks to the source
            if resync.target.name == name:
                data = cut
            if resync.source.name == name:
                meta = cut
        return SideClock(max(meta, self.connected_at) if math.isfinite(meta) else meta, data)

    def _oldest_request(self, node: Node) -> float | None:
        """pre_send of the oldest request still waiting for the peer (req_ack_pending, or
        for protocol A req_not_net_done: the packet not yet through)."""
        sent = [op.sent for op in self._awaiting.get(node.name, {}).values()
                if op.epoch == self.epoch]
        for (src, _dst), queue in self._queues.items():
            if src == node.name:
                sent += [p.op.sent for p in queue if p.op is not None]
        return min(sent, default=None)

    def _side_gives_up(self, node: Node, token: int, reason: str) -> None:
        armed = self._detect.get(node.name)
        if armed is None or armed[1] != token:
            return
        del self._detect[node.name]
        if (not self.established or self.link_down_at is None or not node.running
                or not node.host.up):
            return
        cut = self.link_down_at
        self._report_outage(cut, reason)
        self.loss_reasons[node.name] = reason
        clocks_left = [n for n in self.nodes.values() if n is not node and n.running
                       and n.host.up and n.name not in self.lost_sides]
        if clocks_left:
            self.lost_sides.add(node.name)
            self._lose_one_side(node, cut)
        else:
            self._end_connection(cut, graceful=False)

    def _report_outage(self, cut: float, reason: str) -> None:
        if not self._outage_reported:
            self._outage_reported = True
            self.kernel.emit(DrbdConnectionLost(self.spec.name, cut, reason))

    def _lose_one_side(self, node: Node, cut: float) -> None:
        """Only `node` tears its connection down: what it had in flight is lost to the
        peer (out of sync), its waiting requests complete locally, it goes WFConnection."""
        self.flush(until=cut)
        peer = self.peer_of(node)
        queue = self._queues.get((node.name, peer.name))
        while queue:
            self._lost(queue.popleft(), node, cut)
        node.ed_uuid = self.exposed_uuid(node)
        self._lose_peer(node, graceful=False)
        self.waiting_since[node.name] = self.kernel.now

    def peer_reset(self, cut: float) -> None:
        """Packets flow again but one side closed its socket, or rebooted: the other's next
        segment meets a RST and its connection ends now."""
        self._report_outage(cut, RESET)
        for name in self.nodes:
            if name not in self.lost_sides:
                self.loss_reasons[name] = RESET
        self._end_connection(cut, graceful=False)

    # ------------------------------------------------------------ reconnect

    def schedule_reconnect(self) -> None:
        """conn_connect on both sides: connected at the first SYN either side sends while
        the link is up (the other side is listening for the whole of conn_connect)."""
        if self.established or not self.reachable():
            return
        now = self.kernel.now
        waiting = [n for n in self.nodes.values() if n.conn is Conn.WF_CONNECTION
                   and n.running and n.host.up]
        if len(waiting) < len(self.nodes):
            return
        first = min(connect_syns(self.waiting_since.get(n.name, now), self._connect_rng(n),
                                 self.spec.net, now) for n in waiting)
        if math.isfinite(first):
            self._schedule_connect(first - now + self._quick_connect_s())

    def _connect_rng(self, node: Node) -> random.Random:
        """drbd_wait_for_connect's prandom jitter, a function of the seed (per side, epoch)."""
        return random.Random(f"{self.kernel.seed}/{self.spec.name}/{node.name}/connect/"
                             f"{self.epoch}")
