"""Operator commands on the simulated lab: every lvm, drbdadm, disk, cluster, probe and
iperf3 operation answers as its tool would and takes the simulated time the tool takes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stackdrill.api import LabOptions
from stackdrill.backends.sim import SimBackend
from stackdrill.backends.sim.lvm import LAB_START_JITTER_S
from stackdrill.drill.model import Step
from stackdrill.topology import load_topology

TOPOLOGIES = Path(__file__).resolve().parents[4] / "lab" / "topologies"
VG = {"tool": "lvm", "host": "sto1", "vg": "cinder-volumes"}
R0 = {"tool": "drbdadm", "resource": "r0"}

METADATA_CHANGES = {"lvcreate", "lvextend", "lvremove"}
# (command, ok, what the tool said, seconds it took, without start-up jitter)
RUNS: list[tuple[dict[str, Any], bool, str, float]] = [
    ({**VG, "op": "lvcreate", "lv": "x", "extents": 2}, True,
     "lvcreate cinder-volumes/x on sto1", 0.303),
    ({**VG, "op": "lvextend", "lv": "x", "extents": 3}, True,
     "lvextend cinder-volumes/x on sto1", 0.303),
    ({**VG, "op": "deactivate", "lv": "x"}, True, "deactivate cinder-volumes/x on sto1", 0.05),
    ({**VG, "op": "activate", "lv": "x", "mode": "ex"}, True,
     "activate cinder-volumes/x on sto1", 0.101),
    ({**VG, "op": "lvremove", "lv": "x"}, True, "lvremove cinder-volumes/x on sto1", 0.253),
    ({**VG, "op": "refresh"}, True, "refresh cinder-volumes/ on sto1", 0.101),
    ({**R0, "host": "sto2", "op": "disconnect"}, True, "drbdadm disconnect r0 on sto2", 0),
    ({**R0, "host": "sto2", "op": "discard-my-data"}, True,
     "drbdadm discard-my-data r0 on sto2", 0),
    ({**R0, "host": "sto2", "op": "connect"}, False,
     "DrbdError: r0: Failure: (125) Device has a net-config (use disconnect first)", 0),
    ({**R0, "host": "sto2", "op": "detach"}, True, "drbdadm detach r0 on sto2", 0),
    ({**R0, "host": "sto2", "op": "attach"}, True, "drbdadm attach r0 on sto2", 0),
    ({**R0, "host": "sto2", "op": "primary"}, False,
     "DrbdError: r0: State change failed: (-1) Multiple primaries not allowed by config",
     0.6),  # drbd_set_role waits (ping-timeout + 0.1 s) for the peer to be found dead
    # the guests' LVs are active on sto1: device-mapper holds /dev/drbd0 open there
    ({**R0, "host": "sto1", "op": "secondary"}, False,
     "DrbdError: r0: State change failed: (-12) Device is held open by someone", 0),
    # Connected: sanitize_state turns Outdated back into UpToDate, SS_NOTHING_TO_DO
    ({**R0, "host": "sto2", "op": "outdate"}, True, "drbdadm outdate r0 on sto2", 0),
    ({**R0, "host": "sto9", "op": "attach"}, False, "DrbdError: r0: not defined on host 'sto9'",
     0),
    # a whole-disk copy of a disk DRBD has attached is refused (fuzzy; a restore corrupts)
    ({"tool": "disk", "host": "sto2", "op": "save", "disk": "sdb"}, False,
     "DrbdError: r0: sto2's backing disk is attached: detach it first", 0),
    ({"tool": "disk", "host": "sto2", "op": "restore", "disk": "sdb"}, False,
     "NoSavedCopy: sto2/sdb: no copy of this disk was saved", 0),
    ({"tool": "disk", "host": "sto2", "op": "replace", "disk": "sdb"}, True, "", 0),
    ({"tool": "cluster", "op": "fence_ack_manual", "cluster": "storage", "victim": "sto2"},
     True, "", 0),
    ({"tool": "probe", "src": "web1", "dst": "web2", "label": "p"}, True,
     "ping reply; 1422-byte DF ping reply; pmtu 1450; arp fa:16:3e:00:00:02", 0.002),
    # two 3 s iperf3 runs after the pings that open the stream; 1 Gbit/s tunnel network:
    # TCP payload (timestamps on: 52 bytes of headers) of 1514 wire bytes per frame:
    # 1398 over the overlay, 1448 over the underlay
    ({"tool": "iperf3", "src": "web1", "dst": "web2", "label": "t"}, True,
     "overlay 923 Mbit/s; underlay cmp1->cmp2 956 Mbit/s", 6.001),
]


def test_each_command_answers_as_its_tool_and_takes_its_time() -> None:
    lab = SimBackend().create(load_topology(TOPOLOGIES / "nova-drbd.yaml"), lab_name="t",
                              seed=3, options=LabOptions(write_interval_s=2.0))
    for n, (command, *_said) in enumerate(RUNS):
        run = Step.model_validate({"at": 0, "run": command}).run  # as a drill step has it
        assert run is not None
        lab.execute(run, f"c{n}")
        lab.clock.sleep(30)
    results = lab.command_results()
    for n, (command, ok, detail, took) in enumerate(RUNS):
        result = results[f"c{n}"]
        assert (result.ok, result.detail) == (ok, detail), command
        extra = result.finished - result.started - took
        if command.get("op") in METADATA_CHANGES:  # plus its seeded start-up jitter
            assert -1e-3 <= extra <= LAB_START_JITTER_S + 1e-3, command
        else:
            assert extra == pytest.approx(0, abs=1e-3), command
