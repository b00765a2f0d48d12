"""`stackdrill lint`: one line per danger, `file: path: danger CODE: why (shown by: DRILL)`;
exit 0 without a danger, 1 with one, 2 for a file that is not a valid topology or drill."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from stackdrill.cli import cli
from stackdrill.shipped import DRILLS, TOPOLOGIES


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def dangerous_file(tmp_path: Path) -> Path:
    """two-node-clvm made safe but for its quorum: two nodes, no two_node."""
    data = yaml.safe_load((TOPOLOGIES / "two-node-clvm.yaml").read_text())
    data["drbd"][0].update(fencing="resource-and-stonith", after_sb_1pri="disconnect")
    data["clusters"][0].update(two_node=False, expected_votes=2)
    path = tmp_path / "ops.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_topology_without_danger_exits_0_silently() -> None:
    code, out, err = invoke("lint", str(TOPOLOGIES / "nova-drbd.yaml"))
    assert (code, out, err) == (0, "", "")


def test_each_danger_is_one_line_with_its_path_code_and_drill(tmp_path: Path) -> None:
    path = dangerous_file(tmp_path)
    code, out, _err = invoke("lint", str(path))
    assert code == 1
    [line] = out.splitlines()
    assert line.startswith(f"{path}: clusters[0].two_node: danger "
                           "corosync-two-nodes-without-two-node: votequorum(5): ")
    assert line.endswith("(shown by: danger-corosync-two-nodes-without-two-node)")


def test_json_lists_the_dangers_with_what_their_drill_shows(tmp_path: Path) -> None:
    path = dangerous_file(tmp_path)
    code, out, _err = invoke("lint", str(path), "--json")
    assert code == 1
    [found] = json.loads(out)
    assert found["code"] == "corosync-two-nodes-without-two-node"
    assert found["path"] == "clusters[0].two_node"
    assert found["subject"] == "drbd-pair"
    assert "alice is not quorate once bob is lost" in found["shows"]


def test_a_drill_is_linted_for_its_topology_with_its_overrides() -> None:
    """quorum-no-two-node overrides two_node away: that is the danger it rehearses."""
    code, out, _err = invoke("lint", str(DRILLS / "quorum-no-two-node.yaml"))
    assert code == 1
    assert "topology.clusters[0].two_node: danger corosync-two-nodes-without-two-node" in out


def test_run_shows_each_danger_failing_its_drill(tmp_path: Path) -> None:
    code, out, _err = invoke("lint", str(dangerous_file(tmp_path)), "--run")
    assert code == 1
    assert ("danger-corosync-two-nodes-without-two-node: fail: quorum[drbd-pair]: alice: "
            "quorate=False, expected True") in out


def test_a_bad_file_is_named_with_its_problem_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "hosts": [{"name": "a", "roles": ["nope"]}]}))
    code, out, err = invoke("lint", str(path), str(TOPOLOGIES / "nova-drbd.yaml"))
    assert code == 2
    assert out == ""
    assert err.startswith(f"{path}: hosts[0].roles[0]: ")
    assert "Traceback" not in err
