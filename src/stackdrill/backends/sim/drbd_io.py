"""DRBD 8.4 request path: local write, replication over the link, protocol A/B/C acks.

Why it is shaped like this: a drill issues tens of thousands of writes, so a
replicated write costs at most one disk event, one completion event and (B/C)
one ack timer. The peer's copy is not written by its own event: each packet
waits in a per-direction FIFO with its arrival time and is applied lazily
("flushed") before anything that could observe it or change the peer's state.
A connection cut applies what arrived before the cut and drops the rest into
the sender's bitmap, exactly what a real TCP stream loses.

Acknowledgement points (DRBD 8.4 User's Guide, 2.3 "Replication modes"):
A = local disk done + packet in the TCP send buffer; B = local done + peer
received; C = local done + peer disk written. A request completes OK when the
local disk or the peer wrote it (drbd_req.c: `ok = LOCAL_OK || NET_OK`).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import simpy

from stackdrill.api import DrbdNotice, DrbdStateChanged
from stackdrill.api.events import facts
from stackdrill.backends.sim.disks import BLOCK_BYTES, BlockIOError
from stackdrill.backends.sim.drbd_model import Conn, Disk, Node, Role
from stackdrill.backends.sim.kernel import Kernel
from stackdrill.backends.sim.network import Underlay
from stackdrill.topology import DrbdResource
from stackdrill.topology.model import Protocol

HEADER_BYTES = 64  # P_DATA header; acks are header-only packets
TCP_RTO_S = 0.2  # Linux minimum retransmission timeout: a lost segment costs this
MAX_RETRANSMITS = 8


@dataclass(slots=True, eq=False)
class WriteRequest:
    """One write request on one node (DRBD's struct drbd_request)."""

    node: Node
    addr: int
    data: Any
    done: simpy.Event
    local: bool | None  # None pending / True ok / False failed (or no local disk)
    remote: bool | None  # None pending / True acked or not needed / False: no peer copy
    boot: int = 0  # host boot count at submission: a reboot orphans the request
    op_id: int = -1
    arrive: float = 0.0  # when its packet reaches the peer (inf: link down, not yet sent)
    epoch: int = -1
    acked: bool = False  # told the upper layer it completed
    sent: float = 0.0  # pre_send: when it was handed to the network


@dataclass(slots=True)
class Packet:
    arrive: float
    addr: int
    data: Any
    src: str
    op: WriteRequest | None


@dataclass(frozen=True)
class DroppedWrite:
    """A replicated write that never reached the peer: in flight when the link died."""

    node: str
    addr: int
    data: Any
    acked: bool
    time: float
    local: bool = True  # the sender's own UpToDate disk kept it (not Diskless/Inconsistent)


class ReplicationCore:
    """State and request path shared by the resource; lifecycle lives in drbd.DrbdResourceSim."""

    def __init__(self, kernel: Kernel, spec: DrbdResource, underlay: Underlay,
                 sndbuf_bytes: int = 4 << 20) -> None:
        self.kernel = kernel
        self.spec = spec
        self.underlay = underlay
        self.sndbuf_bytes = sndbuf_bytes
        self.comp = f"drbd/{spec.name}"
        self.nodes: dict[str, Node] = {}
        self.epoch = 0  # bumped whenever the connection ends
        self.established = True
        self.link_down_at: float | None = None
        self._busy: dict[tuple[str, str], float] = {}
        self._unsent: dict[tuple[str, str], int] = {}  # bytes queued while the link is down
        self._queues: dict[tuple[str, str], deque[Packet]] = {}
        self._awaiting: dict[str, dict[int, WriteRequest]] = {}
        self._stalled: list[WriteRequest] = []
        self._ids = itertools.count()
        self.dropped: list[DroppedWrite] = []
        self.resync_set: set[int] | None = None  # blocks still to copy by the running resync
        self._notices: list[DrbdNotice] = []
        self.rx_data: dict[str, float] = {}  # node -> last packet on its data socket
        self.rx_meta: dict[str, float] = {}  # node -> last ack on its meta socket

    # ------------------------------------------------------------ helpers

    def log(self, event: str, **fields: Any) -> None:
        self.kernel.log(self.comp, event, **fields)

    def note(self, event: str, **fields: Any) -> None:
        """A notable event for reports (split brain, resync, fencing): emitted and kept."""
        notice = DrbdNotice(self.spec.name, event, facts(**fields))
        self.kernel.emit(notice)
        self._notices.append(notice)

    def state(self, node: Node, *, role: str | None = None, disk: str | None = None,
              conn: str | None = None, pdsk: str | None = None, **details: Any) -> None:
        """A node's role, disk or connection changed (drbdsetup events2's `change`)."""
        self.kernel.emit(DrbdStateChanged(self.spec.name, node.name, role, disk, conn, pdsk,
                                          facts(**details)))

    def peer_of(self, node: Node) -> Node:
        """The other node (on every write: an unpacking, not a generator)."""
        first, second = self.nodes.values()  # DRBD 8.4: exactly two nodes
        return second if first is node else first

    def reachable(self) -> bool:
        a, b = self.spec.nodes
        return self.underlay.connected(a, b, self.spec.network)

    def _can_replicate(self, node: Node) -> bool:
        return self.established and node.conn.connected and node.peer_disk > Disk.DISKLESS

    # ------------------------------------------------------------ link

    def _transmit(self, src: str, dst: str, nbytes: int) -> float:
        """Arrival time of a packet queued now on the src->dst stream (FIFO, bandwidth)."""
        net = self.spec.network
        if not self.underlay.connected(src, dst, net):
            return math.inf  # waits in the socket until the link is back (or declared dead)
        latency = self.underlay.delay(src, dst, net, 0)
        tx = self.underlay.delay(src, dst, net, nbytes) - latency
        start = max(self.kernel.now, self._busy.get((src, dst), 0.0))
        segment = min(nbytes, self.underlay.path_mtu(src, dst, net) - 40)
        for _ in range(MAX_RETRANSMITS):  # TCP retransmits a lost segment; only time is lost
            if self.underlay.send(src, dst, net, segment) is not None:
                break
            start += TCP_RTO_S
        self._busy[(src, dst)] = start + tx
        return start + tx + latency

    def _sndbuf_time(self, src: str, dst: str) -> float:
        """When the send buffer has room again (protocol A blocks on a full sndbuf)."""
        rate_bps = 8 * BLOCK_BYTES / max(1e-12, self.underlay.delay(
            src, dst, self.spec.network, BLOCK_BYTES) - self.underlay.delay(
            src, dst, self.spec.network, 0))
        backlog_s = self._busy.get((src, dst), 0.0) - self.kernel.now
        return self.kernel.now + max(0.0, backlog_s - self.sndbuf_bytes * 8 / rate_bps)

    def flush(self, until: float | None = None) -> None:
        """Apply every packet that has arrived by `until` (default now) to the receiver's disk."""
        limit = self.kernel.now if until is None else until
        if self.link_down_at is not None:
            limit = min(limit, self.link_down_at)  # nothing crosses a dead link
        for (src, dst), queue in self._queues.items():
            while queue and queue[0].arrive <= limit:
                self._apply(queue.popleft(), self.nodes[src], self.nodes[dst])

    def _apply(self, pkt: Packet, src: Node, dst: Node) -> None:
        if not dst.running:
            self._lost(pkt, src, self.kernel.now)
            return
        self._note_arrival(pkt, src, dst)
        src.al_done(pkt.addr)
        if not dst.attached:
            src.bitmap.add(pkt.addr)  # a diskless peer only forwards
            return
        if dst.disk.failed or not dst.disk.powered:
            src.bitmap.add(pkt.addr)  # P_NEG_ACK: the block is out of sync
            self.local_io_error(dst, "peer write")
            return
        if 0 <= pkt.addr < dst.disk.blocks_total:
            dst.disk.blocks[pkt.addr] = pkt.data
        if not src.attached:
            dst.bitmap.add(pkt.addr)  # written by a diskless Primary: its own disk lacks it
        if self.resync_set is not None:
            self.resync_set.discard(pkt.addr)

    def _note_arrival(self, pkt: Packet, src: Node, dst: Node) -> None:
        """What each side's ack receiver last heard (drbd_timing): the data arrived at the
        receiver; its ack (P_WRITE_ACK/P_RECV_ACK, or for protocol A the epoch's
        P_BARRIER_ACK) reaches the sender a return trip later."""
        self.rx_data[dst.name] = max(self.rx_data.get(dst.name, pkt.arrive), pkt.arrive)
        back = pkt.arrive + self.underlay.delay(dst.name, src.name, self.spec.network,
                                                HEADER_BYTES)
        self.rx_meta[src.name] = max(self.rx_meta.get(src.name, back), back)

    def _lost(self, pkt: Packet, src: Node, when: float) -> None:
        src.al_done(pkt.addr)
        src.bitmap.add(pkt.addr)
        acked = pkt.op is not None and pkt.op.acked
        local = src.dstate is Disk.UP_TO_DATE and (pkt.op is None or pkt.op.local is not False)
        self.dropped.append(DroppedWrite(src.name, pkt.addr, pkt.data, acked, when, local))

    def drop_in_flight(self, cut: float) -> None:
        """The stream broke at `cut`: what arrived before stays, the rest is out of sync."""
        self.flush(until=cut)
        for (src, _dst), queue in self._queues.items():
            while queue:
                self._lost(queue.popleft(), self.nodes[src], cut)
        self._busy.clear()
        self._unsent.clear()

    # ------------------------------------------------------------ writes

    def submit_write(self, node: Node, addr: int, data: Any) -> simpy.Event:
        done = self.kernel.env.event()
        if not (node.running and node.host.up):
            return done  # a dead or frozen host completes nothing
        if node.role is not Role.PRIMARY:
            done.fail(BlockIOError(f"{self._dev(node)}: Read-only file system (Secondary)"))
            return done
        if node.suspended:
            node.frozen.append((addr, data, done))
            return done
        self._start_write(node, addr, data, done)
        return done

    def may_do_writes(self, node: Node) -> bool:
        """drbd_req.c may_do_writes: a write needs UpToDate data locally or at the peer; on an
        Inconsistent disk with no UpToDate peer it would be unreadable and unversioned."""
        return node.dstate is Disk.UP_TO_DATE or (
            self.established and node.conn.connected and node.peer_disk is Disk.UP_TO_DATE)

    def _start_write(self, node: Node, addr: int, data: Any, done: simpy.Event) -> None:
        self.flush()
        if node.attached and not self.may_do_writes(node):
            self.log("io-error", node=node.name, block=addr,
                     msg="IO ERROR: neither local nor remote data")
            done.fail(BlockIOError(f"{self._dev(node)}: I/O error writing block {addr}"
                                   " (no UpToDate data reachable)"))
            return
        op = WriteRequest(node, addr, data, done, local=None, remote=None,
                          boot=node.host.boot_count)
        if not node.attached:
            op.local = False
        if self._can_replicate(node):
            self._replicate(op)
        else:
            op.remote = False
            node.bitmap.add(addr)
        if node.attached:
            node.disk.write(addr, data).callbacks.append(lambda ev: self._local_done(op, ev))
        self._maybe_complete(op)

    def _replicate(self, op: WriteRequest) -> None:
        node, peer = op.node, self.peer_of(op.node)
        arrive = self._transmit(node.name, peer.name, BLOCK_BYTES + HEADER_BYTES)
        key = (node.name, peer.name)
        self._queues.setdefault(key, deque()).append(Packet(arrive, op.addr, op.data,
                                                            node.name, op))
        node.al_add(op.addr)
        op.epoch, op.arrive, op.sent = self.epoch, arrive, self.kernel.now
        if self.spec.protocol is Protocol.A:
            at = self._sndbuf_time(node.name, peer.name)
            if math.isinf(arrive):
                self._unsent[key] = self._unsent.get(key, 0) + BLOCK_BYTES + HEADER_BYTES
                at = math.inf if self._unsent[key] > self.sndbuf_bytes else self.kernel.now
                if math.isinf(at):
                    self.send_blocked(node)
                else:
                    self.peer_waiting(node)
            if at <= self.kernel.now:
                op.remote = True
                return
        else:
            at = self._ack_time(op)
        op.op_id = next(self._ids)
        self._awaiting.setdefault(node.name, {})[op.op_id] = op
        self._arm_ack(op, at)

    def _ack_time(self, op: WriteRequest) -> float:
        """B: peer received + ack back; C: also the peer's disk write."""
        peer = self.peer_of(op.node)
        back = self.underlay.delay(peer.name, op.node.name, self.spec.network, HEADER_BYTES)
        disk = peer.disk.latency if self.spec.protocol is Protocol.C else 0.0
        return op.arrive + back + disk

    def _arm_ack(self, op: WriteRequest, at: float) -> None:
        if math.isinf(at):
            self._stalled.append(op)
            self.peer_waiting(op.node)
        else:
            self.kernel.call_later(at - self.kernel.now, lambda: self._remote_ack(op))

    def _remote_ack(self, op: WriteRequest) -> None:
        waiting = self._awaiting.get(op.node.name, {})
        if op.op_id not in waiting or op.epoch != self.epoch:
            return  # already settled by a connection loss
        if self.link_down_at is not None:
            self._stalled.append(op)  # TCP keeps retrying until the peer is declared dead
            self.peer_waiting(op.node)
            return
        del waiting[op.op_id]
        self.flush()
        op.remote = True
        self._maybe_complete(op)

    def resume_stalled(self) -> None:
        """The link came back before the timeout: queued packets go out, acks follow."""
        self.flush()
        self._unsent.clear()
        for (src, dst), queue in self._queues.items():
            for pkt in queue:
                if math.isinf(pkt.arrive):
                    pkt.arrive = self._transmit(src, dst, BLOCK_BYTES + HEADER_BYTES)
                    if pkt.op is not None:
                        pkt.op.arrive = pkt.arrive
        stalled, self._stalled = self._stalled, []
        for op in stalled:
            if self.spec.protocol is Protocol.A:
                self._arm_ack(op, self._sndbuf_time(op.node.name, self.peer_of(op.node).name))
            else:
                self._arm_ack(op, max(self.kernel.now, self._ack_time(op)))

    def settle_awaiting(self, node: Node) -> None:
        """Connection gone: requests waiting for the peer complete locally (marked out of sync)."""
        waiting = self._awaiting.pop(node.name, {})
        self._stalled = [op for op in self._stalled if op.node is not node]
        for op in waiting.values():
            node.bitmap.add(op.addr)
            op.remote = False
            self._maybe_complete(op)

    def forget_awaiting(self, node: Node) -> None:
        """The node died: its requests never complete."""
        self._awaiting.pop(node.name, None)
        self._stalled = [op for op in self._stalled if op.node is not node]
        node.frozen.clear()

    def _local_done(self, op: WriteRequest, ev: simpy.Event) -> None:
        if ev.ok:
            op.local = True
        else:
            ev.defused = True
            op.local = False
            op.node.bitmap.add(op.addr)
            self.local_io_error(op.node, f"write block {op.addr}")
        self._maybe_complete(op)

    def _maybe_complete(self, op: WriteRequest) -> None:
        if op.acked or op.done.triggered or op.local is None or op.remote is None:
            return
        if not op.node.running or op.boot != op.node.host.boot_count:
            return
        op.acked = True
        if op.local or op.remote:
            op.done.succeed()
        else:
            op.done.fail(BlockIOError(f"{self._dev(op.node)}: I/O error writing block {op.addr}"
                                      " (no local disk and no peer)"))

    # ------------------------------------------------------------ reads

    def submit_read(self, node: Node, addr: int) -> simpy.Event:
        done = self.kernel.env.event()
        if not (node.running and node.host.up):
            return done
        if node.role is not Role.PRIMARY:
            done.fail(BlockIOError(f"{self._dev(node)}: Wrong medium type (Secondary)"))
            return done
        if node.suspended:
            node.frozen.append((addr, None, done))
            return done
        self._start_read(node, addr, done)
        return done

    def local_read_ok(self, node: Node, addr: int) -> bool:
        """drbd_req.c drbd_may_do_local_read: UpToDate, or a SyncTarget's block the resync
        already copied (or that was written since)."""
        return node.dstate is Disk.UP_TO_DATE or (
            node.conn in (Conn.SYNC_TARGET, Conn.PAUSED_SYNC_T) and self.resync_set is not None
            and addr not in self.resync_set)

    def connected_to_up_to_date(self, node: Node) -> bool:
        return self._can_replicate(node) and node.peer_disk is Disk.UP_TO_DATE

    def _start_read(self, node: Node, addr: int, done: simpy.Event) -> None:
        self.flush()
        if self.local_read_ok(node, addr):
            def finish(ev: simpy.Event) -> None:
                if ev.ok:
                    done.succeed(ev.value)
                    return
                ev.defused = True
                self.local_io_error(node, f"read block {addr}")
                self._remote_read(node, addr, done)  # READ_COMPLETED_WITH_ERROR: retry at peer
            node.disk.read(addr).callbacks.append(finish)
        else:
            self._remote_read(node, addr, done)

    def _remote_read(self, node: Node, addr: int, done: simpy.Event) -> None:
        peer = self.peer_of(node)
        if not (self._can_replicate(node) and node.peer_disk is Disk.UP_TO_DATE):
            done.fail(BlockIOError(f"{self._dev(node)}: I/O error reading block {addr}"
                                   " (no UpToDate data reachable)"))
            return
        there = self.underlay.delay(node.name, peer.name, self.spec.network, HEADER_BYTES)
        back = self.underlay.delay(peer.name, node.name, self.spec.network,
                                   BLOCK_BYTES + HEADER_BYTES)
        epoch = self.epoch

        def answer() -> None:
            self.flush()
            if epoch != self.epoch or not (peer.running and peer.attached) or peer.disk.failed:
                done.fail(BlockIOError(f"{self._dev(node)}: I/O error reading block {addr}"
                                       " (peer lost)"))
            else:
                done.succeed(peer.disk.peek(addr))
        self.kernel.call_later(there + peer.disk.latency + back, answer)

    # ------------------------------------------------------------ hooks

    def _dev(self, node: Node) -> str:
        return f"{node.name}:/dev/drbd{self.spec.minor}"

    def local_io_error(self, node: Node, where: str) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def peer_waiting(self, node: Node) -> None:
        """A request of `node` waits for a peer it cannot reach (peer-loss timing hook)."""

    def send_blocked(self, node: Node) -> None:
        """`node`'s send buffer is full on a dead link (peer-loss timing hook)."""
