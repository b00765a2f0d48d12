"""The pytest plugin's lab fixtures on real namespaces: a module's lab is brought up once
and removed after its last test; --lab-keep leaves it standing after pytest exits."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest
import yaml
from netns_helpers import needs_root, small_topology_data

from stackdrill.backends.netns.backend import NetnsBackend

pytestmark = [needs_root, pytest.mark.netns]

pytest_plugins = ["pytester"]

SCENARIO = """
import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.topology("topology.yaml")

def test_first(module_lab):
    Path("seen.json").write_text(json.dumps(
        [module_lab.name, module_lab.names.host_ns("cmp1")]))

def test_second(module_lab, faults):
    name, ns = json.loads(Path("seen.json").read_text())
    assert module_lab.name == name  # the same lab, not a second one
    faults.inject({"kind": "host_crash", "host": "cmp2"})
"""


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


@pytest.fixture
def scenario(pytester: pytest.Pytester) -> pytest.Pytester:
    name = f"plug{uuid.uuid4().hex[:6]}"  # names are machine-wide: never another run's
    data = small_topology_data(name, with_volume=False)
    (pytester.path / "topology.yaml").write_text(yaml.safe_dump(data))
    pytester.makepyfile(test_shared=SCENARIO)
    return pytester


def test_a_module_lab_on_netns_is_one_lab_removed_after_the_module(
        scenario: pytest.Pytester) -> None:
    result = scenario.runpytest_subprocess("-p", "no:cacheprovider", "--lab-backend", "netns")
    result.assert_outcomes(passed=2)
    name, ns = json.loads((scenario.path / "seen.json").read_text())
    assert ns not in namespaces()
    assert name not in NetnsBackend.kept_labs()


def test_lab_keep_leaves_the_module_lab_standing_after_pytest_exits(
        scenario: pytest.Pytester) -> None:
    result = scenario.runpytest_subprocess("-p", "no:cacheprovider", "--lab-backend", "netns",
                                           "--lab-keep")
    result.assert_outcomes(passed=2)
    name, ns = json.loads((scenario.path / "seen.json").read_text())
    try:
        assert ns in namespaces()
        assert name in NetnsBackend.kept_labs()
    finally:
        NetnsBackend.teardown(name)
    assert ns not in namespaces()
