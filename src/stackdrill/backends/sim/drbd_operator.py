"""drbdadm verify, invalidate, invalidate-remote, suspend-io / resume-io and pause-sync /
resume-sync on the simulated resource.

From drbd_nl.c of LINBIT's drbd-8.4: `drbd_adm_start_ov` requests C_VERIFY_S (the peer
takes C_VERIFY_T); the rule tables refuse it without a connection (SS_NEED_CONNECTION),
during a resync (SS_RESYNC_RUNNING), without `verify-alg` (SS_NO_VERIFY_ALG) or on a
Diskless node. drbd_worker.c then reads the whole device on both sides at the resync
rate; every block whose digests differ is `drbd_ov_out_of_sync_found`: marked out of sync
in both nodes' bitmaps (`oos:` in /proc/drbd), and the resource returns to Connected
without resyncing them — a later resync (a reconnect) copies them from its SyncSource.

`drbd_adm_invalidate`: a StandAlone Secondary just marks its disk Inconsistent and its
whole bitmap; otherwise it requests C_STARTING_SYNC_T, a full resync from the peer.
`drbd_adm_invalidate_peer` is the mirror: a StandAlone Primary marks the peer's disk
Inconsistent (a full resync once connected); otherwise C_STARTING_SYNC_S.

`drbd_adm_suspend_io` sets susp: new I/O is queued until `drbd_adm_resume_io`, which
clears susp, susp_nod and susp_fen. `drbd_adm_pause_sync` sets the node's user_isp: a
resync running or starting later stays Paused (PausedSyncS/T) and copies nothing until
`drbd_adm_resume_sync` clears it; setting a set flag or clearing a clear one is an error
(ERR_PAUSE_IS_SET, ERR_PAUSE_IS_CLEAR).
"""

from __future__ import annotations

from stackdrill.backends.sim.drbd_admin import DrbdError
from stackdrill.backends.sim.drbd_model import BLOCK_KB, Conn, Disk, Node, Role
from stackdrill.backends.sim.drbd_promote import PromoteCore
from stackdrill.backends.sim.drbd_rules import CS
from stackdrill.backends.sim.drbd_statechange import Change
from stackdrill.backends.sim.drbd_timing import resync_kib_per_s


