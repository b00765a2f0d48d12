"""A drill driving the cluster stack and lvmlockd lockspaces on one node of the seed's pair.

What an operator sees: lvmlockd refuses to stop a lockspace with active LVs
(lvmlockd.c lockd_stop_vg: "LVs must first be deactivated"), dlm_controld refuses to
stop while lockspaces exist, a node whose lockspace is stopped cannot change the VG
(metadata.c: "Cannot access VG ... due to failed lock."), and cannot start it while
the DLM is down (lockd_start_vg, -EMANAGER); the node that stays keeps changing the VG
under manual fencing, because a clean leave is never fenced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stackdrill.api import LabOptions
from stackdrill.backends.sim import SimBackend
from stackdrill.drill.model import Step
from stackdrill.topology import Locking, Topology, load_topology

TOPOLOGIES = Path(__file__).resolve().parents[4] / "lab" / "topologies"
BOB = {"tool": "lvm", "host": "bob", "vg": "vg-shared"}
ALICE = {"tool": "lvm", "host": "alice", "vg": "vg-shared"}
STACK = {"tool": "cluster", "cluster": "drbd-pair", "host": "bob"}

# (command, ok, what the tool said)
RUNS: list[tuple[dict[str, Any], bool, str]] = [
    # built as on real guests, bob holds no LV lock (its guests are on alice); an LV it
    # creates is active there (ex) until deactivated
    ({**BOB, "op": "lvcreate", "lv": "scratch", "extents": 8}, True,
     "lvcreate vg-shared/scratch on bob"),
    ({**BOB, "op": "lock-stop"}, False,
     "LvmError: VG vg-shared stop failed: LVs must first be deactivated"),
    ({**STACK, "op": "stop"}, False, "StackRefused: bob: dlm_controld: shutdown ignored, "
                                     "active lockspaces (lvm_vg-shared)"),
    ({**BOB, "op": "deactivate", "lv": "scratch"}, True, "deactivate vg-shared/scratch on bob"),
    ({**BOB, "op": "deactivate", "lv": "lv-vm2"}, True, "deactivate vg-shared/lv-vm2 on bob"),
    ({**BOB, "op": "lock-stop"}, True, "lock-stop vg-shared/ on bob"),
    ({**STACK, "op": "stop"}, True, "cluster stack stop on bob"),
    # manual fencing, and yet alice's VG lock is granted: bob left cleanly
    ({**ALICE, "op": "lvcreate", "lv": "data-a", "extents": 8}, True,
     "lvcreate vg-shared/data-a on alice"),
    ({**BOB, "op": "lvcreate", "lv": "data-b", "extents": 8}, False,
     "LvmError: Cannot access VG vg-shared due to failed lock."),
    ({**BOB, "op": "lock-start"}, False,
     "LvmError: Start a lock manager, lvmlockd did not find one running.\n"
     "Skipping global lock: lockspace not found or started\n"
     "VG vg-shared start failed: lock manager dlm is not running"),
    ({**STACK, "op": "start"}, True, "cluster stack start on bob"),
    ({**BOB, "op": "lock-start"}, True, "lock-start vg-shared/ on bob"),
    ({**BOB, "op": "lvcreate", "lv": "data-b", "extents": 8}, True,
     "lvcreate vg-shared/data-b on bob"),
]


def _pair_with_bob_idle() -> Topology:
    """The seed's pair with both guests on alice: a node leaving cleanly first moves or
    stops its guests, since an LV a running guest holds open is not deactivated (lvm2
    activate.c lv_deactivate: "LV vg/lv in use: not deactivating")."""
    topo = load_topology(TOPOLOGIES / "two-node-clvm.yaml")
    guests = tuple(i.model_copy(update={"host": "alice"}) for i in topo.instances)
    return topo.model_copy(update={"instances": guests})


def test_a_node_leaves_cleanly_and_rejoins_while_the_other_keeps_changing_the_vg() -> None:
    topo = _pair_with_bob_idle()
    vg = topo.volume_groups[0].model_copy(update={"locking": Locking.LVMLOCKD})
    topo = topo.model_copy(update={"volume_groups": (vg,)})
    lab = SimBackend().create(topo, lab_name="t", seed=3,
                              options=LabOptions(write_interval_s=2.0))
    for n, (command, *_said) in enumerate(RUNS):
        run = Step.model_validate({"at": 0, "run": command}).run
        assert run is not None
        lab.execute(run, f"c{n}")
        lab.clock.sleep(10)
    results = lab.command_results()
    said = [(results[f"c{n}"].ok, results[f"c{n}"].detail) for n in range(len(RUNS))]
    assert said == [(ok, detail) for _command, ok, detail in RUNS]
    quorum = lab.observe().quorum["drbd-pair"]
    assert quorum["alice"].members == quorum["bob"].members == ("alice", "bob")
    assert quorum["alice"].fencing_pending == ()


def test_under_clvmd_the_stack_stops_once_the_node_holds_no_lv_locks_and_starts_in_the_join_time(
        ) -> None:
    topo = _pair_with_bob_idle()
    lab = SimBackend().create(topo, lab_name="t", seed=3,
                              options=LabOptions(write_interval_s=2.0))
    steps = [("refused", {**STACK, "op": "stop"}),
             ("off1", {**BOB, "op": "deactivate", "lv": "lv-vm1"}),
             ("off2", {**BOB, "op": "deactivate", "lv": "lv-vm2"}),
             ("stop", {**STACK, "op": "stop"}),
             ("clvmd", {**BOB, "op": "activate", "lv": "lv-vm2"}),
             ("start", {**STACK, "op": "start"})]
    for label, command in steps:
        run = Step.model_validate({"at": 0, "run": command}).run
        assert run is not None
        lab.execute(run, label)
        lab.clock.sleep(10)
    results = lab.command_results()
    assert results["refused"].detail.endswith("active lockspaces (clvmd)")
    assert results["stop"].ok
    assert results["clvmd"].detail.endswith("Internal cluster locking initialisation failed.")
    started = results["start"]
    assert started.ok
    assert started.finished - started.started == 1.0  # the sim's join round
