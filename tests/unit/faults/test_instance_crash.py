"""The instance_crash fault as a value and as a drill step: it names an instance (no host:
the host is wherever it runs when it dies), it is one-shot (a heal is refused with the
reason), an instance the topology lacks is refused before anything runs, and a backend
that cannot kill an instance's process refuses the drill with its name."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from stackdrill.backends import backend_class
from stackdrill.drill import load_drill
from stackdrill.drill.support import unsupported
from stackdrill.errors import DrillError
from stackdrill.faults import FAULT_KINDS, UNHEALABLE, FaultAdapter, InstanceCrash, describe

ROOT = Path(__file__).resolve().parents[3]
PAIR = ROOT / "lab" / "topologies" / "drbd-pair.yaml"


def drill_file(tmp_path: Path, schedule: str) -> Path:
    path = tmp_path / "d.yaml"
    path.write_text(f"name: d\ntopology: {PAIR}\nduration_s: 100\nschedule:\n{schedule}"
                    "expect: [{check: exactly_once}]\n")
    return path


def errors(path: Path) -> list[str]:
    with pytest.raises(DrillError) as info:
        load_drill(path)
    return [line.removeprefix(f"{path}: ") for line in info.value.render().splitlines()]


def test_it_names_an_instance_and_no_host() -> None:
    fault = FaultAdapter.validate_python({"kind": "instance_crash", "instance": "inst-a"})
    assert fault == InstanceCrash(instance="inst-a")
    assert fault.targets() == ()
    assert describe(fault) == "instance_crash instance=inst-a"
    assert "instance_crash" in FAULT_KINDS and "instance_crash" in UNHEALABLE
    with pytest.raises(ValueError, match="instance"):
        FaultAdapter.validate_python({"kind": "instance_crash", "host": "cmp1"})


def test_an_unknown_instance_is_refused_at_validation(tmp_path: Path) -> None:
    path = drill_file(tmp_path, "  - {at: 1, inject: {kind: instance_crash, instance: nope}}\n")
    assert errors(path) == ["schedule[0].inject.instance: unknown instance 'nope'"]


def test_an_unknown_instance_exits_2_with_file_path_problem(tmp_path: Path) -> None:
    path = drill_file(tmp_path, "  - {at: 1, inject: {kind: instance_crash, instance: nope}}\n")
    done = subprocess.run([sys.executable, "-m", "stackdrill", "run", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert f"{path}: schedule[0].inject.instance: unknown instance 'nope'" in done.stderr


def test_a_crash_cannot_be_healed(tmp_path: Path) -> None:
    path = drill_file(tmp_path, "  - {at: 1, id: k, inject: {kind: instance_crash, "
                                "instance: inst-a}}\n  - {at: 2, heal: k}\n")
    (found,) = errors(path)
    assert found.startswith("schedule[1].heal: instance_crash cannot be healed: a killed "
                            "process is not brought back"), found


def test_the_backends_that_can_kill_an_instance_say_so_and_one_that_cannot_refuses_it(
        tmp_path: Path) -> None:
    for name in ("sim", "netns", "libvirt", "vagrant"):
        assert backend_class(name).capabilities.supports_fault("instance_crash"), name
    drill = load_drill(drill_file(
        tmp_path, "  - {at: 1, inject: {kind: instance_crash, instance: inst-a}}\n"))
    full = backend_class("libvirt").capabilities
    caps = replace(full, faults=full.faults - {"instance_crash"})
    assert "schedule[0].inject: backend 'other' cannot realise fault 'instance_crash'" \
        in unsupported(drill, "other", caps)
