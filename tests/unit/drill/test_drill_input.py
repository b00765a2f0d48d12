"""Drills that cannot do what they say are refused with `file: path: problem`: a topology
given as a drill, a drill naming itself, steps that never happen, heals that heal
nothing, expectations about hosts that do not exist, a workload that never writes or
writes without bound, LV names LVM refuses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stackdrill.drill import Drill, load_drill
from stackdrill.drill.load import load_any
from stackdrill.errors import DrillError
from stackdrill.topology import Topology

ROOT = Path(__file__).resolve().parents[3]
NOVA = ROOT / "lab" / "topologies" / "nova-drbd.yaml"
CLVM = ROOT / "lab" / "topologies" / "two-node-clvm.yaml"


def drill_file(tmp_path: Path, body: str, topology: Path = NOVA) -> Path:
    path = tmp_path / "d.yaml"
    path.write_text(f"name: d\ntopology: {topology}\nduration_s: 100\n{body}")
    return path


def errors(path: Path) -> list[str]:
    with pytest.raises(DrillError) as info:
        load_drill(path)
    return [line.removeprefix(f"{path}: ") for line in info.value.render().splitlines()]


# --- 9. what kind of file it is --------------------------------------------------------------

def test_a_topology_given_as_a_drill_says_so() -> None:
    assert errors(NOVA) == ["this is a topology, not a drill: a drill names it in `topology:`"]


def test_run_of_a_topology_exits_2_saying_so() -> None:
    done = subprocess.run([sys.executable, "-m", "stackdrill", "run", str(NOVA)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "this is a topology, not a drill" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_drill_whose_topology_is_itself_says_so(tmp_path: Path) -> None:
    path = tmp_path / "self.yaml"
    path.write_text("name: d\ntopology: self.yaml\nexpect: [{check: exactly_once}]\n")
    assert errors(path) == ["topology: names this drill file itself, not a topology"]


def test_a_drill_whose_topology_is_a_drill_says_so(tmp_path: Path) -> None:
    other = ROOT / "lab" / "drills" / "nova-host-failure.yaml"
    path = drill_file(tmp_path, "expect: [{check: exactly_once}]\n", topology=other)
    assert errors(path) == [f"topology: {other}: this is a drill, not a topology: run it, "
                            "or name a topology file"]


def test_load_any_parses_once_and_tells_the_kinds_apart(tmp_path: Path) -> None:
    assert isinstance(load_any(NOVA), Topology)
    assert isinstance(load_any(drill_file(tmp_path, "expect: [{check: exactly_once}]\n")), Drill)


# --- 7. schedules that cannot happen ---------------------------------------------------------

def test_a_step_at_the_drills_end_never_happens(tmp_path: Path) -> None:
    path = drill_file(tmp_path, "schedule: [{at: 100, inject: {kind: host_crash, host: cmp1}}]\n"
                      "expect: [{check: exactly_once}]\n")
    assert errors(path) == ["schedule[0].at: 100.0 s is not before the drill ends (100.0 s): "
                            "it would never happen"]


def test_a_heal_before_its_inject_by_time_is_refused(tmp_path: Path) -> None:
    path = drill_file(tmp_path, "schedule:\n"
                      "  - {at: 50, id: f, inject: {kind: link_down, host: cmp1, network: mgmt}}\n"
                      "  - {at: 40, heal: f}\n"
                      "expect: [{check: exactly_once}]\n")
    assert errors(path) == ["schedule[1].at: the heal of 'f' at 40.0 s comes before its inject "
                            "at 50.0 s: it would heal nothing"]


def test_a_heal_listed_before_its_inject_but_later_in_time_is_fine(tmp_path: Path) -> None:
    path = drill_file(tmp_path, "schedule:\n"
                      "  - {at: 60, heal: f}\n"
                      "  - {at: 50, id: f, inject: {kind: link_down, host: cmp1, network: mgmt}}\n"
                      "expect: [{check: exactly_once}]\n")
    assert load_drill(path).spec.schedule[0].heal == "f"


def test_a_second_heal_of_one_fault_is_refused(tmp_path: Path) -> None:
    path = drill_file(tmp_path, "schedule:\n"
                      "  - {at: 10, id: f, inject: {kind: link_down, host: cmp1, network: mgmt}}\n"
                      "  - {at: 20, heal: f}\n  - {at: 30, heal: f}\n"
                      "expect: [{check: exactly_once}]\n")
    assert errors(path) == ["schedule[2].heal: 'f' is already healed by schedule[1]"]


def test_expectations_name_only_hosts_and_nodes_that_exist(tmp_path: Path) -> None:
    path = drill_file(tmp_path, "expect:\n"
                      "  - {check: not_evacuated, hosts: [cmp1, ghost]}\n"
                      "  - {check: blocked, hosts: [spook]}\n"
                      "  - {check: recovered, hosts_after: [cmp2, nowhere]}\n"
                      "  - {check: drbd, resource: r0, nodes: {sto1: {role: Primary}, "
                      "cmp1: {role: Secondary}}}\n", topology=NOVA)
    assert errors(path) == [
        "expect[0].hosts[1]: unknown host 'ghost'",
        "expect[1].hosts[0]: unknown host 'spook'",
        "expect[2].hosts_after[1]: unknown host 'nowhere'",
        "expect[3].nodes.cmp1: unknown node of r0 'cmp1'",
    ]


def test_quorum_expectations_name_cluster_nodes(tmp_path: Path) -> None:
    path = drill_file(tmp_path, "expect:\n"
                      "  - {check: quorum, cluster: drbd-pair, "
                      "quorate: {alice: true, eve: true}}\n",
                      topology=CLVM)
    assert errors(path) == ["expect[0].quorate.eve: unknown node of drbd-pair 'eve'"]


# --- 6. a workload that writes, within bounds ------------------------------------------------

@pytest.mark.parametrize(("value", "says"), [
    ("1e-6", "greater than or equal to 0.01"),
    (".inf", "finite number"),
    (".nan", "finite number"),
    ("100", "is not shorter than the drill (100.0 s)"),
    ("0.0009", "greater than or equal to 0.01"),
])
def test_write_interval_is_finite_and_bounded(tmp_path: Path, value: str, says: str) -> None:
    path = drill_file(tmp_path, f"workload: {{write_interval_s: {value}}}\n"
                      "expect: [{check: acked_writes}]\n")
    (found,) = errors(path)
    assert found.startswith("workload.write_interval_s: ") and says in found


def test_write_count_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(f"name: d\ntopology: {NOVA}\nduration_s: 86400\n"
                    "workload: {write_interval_s: 0.5}\nexpect: [{check: acked_writes}]\n")
    (found,) = errors(path)
    assert "more than 100000 writes per instance" in found


# --- 4. LV/VG names in operator commands -----------------------------------------------------

@pytest.mark.parametrize(("run", "where", "says"), [
    ("{tool: lvm, host: alice, op: lvcreate, vg: vg-shared, lv: snapshot1, extents: 1}",
     "schedule[0].run.lv", "reserved by LVM"),
    ("{tool: lvm, host: alice, op: lvcreate, vg: vg-shared, lv: 'x;reboot', extents: 1}",
     "schedule[0].run.lv", "characters LVM refuses"),
    ("{tool: lvm, host: alice, op: refresh, vg: '-vg'}", "schedule[0].run.vg", "starts with '-'"),
])
def test_lvm_command_names_follow_lvm(tmp_path: Path, run: str, where: str, says: str) -> None:
    path = drill_file(tmp_path, f"schedule: [{{at: 1, run: {run}}}]\n"
                      "expect: [{check: exactly_once}]\n", topology=CLVM)
    (found,) = errors(path)
    assert found.startswith(f"{where}: ") and says in found


# --- 8. error paths in drills ----------------------------------------------------------------

def test_error_paths_drop_only_pydantics_parts(tmp_path: Path) -> None:
    path = drill_file(tmp_path, "workload: {instances: 5}\n"
                      "schedule: [{at: 1, inject: {kind: host_crash, host: [cmp1]}}]\n"
                      "expect: [{check: drbd, resource: r0, split_brain: maybe}]\n")
    paths = [line.split(": ", 1)[0] for line in errors(path)]
    assert paths == ["workload.instances", "workload.instances",
                     "schedule[0].inject.host", "expect[0].split_brain"]


# --- the cluster stack and lvmlockd lockspaces, driven from a drill -------------------------

@pytest.mark.parametrize(("run", "where", "says"), [
    ("{tool: cluster, op: stop, cluster: drbd-pair}", "schedule[0].run",
     "stop names the node as host (and no victim)"),
    ("{tool: cluster, op: start, cluster: drbd-pair, victim: bob}", "schedule[0].run",
     "start names the node as host (and no victim)"),
    ("{tool: cluster, op: fence_ack_manual, cluster: drbd-pair, host: bob}", "schedule[0].run",
     "fence_ack_manual names the fenced node as victim (and no host)"),
    ("{tool: cluster, op: restart, cluster: drbd-pair, host: bob}", "schedule[0].run.op",
     "'fence_ack_manual', 'start' or 'stop'"),
    ("{tool: lvm, host: bob, op: lock-stop, vg: vg-shared, lv: lv-vm1}", "schedule[0].run",
     "lock-stop acts on the whole VG: give no lv or extents"),
])
def test_stack_and_lockspace_commands_say_what_is_wrong(tmp_path: Path, run: str, where: str,
                                                        says: str) -> None:
    path = drill_file(tmp_path, f"schedule: [{{at: 1, run: {run}}}]\n"
                      "expect: [{check: exactly_once}]\n", topology=CLVM)
    (found,) = errors(path)
    assert found.startswith(f"{where}: ") and says in found, found


def test_a_stack_command_names_a_node_of_its_cluster(tmp_path: Path) -> None:
    path = drill_file(tmp_path, "schedule: [{at: 1, run: {tool: cluster, op: stop, "
                      "cluster: storage, host: cmp1}}]\nexpect: [{check: exactly_once}]\n")
    assert errors(path) == ["schedule[0].run.host: 'cmp1' is not a node of cluster 'storage'"]


def test_commands_expectations_name_command_steps(tmp_path: Path) -> None:
    path = drill_file(tmp_path, "schedule:\n"
                      "  - {at: 1, run: {tool: cluster, op: stop, cluster: drbd-pair, host: bob}}\n"
                      "  - {at: 2, inject: {kind: host_crash, host: alice}}\n"
                      "expect: [{check: commands, succeeded: [0, 1], failed: [7]}]\n",
                      topology=CLVM)
    assert errors(path) == [
        "expect[0].succeeded[1]: schedule[1] is not a command step (lvm, drbdadm, disk or "
        "cluster)",
        "expect[0].failed[0]: schedule[7] is not a command step (lvm, drbdadm, disk or "
        "cluster)"]


def test_pending_names_command_steps_and_says_only_finished_ones(tmp_path: Path) -> None:
    path = drill_file(tmp_path, "schedule:\n"
                      "  - {at: 1, run: {tool: cluster, op: stop, cluster: drbd-pair, host: bob}}\n"
                      "  - {at: 2, inject: {kind: host_crash, host: alice}}\n"
                      "expect: [{check: commands, pending: [1]}]\n", topology=CLVM)
    assert errors(path) == [
        "expect[0].pending[0]: schedule[1] is not a command step (lvm, drbdadm, disk or "
        "cluster)"]
    path = drill_file(tmp_path, "schedule:\n"
                      "  - {at: 1, run: {tool: cluster, op: stop, cluster: drbd-pair, host: bob}}\n"
                      "expect: [{check: commands, pending: [0], says: {0: stopped}}]\n",
                      topology=CLVM)
    (found,) = errors(path)
    assert found.startswith("expect[0]: ") and "says names [0]: only a command in succeeded " \
        "or failed prints something" in found, found


def test_an_expectation_at_a_checkpoint_names_an_observe_step(tmp_path: Path) -> None:
    path = drill_file(tmp_path, "schedule:\n"
                      "  - {at: 1, observe: mid}\n"
                      "  - {at: 2, observe: mid}\n"
                      "expect:\n"
                      "  - {check: quorum, cluster: drbd-pair, at: mid, quorate: {alice: true}}\n"
                      "  - {check: drbd, resource: r0, at: later, "
                      "nodes: {alice: {role: Primary}}}\n",
                      topology=CLVM)
    assert errors(path) == ["schedule[1].observe: duplicate observe label 'mid'",
                            "expect[1].at: no observe step labelled 'later'"]


def test_a_corruption_cannot_be_healed(tmp_path: Path) -> None:
    path = drill_file(tmp_path, "schedule:\n"
                      "  - {at: 1, id: rot, inject: {kind: corrupt_blocks, host: alice, "
                      "disk: sdb}}\n"
                      "  - {at: 2, heal: rot}\n"
                      "expect: [{check: exactly_once}]\n", topology=CLVM)
    (found,) = errors(path)
    assert found.startswith("schedule[1].heal: corrupt_blocks cannot be healed: only a "
                            "resync from a good replica repairs the blocks"), found


def test_a_bad_stack_command_exits_2_with_file_path_problem(tmp_path: Path) -> None:
    path = drill_file(tmp_path, "schedule: [{at: 1, run: {tool: cluster, op: stop, "
                      "cluster: drbd-pair}}]\nexpect: [{check: exactly_once}]\n", topology=CLVM)
    done = subprocess.run([sys.executable, "-m", "stackdrill", "run", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert f"{path}: schedule[0].run: " in done.stderr
    assert "Traceback" not in done.stderr


def test_a_throughput_check_reads_iperf3_steps_and_an_overlay_check_probe_steps(
        tmp_path: Path) -> None:
    path = drill_file(tmp_path, "schedule:\n"
                      "  - {at: 1, run: {tool: probe, src: web1, dst: web2, label: p}}\n"
                      "  - {at: 2, run: {tool: iperf3, src: web1, dst: web2, label: t}}\n"
                      "expect:\n"
                      "  - {check: throughput, probes: [p, t, x]}\n"
                      "  - {check: overlay, probes: [t]}\n")
    assert errors(path) == [
        "expect[0].probes[0]: the throughput check reads iperf3 steps; 'p' labels a step of "
        "tool probe",
        "expect[0].probes[2]: no iperf3 step labelled 'x'",
        "expect[1].probes[0]: the overlay check reads probe steps; 't' labels a step of tool "
        "iperf3"]


def test_a_throughput_range_must_be_a_range(tmp_path: Path) -> None:
    path = drill_file(tmp_path, "schedule:\n"
                      "  - {at: 2, run: {tool: iperf3, src: web1, dst: web2, label: t}}\n"
                      "expect: [{check: throughput, probes: [t], min_ratio: 0.99, "
                      "max_ratio: 0.9}]\n")
    assert errors(path) == ["expect[0]: min_ratio 0.99 is above max_ratio 0.9"]
