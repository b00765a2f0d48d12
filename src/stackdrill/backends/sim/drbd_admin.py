"""drbdadm secondary/detach/disconnect/outdate on the simulated resource.

Each command is the drbd_nl.c handler of LINBIT's drbd-8.4 asking the rule table
(`drbd_rules`, walked by `drbd_statechange`) with the node's state, and retrying the way
the handler does: `drbd_set_role` (here: secondary; primary is `drbd_promote`),
`conn_try_disconnect` (outdate the peer, or oneself, to disconnect gracefully under a
fencing policy), `adm_detach` (`--force` is a hard change), `drbd_adm_outdate`. A command
the table refuses fails with drbdadm's "State change failed: (code) message".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import simpy

from stackdrill.backends.sim.drbd_conn import ConnectionCore
from stackdrill.backends.sim.drbd_model import Conn, Disk, Node, Role
from stackdrill.backends.sim.drbd_rules import CS, CS_OF, DState, Options, Rule
from stackdrill.backends.sim.drbd_statechange import Change, Outcome, request, set_state


class DrbdError(Exception):
    """A drbdadm command refused by DRBD (the message reads like drbdadm's)."""


class AdminCore(ConnectionCore):
    """The administrative state changes of one resource, decided by the rule table."""

    held_open: Callable[[str], bool] | None = None  # host -> /dev/drbdN has an opener

    def _node(self, host: str) -> Node:
        try:
            return self.nodes[host]
        except KeyError:
            raise DrbdError(f"{self.spec.name}: not defined on host {host!r}") from None

    # ------------------------------------------------------------ state as the table sees it

    def dstate_of(self, node: Node) -> DState:
        connected = self.established and node.conn.connected
        return DState(role=node.role, peer=node.peer_role if connected else Role.UNKNOWN,
                      conn=CS_OF[node.conn], pdsk=node.peer_disk, susp_fen=node.susp_fen,
                      disk=Disk.NEGOTIATING if node.negotiating else node.dstate,
                      held_open=self.held_open is not None and self.held_open(node.name))

    def options(self, node: Node) -> Options:
        return Options(self.spec.fencing, self.spec.allow_two_primaries,
                       has_net_conf=node.conn is not Conn.STANDALONE,
                       verify_alg=self.spec.verify_alg is not None)

    def peer_answer(self, node: Node) -> DState | None:
        """The peer's state when it can answer a cluster-wide request (None: link dead)."""
        peer = self.peer_of(node)
        if not (self.established and node.conn.connected and self.link_down_at is None
                and peer.running and peer.host.up):
            return None
        return self.dstate_of(peer)

    def ask(self, node: Node, change: Change, hard: bool = False) -> Outcome:
        """One request; a cluster-wide one over a dead link is decided as it will be once
        the connection is lost (the simulator does not hold it until then)."""
        os, opts = self.dstate_of(node), self.options(node)
        out = request(os, change, opts, self.peer_answer(node), hard)
        if out.waits_for_peer:
            gone = replace(os, conn=CS.NETWORK_FAILURE)
            out = set_state(gone, change.apply(gone), opts, hard)
        return out

    def refusal(self, cmd: str, node: Node, rule: Rule) -> DrbdError:
        self.log("refused", node=node.name, cmd=cmd, code=rule.code, msg=rule.message)
        return DrbdError(f"{self.spec.name}: State change failed: {rule}")


    # ------------------------------------------------------------ drbdadm secondary

    def demote(self, host: str) -> simpy.Event:
        """drbdadm secondary: drbd_set_role(R_SECONDARY). is_valid_state refuses it while
        the device is held open (SS_DEVICE_IN_USE): drbd_main.c drbd_open counts every
        opener in open_cnt, and device-mapper holds /dev/drbdN open under an active LV."""
        node, ev = self._node(host), self.kernel.env.event()
        if node.running and node.role is Role.PRIMARY:
            self.flush()
            out = self.ask(node, Change(role=Role.SECONDARY))
            if out.refused is not None:
                ev.fail(self.refusal("secondary", node, out.refused))
                return ev
            node.role, node.primary_ind = Role.SECONDARY, False
            node.set_current(node.uuids.current)
            if self.established and node.conn.connected:
                self.peer_of(node).peer_role = Role.SECONDARY
            self.state(node, role="Secondary")
        ev.succeed()
        return ev

    # ------------------------------------------------------------ drbdadm detach

    def detach(self, host: str, force: bool = False) -> None:
        """drbdadm detach [--force]: drbd_nl.c adm_detach. A request for D_FAILED, which is
        cluster-wide while Connected (the peer must still reach UpToDate data); `--force`
        imposes it (drbd_force_state, CS_HARD). Already Diskless: SS_NOTHING_TO_DO."""
        node = self._node(host)
        if not (node.running and node.attached):
            return
        out = self.ask(node, Change(disk=Disk.FAILED), hard=force)
        if out.refused is not None:
            raise self.refusal("detach", node, out.refused)
        self.go_diskless(node, "detach")

    def go_diskless(self, node: Node, why: str) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    # ------------------------------------------------------------ drbdadm disconnect

    def disconnect(self, host: str, force: bool = False) -> None:
        """drbdadm disconnect [--force]: drbd_nl.c conn_try_disconnect; this node StandAlone,
        the peer WFConnection. Under a fencing policy a Primary must see its peer Outdated
        (SS_PRIMARY_NOP): the request is repeated with pdsk D_OUTDATED, which the peer takes
        by outdating its disk; refused by the peer (it is that Primary), the node outdates
        itself instead (SS_CW_FAILED_BY_PEER -> disk D_OUTDATED)."""
        node = self._node(host)
        if not node.running or node.conn is Conn.STANDALONE:  # SS_ALREADY_STANDALONE
            return
        out = self._try_disconnect(node, force)
        if out.refused is not None:
            raise self.refusal("disconnect", node, out.refused)
        if self.established and node.conn.connected:
            self._outdated_by_disconnect(node, out.ns)
            node.conn = Conn.STANDALONE
            self.log("disconnect", node=node.name)
            self._end_connection(self.kernel.now, graceful=True)
        node.conn = Conn.STANDALONE
        self.state(node, conn="StandAlone")

    def _try_disconnect(self, node: Node, force: bool) -> Outcome:
        disconnecting = Change(conn=CS.DISCONNECTING)
        out = self.ask(node, disconnecting, hard=force)
        code = out.refused.code if out.refused is not None else 1
        if code == -7:
            out = self.ask(node, replace(disconnecting, pdsk=Disk.OUTDATED))
            if out.refused is not None and out.refused.code == -21:  # connection lost meanwhile
                out = self.ask(node, disconnecting)
        elif code == -10 and self.established and node.conn.connected:
            out = self.ask(node, replace(disconnecting, disk=Disk.OUTDATED))
            if out.refused is not None and out.refused.code in (-11, -16):
                out = self.ask(node, disconnecting, hard=True)
        return out

    def _outdated_by_disconnect(self, node: Node, ns: DState) -> None:
        """The graceful disconnect's outdating, on both sides (the peer took it mirrored,
        with CS_IGN_OUTD_FAIL: a disk below Outdated stays where it is); MDF_PEER_OUT_DATED
        is recorded by the side whose pdsk became Outdated."""
        peer = self.peer_of(node)
        for writer, other, state in ((node, peer, ns.pdsk), (peer, node, ns.disk)):
            if state is not Disk.OUTDATED:
                continue
            writer.peer_outdated = True
            if other.dstate >= Disk.OUTDATED and other.dstate is not Disk.OUTDATED:
                other.set_disk(Disk.OUTDATED)
                self.state(other, disk="Outdated", why="graceful disconnect")

    # ------------------------------------------------------------ drbdadm outdate

    def outdate(self, host: str) -> None:
        """drbdadm outdate: drbd_nl.c drbd_adm_outdate, a request for D_OUTDATED (while
        Connected sanitize_state turns it back into UpToDate: nothing to do; refused for a
        Primary alone, SS_NO_UP_TO_DATE_DISK, and below Outdated, SS_LOWER_THAN_OUTDATED)."""
        node = self._node(host)
        if not node.running:
            raise DrbdError(f"{self.spec.name}: {host}: no DRBD running (Unconfigured)")
        out = self.ask(node, Change(disk=Disk.OUTDATED))
        if out.refused is not None:
            raise self.refusal("outdate", node, out.refused)
        if not out.nothing_to_do:
            node.set_disk(Disk.OUTDATED)
            self.state(node, disk="Outdated", why="drbdadm outdate")
