"""The cluster stack under lvmlockd when b loses power, on the cluster-LVM lab of
`clvm_lab` (both nodes members and quorate, the VG's lockspace started on both, lv1 active
nowhere):

- a power cut: the survivor's dlm_controld waits for fencing (`fence N nodedown` in
  `dlm_tool status`, lockspaces "wait fencing") and every lock request blocks until
  `dlm_tool fence_ack N`; two_node keeps the survivor quorate (votequorum.c);
- the crashed node powered on again: its stack starts at boot and rejoins; a's
  dlm_controld drops its wait without fence_ack ("fence request 2 skip for
  is_clean_daemon_member", daemon_cpg.c daemon_fence_work: a restarted dlm_controld
  holds no lock from before) and a's lock requests go on.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

from stackdrill.backends.libvirt.cluster import BOOT_STACK_LOG
from stackdrill.conformance import labs
from stackdrill.conformance.clvm_lab import (
    CLUSTER,
    LV,
    VG,
    A,
    B,
    deactivate_all,
    recover_crashed,
    sim_lab,
    vm_lab,
)
from stackdrill.conformance.drbd_lab import power_on, run, wait
from stackdrill.conformance.model import Fields, Situation
from stackdrill.conformance.situations.cluster_common import (
    ACK_SETTLE_S,
    CRASH_SETTLE_S,
    Gen,
    exact,
    sim_bounded_activate,
    sim_survivor,
    survivor_names,
    vm_bounded_activate,
    vm_survivor,
)
from stackdrill.conformance.situations.lvm_common import sim_wait
from stackdrill.faults import HostCrash

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab
    from stackdrill.backends.sim.lab import SimLab


# ---------------------------------------------------------------- power cut

def _sim_crash_b(lab: SimLab) -> Gen:
    """lv1 inactive on both, b's power cut; a's view once the loss has settled."""
    for host in (A, B):
        yield from sim_wait(lab.lvm_hosts[host].deactivate(VG, LV))
    lab.inject(HostCrash(host=B, power_back=False))
    yield lab.kernel.env.timeout(CRASH_SETTLE_S)
    return sim_survivor(lab, "a_after_crash")


def _vm_crash_b(lab: LibvirtLab) -> Fields:
    deactivate_all(lab)
    lab.inject(HostCrash(host=B, power_back=False))
    time.sleep(CRASH_SETTLE_S)
    return vm_survivor(lab, "a_after_crash")


def _sim_crash() -> Fields:
    lab = sim_lab("lvmlockd")
    cluster = lab.clusters[CLUSTER]

    def steps() -> Gen:
        out = yield from _sim_crash_b(lab)
        out |= yield from sim_bounded_activate(lab, "a_activate_exit")
        cluster.ack_manual_fence(B)
        yield lab.kernel.env.timeout(ACK_SETTLE_S)
        out |= sim_survivor(lab, "a_after_ack")
        out |= yield from sim_bounded_activate(lab, "a_activate_after_ack_exit")
        return out
    return labs.sim_run(lab, steps())


def _vm_crash() -> Fields:
    lab = vm_lab("lvmlockd")
    out = _vm_crash_b(lab)
    out |= vm_bounded_activate(lab, "a_activate_exit")
    run(lab, A, "dlm_tool fence_ack 2")
    time.sleep(ACK_SETTLE_S)
    out |= vm_survivor(lab, "a_after_ack")
    out |= vm_bounded_activate(lab, "a_activate_after_ack_exit")
    run(lab, A, f"lvchange -an {VG}/{LV}")
    recover_crashed(lab, B)
    return out


CRASH = Situation(
    name="cluster-crash-manual-fencing",
    exercises="lvmlockd, manual fencing, two_node: b's power cut; a's quorum, fencing and "
              "a lock request (bounded), then dlm_tool fence_ack and the request again",
    tolerances=exact(*survivor_names("a_after_crash"), "a_activate_exit",
                      *survivor_names("a_after_ack"), "a_activate_after_ack_exit"),
    simulate=_sim_crash, recorders={"libvirt": _vm_crash})


# ---------------------------------------------------------------- power cut, rejoin

REJOIN_WAIT_S = 300.0  # the guest boots (TCG) and its stack joins; the sim's boot is short


def _sim_crash_rejoin() -> Fields:
    lab = sim_lab("lvmlockd")
    cluster, env = lab.clusters[CLUSTER], lab.kernel.env

    def steps() -> Gen:
        out = yield from _sim_crash_b(lab)
        lab.hosts[B].power_on()
        deadline = env.now + REJOIN_WAIT_S
        while len(cluster.members(A)) < 2 and env.now < deadline:
            yield env.timeout(0.5)
        yield env.timeout(ACK_SETTLE_S)
        out |= sim_survivor(lab, "a_after_rejoin")
        out |= yield from sim_bounded_activate(lab, "a_activate_after_rejoin_exit")
        return out
    return labs.sim_run(lab, steps())


def _vm_crash_rejoin() -> Fields:
    lab = vm_lab("lvmlockd")
    out = _vm_crash_b(lab)
    power_on(lab, B)
    _vm_wait_dlm_member(lab)
    time.sleep(ACK_SETTLE_S)
    out |= vm_survivor(lab, "a_after_rejoin")
    out |= vm_bounded_activate(lab, "a_activate_after_rejoin_exit")
    run(lab, A, f"lvchange -an {VG}/{LV}")
    recover_crashed(lab, B, powered=True)
    return out


def _vm_wait_dlm_member(lab: LibvirtLab) -> None:
    """The situation's premise: the stack b's boot started has rejoined, corosync and
    dlm_controld (b is `node 2 M`, a daemon member, in a's `dlm_tool status`)."""
    try:
        wait("b rejoins a's corosync ring and dlm_controld group",
             lambda: re.search(r"^node 2 M ", run(lab, A, "dlm_tool status")[1], re.M)
             is not None, REJOIN_WAIT_S)
    except RuntimeError as exc:
        said = run(lab, B, f"cat {BOOT_STACK_LOG}; pgrep -a -x 'corosync|dlm_controld'; "
                           "tail -20 /var/log/dlm_controld/dlm_controld.log")[1]
        raise RuntimeError(f"{exc}; on b: {said}") from exc


CRASH_REJOIN = Situation(
    name="cluster-crash-rejoin-manual-fencing",
    exercises="lvmlockd, manual fencing, two_node: b's power cut, then b powered on: its "
              "stack starts at boot and rejoins; a's fencing wait and a lock request, "
              "without any fence_ack",
    tolerances=exact(*survivor_names("a_after_crash"), *survivor_names("a_after_rejoin"),
                      "a_activate_after_rejoin_exit"),
    simulate=_sim_crash_rejoin, recorders={"libvirt": _vm_crash_rejoin})


SITUATIONS = (CRASH, CRASH_REJOIN)
