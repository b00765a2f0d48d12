"""The cluster stack's services on each node: running, starting, stopped, and who left cleanly.

What the real daemons do, and where it is read:
- A node leaves a CPG group in one of three ways, and the survivors are told which
  (corosync exec/cpg.c): `cpg_leave` from the process is CPG_REASON_LEAVE
  (message_handler_req_lib_cpg_leave), a process that exits without leaving is
  CPG_REASON_PROCDOWN (cpg_lib_exit_fn), a node that drops out of the totem ring is
  CPG_REASON_NODEDOWN (the confchg downlist).
- dlm_controld sets need_fencing only for NODEDOWN and PROCDOWN (dlm daemon_cpg.c,
  confchg_cb_daemon; the lockspace side marks only those `failed`: cpg.c add_change).
  A node whose dlm_controld quit cleanly (SIGTERM -> close_cpg_daemon -> cpg_leave) is
  not fenced, and the lock manager does not wait for it.
- dlm_controld refuses to quit while it has lockspaces (main.c loop: "shutdown ignored,
  active lockspaces"); lvmlockd holds one per started VG (lvmlockd-core.c add_lockspace),
  so a VG's lockspace is stopped (`vgchange --lock-stop`) before dlm is.
- corosync that shuts down sends a leave message (totemsrp.c totemsrp_finalize ->
  memb_leave_message_send): the others form the new ring at once, without waiting for
  the token timeout; the sim takes its join time for that round.
- votequorum counts a node that left like a lost one unless `allow_downscale` is set
  (votequorum.c votequorum_exec_exit_fn sends NODE_FLAGS_LEAVING only then): expected
  votes stay, quorum is recalculated from the votes left. The sim models the default.
- A clean reboot (systemd stops lvmlocks, dlm, corosync in order) is such a clean leave.
  A reboot whose lockspaces cannot stop (LVs still active) would end in a SIGKILLed
  dlm_controld, i.e. PROCDOWN: not modelled, the `host_reboot` fault stops everything.
- Services are enabled: a host that boots starts its stack again, whatever an operator
  did before; its lvmlockd lockspaces are not started again (`vgchange --lock-start`).
"""

from __future__ import annotations

import enum

from stackdrill.backends.sim.kernel import Kernel


class Service(enum.Enum):
    RUNNING = "running"
    STARTING = "starting"  # corosync up, not yet in a ring with the others
    STOPPED = "stopped"


class StackRefused(Exception):
    """The stack cannot be stopped or started now (the daemon's own refusal)."""


class Stacks:
    """Per node: the stack's service state, and the nodes that left the cluster cleanly."""

    def __init__(self, kernel: Kernel, component: str, nodes: tuple[str, ...]) -> None:
        self.kernel = kernel
        self.component = component
        self._state = dict.fromkeys(nodes, Service.RUNNING)  # started with the lab
        self._left_cleanly: set[str] = set()

    def running(self, host: str) -> bool:
        return self._state.get(host) is Service.RUNNING

    def state(self, host: str) -> Service:
        return self._state[host]

    def left_cleanly(self, host: str) -> bool:
        """It left with cpg_leave and a totem leave message: nobody fences it for that."""
        return host in self._left_cleanly

    def rejoined(self, host: str) -> None:
        """The node is in a ring again: a later loss is a loss."""
        self._left_cleanly.discard(host)

    def begin_start(self, host: str) -> bool:
        """`systemctl start corosync dlm`: False when it already runs (or is starting)."""
        if self._state[host] is not Service.STOPPED:
            return False
        self._state[host] = Service.STARTING
        self.kernel.log(self.component, "stack-starting", host=host)
        return True

    def started(self, host: str) -> None:
        self._state[host] = Service.RUNNING
        self.kernel.log(self.component, "stack-started", host=host)

    def stop(self, host: str, lockspaces: tuple[str, ...], why: str) -> bool:
        """dlm_controld, then corosync, leave cleanly; False when already stopped.
        Refused while lockspaces are in use, as dlm_controld ignores its SIGTERM then."""
        if self._state[host] is Service.STOPPED:
            return False
        if lockspaces:
            raise StackRefused(f"{host}: dlm_controld: shutdown ignored, active lockspaces "
                               f"({', '.join(lockspaces)})")
        self._state[host] = Service.STOPPED
        self._left_cleanly.add(host)
        self.kernel.log(self.component, "stack-stopped", host=host, why=why)
        return True

    def booted(self, host: str) -> None:
        """The host came up: its enabled services start with it."""
        self._state[host] = Service.RUNNING

    def powered_off(self, host: str) -> None:
        """Off (crash, fence or the first half of a reboot): nothing runs there now."""
        self._state[host] = Service.STOPPED
