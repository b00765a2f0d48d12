"""The cluster stack: corosync membership, votequorum, fencing and the DLM that waits for it.

What is encoded, and where it comes from:
- membership: nodes that are up and mutually reachable on the cluster network;
  a lost node is noticed after the totem token timeout, a joining one after
  `join_s` (corosync.conf(5) token).
- quorum per partition as corosync's exec/votequorum.c computes it:
  expected_votes sticks at the highest total seen, quorum =
  max(expected//2+1, total//2+1); two_node forces quorum to 1 while at most two
  nodes are members and turns wait_for_all on, which holds a (re)started node
  inquorate until it has seen all expected votes once (votequorum(5)).
- fencing: after losing a member, dlm_controld on the survivors fences it and
  every lock request waits until it is fenced (dlm_controld(8) enable_fencing,
  lvmlockd(8) "dlm/corosync failure"); only a quorate partition fences
  (enable_quorum_fencing). `power` calls the fence agent, `manual` waits for
  fence_ack_manual, `none` does not wait at all. An acknowledgement clears only a
  wait that exists (dlm_controld's receive_fence_result ignores a node without
  need_fencing), and a node that leaves the membership later needs fencing again
  (confchg_cb_daemon): a hung node that thawed, rejoined and was then powered off
  is lost a second time. The operator who confirmed it off acknowledges that wait
  too, for as long as it stays off (`_confirmed_off`).
- fence races (two_node partitions, both quorate): each partition's lowest node
  id fences, after fence_s + (node id - 1) * fence_delay_s — a static delay per
  node as pcmk_delay_base gives in practice. So the LOWER node id always wins,
  deterministically; the loser is powered off before its own agent fires.
- a clean leave (the stack stopped, or a clean reboot) is not a loss for fencing: see
  cluster_stack for the CPG reasons; the survivors drop the node after `join_s`.
- a member awaiting fencing that rejoins with a dlm_controld that never ran a lockspace
  (its stack restarted since: a reboot, a power cycle) is a "clean daemon member": each
  survivor drops its wait for it without a fence or an acknowledgement (dlm daemon_cpg.c
  daemon_fence_work, "fence request N skip for is_clean_daemon_member"). One that kept its
  lockspaces through a partition merges "stateful" (receive_protocol, PV_STATEFUL, set
  once a lockspace started: cpg.c apply_changes -> set_protocol_stateful) and is still
  fenced; the sim counts a daemon stateful from its first DLM grant. A fence already
  under way is not called off (dlm_controld kills its agent; the power fencing here
  stands for Pacemaker's, which fences an unclean node anyway).
- start-up: a node whose stack starts joins the others after `join_s`, as at boot.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import simpy

from stackdrill.api import PowerState, QuorumStatus
from stackdrill.backends.sim.cluster_dlm import LockTable
from stackdrill.backends.sim.cluster_stack import Service, StackRefused, Stacks
from stackdrill.backends.sim.hosts import SimHost
from stackdrill.backends.sim.kernel import Kernel
from stackdrill.backends.sim.network import Underlay
from stackdrill.topology.model import ClusterFencing, ClusterSpec

log = logging.getLogger(__name__)


class ClusterSim:
    def __init__(self, kernel: Kernel, spec: ClusterSpec, hosts: dict[str, SimHost],
                 underlay: Underlay, power_off: Callable[[str], simpy.Event] | None,
                 *, join_s: float = 1.0, fence_s: float = 2.0,
                 fence_delay_s: float = 5.0) -> None:
        self.kernel = kernel
        self.spec = spec
        self.hosts = hosts
        self.underlay = underlay
        self._power_off = power_off
        self.component = f"cluster/{spec.name}"
        self.token_s = spec.token_ms / 1000.0
        self.join_s = join_s
        self.fence_s = fence_s
        self.fence_delay_s = fence_delay_s
        self.node_ids = {n: i + 1 for i, n in enumerate(spec.nodes)}
        self.votes = {n: spec.votes.get(n, 1) for n in spec.nodes}
        self.configured_expected = spec.expected_votes or sum(self.votes.values())
        self.wait_for_all = spec.two_node if spec.wait_for_all is None else spec.wait_for_all
        self._members: dict[str, frozenset[str]] = {n: frozenset() for n in spec.nodes}
        self._expected = dict.fromkeys(spec.nodes, self.configured_expected)
        self._wfa = dict.fromkeys(spec.nodes, self.wait_for_all)
        self._quorate = dict.fromkeys(spec.nodes, False)
        # a lockspace change (a join, or a member lost) waits for quorum; a change done while
        # quorate is not undone by a later quorum loss (dlm cpg.c wait_conditions_done,
        # enable_quorum_lockspace): True until the node has been quorate since its last one
        self._change_needs_quorum = dict.fromkeys(spec.nodes, True)
        self._pending: dict[str, set[str]] = {n: set() for n in spec.nodes}
        self._in_flight: dict[str, simpy.Event] = {}  # victim -> outcome of the fence
        self._confirmed_off: set[str] = set()  # acked off by the operator, off since
        self._stateful: set[str] = set()  # dlm_controld has run a lockspace since it started
        self.stacks = Stacks(kernel, self.component, spec.nodes)
        self.dlm = LockTable(kernel, f"{self.component}/dlm", self.dlm_usable,
                             lambda h: self._members.get(h, frozenset()),
                             on_grant=self._stateful.add)
        underlay.subscribe(self._on_network_change)
        for name in spec.nodes:
            hosts[name].subscribe(self._on_power)
        self._evaluate(joins_only=False)  # the cluster as it forms at lab build

    # ------------------------------------------------------------ queries

    def members(self, host: str) -> frozenset[str]:
        return self._members.get(host, frozenset())

    def quorate(self, host: str) -> bool:
        return self._quorate.get(host, False)

    def fencing_pending(self, host: str) -> frozenset[str]:
        return frozenset(self._pending.get(host, set()))

    def dlm_usable(self, host: str) -> bool:
        """The DLM grants this host's requests: member, recovery (fencing) done, and quorate
        unless every lockspace change since it was last quorate is done (a clean leave)."""
        return (host in self.node_ids and self.hosts[host].up and self.stacks.running(host)
                and host in self._members[host]
                and (self._quorate[host] or not self._change_needs_quorum[host])
                and not self._pending[host])

    def status(self) -> dict[str, QuorumStatus]:
        out: dict[str, QuorumStatus] = {}
        for n in self.spec.nodes:
            members = self._members[n]
            total = sum(self.votes[m] for m in members)
            out[n] = QuorumStatus(quorate=self._quorate[n], members=tuple(sorted(members)),
                                  votes=total, expected_votes=self._expected[n],
                                  quorum=self._quorum(n, total), wait_for_all=self._wfa[n],
                                  two_node=self.spec.two_node,
                                  fencing_pending=tuple(sorted(self._pending[n])))
        return out

    # ------------------------------------------------------------ DLM

    def dlm_lock(self, host: str, resource: str, mode: str,
                 noqueue: bool = False) -> simpy.Event:
        """Granted (value: lock id) once quorate and fenced; waits on conflicts unless noqueue."""
        return self.dlm.request(host, resource, mode, noqueue)

    def dlm_unlock(self, host: str, resource: str, lkid: int | None = None) -> None:
        if lkid is not None:
            self.dlm.release(lkid)
            return
        for lk in list(self.dlm.holders(resource)):
            if self.dlm.holders(resource)[lk][0] == host:
                self.dlm.release(lk)

    # ------------------------------------------------------------ membership

    def _groups(self) -> list[frozenset[str]]:
        """Partitions now: greedy by node id, a node joins the first group it fully reaches."""
        groups: list[set[str]] = []
        for n in self.spec.nodes:
            if not self.hosts[n].up or not self.stacks.running(n):
                continue
            for g in groups:
                if all(self.underlay.connected(n, m, self.spec.network) for m in g):
                    g.add(n)
                    break
            else:
                groups.append({n})
        return [frozenset(g) for g in groups]

    def _on_network_change(self) -> None:
        self.kernel.call_later(self.join_s, lambda: self._evaluate(joins_only=True))
        self.kernel.call_later(self.token_s, lambda: self._evaluate(joins_only=False))

    def _on_power(self, host: SimHost, old: PowerState, new: PowerState) -> None:
        if new is not PowerState.OFF:
            self._confirmed_off.discard(host.name)  # the operator's word was about it off
        if new is PowerState.ON and old is PowerState.BOOTING:
            self.stacks.booted(host.name)  # it joins via the network, after join_s
        if new is PowerState.HUNG or new is PowerState.ON:
            return  # a frozen node keeps its stale view; a booted one joins via the network
        if new is PowerState.OFF and host.why == "reboot":
            self._stop_here(host.name, (), "reboot")  # systemd stops the stack cleanly
            return
        self.stacks.powered_off(host.name)
        self._forget(host.name, new.value, "stopped")

    def _forget(self, n: str, why: str, locks_why: str) -> None:
        """Corosync and the DLM on `n` are gone: its own view starts again from nothing."""
        self._members[n] = frozenset()
        self._quorate[n] = False
        self._change_needs_quorum[n] = True
        self._pending[n] = set()
        self._stateful.discard(n)
        self._expected[n] = self.configured_expected
        self._wfa[n] = self.wait_for_all
        self.kernel.log(self.component, "node-stopped", host=n, why=why)
        self.dlm.drop_host(n, locks_why)

    # ------------------------------------------------------------ stack start / stop

    def stop_stack(self, host: str, lockspaces: tuple[str, ...] = ()) -> None:
        """`systemctl stop dlm corosync` on a running host: it leaves the cluster cleanly
        (not fenced); refused while `lockspaces` are in use (StackRefused)."""
        if not self.hosts[host].up:
            raise StackRefused(f"{host}: host is not running")
        self._stop_here(host, lockspaces, "stop")

    def _stop_here(self, n: str, lockspaces: tuple[str, ...], why: str) -> None:
        if not self.stacks.stop(n, lockspaces, why):
            return
        self._forget(n, why, "left")
        self.kernel.call_later(self.join_s, lambda: self._leave(n))

    def _leave(self, leaver: str) -> None:
        """The leave message reached the members: each drops `leaver` from its ring."""
        for n in self.spec.nodes:
            if (n != leaver and leaver in self._members[n] and self.hosts[n].up
                    and self.stacks.running(n) and self.stacks.left_cleanly(leaver)):
                self._apply(n, self._members[n] - {leaver})
        self._fence_round()
        self.dlm.kick()

    def start_stack(self, host: str) -> simpy.Event:
        """`systemctl start corosync dlm`: succeeds once the node is in a ring (after
        join_s), or at once when it already runs; fails when the host is not running."""
        done = self.kernel.env.event()
        done.defused = True
        if not self.hosts[host].up:
            return done.fail(StackRefused(f"{host}: host is not running"))
        if not self.stacks.begin_start(host):
            return done.succeed(self.stacks.state(host).value)
        boot = self.hosts[host].boot_count

        def joined() -> None:
            if not self.hosts[host].up or self.hosts[host].boot_count != boot \
                    or self.stacks.state(host) is not Service.STARTING:
                done.fail(StackRefused(f"{host}: stopped or went down while the stack "
                                       "started"))
                return
            self.stacks.started(host)
            self._evaluate(joins_only=True)
            done.succeed("running")

        self.kernel.call_later(self.join_s, joined)
        return done

    def _evaluate(self, joins_only: bool) -> None:
        for group in self._groups():
            for n in sorted(group, key=self.node_ids.__getitem__):
                old = self._members[n]
                if group == old or (joins_only and not old <= group):
                    continue
                self._apply(n, group)
        self._fence_round()
        self.dlm.kick()

    def _apply(self, n: str, group: frozenset[str]) -> None:
        old = self._members[n]
        self.stacks.rejoined(n)
        left = sorted(m for m in old - group - {n} if self.stacks.left_cleanly(m))
        lost = sorted(old - group - {n} - set(left))
        self._members[n] = group
        self.kernel.log(self.component, "membership", host=n, members=sorted(group),
                        joined=sorted(group - old - {n}) if old else [], lost=lost,
                        **({"left": left} if left else {}))
        self._skip_clean_rejoins(n, group - old - {n})
        if lost:  # the lockspaces' recovery for a lost member waits for quorum again
            self._change_needs_quorum[n] = True
        if lost and self.spec.fencing is not ClusterFencing.NONE:
            self._pending[n].update(lost)
            self.kernel.log(self.component, "fence-wait", host=n, victims=lost)
            for victim in sorted(self._confirmed_off.intersection(lost)):
                self.ack_manual_fence(victim)  # the operator has seen it off: acks again
        self._recalculate(n)

    def _skip_clean_rejoins(self, n: str, joined: frozenset[str]) -> None:
        """`n` stops waiting to fence a joined node whose dlm_controld is new (no lockspace
        since its restart): it cannot hold locks from before, so recovery may go on."""
        for m in sorted(joined & self._pending[n] - self._stateful):
            self._pending[n].discard(m)
            self.kernel.log(self.component, "fence-skip", host=n, victim=m,
                            why="rejoined with a restarted dlm_controld")

    def _quorum(self, n: str, total: int) -> int:
        if self.spec.two_node and len(self._members[n]) <= 2:
            return 1
        return max((self._expected[n] + 2) // 2, (total + 2) // 2)

    def _recalculate(self, n: str) -> None:
        total = sum(self.votes[m] for m in self._members[n])
        self._expected[n] = max(self._expected[n], total)
        if self._wfa[n] and total >= self._expected[n]:
            self._wfa[n] = False
            self.kernel.log(self.component, "wait-for-all-done", host=n)
        quorate = not self._wfa[n] and total >= self._quorum(n, total)
        if quorate:
            self._change_needs_quorum[n] = False
        if quorate != self._quorate[n]:
            self._quorate[n] = quorate
            self.kernel.log(self.component, "quorum", host=n, quorate=quorate, votes=total,
                            expected=self._expected[n], quorum=self._quorum(n, total))

    # ------------------------------------------------------------ fencing

    def _fencer(self, n: str) -> bool:
        group = self._members[n]
        return bool(group) and n == min(group, key=self.node_ids.__getitem__)

    def _fence_round(self) -> None:
        if self.spec.fencing is not ClusterFencing.POWER:
            return
        for n in self.spec.nodes:
            if self._fencer(n) and self._quorate[n]:
                for victim in sorted(self._pending[n]):
                    self.fence(victim, n)

    def fence(self, victim: str, requester: str) -> simpy.Event:
        """Power-fence `victim` on `requester`'s behalf; the event's value says if it worked."""
        env = self.kernel.env
        if victim in self._in_flight:
            return self._in_flight[victim]
        outcome = env.event()
        outcome.defused = True
        if (requester not in self.node_ids or not self.hosts[requester].up
                or not self._quorate[requester]):
            self.kernel.log(self.component, "fence-refused", victim=victim, by=requester)
            outcome.succeed(False)
            return outcome
        self._in_flight[victim] = outcome
        delay = self.fence_s + (self.node_ids[requester] - 1) * self.fence_delay_s
        self.kernel.log(self.component, "fence-start", victim=victim, by=requester, delay=delay)

        def fire() -> None:
            if self._in_flight.get(victim) is not outcome:
                return
            if not self.hosts[requester].up:
                del self._in_flight[victim]
                self.kernel.log(self.component, "fence-abandoned", victim=victim, by=requester)
                outcome.succeed(False)
                return
            if self._power_off is not None:
                done = self._power_off(victim)
            else:
                self.hosts[victim].power_off()
                done = env.event().succeed()

            def finished(ev: simpy.Event) -> None:
                self._in_flight.pop(victim, None)
                if not ev.ok:
                    ev.defused = True
                    self.kernel.log(self.component, "fence-failed", victim=victim, by=requester)
                    outcome.succeed(False)
                    self.kernel.call_later(self.fence_s, self._fence_round)  # retry
                    return
                self._fenced(victim, requester)
                outcome.succeed(True)

            done.callbacks.append(finished)

        self.kernel.call_later(delay, fire)
        return outcome

    def stonith(self, victim: str, requester: str) -> bool:
        """DRBD's fence-peer: True when the request was accepted. Whether it worked shows in
        `fence(...)`'s event; in a race the delayed requester dies before its agent fires."""
        ev = self.fence(victim, requester)
        return not (ev.triggered and ev.value is False)

    def ack_manual_fence(self, victim: str) -> None:
        """fence_ack_manual: the operator swears `victim` is off; recovery may proceed."""
        self.kernel.log(self.component, "fence-ack-manual", victim=victim)
        if self.hosts[victim].power is PowerState.OFF:
            self._confirmed_off.add(victim)
        self._fenced(victim, "operator")

    def _fenced(self, victim: str, by: str) -> None:
        self.kernel.log(self.component, "fenced", victim=victim, by=by)
        for n in self.spec.nodes:
            self._pending[n].discard(victim)
        self.dlm.drop_host(victim, "fenced")
        self.dlm.kick()
