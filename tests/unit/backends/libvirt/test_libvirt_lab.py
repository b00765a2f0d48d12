"""The libvirt lab against libvirt's in-process `test:///default` driver.

The test driver keeps domains, networks and pools in memory and supports define, create,
destroy, suspend, resume and reset, which is what these tests observe through libvirt itself
(the same calls `virsh list`, `virsh net-list` and `virsh vol-list` make).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

libvirt = pytest.importorskip("libvirt")

from libvirt_support import ROOT, TEST_URI, two_node, unique_lab  # noqa: E402

from stackdrill.api import AttachMode, DriverError, PowerState, VolumePath  # noqa: E402
from stackdrill.backends.libvirt import LibvirtBackend  # noqa: E402
from stackdrill.backends.libvirt.agent import ShellResult  # noqa: E402
from stackdrill.backends.libvirt.lab import LibvirtLab  # noqa: E402
from stackdrill.backends.libvirt.naming import LabNames  # noqa: E402
from stackdrill.backends.libvirt.teardown import lab_domains  # noqa: E402
from stackdrill.backends.libvirt.xmlgen import read_domain  # noqa: E402
from stackdrill.errors import LabNotReadyError, StackdrillError, UnsupportedError  # noqa: E402
from stackdrill.faults import (  # noqa: E402
    Cut,
    DiskFailure,
    HostCrash,
    HostHang,
    HostReboot,
    LinkDown,
    OverlayFdbStale,
    PacketLoss,
    Partition,
    RateLimit,
    SlowDisk,
    TunnelEndpointDown,
    UnderlayMtu,
)
from stackdrill.topology import load_topology  # noqa: E402


@pytest.fixture
def conn() -> Iterator[libvirt.virConnect]:
    c = libvirt.open(TEST_URI)
    yield c
    c.close()


@pytest.fixture
def lab() -> Iterator[LibvirtLab]:
    backend = LibvirtBackend(TEST_URI, lab_root=Path("/stackdrill-test"))
    with backend.create(two_node(), lab_name=unique_lab("lab"), seed=1) as created:
        yield created


def domain_names(conn: libvirt.virConnect) -> set[str]:
    return {d.name() for d in conn.listAllDomains()}


def test_up_defines_and_starts_one_marked_domain_per_host(
        lab: LibvirtLab, conn: libvirt.virConnect) -> None:
    names = LabNames(lab.name)
    ours = {names.domain("alice"), names.domain("bob")}
    assert ours <= domain_names(conn)
    for host in ("alice", "bob"):
        dom = conn.lookupByName(names.domain(host))
        assert dom.isActive()
        root = ET.fromstring(dom.XMLDesc(0))
        assert root.get("type") == "qemu"
        assert int(root.findtext("memory") or 0) == 512 * 1024  # capped from 16 GiB
        assert read_domain(dom.XMLDesc(0)).disks.keys() == {"vda", "vdb", "vdc"}
    assert "test" in domain_names(conn)  # the driver's own domain is untouched


def test_up_creates_isolated_networks_per_topology_network(
        lab: LibvirtLab, conn: libvirt.virConnect) -> None:
    names = LabNames(lab.name)
    for net in ("mgmt", "repl"):
        obj = conn.networkLookupByName(names.network(net))
        assert obj.isActive()
        root = ET.fromstring(obj.XMLDesc(0))
        assert root.find("ip") is None and root.find("forward") is None
        bridge = root.find("bridge")
        assert bridge is not None and bridge.get("name") == names.bridge(net)
    mtu = ET.fromstring(conn.networkLookupByName(names.network("repl")).XMLDesc(0)).find("mtu")
    assert mtu is not None and mtu.get("size") == "9000"


def test_each_node_gets_an_overlay_of_the_image_and_capped_data_disks(
        lab: LibvirtLab, conn: libvirt.virConnect) -> None:
    """Data disks are capped (a 100 GB production disk would take hours to resync under TCG)."""
    pool = conn.storagePoolLookupByName(LabNames(lab.name).pool())
    vols = {v.name(): v for v in pool.listAllVolumes()}
    assert set(vols) == {f"{h}-{d}.qcow2" for h in ("alice", "bob") for d in ("root", "sdb", "sdc")}
    root = ET.fromstring(vols["alice-root.qcow2"].XMLDesc(0))
    assert root.findtext("backingStore/path") == lab.image.root
    assert vols["alice-sdb.qcow2"].info()[1] == 256 << 20
    assert vols["alice-sdc.qcow2"].info()[1] == 256 << 20


def test_host_crash_is_a_power_cut_seen_by_the_power_driver(lab: LibvirtLab) -> None:
    power = lab.drivers.power
    assert power.state("alice") is PowerState.ON
    lab.inject(HostCrash(host="alice"))
    assert power.state("alice") is PowerState.OFF
    assert power.state("bob") is PowerState.ON
    lab.heal(HostCrash(host="alice"))
    assert power.state("alice") is PowerState.ON


def test_crash_without_power_back_stays_off(lab: LibvirtLab) -> None:
    fault = HostCrash(host="bob", power_back=False)
    lab.inject(fault)
    lab.heal(fault)
    assert lab.drivers.power.state("bob") is PowerState.OFF


def test_hang_is_a_suspended_domain_and_heals_by_resume(lab: LibvirtLab) -> None:
    lab.inject(HostHang(host="bob"))
    assert lab.drivers.power.state("bob") is PowerState.HUNG
    lab.heal(HostHang(host="bob"))
    assert lab.drivers.power.state("bob") is PowerState.ON


def test_reboot_resets_and_the_host_keeps_running(lab: LibvirtLab) -> None:
    lab.inject(HostReboot(host="alice"))
    assert lab.drivers.power.state("alice") is PowerState.ON
    assert any("inject fault=host_reboot host=alice" in line for line in lab.trace())


def test_disk_failure_removes_the_data_disk_and_heal_returns_it(lab: LibvirtLab) -> None:
    fault = DiskFailure(host="alice", disk="sdb")
    lab.inject(fault)
    assert set(read_domain(lab.current_xml("alice")).disks) == {"vda", "vdc"}
    assert set(read_domain(lab.current_xml("bob")).disks) == {"vda", "vdb", "vdc"}
    lab.heal(fault)
    assert read_domain(lab.current_xml("alice")).disks["vdb"].endswith("alice-sdb.qcow2")


def test_link_down_sets_only_that_interface_down(lab: LibvirtLab) -> None:
    names = LabNames(lab.name)
    lab.inject(LinkDown(host="bob", network="repl"))
    nics = read_domain(lab.current_xml("bob")).nics
    assert nics[names.mac("bob", "repl")] == (names.network("repl"), False)
    assert nics[names.mac("bob", "mgmt")] == (names.network("mgmt"), True)
    lab.heal(LinkDown(host="bob", network="repl"))
    assert read_domain(lab.current_xml("bob")).nics[names.mac("bob", "repl")][1]


def test_faults_the_backend_cannot_realise_are_refused(lab: LibvirtLab) -> None:
    with pytest.raises(UnsupportedError, match="slow_disk"):
        lab.inject(SlowDisk(host="alice", disk="sdb", latency_ms=50))
    with pytest.raises(UnsupportedError, match="no host"):
        lab.inject(HostCrash(host="carol"))
    with pytest.raises(UnsupportedError, match="no data disk"):
        lab.inject(DiskFailure(host="alice", disk="sdz"))
    assert not LibvirtBackend.capabilities.supports_fault("slow_disk")
    assert LibvirtBackend.capabilities.supports_fault("disk_failure")


def test_power_driver_fences_and_restores_through_futures(lab: LibvirtLab) -> None:
    power = lab.drivers.power
    power.power_off("alice").result(timeout=10)
    assert power.state("alice") is PowerState.OFF
    power.power_on("alice").result(timeout=10)
    assert power.state("alice") is PowerState.ON
    assert lab.observe().power == {"alice": PowerState.ON, "bob": PowerState.ON}


def test_drivers_that_need_a_guest_agent_say_so_on_the_test_driver(lab: LibvirtLab) -> None:
    """The test driver has no guest agent: guest-side drivers refuse instead of pretending,
    with the driver error the engine handles."""
    with pytest.raises(DriverError, match="no guest agent"):
        lab.drivers.compute.guests("alice").result(timeout=5)
    with pytest.raises(DriverError, match="no guest agent"):
        lab.drivers.compute.start("vm1", "alice", {"vol1": "/dev/vg0/vol1"}).result(timeout=5)
    health = lab.drivers.compute.health("alice")
    assert health.power is PowerState.ON and health.last_heartbeat is None
    assert lab.history() == []


def test_destroy_removes_everything_and_is_safe_twice(conn: libvirt.virConnect) -> None:
    name = unique_lab("gone")
    lab = LibvirtBackend(TEST_URI, lab_root=Path("/x")).create(two_node(), lab_name=name, seed=1)
    lab.destroy()
    lab.destroy()
    prefix = LabNames(name).prefix
    assert not any(n.startswith(prefix) for n in domain_names(conn))
    assert not any(n.name().startswith(prefix) for n in conn.listAllNetworks())
    assert LabNames(name).pool() not in {p.name() for p in conn.listAllStoragePools()}


def test_teardown_refuses_domains_it_did_not_create(conn: libvirt.virConnect) -> None:
    """A domain named like the lab's but without its metadata mark survives teardown, and so
    does a lab whose name merely starts with ours."""
    name = unique_lab("own")
    backend = LibvirtBackend(TEST_URI, lab_root=Path("/x"))
    neighbour = backend.create(two_node(), lab_name=f"{name}-b", seed=1)
    lab = backend.create(two_node(), lab_name=name, seed=1)
    # defined after the lab came up: a lab refuses to come up over names it would take
    foreign = conn.defineXML(
        f"<domain type='test'><name>sd_{name}_intruder</name><memory>1024</memory>"
        "<os><type>hvm</type></os></domain>")
    try:
        lab.destroy()
        left = domain_names(conn)
        assert f"sd_{name}_intruder" in left
        assert {f"sd_{name}-b_alice", f"sd_{name}-b_bob"} <= left
        assert not {f"sd_{name}_alice", f"sd_{name}_bob"} & left
        assert any("skip" in line or "teardown" in line for line in lab.trace())
    finally:
        neighbour.destroy()
        foreign.undefine()


def test_hosts_may_live_on_different_hypervisor_uris(conn: libvirt.virConnect) -> None:
    """Two URIs that reach the same daemon: each host is defined through its own URI, the
    shared networks are created once, and teardown goes through both."""
    other = TEST_URI + "?hypervisor=2"
    name = unique_lab("multi")
    lab = LibvirtBackend(TEST_URI, lab_root=Path("/x")).create(
        two_node(uri_b=other), lab_name=name, seed=1)
    try:
        assert set(lab.conns) == {TEST_URI, other}
        assert lab.nodes["bob"].uri == other
        assert lab.nodes["alice"].uri == TEST_URI
        assert lab.domain("bob").isActive()
        assert any("network-shared" in line for line in lab.trace())
    finally:
        lab.destroy()
    assert not any(n.startswith(LabNames(name).prefix) for n in domain_names(conn))


def test_failed_bring_up_leaves_nothing_behind(conn: libvirt.virConnect) -> None:
    """A lab that fails halfway is torn down before the error reaches the caller."""
    name = unique_lab("half")
    blocker = conn.networkDefineXML(  # a name clash the lab cannot resolve: not ours
        f"<network><name>sd_{name}_mgmt</name><bridge name='foreignbr0'/></network>")
    try:
        with pytest.raises((libvirt.libvirtError, StackdrillError)):
            LibvirtBackend(TEST_URI, lab_root=Path("/x")).create(
                two_node(), lab_name=name, seed=1)
    finally:
        blocker.undefine()
    assert not any(n.startswith(LabNames(name).prefix) for n in domain_names(conn))


def test_partition_drops_frames_between_groups_on_the_bridge_ports(lab: LibvirtLab) -> None:
    """Both directions between every pair across groups, on the named network only, matched
    by the stable tap names the domains were defined with."""
    names = LabNames(lab.name)
    taps = {h: names.tap(h, "repl") for h in ("alice", "bob")}
    defined = {t.get("dev") for t in
               ET.fromstring(lab.domain("alice").XMLDesc(0)).iterfind("devices/interface/target")}
    assert taps["alice"] in defined
    fault = Partition(groups=(("alice",), ("bob",)), network="repl")
    lab.inject(fault)
    script = lab._faults.rulesets["partition groups=alice|bob network=repl"]
    assert f'iifname "{taps["alice"]}" oifname "{taps["bob"]}" drop' in script
    assert f'iifname "{taps["bob"]}" oifname "{taps["alice"]}" drop' in script
    assert names.tap("alice", "mgmt") not in script
    assert "hook forward" in script and f"table bridge sd_{lab.name}" in script
    lab.heal(fault)
    assert lab._faults.rulesets == {}


def test_partition_without_network_cuts_every_shared_network(lab: LibvirtLab) -> None:
    lab.inject(Partition(groups=(("alice",), ("bob",))))
    (script,) = lab._faults.rulesets.values()
    names = LabNames(lab.name)
    assert names.tap("alice", "mgmt") in script and names.tap("alice", "repl") in script
    assert script.count(" drop") == 4


def test_a_one_way_cut_drops_only_what_the_first_host_sends(lab: LibvirtLab) -> None:
    """Jepsen's grudge on the bridge: frames alice sends toward bob's port are dropped,
    bob's toward alice pass."""
    names = LabNames(lab.name)
    alice, bob = names.tap("alice", "repl"), names.tap("bob", "repl")
    lab.inject(Cut(pairs=(("alice", "bob"),), network="repl", one_way=True))
    (script,) = lab._faults.rulesets.values()
    assert f'iifname "{alice}" oifname "{bob}" drop' in script
    assert f'iifname "{bob}" oifname "{alice}"' not in script


