"""The Vagrantfile reads the same topologies and names things as the libvirt backend does."""

from __future__ import annotations

import json
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
    env = {**vagrant_env(tmp_path), "STACKDRILL_TOPOLOGY": str(topology),
           "STACKDRILL_LAB": "lab", "VAGRANT_DOTFILE_PATH": str(tmp_path / ".vagrant")}
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
    # no host address, no DHCP, no NAT: like the libvirt backend's networks (made by it)
    assert 'libvirt__forward_mode: "veryisolated"' in source


def test_vagrantfile_is_found_from_inside_the_repo(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.delenv("STACKDRILL_VAGRANT_DIR", raising=False)
    assert find_vagrantfile(ROOT / "src" / "stackdrill") == ROOT / "Vagrantfile"
    # from a directory outside any checkout, the installed-in-place package's checkout
    assert find_vagrantfile(tmp_path) == ROOT / "Vagrantfile"
    env = vagrant_env(Path("/w"))
    assert env["VAGRANT_HOME"] == "/w/home"  # never the user's ~/.vagrant.d
    assert "VAGRANT_HOME" not in os.environ or os.environ["VAGRANT_HOME"] != "/w/home"


RUBY_ARGS = """
require "yaml"
require "digest"
require "ipaddr"
require "json"
%s
topology = YAML.safe_load(File.read(ARGV[0]))
nets = host_networks(topology, "cmp1", "repl")
puts JSON.generate({"args" => kernel_args("lab", "cmp1", nets, nil),
                    "tap" => lab_tap("lab", "cmp1", "repl")})
"""


@pytest.mark.skipif(shutil.which("ruby") is None, reason="ruby is not installed")
def test_vagrantfile_gives_the_guest_the_libvirt_backends_nics_on_its_command_line() -> None:
    """guest-init.sh names and addresses each NIC from `sd.net=NAME,MAC,ADDRESS/PREFIX,MTU`:
    the names, MACs and addresses must be the libvirt backend's (its faults and the
    provisioning find NICs by them), the SSH network first (Vagrant asks the agent for the
    first NIC's address), and the tap names its bridge-port faults know."""
    source = (ROOT / "Vagrantfile").read_text()
    defs = "\n".join(re.findall(r"^def .*?^end$", source, re.S | re.M))
    out = subprocess.run(["ruby", "-e", RUBY_ARGS % defs,
                          str(ROOT / "lab/topologies/drbd-pair.yaml")],
                         capture_output=True, text=True, timeout=60, check=True)
    got = json.loads(out.stdout)
    names = LabNames("lab")
    assert got["args"] == [
        f"sd.net=repl,{names.mac('cmp1', 'repl')},10.81.0.11/24,1500",
        f"sd.net=mgmt,{names.mac('cmp1', 'mgmt')},10.71.0.11/24,1500",
    ]
    assert got["tap"] == names.tap("cmp1", "repl")