class OperatorCore(PromoteCore):
    """What an operator does to a running resource: online verify, forced full resyncs,
    suspending I/O, pausing a resync."""

    def _running(self, host: str) -> Node:
        node = self._node(host)
        if not node.running:
            raise DrbdError(f"{self.spec.name}: {host}: no DRBD running (Unconfigured)")
        return node

    # ------------------------------------------------------------ drbdadm verify

    def verify(self, host: str) -> None:
        node = self._running(host)
        self.flush()
        out = self.ask(node, Change(conn=CS.VERIFY_S))
        if out.refused is not None:
            raise self.refusal("verify", node, out.refused)
        if out.nothing_to_do:  # already verifying: SS_NOTHING_TO_DO, drbdadm succeeds
            return
        peer = self.peer_of(node)
        node.conn, peer.conn = Conn.VERIFY_S, Conn.VERIFY_T
        self.state(node, conn="VerifyS")
        self.state(peer, conn="VerifyT")
        rate = resync_kib_per_s(self.spec.resync_rate_kib, self.underlay.goodput_mbit(
            node.name, peer.name, self.spec.network))
        duration = self.size_kb / rate
        epoch = self.epoch
        self.note("verify-started", source=node.name, target=peer.name, duration=duration)
        self.kernel.call_later(duration, lambda: self._verify_done(node, peer, epoch))

    def _verify_done(self, source: Node, target: Node, epoch: int) -> None:
        if epoch != self.epoch or source.conn is not Conn.VERIFY_S:
            return  # the connection was lost meanwhile: "Online verify aborted"
        self.flush()
        found = self.differing_blocks(source, target)
        source.bitmap |= found
        target.bitmap |= found
        source.conn = target.conn = Conn.CONNECTED
        self.state(source, conn="Connected")
        self.state(target, conn="Connected")
        self.note("verify-finished", source=source.name, target=target.name,
                  out_of_sync_blocks=len(found))

    def differing_blocks(self, a: Node, b: Node) -> set[int]:
        """Blocks of the device whose contents differ between the two backing disks."""
        addresses = set(a.disk.blocks) | set(b.disk.blocks)
        return {x for x in addresses if x < self.size_kb // BLOCK_KB
                and a.disk.peek(x) != b.disk.peek(x)}

    # ------------------------------------------------------------ drbdadm invalidate

    def invalidate(self, host: str) -> None:
        node = self._running(host)
        self._needs_disk(node, "invalidate")
        if node.conn is Conn.STANDALONE and node.role is Role.SECONDARY:
            out = self.ask(node, Change(disk=Disk.INCONSISTENT))
            if out.refused is not None:
                raise self.refusal("invalidate", node, out.refused)
            node.set_disk(Disk.INCONSISTENT)
            node.full_sync = True
            self.state(node, disk="Inconsistent", why="drbdadm invalidate")
            return
        self._forced_resync(node, Change(conn=CS.STARTING_SYNC_T), "invalidate")
        self.start_resync(self.peer_of(node), node, full=True)

    def invalidate_remote(self, host: str) -> None:
        node = self._running(host)
        self._needs_disk(node, "invalidate-remote")
        if node.conn is Conn.STANDALONE and node.role is Role.PRIMARY:
            out = self.ask(node, Change(pdsk=Disk.INCONSISTENT))
            if out.refused is not None:
                raise self.refusal("invalidate-remote", node, out.refused)
            node.full_sync = True  # the next resync toward the peer is a full one
            return
        self._forced_resync(node, Change(conn=CS.STARTING_SYNC_S), "invalidate-remote")
        self.start_resync(node, self.peer_of(node), full=True)

    # ------------------------------------------------------------ drbdadm suspend-io

    def suspend_io(self, host: str) -> None:
        """drbd_adm_suspend_io: NS(susp, 1); new I/O is queued until resume-io (already
        suspended: SS_NOTHING_TO_DO, drbdadm succeeds)."""
        node = self._running(host)
        if not node.susp_user:
            node.susp_user = True
            self.note("suspended", node=node.name, why="drbdadm suspend-io")

    def resume_io_cmd(self, host: str) -> None:
        """drbd_adm_resume_io: clears susp, susp_nod and susp_fen (so it also ends a freeze
        the fence-peer handler left), rotating the current UUID when NEW_CUR_UUID is set;
        the queued I/O starts."""
        node = self._running(host)
        if node.suspended:
            node.susp_user = False
            self.resume_io(node, "drbdadm resume-io", rotate=True)

    # ------------------------------------------------------------ drbdadm pause-sync

    def pause_sync(self, host: str) -> None:
        node = self._running(host)
        if node.user_isp:
            raise DrbdError(f"{self.spec.name}: Failure: (134) Sync-pause flag is already set")
        node.user_isp = True
        self.note("sync-paused", node=node.name)
        self.pause_resync()

    def resume_sync(self, host: str) -> None:
        node = self._running(host)
        if not node.user_isp:
            raise DrbdError(f"{self.spec.name}: Failure: (135) Sync-pause flag is already "
                            "cleared")
        node.user_isp = False
        self.note("sync-resumed", node=node.name)
        if not any(n.user_isp for n in self.nodes.values()):
            self.unpause_resync()

    def _needs_disk(self, node: Node, cmd: str) -> None:
        """get_ldev() failed: ERR_NO_DISK, before any state change is asked."""
        if not node.attached:
            self.log("refused", node=node.name, cmd=cmd, code=138)
            raise DrbdError(f"{self.spec.name}: Failure: (138) Device does not have a "
                            "disk-config")

    def _forced_resync(self, node: Node, change: Change, cmd: str) -> None:
        self.flush()
        out = self.ask(node, change)
        if out.refused is not None:
            raise self.refusal(cmd, node, out.refused)
