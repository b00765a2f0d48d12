"""drbdadm primary on the simulated resource: drbd_nl.c drbd_set_role of drbd-8.4.

The promotion asks the rule table (`drbd_rules`) and retries the way drbd_set_role does:
on SS_NO_UP_TO_DATE_DISK with `--force` it takes an Inconsistent-or-better disk as
UpToDate, with a Consistent disk it runs the fence-peer handler; on SS_PRIMARY_NOP it runs
the handler and, forced, goes on into split brain; on SS_TWO_PRIMARIES it waits
(ping-timeout + 0.1 s) and tries once more. Before all that it requests a ping ("Detect
dead peers as soon as possible"): a peer that died but is not yet declared lost does not
answer within the resource's ping-timeout, this side's connection ends, and a
cluster-wide promotion that was waiting for the peer's answer goes on as a local one. Four
tries in all: the promotion can end refused although the handler has just fenced the peer
(a second `drbdadm primary` then succeeds).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace

import simpy

from stackdrill.backends.sim.drbd_admin import AdminCore, DrbdError
from stackdrill.backends.sim.drbd_detect import PING_LOST
from stackdrill.backends.sim.drbd_model import Disk, Node, Role
from stackdrill.backends.sim.drbd_rules import STATE_RULES, DState, Rule
from stackdrill.backends.sim.drbd_statechange import Change, Outcome, request

SET_ROLE_TRIES = 4  # drbd_set_role max_tries
_NO_DATA = STATE_RULES[2]  # SS_NO_UP_TO_DATE_DISK

Steps = Generator[float, None, Rule | None]  # yields seconds to wait; returns the refusal


class PromoteCore(AdminCore):
    """drbdadm primary, decided by the rule table."""

    _ping_lost_at: float | None = None

    def promote(self, host: str, force: bool = False) -> simpy.Event:
        """drbdadm primary [--force]: drbd_nl.c drbd_adm_set_role -> drbd_set_role."""
        node, ev = self._node(host), self.kernel.env.event()
        if not (node.running and node.host.up):
            ev.fail(DrbdError(f"{self.spec.name}: {host}: no DRBD running (Unconfigured)"))
            return ev
        self.request_ping(node)  # drbd_set_role pings first, even for a Primary
        if node.role is Role.PRIMARY:  # SS_NOTHING_TO_DO
            ev.succeed()
            return ev
        self.flush()
        self._drive(self._set_role(node, force), ev, node)
        return ev

    def _drive(self, steps: Steps, ev: simpy.Event, node: Node) -> None:
        """Run `steps` at once while they need no time, then as a process."""
        try:
            wait = next(steps)
        except StopIteration as done:
            self._settle_role(ev, node, done.value)
            return

        def proc() -> Generator[simpy.Event, None, None]:
            delay = wait
            for _ in range(2 * SET_ROLE_TRIES):
                yield self.kernel.env.timeout(delay)
                try:
                    delay = steps.send(None)
                except StopIteration as done:
                    self._settle_role(ev, node, done.value)
                    return
            self._settle_role(ev, node, _NO_DATA)
        self.kernel.env.process(proc())

    def _settle_role(self, ev: simpy.Event, node: Node, refused: Rule | None) -> None:
        if refused is None:
            ev.succeed()
        else:
            ev.fail(self.refusal("primary", node, refused))

    def _ask_waiting(self, node: Node, change: Change) -> Generator[float, None, Outcome]:
        """drbd_req_state: a cluster-wide change waits for the peer's answer; a dead peer
        answers nothing and the wait ends when request_ping's ping times out."""
        for _ in range(3):
            os = self.dstate_of(node)
            out = request(os, change, self.options(node), self.peer_answer(node))
            if not out.waits_for_peer:
                return out
            yield max(0.0, (self._ping_lost_at or self.kernel.now) - self.kernel.now) + 1e-6
        return self.ask(node, change)

    def _set_role(self, node: Node, force: bool) -> Steps:
        """drbd_set_role's loop (max_tries 4), rule by rule."""
        change, forced, tries = Change(role=Role.PRIMARY), False, 0
        out = Outcome(self.dstate_of(node), _NO_DATA)
        while tries < SET_ROLE_TRIES:
            tries += 1
            if not (node.running and node.host.up):
                return _NO_DATA  # the fence-peer handler took this node down
            out = yield from self._ask_waiting(node, change)
            code = out.refused.code if out.refused is not None else 1
            if code == -10 and change.pdsk is not None:  # connected after all
                change = replace(change, pdsk=None)
            elif code == -2 and force and Disk.INCONSISTENT <= node.dstate < Disk.UP_TO_DATE:
                change, forced = replace(change, disk=Disk.UP_TO_DATE), True
            elif code == -2 and node.dstate is Disk.CONSISTENT and change.pdsk is None:
                if self._outdate_peer(node):
                    change = replace(change, disk=Disk.UP_TO_DATE)
            elif code == -7 and change.pdsk is None:
                if not self._outdate_peer(node) and force:
                    self.note("forced-split-brain", node=node.name,
                              msg="Forced into split brain situation!")
                    change = replace(change, pdsk=Disk.OUTDATED)
            elif code == -1:  # maybe the peer is found dead soon: one more try
                if tries < SET_ROLE_TRIES:
                    tries = SET_ROLE_TRIES - 1
                    yield self.spec.net.ping_timeout_s + 0.1  # (ping_timeo + 1) * HZ / 10
            else:
                break
        if out.refused is not None:
            return out.refused
        self._become_primary(node, out.ns, forced, force)
        return None

    def _outdate_peer(self, node: Node) -> bool:
        """conn_try_outdate_peer: FP_DONT_CARE needs no handler."""
        return self.spec.fencing == "dont-care" or self.try_outdate_peer(node)

    def request_ping(self, node: Node) -> None:
        """drbd_set_role "Detect dead peers as soon as possible": a ping the peer does not
        answer within the resource's ping-timeout ends this side's connection ("PingAck
        did not arrive in time"); the other side keeps its own clock (drbd_detect). On a
        live link the ping and its ack are meta packets both sides receive: each side's
        ack receiver restarts its ping-int wait from now (drbd_ack_receiver)."""
        if self.established and self.link_down_at is None:
            for side in (node, self.peer_of(node)):
                self.rx_meta[side.name] = max(self.rx_meta.get(side.name, 0.0),
                                              self.kernel.now)
            return
        if not self.established or self._ping_lost_at is not None:
            return
        if node.name in self.lost_sides:
            return
        at = self.kernel.now + self.spec.net.ping_timeout_s
        self._ping_lost_at = at
        self.rearm_detection(node, at, PING_LOST)

        def done() -> None:
            self._ping_lost_at = None
        self.kernel.call_later(at - self.kernel.now, done)

    def _become_primary(self, node: Node, ns: DState, forced: bool, force: bool) -> None:
        """drbd_set_role after the state change: a forced disk is UpToDate, discard-my-data
        is cleared, a node alone (or forced) starts a new data generation
        (drbd_uuid_new_current), and the peer learns the role (drbd_send_current_state)."""
        connected = self.established and node.conn.connected
        if ns.disk is Disk.UP_TO_DATE and node.dstate is not Disk.UP_TO_DATE:
            node.set_disk(Disk.UP_TO_DATE)
            if forced:
                self.log("forced-uptodate", node=node.name,
                         msg="Forced to consider local data as UpToDate!")
        if not connected and ns.pdsk is Disk.OUTDATED:
            node.peer_disk, node.peer_outdated = Disk.OUTDATED, True
        node.discard_my_data = False
        node.role, node.primary_ind = Role.PRIMARY, True
        peer = self.peer_of(node)
        if node.attached:
            alone = not connected or node.peer_disk is Disk.DISKLESS
            if (alone and node.uuids.bitmap == 0) or forced:
                self.new_current_uuid(node)
            node.set_current(node.uuids.current)
        if connected:
            peer.peer_role = Role.PRIMARY
            if not node.attached:
                self._lost_peer_data(peer, peer_was_primary=True)
        self.state(node, role="Primary", force=force)