def test_loss_and_rate_limit_match_packets_leaving_the_host(lab: LibvirtLab) -> None:
    tap = LabNames(lab.name).tap("bob", "repl")
    lab.inject(PacketLoss(host="bob", network="repl", probability=0.25))
    lab.inject(RateLimit(host="bob", network="repl", mbit=10))
    scripts = "\n".join(lab._faults.rulesets.values())
    assert f'iifname "{tap}" numgen random mod 1000 < 250 drop' in scripts
    assert f'iifname "{tap}" limit rate over 1250 kbytes/second' in scripts
    with pytest.raises(UnsupportedError, match="no interface"):
        lab.inject(PacketLoss(host="bob", network="nope", probability=0.1))


def test_teardown_by_name_from_another_process(conn: libvirt.virConnect) -> None:
    """`stackdrill down` has no lab object: it finds the lab in libvirt by name and mark."""
    name = unique_lab("down")
    backend = LibvirtBackend(TEST_URI, lab_root=Path("/x"))
    backend.create(two_node(), lab_name=name, seed=1)  # the creating process "exits"
    removed = LibvirtBackend.teardown(name, (TEST_URI,))
    assert f"{TEST_URI}: domain sd_{name}_alice" in removed
    assert f"{TEST_URI}: pool sd_{name}" in removed
    assert not any(n.startswith(LabNames(name).prefix) for n in domain_names(conn))
    assert LibvirtBackend.teardown(name, (TEST_URI,)) == []


