"""The Vagrantfile reads the same topologies and names things as the libvirt backend does."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from stackdrill.backends.libvirt.naming import LabNames
from stackdrill.backends.vagrant.backend import find_vagrantfile, vagrant_env

ROOT = Path(__file__).resolve().parents[4]
TOPOLOGIES = sorted((ROOT / "lab" / "topologies").glob("*.yaml"))


@pytest.mark.skipif(shutil.which("vagrant") is None, reason="vagrant is not installed")
@pytest.mark.parametrize("topology", TOPOLOGIES, ids=lambda p: p.name)
def test_vagrant_validate_accepts_every_topology(topology: Path, tmp_path: Path) -> None:
    """`vagrant validate` checks the libvirt provider's settings (unknown options fail it)."""
    env = vagrant_env(topology, "lab", tmp_path)
    out = subprocess.run(["vagrant", "validate"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "validated successfully" in out.stdout


@pytest.mark.skipif(shutil.which("ruby") is None, reason="ruby is not installed")
def test_vagrantfile_macs_match_the_libvirt_backend() -> None:
    """Faults find a Vagrant VM's NIC by MAC, so Ruby and Python must derive the same one."""
    source = (ROOT / "Vagrantfile").read_text()
    match = re.search(r"^def lab_mac.*?^end$", source, re.S | re.M)
    assert match is not None
    script = match.group(0) + '\nrequire "digest"\nputs lab_mac("lab", "alice", "repl")\n'
    out = subprocess.run(["ruby", "-e", "require 'digest'\n" + script], capture_output=True,
                         text=True, timeout=60, check=True)
    assert out.stdout.strip() == LabNames("lab").mac("alice", "repl")


def test_vagrantfile_names_domains_and_networks_like_the_libvirt_backend() -> None:
    source = (ROOT / "Vagrantfile").read_text()
    names = LabNames("LAB")
    assert 'lv.default_prefix = "sd_#{lab}_"' in source
    assert names.domain("HOST") == "sd_LAB_HOST"
    assert 'libvirt__network_name: "sd_#{lab}_#{net.fetch(\'name\')}"' in source
    assert names.network("NET") == "sd_LAB_NET"
    assert 'libvirt__forward_mode: "none"' in source  # isolated, like the libvirt backend


def test_vagrantfile_is_found_from_inside_the_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STACKDRILL_VAGRANT_DIR", raising=False)
    assert find_vagrantfile(ROOT / "src" / "stackdrill") == ROOT
    env = vagrant_env(Path("/t.yaml"), "x", Path("/w"))
    assert env["VAGRANT_DOTFILE_PATH"] == "/w/.vagrant"
    assert os.environ.get("STACKDRILL_LAB") != "x"  # the caller's environment is untouched
