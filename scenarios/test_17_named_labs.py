"""Scenario 17: an engineer reproduces a failure by hand, one command at a time.

Molecule's create / converge / verify / destroy and containerlab's deploy / inspect /
destroy, for stackdrill: `stackdrill up` brings a lab up and keeps it; every later
command is a process of its own (as from another terminal) and acts on that same lab:
an operator command, a partition of the replication network and its heal, a host crash,
the recovery engine, the judge's checks, and `down`, after which nothing of the lab is
left. On the simulator each command replays the lab; on real guests the lab keeper holds
it between commands.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from scenario_helpers import ROOT

from stackdrill.backends import backend_class

TOPOLOGY = ROOT / "lab" / "topologies" / "drbd-pair.yaml"


def _commands(home: Path, name: str):  # type: ignore[no-untyped-def]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "STACKDRILL_HOME": str(home),
           "COLUMNS": "200"}

    def stackdrill(*args: str, lab: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "stackdrill", *args, *(["--lab", name] if lab else [])]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1800,
                              check=False)
        assert "Traceback" not in done.stderr, done.stderr
        return done

    return stackdrill


@pytest.mark.backends("sim", "libvirt")
@pytest.mark.vm
def test_a_lab_brought_up_by_one_command_is_driven_by_the_next_and_down_leaves_nothing(
        lab_backend: str, tmp_path: Path) -> None:
    """drbd-pair: cmp1 runs inst-a and inst-b on its DRBD Primary, cmp2 is the Secondary."""
    name = f"by-hand-{uuid.uuid4().hex[:6]}"
    stackdrill = _commands(tmp_path / "home", name)
    up = stackdrill("up", str(TOPOLOGY), "--backend", lab_backend)
    assert up.returncode == 0, up.stderr
    try:
        refused = stackdrill("exec", "drbdadm", "host=cmp2", "op=primary", "resource=r0")
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "Multiple primaries not allowed by config" in refused.stdout
        cut = stackdrill("inject", "partition", "groups=cmp1|cmp2", "network=repl")
        assert cut.returncode == 0 and cut.stdout.startswith("f1: partition"), cut.stderr
        healed = stackdrill("heal", "f1")
        assert healed.returncode == 0, healed.stderr
        crashed = stackdrill("inject", "host_crash", "host=cmp1")
        assert crashed.returncode == 0 and crashed.stdout.startswith("f2: host_crash")
        recovered = stackdrill("recover")
        assert recovered.returncode == 0, recovered.stdout + recovered.stderr
        assert recovered.stdout.count("│ recovered │") == 2, recovered.stdout
        verified = stackdrill("verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "0 acknowledged write(s) lost" in verified.stdout
        shown = stackdrill("status")
        assert shown.returncode == 0, shown.stderr
        assert "inst-a, inst-b" in shown.stdout.split("cmp2")[1].splitlines()[0]
        assert "faults in force: f2: host_crash host=cmp1" in shown.stdout
        listed = json.loads(stackdrill("list", "labs", "--json", lab=False).stdout)
        assert [r["backend"] for r in listed if r["lab"] == name] == [lab_backend]
    finally:
        down = stackdrill("down")
    assert down.returncode == 0, down.stderr
    listed = json.loads(stackdrill("list", "labs", "--json", lab=False).stdout)
    assert name not in [r["lab"] for r in listed]
    assert backend_class(lab_backend).teardown(name) == []  # nothing left to remove
