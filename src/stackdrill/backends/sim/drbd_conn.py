"""DRBD 8.4 connection life cycle: loss detection, fencing, reconnect, handshake, resync.

Why: what an operator sees after a failure (WFConnection, a new current UUID on
the Primary, a resync in one direction, or split brain) follows from a few
rules in drbd_state.c (after_state_ch: "lost contact to peer data" rotates
the current UUID on a Primary; sanitize_state: resource-and-stonith freezes
I/O) and drbd_receiver.c (the handshake in drbd_handshake). This module
applies them to two nodes on a simulated link and host set.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from stackdrill.api import DrbdConnected
from stackdrill.api.events import facts
from stackdrill.backends.sim.drbd_checksums import transferred_kb
from stackdrill.backends.sim.drbd_detect import PeerLossCore
from stackdrill.backends.sim.drbd_handshake import Decision, Policies, Side, decide
from stackdrill.backends.sim.drbd_model import (
    BLOCK_KB,
    MASK64,
    UUID_NEW_BM_OFFSET,
    Conn,
    Disk,
    Node,
    Role,
)
from stackdrill.backends.sim.drbd_timing import resync_s


@dataclass
class Resync:
    source: Node
    target: Node
    blocks: set[int]  # still to copy; replicated writes remove themselves
    full: bool
    start: float
    duration: float
    kb: int
    token: int
    paused_at: float | None = None  # pause-sync: nothing is copied from then on
    sent_kb: int = 0  # data that crosses the link (less than kb when digests are equal)


class ConnectionCore(PeerLossCore):
    """Connection state machine shared by both nodes of one resource; when each side
    notices a dead peer is `drbd_detect`'s."""

    stonith: Callable[[str, str], bool] | None
    outdate_peer: Callable[[str, str], bool] | None
    policies: Policies
    resync: Resync | None
    discarded: dict[str, list[int]]
    _down_token: int
    _connect_at: float | None
    _rs_token: int

    @property
    def size_kb(self) -> int:
        return self.spec.size_gb * 1024 * 1024

    # ------------------------------------------------------------ observers

    def _net_changed(self) -> None:
        reach = self.reachable()
        if self.established:
            if not reach and self.link_down_at is None:
                self.flush()
                self.link_down_at = self.kernel.now
                self._down_token += 1
                self.link_died()
            elif reach and self.link_down_at is not None:
                if self.lost_sides or not all(n.running for n in self.nodes.values()):
                    self.peer_reset(self.link_down_at)  # a closed socket, or a reboot
                    return
                outage = self.kernel.now - self.link_down_at
                self.link_down_at = None
                self._down_token += 1
                self.link_back()
                self.log("peer-reachable")
                self.resume_stalled()
                if self.negotiation_done():
                    self.handshake()
                    return
                if self.resync is not None:  # the resync stream stalled too
                    self.resync.start += outage
                    self._arm_resync()
        elif reach:
            self.schedule_reconnect()

    def _end_connection(self, cut: float, graceful: bool) -> None:
        if graceful:
            self.flush(until=math.inf)
        self.drop_in_flight(cut)
        self.link_down_at = None
        self._down_token += 1
        self.link_back()
        if self.resync is not None:
            self._interrupt_resync(cut)
        for node in self.nodes.values():  # a Diskless node keeps exposing the peer's data
            node.ed_uuid = self.exposed_uuid(node)
        self.established = False
        self.epoch += 1
        for node in self.nodes.values():
            if not node.running or node.name in self.lost_sides:
                continue
            if node.host.up:
                self._lose_peer(node, graceful)
                self.waiting_since[node.name] = self.kernel.now
            else:
                node.pending_loss = True  # hung: it notices when it thaws
        self.lost_sides.clear()
        self.schedule_reconnect()

    def _lose_peer(self, node: Node, graceful: bool) -> None:
        old_pdsk = node.peer_disk
        node.pending_loss = False
        if node.negotiating:
            self.negotiation_lost(node)
        if node.conn.connected:
            node.conn = Conn.WF_CONNECTION
        node.peer_role, node.peer_disk = Role.UNKNOWN, Disk.DUNKNOWN
        if node.peer_outdated:
            node.peer_disk = Disk.OUTDATED
        fencing = self.spec.fencing
        if (node.role is Role.PRIMARY and fencing == "resource-and-stonith" and not graceful
                and node.peer_disk > Disk.OUTDATED):
            node.susp_fen = True
            self.note("suspended", node=node.name, why="fencing resource-and-stonith")
        why = self.loss_reasons.pop(node.name, None)  # this side's own reason, if lost
        self.state(node, conn=node.conn.value, pdsk=node.peer_disk.label,
                   **({"why": why} if why else {}))
        if old_pdsk in (Disk.INCONSISTENT, Disk.CONSISTENT, Disk.UP_TO_DATE):
            self._lost_peer_data(node, peer_was_primary=False)
        if not node.susp_fen:
            self.settle_awaiting(node)
        if (node.role is Role.PRIMARY and not graceful and fencing != "dont-care"
                and node.peer_disk > Disk.OUTDATED):
            self._fence_async(node)

    def exposed_uuid(self, node: Node) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    def negotiation_done(self) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def negotiation_lost(self, node: Node) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _lost_peer_data(self, node: Node, peer_was_primary: bool) -> None:
        """after_state_ch: a Primary (or a Primary's peer with a disk) starts a new generation."""
        if ((node.role is Role.PRIMARY or peer_was_primary) and node.uuids.bitmap == 0
                and node.dstate is Disk.UP_TO_DATE):
            if node.susp_fen:
                node.new_cur_uuid = True
            else:
                self.new_current_uuid(node)

    def new_current_uuid(self, node: Node) -> None:
        """drbd_uuid_new_current: the old current UUID becomes the bitmap UUID."""
        node.uuids.bitmap = node.uuids.current
        node.set_current(self.kernel.rng.getrandbits(64))
        self.log("new-current-uuid", node=node.name, uuids=node.uuids.as_dict())

    # ------------------------------------------------------------ fencing

    def _fence_async(self, node: Node) -> None:
        since = self.connected_at
        self.kernel.call_later(0.0, lambda: self._fence(node, since))

    def _fence(self, node: Node, since: float) -> None:
        """The handler runs unless the connection came back meanwhile (even when only
        this side has given up on the peer so far)."""
        if since != self.connected_at or not node.running or node.conn.connected:
            return
        self.try_outdate_peer(node)

    def try_outdate_peer(self, node: Node) -> bool:
        """conn_try_outdate_peer: run the fence-peer handler; True when the peer is fenced.
        highest_fencing_policy counts only a disk at least Consistent (get_ldev_if_state
        D_CONSISTENT): a node without one has no fencing policy (FP_NOT_AVAIL, "Not fencing
        peer, I'm not even Consistent myself"), runs no handler and unfreezes its I/O. A
        Diskless Primary must never outdate the peer that holds the only data."""
        peer = self.peer_of(node)
        if node.dstate < Disk.CONSISTENT:
            self.note("fence-peer-skipped", node=node.name, peer=peer.name,
                      msg="Not fencing peer, I'm not even Consistent myself.")
            if node.susp_fen:
                self.resume_io(node, "no fencing policy without a Consistent disk",
                               rotate=False)
            return False
        stonith = self.spec.fencing == "resource-and-stonith"
        handler = self.stonith if stonith else self.outdate_peer
        ok = bool(handler(peer.name, node.name)) if handler is not None else False
        self.note("fence-peer", node=node.name, peer=peer.name, policy=self.spec.fencing,
                  result="fenced" if ok else "failed")
        if ok and node.running:
            node.peer_disk, node.peer_outdated = Disk.OUTDATED, True
            if (not stonith and peer.running and peer.host.up and peer.attached
                    and peer.role is Role.SECONDARY and peer.dstate >= Disk.OUTDATED):
                peer.set_disk(Disk.OUTDATED)
                self.state(peer, disk="Outdated", why="outdated by peer")
            if node.susp_fen:
                self.resume_io(node, "fence-peer handler succeeded", rotate=True)
        return ok

    def resume_io(self, node: Node, why: str, rotate: bool) -> None:
        node.susp_fen = False
        if node.new_cur_uuid and rotate:
            self.new_current_uuid(node)
        node.new_cur_uuid = False
        if node.susp_user:
            return  # drbdadm suspend-io still holds it: resume-io releases the queue
        self.note("resumed", node=node.name, why=why)
        self.settle_awaiting(node)
        frozen, node.frozen = node.frozen, []
        for addr, data, done in frozen:
            if data is None:
                self._start_read(node, addr, done)
            else:
                self._start_write(node, addr, data, done)

    # ------------------------------------------------------------ connecting

    def _schedule_connect(self, delay: float) -> None:
        at = self.kernel.now + delay
        if self._connect_at is not None and self._connect_at <= at:
            return
        self._connect_at = at

        def attempt() -> None:
            if self._connect_at == at:
                self._connect_at = None
            self._try_connect()
        self.kernel.call_later(delay, attempt)

    def _try_connect(self) -> None:
        nodes = list(self.nodes.values())
        if self.established or not all(
            n.running and n.host.up and n.conn is Conn.WF_CONNECTION for n in nodes
        ):
            return
        if not self.reachable():
            return
        for n in nodes:
            if n.susp_fen:  # drbd_state.c: connection back, no need to fence
                self.resume_io(n, "connection re-established", rotate=False)
        self.handshake()

    def _side(self, node: Node, tie: bool) -> Side:
        state_disk = Disk.NEGOTIATING if node.negotiating else node.dstate
        return Side(node.name, node.uuids.copy(), node.role, node.dstate, node.crashed_primary,
                    len(node.bitmap), node.discard_my_data, tie, state_disk)

    def handshake(self) -> None:
        """P_UUIDS/P_STATE exchange and drbd_sync_handshake; connects or drops to StandAlone."""
        a, b = (self.nodes[n] for n in self.spec.nodes)
        self.flush()
        if a.attached and b.attached:
            tie = self.kernel.rng.random() < 0.5
            d = decide(self._side(a, tie), self._side(b, not tie), self.policies)
            for msg in d.messages:
                self.log("handshake", node=a.name, msg=msg.replace("\n", " "))
            hg = d.hg
            if d.split_brain and abs(hg) < 100:  # solved (even if a side then refuses)
                survivor = a if hg > 0 else b
                primaries = sum(n.role is Role.PRIMARY for n in (a, b))
                self.note("split-brain", resolved=True, policy=d.resolved_by or "",
                          primaries=primaries, survivor=survivor.name,
                          victim=self.peer_of(survivor).name)
            attacher = next((n for n in (a, b) if n.negotiating), None)
            if d.drop and self.established and attacher is not None:
                self._attach_aborted(attacher, d)
                return
            if d.drop:
                self._refused(a, b, d)
                return
        else:
            hg = 0
        self.established = True
        self.link_down_at = None
        self.connected_at = self.kernel.now
        self.rx_meta.clear()
        self.rx_data.clear()
        self.lost_sides.clear()
        self.link_back()
        for n in (a, b):
            n.negotiating = False
            other = self.peer_of(n)
            n.conn, n.peer_role, n.peer_disk = Conn.CONNECTED, other.role, other.dstate
            n.discard_my_data = n.split_brain = n.pending_loss = False
        if hg == 0:
            self._settle_in_sync(a, b)
        else:
            src, tgt = (a, b) if hg > 0 else (b, a)
            self.start_resync(src, tgt, full=abs(hg) == 2)
        self.kernel.emit(DrbdConnected(self.spec.name,
                                       facts(**{n.name: n.conn.value for n in (a, b)})))

    def _attach_aborted(self, attacher: Node, d: Decision) -> None:
        """drbd_receiver.c receive_state: a handshake that a disk attached on an established
        connection started returns C_MASK on the peer, which keeps the connection and
        takes the attaching disk as Diskless ("Disk attach process on the peer node was
        aborted."). It sends no state back, so the attaching node never runs its own
        handshake: its disk stays Negotiating, the peer's UpToDate in its view, until the
        connection or the disk goes (recorded: drbd-revert-older-data, case two)."""
        peer = self.peer_of(attacher)
        peer.peer_disk = Disk.DISKLESS
        self.state(peer, peer_disk="Diskless", why="attach on the peer aborted")
        attacher.dstate = Disk.NEGOTIATING  # md_disk keeps what the meta data says
        self.note("attach-aborted", node=attacher.name, peer=peer.name,
                  reason=d.messages[-1] if d.messages else "")

    def _refused(self, a: Node, b: Node, d: Decision) -> None:
        """drbd_sync_handshake returned C_MASK on `d.refused_by`: each goes StandAlone
        (C_DISCONNECTING); a peer that did not refuse only loses the connection and keeps
        trying (WFConnection)."""
        self.established = False
        for n in (a, b):
            refused = n.name in d.refused_by
            n.conn = Conn.STANDALONE if refused else Conn.WF_CONNECTION
            n.peer_role, n.peer_disk = Role.UNKNOWN, Disk.DUNKNOWN
            n.split_brain = d.split_brain
            self.state(n, conn=n.conn.value)
        unresolved = d.split_brain and abs(d.hg) >= 100
        self.note("split-brain" if unresolved else "handshake-refused", resolved=False,
                  nodes=list(d.refused_by) if not unresolved else [a.name, b.name],
                  reason=d.messages[-1])
        for n in (x for x in (a, b) if x.negotiating):  # sanitize_state: lost
            n.dstate = Disk.DISKLESS  # while Negotiating
            self.negotiation_lost(n)

    def _settle_in_sync(self, a: Node, b: Node) -> None:
        """Same data generation: nothing to sync except requests that never got through."""
        if a.attached and b.attached:
            for n in (a, b):
                if n.dstate in (Disk.CONSISTENT, Disk.OUTDATED):
                    n.set_disk(Disk.UP_TO_DATE)
            if a.bitmap or b.bitmap:
                src = b if b.role is Role.PRIMARY and a.role is not Role.PRIMARY else a
                self.start_resync(src, self.peer_of(src), full=False)
                return
        self._both_up_to_date(a, b)

    def _both_up_to_date(self, a: Node, b: Node) -> None:
        for n in (a, b):
            n.peer_disk = self.peer_of(n).dstate
            if n.dstate is Disk.UP_TO_DATE and n.peer_disk is Disk.UP_TO_DATE:
                n.crashed_primary = n.peer_outdated = False

    # ------------------------------------------------------------ resync

    def start_resync(self, src: Node, tgt: Node, full: bool) -> None:
        self.flush()
        full = full or src.full_sync or tgt.full_sync
        if full:
            blocks = set(src.disk.blocks) | set(tgt.disk.blocks)
            own = set(tgt.disk.blocks)
        else:
            blocks = src.bitmap | tgt.bitmap
            own = tgt.bitmap | set(tgt.al)
        lost = sorted(x for x in own if tgt.disk.peek(x) != src.disk.peek(x))
        self.discarded.setdefault(tgt.name, []).extend(lost)
        # drbd_gen_and_send_sync_uuid / receive_sync_uuid
        bm = src.uuids.bitmap
        sync = (bm + UUID_NEW_BM_OFFSET) & MASK64 if bm else self.kernel.rng.getrandbits(64)
        if bm:
            src.uuids.push_history(bm)
        src.uuids.bitmap = sync & ~1
        tgt.set_current(sync)
        tgt.uuids.bitmap = 0
        src.conn, src.peer_disk = Conn.SYNC_SOURCE, Disk.INCONSISTENT
        tgt.conn, tgt.peer_disk = Conn.SYNC_TARGET, Disk.UP_TO_DATE
        tgt.set_disk(Disk.INCONSISTENT)
        tgt.full_sync = full
        src.bitmap, tgt.bitmap = set(blocks), set(blocks)
        kb = self.size_kb if full else len(blocks) * BLOCK_KB
        sent_kb = kb
        if self.spec.csums_alg is not None:  # only the requests whose digests differ
            sent_kb = transferred_kb(blocks, lambda x: src.disk.peek(x) != tgt.disk.peek(x),
                                     full, self.size_kb // BLOCK_KB)
        # DRBD's resync-rate, in 4 KiB requests per 100 ms tick, capped by the replication
        # link's TCP goodput for the data it sends (a tbf on either end counts; set when
        # the resync starts)
        duration = resync_s(kb, sent_kb, self.spec.resync_rate_kib, self.underlay.goodput_mbit(
            src.name, tgt.name, self.spec.network))
        self.resync = Resync(src, tgt, blocks, full, self.kernel.now, duration, kb, 0,
                             sent_kb=sent_kb)
        self.resync_set = blocks
        self.note("resync-started", source=src.name, target=tgt.name,
                  mode="full" if full else "bitmap", kb=kb, duration=duration,
                  discarded_blocks=len(lost))
        if any(n.user_isp for n in self.nodes.values()):
            self.pause_resync()  # a flag set before the resync began: it starts paused
        else:
            self._arm_resync()

    def pause_resync(self) -> None:
        """The running resync stops copying (PausedSyncS/T); a later unpause goes on."""
        rs = self.resync
        if rs is None or rs.paused_at is not None:
            return
        rs.paused_at = self.kernel.now
        self._rs_token += 1  # its finish is called off
        rs.source.conn, rs.target.conn = Conn.PAUSED_SYNC_S, Conn.PAUSED_SYNC_T
        self.state(rs.source, conn="PausedSyncS")
        self.state(rs.target, conn="PausedSyncT")

    def unpause_resync(self) -> None:
        rs = self.resync
        if rs is None or rs.paused_at is None:
            return
        rs.start += self.kernel.now - rs.paused_at
        rs.paused_at = None
        rs.source.conn, rs.target.conn = Conn.SYNC_SOURCE, Conn.SYNC_TARGET
        self.state(rs.source, conn="SyncSource")
        self.state(rs.target, conn="SyncTarget")
        self._arm_resync()

    def _arm_resync(self) -> None:
        rs = self.resync
        if rs is None:
            return
        self._rs_token += 1
        rs.token = token = self._rs_token
        at = rs.start + rs.duration
        self.kernel.call_later(at - self.kernel.now, lambda: self._finish_resync(token))

    def resync_left_kb(self) -> int:
        rs = self.resync
        if rs is None:
            return 0
        now = self.kernel.now if self.link_down_at is None else self.link_down_at
        if rs.paused_at is not None:
            now = min(now, rs.paused_at)
        frac = 1.0 if rs.duration <= 0 else (now - rs.start) / rs.duration
        return max(0, math.ceil(rs.kb * (1.0 - min(1.0, frac))))

    def _copy(self, rs: Resync, blocks: list[int]) -> None:
        for x in blocks:
            if x in rs.source.disk.blocks:
                rs.target.disk.blocks[x] = rs.source.disk.blocks[x]
            else:
                rs.target.disk.blocks.pop(x, None)

    def _finish_resync(self, token: int) -> None:
        rs = self.resync
        if (rs is None or rs.token != token or self.link_down_at is not None
                or rs.paused_at is not None):
            return  # superseded, paused, or stalled by a link outage (re-armed when it ends)
        self.flush()
        src, tgt = rs.source, rs.target
        self._copy(rs, sorted(rs.blocks))
        src.uuids.push_history(src.uuids.bitmap)  # drbd_uuid_set_bm(0)
        src.uuids.bitmap = 0
        tgt.uuids = src.uuids.copy()
        tgt.set_current(src.uuids.current)
        tgt.set_disk(Disk.UP_TO_DATE)
        if src.dstate is Disk.CONSISTENT:  # drbd_resync_finished: both sides UpToDate (a
            src.set_disk(Disk.UP_TO_DATE)  # crashed primary that re-synced its AL is current)
        tgt.full_sync = False
        src.bitmap, tgt.bitmap = set(), set()
        src.conn = tgt.conn = Conn.CONNECTED
        self.resync, self.resync_set = None, None
        self._both_up_to_date(src, tgt)
        stats = {}
        if self.spec.csums_alg is not None:  # "N % had equal checksums, eliminated: ..."
            stats = {"eliminated_kb": rs.kb - rs.sent_kb, "transferred_kb": rs.sent_kb}
        self.note("resync-finished", source=src.name, target=tgt.name, kb=rs.kb, **stats)

    def _interrupt_resync(self, cut: float) -> None:
        rs = self.resync
        if rs is None:
            return
        if rs.paused_at is not None:
            cut = min(cut, rs.paused_at)
        frac = 1.0 if rs.duration <= 0 else max(0.0, min(1.0, (cut - rs.start) / rs.duration))
        if not rs.full:
            order = sorted(rs.blocks)
            done = math.floor(len(order) * frac)
            self._copy(rs, order[:done])
            rest = set(order[done:])
            rs.source.bitmap, rs.target.bitmap = set(rest), set(rest)
        self.resync, self.resync_set = None, None
        self.note("resync-interrupted", source=rs.source.name, target=rs.target.name,
                  done_pct=round(frac * 100, 1))
