"""The LVM and cluster situations read the guests' answers the way a user reads them:
every line lvm2 printed but its warnings, and the nodes `dlm_tool status` says are
waiting to be fenced (outputs as lvm2 2.03.16 and dlm 4.2 printed them in the lab)."""

from __future__ import annotations

from stackdrill.backends.sim.lvm import LvmError
from stackdrill.conformance.clvm_lab import fence_pending
from stackdrill.conformance.situations import SITUATIONS
from stackdrill.conformance.situations.lvm_common import lvm_message, sim_answer

REFUSED = ("  LV locked by other host: vgc/lv1\n"
           "  Failed to lock logical volume vgc/lv1.\n")
STATUS_WAITING = ("cluster nodeid 1 quorate 1 ring seq 22 22\n"
                  "daemon now 66 fence_pid 0 \n"
                  "fence 2 nodedown delay actor 0 fail 1796444128 fence 0 now 1796444132\n"
                  "node 1 M add 19 rem 0 fail 0 fence 0 at 0 0\n"
                  "node 2 X add 49 rem 62 fail 62 fence 0 at 0 0\n")
STATUS_LEFT = ("cluster nodeid 1 quorate 1 ring seq 13 13\n"
               "daemon now 44 fence_pid 0 \n"
               "node 1 M add 19 rem 0 fail 0 fence 0 at 0 0\n"
               "node 2 X add 23 rem 38 fail 0 fence 0 at 0 0\n")


def test_every_line_but_warnings_is_the_message() -> None:
    assert lvm_message(REFUSED) == ("LV locked by other host: vgc/lv1 | "
                                    "Failed to lock logical volume vgc/lv1.")
    assert lvm_message("  WARNING: something\n  Retrying lock on VG vgc\n") is None


def test_the_simulator_answers_in_the_same_terms() -> None:
    said = sim_answer("x", LvmError("LV locked by other host: vgc/lv1\n"
                                    "Failed to lock logical volume vgc/lv1."))
    assert said["x_exit"].value == 5
    assert said["x_message"].value == lvm_message(REFUSED)
    assert sim_answer("x", None)["x_message"].value is None


def test_fence_pending_is_read_from_the_fence_lines_only() -> None:
    assert fence_pending(STATUS_WAITING) == "b"
    assert fence_pending(STATUS_LEFT) == ""


def test_the_lvm_and_cluster_situations_are_listed_and_recorded_on_libvirt() -> None:
    names = [n for n in SITUATIONS if n.startswith(("lvm-", "cluster-"))]
    assert len(names) == 9  # lvm 4, cluster 5
    assert all(SITUATIONS[n].backends == ("libvirt",) for n in names)