DOWN_ALL = """
import json, sys
from pathlib import Path
import libvirt
sys.path.insert(0, sys.argv[1])
from libvirt_support import two_node
from stackdrill.backends.libvirt import LibvirtBackend
from stackdrill.backends.libvirt.naming import set_mark
labs = {name: LibvirtBackend("test:///default", lab_root=Path("/x")).create(
            two_node(), lab_name=name, seed=1) for name in ("dead1", "live1", "kept1")}
labs["kept1"].keep()
conn = libvirt.open("test:///default")
for host in ("alice", "bob"):  # the owner of dead1 was killed: its pid runs no more
    set_mark(conn.lookupByName(f"sd_dead1_{host}"), "dead1", host, "999999999 1")
conn.defineXML("<domain type='test'><name>sd_kept9_x</name><memory>65536</memory>"
               "<os><type>hvm</type></os></domain>")
removed = LibvirtBackend.cleanup_all()
print(json.dumps({"removed": removed, "kept": LibvirtBackend.kept_labs(),
                  "left": sorted(d.name() for d in conn.listAllDomains())}))
"""


def test_down_all_removes_dead_runs_labs_only() -> None:
    """`stackdrill down --all` removes the labs of runs that are gone; never a lab another
    process still runs (it once destroyed a running vm scenario's guests mid-drill), never
    one kept by `run --keep`, never a domain that merely looks like ours (no mark). In a
    process of its own: test:///default is one per process."""
    env = {**os.environ, "STACKDRILL_LIBVIRT_URI": TEST_URI}
    out = subprocess.run([sys.executable, "-c", DOWN_ALL, str(Path(__file__).parent)],
                         capture_output=True, text=True, env=env, timeout=120, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert f"{TEST_URI}: domain sd_dead1_alice" in result["removed"]
    assert not any(n.startswith("sd_dead1_") for n in result["left"])
    for name in ("live1", "kept1"):
        assert f"sd_{name}_alice" in result["left"] and f"sd_{name}_bob" in result["left"]
    assert result["kept"] == ["kept1"]
    assert "sd_kept9_x" in result["left"]


SIGTERMED = """
import logging, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from libvirt_support import two_node
from stackdrill.backends.libvirt import LibvirtBackend
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
LibvirtBackend("test:///default", lab_root=Path("/x")).create(two_node(), lab_name="term",
                                                              seed=1)
print("ready", flush=True)
time.sleep(60)
"""


def test_a_lab_is_torn_down_when_its_process_gets_sigterm() -> None:
    """CI timeouts and `kill` send SIGTERM: the lab's domains, networks and pool go with
    the process (lifetime.register), not only on Ctrl-C or a normal exit."""
    proc = subprocess.Popen([sys.executable, "-c", SIGTERMED, str(Path(__file__).parent)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    assert "removed=domain sd_term_alice" in err and "removed=pool sd_term" in err, err


def test_underlay_mtu_is_set_and_restored_to_the_topology_value(lab: LibvirtLab) -> None:
    lab.inject(UnderlayMtu(host="alice", network="repl", mtu=1400))
    assert lab._faults.mtus[("alice", "repl")] == 1400
    lab.heal(UnderlayMtu(host="alice", network="repl", mtu=1400))
    assert lab._faults.mtus[("alice", "repl")] == 9000  # the topology's MTU for repl


def test_declared_features_exclude_what_is_not_built() -> None:
    """Drills needing a disk swapped in a running guest are refused up front."""
    features = LibvirtBackend.capabilities.features
    assert {"drbd", "lvm", "clustered-lvm", "cluster", "instances", "overlay",
            "network-volumes", "cluster-power-fencing"} <= features
    assert "disk-swap" not in features


def test_overlay_faults_freeze_the_controller_and_heal_resumes_it() -> None:
    """A stale FDB is the controller no longer pushing to that host: the fault freezes
    it there and healing thaws it; the endpoint fault runs and heals without a guest (the
    test driver has none: the guests' kernel side, the VTEP going down and coming back,
    runs in the vm scenario vm-tunnel-endpoint-down)."""
    topology = load_topology(ROOT / "lab" / "topologies" / "drbd-pair-overlay.yaml")
    backend = LibvirtBackend(TEST_URI, lab_root=Path("/stackdrill-test"))
    with backend.create(topology, lab_name=unique_lab("ovf"), seed=1) as lab:
        state = lab.overlay.controller.overlays["tenant"]
        stale = OverlayFdbStale(host="cmp2", overlay="tenant")
        lab.inject(stale)
        assert state.frozen == {"cmp2"}
        lab.inject(TunnelEndpointDown(host="cmp1", overlay="tenant"))
        lab.heal(TunnelEndpointDown(host="cmp1", overlay="tenant"))
        lab.heal(stale)
        assert state.frozen == set()
        assert any("overlay-endpoint" in line and "state=up" in line for line in lab.trace())


def test_the_overlay_controller_skips_a_guest_until_it_has_booted(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A powered-on guest whose boot sequence has not finished has no agent to answer: the
    controller's pushes skip it (its boot rebuilds its whole FDB). On returning-host a
    push to the booting cmp1 failed the evacuation of cmp1's own guests on guests, where
    the simulator evacuated them (DISAGREE)."""
    topology = load_topology(ROOT / "lab" / "topologies" / "drbd-pair-overlay.yaml")
    backend = LibvirtBackend(TEST_URI, lab_root=Path("/stackdrill-test"))
    with backend.create(topology, lab_name=unique_lab("ovb"), seed=1) as lab:
        sent: list[str] = []
        monkeypatch.setattr(lab, "is_test", lambda uri: False)
        def run(host: str, command: str, timeout: float = 60.0) -> ShellResult:
            if "fdb" in command:  # not the power states the lab mirrors into guests
                sent.append(host)
            return ShellResult(command, 0, "", "")

        monkeypatch.setattr(lab, "run", run)
        lab.power_event("cmp2", PowerState.OFF, "fault")
        lab.power_event("cmp2", PowerState.BOOTING, "heal")
        assert lab.drivers.power.state("cmp2") is PowerState.ON  # libvirt: it runs
        assert lab.overlay._run("cmp2", "bridge fdb append ...").rc == 0
        assert sent == [], "pushed to a guest still booting"
        lab.power_event("cmp2", PowerState.ON, "booted")
        lab.overlay._run("cmp2", "bridge fdb append ...")
        assert sent == ["cmp2"]


def test_a_second_lab_of_the_same_name_is_refused_and_leaves_the_first_alone() -> None:
    """Two runs of one drill and seed name their labs alike. The second must refuse
    before creating anything and tear nothing down: it used to fail on the first's disk
    ("storage volume exists already") and its teardown removed the first run's lab in
    the middle of its drill."""
    backend = LibvirtBackend(TEST_URI, lab_root=Path("/stackdrill-test"))
    name = unique_lab("twice")
    with backend.create(two_node(), lab_name=name, seed=1) as first:
        before = sorted(d.name() for d in lab_domains(first.conns[TEST_URI], name))
        assert before
        with pytest.raises(LabNotReadyError, match=f"a lab named {name} exists already"):
            backend.create(two_node(), lab_name=name, seed=1)
        assert sorted(d.name() for d in lab_domains(first.conns[TEST_URI], name)) == before
        assert all(d.isActive() for d in lab_domains(first.conns[TEST_URI], name))


def test_instances_outside_the_drills_writers_start_idle_not_skipped() -> None:
    """The topology says every instance runs; the drill's `workload.instances` only says
    which ones write. The lab starts the others idle (the simulator's Hypervisors.writers),
    and a restart (recovery, a host's return) keeps each one's kind."""
    from stackdrill.api import LabOptions
    from stackdrill.backends.libvirt import realize

    backend = LibvirtBackend(TEST_URI, lab_root=Path("/stackdrill-test"))
    topo = load_topology(ROOT / "lab/topologies/two-node-clvm.yaml")
    writer = topo.instances[0].name
    options = LabOptions(writers=frozenset({writer}))
    with backend.create(topo, lab_name=unique_lab("idle"), seed=1, options=options) as lab:
        assert [lab.compute.writes(i.name) for i in topo.instances] == [
            i.name == writer for i in topo.instances]
        started: list[tuple[str, str]] = []
        lab.compute.start_now = lambda inst, host, vols: started.append((inst, host))  # type: ignore[method-assign]
        lab.compute.verify = lambda inst, host: lab.submit(lambda: True)  # type: ignore[method-assign]
        lab.drivers.storage.prepare = lambda v, h, failed=(): lab.submit(  # type: ignore[method-assign]
            lambda: VolumePath(v, h, AttachMode.LOCAL, h, f"/dev/vg/{v}"))
        lab.overlay.plug = lambda inst, host: None  # type: ignore[method-assign]
        realize.start_instances(lab)
        assert started == [(i.name, i.host) for i in topo.instances]


def test_starting_an_instance_that_runs_on_that_host_starts_no_second_copy(
        lab: LibvirtLab, monkeypatch: pytest.MonkeyPatch) -> None:
    """A returning host's boot resumes its guests (Nova's init_host) while the engine's
    resume flow may start the same guest there: the second start is a no-op, as on the
    simulator. On returning-host it started a second writer (incarnation 3 beside 2 on
    cmp1, single_writer and acked_writes failed on guests)."""
    commands: list[str] = []

    def run(host: str, command: str, timeout: float = 60.0) -> ShellResult:
        commands.append(command)
        return ShellResult(command, 0, "", "")

    monkeypatch.setattr(lab, "run", run)
    compute = lab.compute
    compute.start_now("vm1", "alice", {"vol1": "/dev/vg0/vol1"})
    compute.start_now("vm1", "alice", {"vol1": "/dev/sdb"})
    started = [c for c in commands if "writer.py vm1" in c]
    assert len(started) == 1 and compute.running["alice"] == {"vm1": 1}
    compute.destroy("vm1", "alice").result(timeout=10)
    compute.start_now("vm1", "alice", {"vol1": "/dev/vg0/vol1"})
    assert compute.running["alice"] == {"vm1": 2}


class _TeardownFails(LibvirtLab):
    """A lab whose guests never come up and whose teardown then fails as well."""

    def create_guests(self) -> dict[str, float]:
        raise libvirt.libvirtError("cmp1: qemu died while booting")

    def remove_objects(self) -> None:
        super().remove_objects()
        raise StackdrillError("teardown incomplete: pool sd_x: not active")


def test_a_failed_bring_up_reports_its_own_cause_even_when_teardown_fails_too() -> None:
    """The user must learn why the lab did not come up (exit 3, an infrastructure error),
    not that its teardown failed afterwards: that error once replaced the cause, and the
    run ended with no report at all."""
    from stackdrill.backends.libvirt.image import GuestImage
    from stackdrill.backends.libvirt.lab import LabSettings

    topology = two_node()
    lab = _TeardownFails(topology, name=unique_lab("tdf"), conns={TEST_URI: libvirt.open(TEST_URI)},
                         default_uri=TEST_URI, image=GuestImage.placeholder(),
                         workdir=Path("/x"), settings=LabSettings())
    with pytest.raises(LabNotReadyError, match="qemu died while booting"):
        lab.up()
