"""A simulated DRBD 8.4 resource: two nodes, drbdadm commands, /dev/drbdN on each host.

The model follows the DRBD 8.4 User's Guide and the 8.4 kernel module
(drbd_state.c, drbd_receiver.c, drbd_nl.c, drbd_req.c): request path and
protocols in `drbd_io`, connection life cycle in `drbd_conn`, the UUID
handshake in `drbd_handshake`. This module holds the administrative side
(`drbdadm primary/secondary/connect/disconnect/attach/detach`), host power
and disk failures, and the status an operator would read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import simpy

from stackdrill.api import DrbdNodeStatus, DrbdNotice, DrbdUuids, PowerState
from stackdrill.backends.sim.disks import BLOCK_BYTES, BlockIOError, SimDisk
from stackdrill.backends.sim.drbd_admin import DrbdError
from stackdrill.backends.sim.drbd_handshake import Policies
from stackdrill.backends.sim.drbd_io import DroppedWrite
from stackdrill.backends.sim.drbd_model import (
    UUID_JUST_CREATED,
    Conn,
    Disk,
    MetaImage,
    Node,
    Role,
    Uuids,
)
from stackdrill.backends.sim.drbd_operator import OperatorCore
from stackdrill.backends.sim.hosts import SimHost
from stackdrill.backends.sim.kernel import Kernel
from stackdrill.backends.sim.network import Underlay
from stackdrill.topology import DrbdResource
from stackdrill.topology.model import Protocol

logger = logging.getLogger(__name__)

__all__ = ["DrbdDevice", "DrbdError", "DrbdResourceSim", "DroppedWrite"]


class DrbdDevice:
    """/dev/drbdN on one host: the BlockDevice the layers above (LVM, guests) use."""

    def __init__(self, resource: DrbdResourceSim, node: Node) -> None:
        self.resource = resource
        self.node = node
        self.name = f"{node.name}:/dev/drbd{resource.spec.minor}"
        self.blocks_total = resource.spec.size_gb * (1 << 30) // BLOCK_BYTES

    def _bad(self, addr: int) -> simpy.Event | None:
        if 0 <= addr < self.blocks_total:
            return None
        ev = self.resource.kernel.env.event()
        ev.fail(BlockIOError(f"{self.name}: block {addr} beyond end of device"))
        return ev

    def write(self, addr: int, data: Any) -> simpy.Event:
        return self._bad(addr) or self.resource.submit_write(self.node, addr, data)

    def read(self, addr: int) -> simpy.Event:
        return self._bad(addr) or self.resource.submit_read(self.node, addr)

    def peek(self, addr: int) -> Any:
        """What a read would return now: this node's backing data with every packet that
        has arrived applied, or the peer's where DRBD reads remotely: when this node is
        Diskless, or Inconsistent with a block the resync has not copied yet while its peer
        is UpToDate (drbd_req.c drbd_may_do_local_read: an Inconsistent disk serves a read
        only where the bitmap says the block is in sync; the request path, `_start_read`,
        does the same). A guest replaying its volume on a SyncTarget must see its records."""
        res = self.resource
        res.flush()
        if not self.node.attached or not res.local_read_ok(self.node, addr):
            peer = res.peer_of(self.node)
            if not self.node.attached or (res.connected_to_up_to_date(self.node)
                                          and peer.attached):
                return peer.disk.peek(addr)
        return self.node.disk.peek(addr)


def refused_net_options(spec: DrbdResource) -> str | None:
    """What `drbdadm up` answers when the kernel refuses the resource's net options, else
    None. drbd_nl.c _check_net_options, in its order: two_primaries needs protocol C
    (ERR_NOT_PROTO_C, 139), then an attached disk's fencing resource-and-stonith needs
    protocol B or C (ERR_STONITH_AND_PROT_A, 154 in drbd.h). `up` attaches the disks
    first (attach checks fencing against a net config only once there is one), so the
    disks are attached and the resource never connects. Recorded on DRBD 8.4.11:
    conformance situation drbd-net-options-refused-at-up."""
    if spec.allow_two_primaries and spec.protocol is not Protocol.C:
        return "Failure: (139) Protocol C required"
    if spec.fencing == "resource-and-stonith" and spec.protocol is Protocol.A:
        return "Failure: (154) Fencing policy resource-and-stonith only with prot B or C allowed"
    return None


class DrbdResourceSim(OperatorCore):
    def __init__(self, kernel: Kernel, spec: DrbdResource, hosts: dict[str, SimHost],
                 disks: dict[str, SimDisk], underlay: Underlay,
                 stonith: Callable[[str, str], bool] | None = None,
                 outdate_peer: Callable[[str, str], bool] | None = None,
                 rr_conflict: str = "disconnect", sndbuf_bytes: int = 4 << 20) -> None:
        super().__init__(kernel, spec, underlay, sndbuf_bytes)
        if len(spec.nodes) != 2:
            raise DrbdError(f"{spec.name}: DRBD 8.4 replicates between exactly two nodes")
        self.stonith, self.outdate_peer = stonith, outdate_peer
        self.policies = Policies(spec.after_sb_0pri, spec.after_sb_1pri, spec.after_sb_2pri,
                                 rr_conflict, two_primaries=spec.allow_two_primaries)
        self.resync = None
        self.discarded = {}
        self._down_token = 0
        self._connect_at = None
        self._rs_token = 0
        self._md_ref: dict[str, dict[int, Any]] = {}
        current = kernel.rng.getrandbits(64) & ~1
        history = kernel.rng.getrandbits(64) & ~1
        for name in spec.nodes:
            node = Node(name, hosts[name], disks[name], Uuids(current, 0, [history, 0]))
            self.nodes[name] = node
            self._md_ref[name] = node.disk.blocks
        self.net_refused = refused_net_options(spec)
        self.refused_promotions: dict[str, str] = {}
        for name, why in self._bring_up_promotions():
            node = self.nodes[name]
            if why is not None:
                self.refused_promotions[name] = why
                continue
            node.role, node.primary_ind = Role.PRIMARY, True
            node.set_current(current)
        for node in self.nodes.values():
            node.peer_role = self.peer_of(node).role
        if self.net_refused is not None:
            self._standalone_from_the_start()
        underlay.subscribe(self._net_changed)
        for host in (hosts[n] for n in spec.nodes):
            host.subscribe(self._power_changed)
        self.log("up", protocol=spec.protocol.value, primary=list(spec.primary),
                 nodes=list(spec.nodes))
        if self.net_refused is not None:
            self.note("net-options-refused", nodes=list(spec.nodes), msg=self.net_refused)
        for name, why in self.refused_promotions.items():
            self.note("promotion-refused", node=name, msg=why)
        for node in self.nodes.values():
            if not node.host.up:
                self._host_down(node)
        if not all(n.running for n in self.nodes.values()):
            self.established = False

    def _bring_up_promotions(self) -> list[tuple[str, str | None]]:
        """`drbdadm primary` on each node the topology names Primary (the init script's
        become-primary-on), in order, after `drbdadm up`: each with the refusal DRBD
        answers, or None. Connected, a second Primary without allow-two-primaries is refused
        (drbd_state.c is_valid_state SS_TWO_PRIMARIES); with no net config (refused at
        `up`) the peer is never seen, so that rule does not apply, but the disk attached
        Consistent (any fencing policy but dont-care) is not UpToDate data
        (SS_NO_UP_TO_DATE_DISK), as recorded on DRBD 8.4.11."""
        spec = self.spec
        out: list[tuple[str, str | None]] = []
        for i, name in enumerate(spec.primary):
            attached = self._md_disk_at_attach(self.nodes[name])
            if self.net_refused is not None and attached is not Disk.UP_TO_DATE:
                out.append((name, "State change failed: (-2) Need access to UpToDate data"))
            elif self.net_refused is None and i > 0 and not spec.allow_two_primaries:
                out.append((name, "State change failed: (-1) Multiple primaries not "
                                  "allowed by config"))
            else:
                out.append((name, None))
        return out

    def _standalone_from_the_start(self) -> None:
        """`drbdadm up` attached the disks but its net options were refused: no node has
        a connection configured, none ever tries one (StandAlone, peer unknown), and each
        disk stays as it attached (Consistent, unless fencing is dont-care)."""
        self.established = False
        for node in self.nodes.values():
            node.conn = Conn.STANDALONE
            node.peer_role, node.peer_disk = Role.UNKNOWN, Disk.DUNKNOWN
            node.dstate = self._md_disk_at_attach(node)

    # ------------------------------------------------------------ queries

    def device(self, host: str) -> DrbdDevice:
        return DrbdDevice(self, self._node(host))

    def status(self) -> dict[str, DrbdNodeStatus]:
        """Per node what `drbdadm status` / /proc/drbd shows, plus the meta data."""
        self.flush()
        out: dict[str, DrbdNodeStatus] = {}
        for node in self.nodes.values():
            syncing = self.resync is not None and node.conn.syncing
            oos = self.resync_left_kb() if syncing else node.out_of_sync_kb(self.size_kb)
            run = node.running
            uuids = node.uuids.as_dict()
            out[node.name] = DrbdNodeStatus(
                running=run,
                role=node.role.value if run else "Unconfigured",
                disk=node.dstate.label if run else "Unconfigured",
                peer_role=node.peer_role.value if run else "Unknown",
                peer_disk=node.peer_disk.label if run else "DUnknown",
                connection=node.conn.value,
                out_of_sync_kb=int(oos),
                split_brain=node.split_brain,
                suspended=node.suspended,
                uuids=DrbdUuids(uuids["current"], uuids["bitmap"], tuple(uuids["history"])),
                crashed_primary=node.crashed_primary or (node.primary_ind and not run),
                size_kb=self.size_kb if run else None,
            )
        return out

    def events(self) -> list[DrbdNotice]:
        """Notable events (split brain, resync, fencing, I/O errors) for reports."""
        return list(self._notices)

    def dropped_writes(self, acked_only: bool = True) -> list[DroppedWrite]:
        """Replicated writes in flight when the link died: never reached the peer."""
        return [d for d in self.dropped if d.acked or not acked_only]

    def discarded_blocks(self, host: str) -> list[int]:
        """Blocks whose local data on `host` a resync overwrote (its changes were discarded)."""
        return list(self.discarded.get(host, []))

    # ------------------------------------------------------------ drbdadm

    def connect(self, host: str, discard_my_data: bool = False) -> None:
        """drbdadm [-- --discard-my-data] connect."""
        node = self._node(host)
        if not node.running:
            raise DrbdError(f"{self.spec.name}: {host}: no DRBD running (Unconfigured)")
        if node.conn is not Conn.STANDALONE:
            raise DrbdError(f"{self.spec.name}: Failure: (125) Device has a net-config"
                            " (use disconnect first)")
        if self.net_refused is not None:
            raise DrbdError(f"{self.spec.name}: {self.net_refused}")
        node.conn, node.discard_my_data = Conn.WF_CONNECTION, discard_my_data
        self.waiting_since[node.name] = self.kernel.now
        self.state(node, conn="WFConnection", discard_my_data=discard_my_data)
        self._schedule_connect(self._quick_connect_s())

    def attach(self, host: str) -> None:
        """drbdadm attach (after create-md on a replaced disk: Inconsistent, full sync).

        drbd_nl.c drbd_adm_attach refuses (ERR_DATA_NOT_CURRENT) to give a disconnected
        Primary a disk whose current UUID is not the data it exposes: a Diskless Primary
        that lost its peer cannot resume on a fresh or stale disk; it keeps failing I/O.
        While Connected the new disk is D_NEGOTIATING through the sync handshake."""
        node = self._node(host)
        if not node.running:
            raise DrbdError(f"{self.spec.name}: {host}: no DRBD running (Unconfigured)")
        if node.attached:
            raise DrbdError(f"{self.spec.name}: Failure: (124) Device is attached to a disk"
                            " (use detach first)")
        if node.disk.failed:
            raise DrbdError(f"{self.spec.name}: Failure: (104) Can not open backing device.")
        self.flush()
        fresh = node.disk.blocks is not self._md_ref[node.name]
        current = UUID_JUST_CREATED if fresh else node.uuids.current
        exposed = self.exposed_uuid(node)
        if (node.role is Role.PRIMARY and not (self.established and node.conn.connected)
                and exposed and (exposed & ~1) != (current & ~1)):
            self.log("attach-refused", node=node.name, msg="Can only attach to data with"
                      f" current UUID={exposed:016X}")
            raise DrbdError(f"{self.spec.name}: Failure: (150) Can only attach to the data we"
                            " lost last (see kernel log).")
        if fresh:
            self._create_md(node)
        else:
            node.set_disk(self._md_disk_at_attach(node))
        node.io_error_detached = False
        if self.established and node.conn.connected and self.link_down_at is not None:
            self._negotiate_later(node)
            return
        self.log("attach", node=node.name, disk=node.dstate.label)
        if self.established and node.conn.connected:  # D_NEGOTIATING until the handshake
            node.ed_uuid, node.negotiating = exposed, True
            self.handshake()

    def _negotiate_later(self, node: Node) -> None:
        """drbd_adm_attach while Connected: the disk is D_NEGOTIATING (no local I/O) until
        the peer answers the P_SIZES/P_UUIDS/P_STATE sent at attach. On a link that is
        already dead no answer comes: the link returns first (the handshake runs then) or
        the ping timeout ends the connection (`negotiation_lost`)."""
        node.negotiating = True
        node.dstate = Disk.DISKLESS  # md_disk keeps the state the negotiation would settle
        self.log("attach", node=node.name, disk="Negotiating")

    def negotiation_done(self) -> bool:
        """The link came back: the packets sent at attach arrive and the handshake runs
        (the disk stays D_NEGOTIATING through it)."""
        waiting = [n for n in self.nodes.values() if n.negotiating]
        for node in waiting:
            node.dstate = node.md_disk
        return bool(waiting)

    def negotiation_lost(self, node: Node) -> None:
        """sanitize_state, "Connection breaks down before we finished Negotiating": the new
        disk stays only if it holds the data the device exposes (ed_uuid == its current
        UUID), else the node goes back to Diskless (CONNECTION_LOST_NEGOTIATING)."""
        node.negotiating = False
        if (node.ed_uuid & ~1) == (node.uuids.current & ~1):
            node.dstate = node.md_disk
            self.state(node, disk=node.dstate.label, why="negotiation cut short")
        else:
            node.dstate = Disk.DISKLESS
            self.note("connection-lost-negotiating", node=node.name)

    def _quick_connect_s(self) -> float:
        """First connect attempt: a TCP handshake plus the P_UUIDS/P_STATE exchange."""
        a, b = self.spec.nodes
        return 3 * self.underlay.delay(a, b, self.spec.network, 0)

    # ------------------------------------------------------------ disks

    def _create_md(self, node: Node) -> None:
        node.uuids = Uuids(UUID_JUST_CREATED)
        node.bitmap, node.al, node.full_sync = set(), {}, True
        node.crashed_primary = node.primary_ind = node.peer_outdated = False
        node.set_disk(Disk.INCONSISTENT)
        self._md_ref[node.name] = node.disk.blocks
        self.log("create-md", node=node.name)

    def meta_on(self, host: str) -> MetaImage | None:
        """The meta data on `host`'s backing disk, for a copy of the whole disk (None: the
        disk holds none that attach would accept: replaced, never created)."""
        node = self._node(host)
        self._refuse_if_attached(node)
        if node.disk.blocks is not self._md_ref[node.name]:
            return None
        return node.meta_image()

    def restore_meta(self, host: str, image: MetaImage | None) -> None:
        """A copy of the disk was written back (its blocks are already on the disk): the
        meta data in it is what the next attach reads; without any, attach creates it."""
        node = self._node(host)
        self._refuse_if_attached(node)
        if image is None:
            return
        node.load_meta(image)
        self._md_ref[node.name] = node.disk.blocks
        self.log("meta-data-restored", node=node.name, current=f"{image.uuids.current:016X}")

    def _refuse_if_attached(self, node: Node) -> None:
        if node.running and node.attached:
            raise DrbdError(f"{self.spec.name}: {node.name}'s backing disk is attached: "
                            "detach it first")

    def _md_disk_at_attach(self, node: Node) -> Disk:
        """drbd_adm_attach: Consistent unless fencing is dont-care or the peer is known Outdated."""
        st = node.md_disk
        if st in (Disk.UP_TO_DATE, Disk.CONSISTENT):
            dont_care = self.spec.fencing == "dont-care"
            return Disk.UP_TO_DATE if dont_care or node.peer_outdated else Disk.CONSISTENT
        return st

    def exposed_uuid(self, node: Node) -> int:
        """mdev->ed_uuid: the current UUID of the data this node's /dev/drbdN exposes (its
        own disk's, the connected peer's while Diskless, else the last one it had)."""
        if node.attached:
            return node.uuids.current
        peer = self.peer_of(node)
        if self.established and peer.running and peer.attached:
            return peer.uuids.current
        return node.ed_uuid

    def go_diskless(self, node: Node, why: str) -> None:
        """A detach or a local I/O error: drbd_state.c after_state_ch, "first half of local
        IO error, failure to attach, or administrative detach": the disk goes D_FAILED
        (reported to the peer), and to D_DISKLESS only after the last local reference is
        put. The simulator holds no reference across events, so both happen now; the
        Failed transition is still reported, as the kernel logs it."""
        self.flush()
        self.state(node, disk="Failed", why=why)
        node.ed_uuid = node.uuids.current
        if self.resync is not None and node in (self.resync.source, self.resync.target):
            self._interrupt_resync(self.kernel.now)
            for n in self.nodes.values():
                if n.conn.connected:
                    n.conn = Conn.CONNECTED
        node.dstate = Disk.DISKLESS
        self.state(node, disk="Diskless", why=why)
        peer = self.peer_of(node)
        if self.established and peer.running and peer.conn.connected:
            peer.peer_disk = Disk.DISKLESS
            self._lost_peer_data(peer, peer_was_primary=node.role is Role.PRIMARY)

    def local_io_error(self, node: Node, where: str) -> None:
        """__drbd_chk_io_error: pass_on -> Inconsistent; detach/call-local-io-error -> Diskless."""
        if not node.attached:
            return
        policy = self.spec.on_io_error
        self.note("io-error", node=node.name, where=where, policy=policy)
        if policy == "pass_on":
            if node.dstate > Disk.INCONSISTENT:
                node.set_disk(Disk.INCONSISTENT)
                self.state(node, disk="Inconsistent", why="local I/O error")
                peer = self.peer_of(node)
                if peer.conn.connected:
                    peer.peer_disk = Disk.INCONSISTENT
            return
        if policy == "call-local-io-error":
            self.note("handler", node=node.name, handler="local-io-error")
        node.io_error_detached = True
        self.go_diskless(node, "local I/O error")

    # ------------------------------------------------------------ host power

    def _power_changed(self, host: SimHost, old: PowerState, new: PowerState) -> None:
        node = self.nodes[host.name]
        if new is PowerState.OFF and node.running:
            self._host_down(node)
        elif new is PowerState.ON and old is PowerState.BOOTING:
            self._host_up(node)
        elif new is PowerState.ON and old is PowerState.HUNG:
            self.log("thaw", node=node.name)
            if node.pending_loss:
                self._lose_peer(node, graceful=False)
                self.waiting_since[node.name] = self.kernel.now
            self._net_changed()
            if self.established and self.link_down_at is not None:
                # a receive that timed out while frozen sends its ping now (drbd_timing)
                at, why = self.detection_time(node)
                self.rearm_detection(
                    node, max(at, self.kernel.now + self.spec.net.ping_timeout_s), why)

    def _host_down(self, node: Node) -> None:
        """Power cut: runtime state is gone; meta data (UUIDs, bitmap, AL, flags) stays."""
        self.flush()
        node.running = False
        node.bitmap |= set(node.al)  # the activity log is applied to the bitmap at attach
        node.al = {}
        self.forget_awaiting(node)
        if node.attached:
            node.md_disk = node.dstate
        node.role, node.conn = Role.SECONDARY, Conn.UNCONFIGURED
        node.peer_role, node.peer_disk = Role.UNKNOWN, Disk.DUNKNOWN
        node.susp_fen = node.new_cur_uuid = node.discard_my_data = node.pending_loss = False
        node.susp_user = node.user_isp = False
        node.negotiating = False
        node.ed_uuid = 0
        self.log("down", node=node.name, crashed_primary=node.primary_ind)

    def _host_up(self, node: Node) -> None:
        """Boot: `drbdadm up` attaches the disk, comes up Secondary and waits for the peer."""
        node.running = True
        if node.disk.failed or node.disk.blocks is not self._md_ref[node.name]:
            node.dstate = Disk.DISKLESS  # no (valid) meta data: attach fails
        else:
            if node.primary_ind:
                node.crashed_primary, node.primary_ind = True, False
            node.dstate = self._md_disk_at_attach(node)
            node.set_current(node.uuids.current)
        if self.net_refused is not None:  # `drbdadm up` attaches, its connect is refused
            node.conn = Conn.STANDALONE
            self.state(node, role="Secondary", disk=node.dstate.label, conn="StandAlone",
                       crashed_primary=node.crashed_primary, why=self.net_refused)
            return
        node.conn = Conn.WF_CONNECTION
        self.waiting_since[node.name] = self.kernel.now
        self.state(node, role="Secondary", disk=node.dstate.label, conn="WFConnection",
                   crashed_primary=node.crashed_primary)
        self._schedule_connect(self._quick_connect_s())
