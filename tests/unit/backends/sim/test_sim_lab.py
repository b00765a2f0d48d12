"""The assembled simulated lab: workloads, heartbeats, iSCSI sessions, hangs, boots.

Each test states the real behaviour it encodes."""

from __future__ import annotations

from pathlib import Path

from stackdrill.api import DriverError, LabOptions, PowerState
from stackdrill.backends.sim import SimBackend
from stackdrill.backends.sim.lab import HEARTBEAT_S, SimLab
from stackdrill.faults import DiskFailure, HostCrash, HostHang, LinkDown, Partition
from stackdrill.recovery.detect import replication_lost
from stackdrill.topology import IscsiInitiator, load_topology

TOPOLOGIES = Path(__file__).resolve().parents[4] / "lab" / "topologies"


def nova(interval: float = 2.0) -> SimLab:
    lab = SimBackend().create(load_topology(TOPOLOGIES / "nova-drbd.yaml"), lab_name="t", seed=3,
                              options=LabOptions(write_interval_s=interval))
    assert isinstance(lab, SimLab)
    return lab


def test_every_acknowledged_write_is_on_the_primary_replica() -> None:
    """Protocol C on a healthy pair: what the workload saw acknowledged is stored."""
    lab = nova()
    lab.clock.sleep(60)
    acked = [op for op in lab.history() if op.outcome == "ok"]
    assert len(acked) >= 6 * 25
    for op in acked:
        assert lab.stored_records(op.volume)[op.seq].checksum == op.checksum


def test_management_partition_stops_heartbeats_but_not_other_links() -> None:
    """A partitioned management network looks like a dead host to Nova's service group,
    but the host's storage and tunnel links still work: no corroboration."""
    lab = nova()
    others = ("ctl1", "cmp1", "cmp3", "sto1", "sto2")
    lab.inject(Partition(groups=(("cmp2",), others), network="mgmt"))
    lab.clock.sleep(60)
    health = lab.drivers.compute.health("cmp2")
    assert health.last_heartbeat is not None and lab.clock.now() - health.last_heartbeat > 40
    witnesses = lab.drivers.compute.witnesses("cmp2")
    assert not replication_lost(witnesses, health.last_heartbeat, lab.clock.now(),
                                HEARTBEAT_S)  # its peers see it
    assert health.power is PowerState.ON


def test_crashed_host_is_off_for_the_power_controller_and_its_guests_stop() -> None:
    lab = nova()
    lab.clock.sleep(10)
    lab.inject(HostCrash(host="cmp1", power_back=False))
    lab.clock.sleep(1)
    assert lab.drivers.power.state("cmp1") is PowerState.OFF
    running = lab.observe().running
    assert running["web1"] == [] and running["web2"] == ["cmp2"]
    compute = lab.drivers.compute
    beat = compute.health("cmp1").last_heartbeat
    assert not any(w.sees_host for w in compute.witnesses("cmp1"))  # no peer reaches it
    # nobody reported since: no evidence yet
    assert not replication_lost(compute.witnesses("cmp1"), beat, lab.clock.now(), HEARTBEAT_S)
    lab.clock.sleep(20)  # its peers report (heartbeat) after it fell silent: now they count
    assert replication_lost(compute.witnesses("cmp1"), beat, lab.clock.now(), HEARTBEAT_S)


def test_iscsi_io_stalls_then_fails_after_the_replacement_timeout() -> None:
    """open-iscsi queues I/O while the session is down and fails it after
    node.session.timeo.replacement_timeout (120 s)."""
    lab = nova(interval=1.0)
    lab.clock.sleep(10)
    lab.inject(LinkDown(host="cmp3", network="storage"))
    lab.clock.sleep(100)
    stalled = [op for op in lab.history() if op.instance == "db2" and op.outcome == "info"]
    assert len(stalled) == 1  # one write in flight, waiting; the workload issues no other
    assert not [op for op in lab.history() if op.instance == "db2" and op.invoked > 11]
    lab.clock.sleep(40)
    failed = [op for op in lab.history() if op.instance == "db2" and op.outcome == "fail"]
    assert failed and failed[0].completed is not None and failed[0].completed >= 130


def test_the_topologys_replacement_timeout_sets_when_queued_io_fails() -> None:
    """`iscsi.replacement_timeout` is the initiators' setting: with 20 s, db2's write fails
    about 7 s (the nop-out ping noticing the loss) + 20 s after its path went down, and
    the next write at once (the session has failed: open-iscsi fast-fails new I/O)."""
    topology = load_topology(TOPOLOGIES / "nova-drbd.yaml")
    topology = topology.model_copy(update={"iscsi": IscsiInitiator(replacement_timeout=20)})
    lab = SimBackend().create(topology, lab_name="t", seed=3,
                              options=LabOptions(write_interval_s=1.0))
    assert isinstance(lab, SimLab)
    lab.clock.sleep(10)
    lab.inject(LinkDown(host="cmp3", network="storage"))
    lab.clock.sleep(40)
    failed = [op for op in lab.history() if op.instance == "db2" and op.outcome == "fail"]
    assert failed, "no write failed within 40 s of the loss"
    first = failed[0]
    assert first.completed is not None and 35 <= first.completed <= 39, first
    later = [op for op in failed[1:] if op.completed is not None]
    assert later and all(op.completed - op.invoked < 1.0 for op in later)


def test_a_write_queued_on_a_crashed_initiator_never_lands_after_it_boots() -> None:
    """open-iscsi's queue lives in the client's memory: a power cut ends it. A write that
    was waiting out a storage outage when its host crashed must not reach the target when
    the host boots again (random seed 5766: it overwrote the evacuated guest's newer,
    acknowledged record of the same block)."""
    lab = nova(interval=1.0)
    lab.clock.sleep(10)
    lab.inject(LinkDown(host="cmp3", network="storage"))
    lab.clock.sleep(10)
    stalled = [op for op in lab.history() if op.instance == "db2" and op.outcome == "info"]
    assert len(stalled) == 1
    lab.inject(HostCrash(host="cmp3", power_back=True))
    lab.clock.sleep(5)
    lab.heal(LinkDown(host="cmp3", network="storage"))
    lab.heal(HostCrash(host="cmp3", power_back=True))
    lab.clock.sleep(120)
    assert lab.hosts["cmp3"].up
    stored = lab.stored_records("vol-db2").get(stalled[0].seq)
    assert stored is None or stored.checksum != stalled[0].checksum


def test_a_swapped_disk_that_drbd_never_saw_fail_is_not_served_as_up_to_date() -> None:
    """A disk that failed while no I/O reached it (its node cut off the storage network)
    is replaced: DRBD must not take the blank new disk for its UpToDate backing disk (the
    guide's procedure detaches first, then create-md and attach: a full sync from the
    peer). Random seed 8978 served every volume from the blank disk: all writes lost."""
    lab = nova()
    lab.clock.sleep(10)
    lab.inject(LinkDown(host="sto1", network="storage"))
    lab.inject(DiskFailure(host="sto1", disk="sdb"))
    lab.clock.sleep(5)
    lab.heal(DiskFailure(host="sto1", disk="sdb"))
    lab.heal(LinkDown(host="sto1", network="storage"))
    lab.clock.sleep(60)
    acked = [op for op in lab.history() if op.outcome == "ok"]
    assert acked and any(op.invoked > 20 for op in acked)
    for op in acked:
        stored = lab.stored_records(op.volume).get(op.seq)
        assert stored is not None and stored.checksum == op.checksum, op


def test_hung_host_pauses_and_its_guests_write_again_when_it_thaws() -> None:
    """A frozen kernel does no I/O; when it thaws its guests carry on — the zombie that
    fencing exists to prevent."""
    lab = nova()
    lab.clock.sleep(10)
    lab.inject(HostHang(host="cmp1"))
    lab.clock.sleep(30)
    during = [op for op in lab.history() if op.host == "cmp1" and 12 < op.invoked < 40]
    assert during == []
    lab.heal(HostHang(host="cmp1"))
    lab.clock.sleep(10)
    assert any(op.host == "cmp1" and op.invoked > 40 for op in lab.history())


def test_boot_hook_decides_which_guests_a_returning_host_resumes() -> None:
    """Nova's init_host destroys guests evacuated elsewhere, then resumes the others."""
    lab = nova()
    asked: list[tuple[str, list[str]]] = []

    def hook(host: str, guests: list[str]) -> list[str]:
        asked.append((host, guests))
        return ["web1"]

    lab.drivers.compute.set_boot_hook(hook)
    lab.inject(HostCrash(host="cmp1"))
    lab.clock.sleep(5)
    lab.heal(HostCrash(host="cmp1"))
    lab.clock.sleep(80)
    assert asked == [("cmp1", ["app1", "db1", "web1"])]
    running = lab.observe().running
    assert running["web1"] == [] and running["db1"] == ["cmp1"]


def test_same_seed_same_trace() -> None:
    a, b = nova(), nova()
    for lab in (a, b):
        lab.inject(HostCrash(host="cmp2"))
        lab.clock.sleep(120)
    assert a.trace_sha256() == b.trace_sha256()


def test_a_primary_resyncing_a_replaced_disk_still_serves_its_volumes() -> None:
    """sto1 (Primary) loses its disk, gets a new one and is SyncTarget of the full sync:
    its device serves every write and read through the UpToDate peer (drbd_req.c
    may_do_writes: `pdsk == D_UP_TO_DATE`). A guest evacuated meanwhile is served by sto1;
    the storage agent must not try to promote the Secondary sto2, which DRBD refuses
    ("Multiple primaries not allowed by config"; random seeds 991, 1516, 1902)."""
    lab = nova()
    lab.clock.sleep(10)
    failure = DiskFailure(host="sto1", disk="sdb")
    lab.inject(failure)
    lab.clock.sleep(20)
    lab.heal(failure)
    lab.clock.sleep(1)
    status = lab.drbd["r0"].status()["sto1"]
    assert (status.role, status.disk, status.connection) == \
        ("Primary", "Inconsistent", "SyncTarget")
    future = lab.drivers.storage.prepare("vol-web1", "cmp3", failed=["cmp1"])
    lab.clock.wait([future], timeout=30)
    path = future.result()
    assert path.served_by == "sto1"


def test_a_volume_path_to_a_server_cut_off_the_storage_network_is_refused() -> None:
    """open-iscsi cannot log in to a portal it cannot reach (login_timeout, then iscsiadm
    fails): `prepare` must fail, not hand a flow a path that does not exist — the flow then
    started a guest that could never write and held its slot until the end (random seeds
    777, 700, 2379, 2917, 3302, 3450)."""
    lab = nova()
    lab.clock.sleep(10)
    lab.inject(LinkDown(host="sto1", network="storage"))
    future = lab.drivers.storage.prepare("vol-web1", "cmp3", failed=["cmp1"])
    lab.clock.wait([future], timeout=60)
    error = future.exception()
    assert isinstance(error, DriverError) and "iscsiadm: could not log in to sto1" in str(error)


def test_exclusive_activation_deactivates_an_unused_shared_lv_on_the_peer() -> None:
    """two-node-clvm is built with every LV active (shared, clvmd CR) on both nodes. bob
    crashes and boots again; resuming vm2 there needs lv-vm2 exclusive, which clvmd
    refuses while alice still holds it ("Volume is busy on another node"). alice has no
    guest with it open, so the storage driver deactivates it there first, as `lvchange
    -an` does (random seeds 5549, 8736: vm2 was given up after three refusals)."""
    lab = SimBackend().create(load_topology(TOPOLOGIES / "two-node-clvm.yaml"), lab_name="t",
                              seed=5549, options=LabOptions(write_interval_s=2.0))
    assert isinstance(lab, SimLab)
    crash = HostCrash(host="bob", power_back=True)
    lab.clock.sleep(10)
    lab.inject(crash)
    lab.clock.sleep(30)
    fenced = lab.drivers.power.power_off("bob")  # fenced, as the engine does
    lab.clock.wait([fenced], timeout=30)
    assert fenced.done()
    lab.heal(crash)
    lab.clock.sleep(60)
    assert lab.hosts["bob"].up
    assert lab.lvm_hosts["alice"].table("vg-shared", "lv-vm2") is not None
    prepared = lab.drivers.storage.prepare("lv-vm2", "bob")
    lab.clock.wait([prepared], timeout=60)
    assert prepared.result().served_by == "bob"
    assert lab.lvm_hosts["alice"].table("vg-shared", "lv-vm2") is None
    assert lab.lvm_hosts["alice"].table("vg-shared", "lv-vm1") is not None  # vm1 uses it


def test_an_unresolved_split_brain_is_read_where_each_volume_was_written() -> None:
    """Dual-primary alice and bob lose their link and each writes alone (vm1 on alice, vm2
    on bob); both are then rebooted and come back Secondary, still cut off: two UpToDate
    replicas with two truths. Each volume is read where its writer wrote — before, every
    volume was read on alice (the first sorted), so vm2's acknowledged writes on bob
    counted as lost although bob holds them."""
    from stackdrill.faults import HostReboot

    lab = SimBackend().create(load_topology(TOPOLOGIES / "two-node-clvm.yaml"), lab_name="t",
                              seed=3, options=LabOptions(write_interval_s=1.0))
    assert isinstance(lab, SimLab)
    lab.clock.sleep(20)
    lab.inject(Partition(groups=(("alice",), ("bob",)), network="eth1"))
    lab.clock.sleep(30)
    lab.inject(HostReboot(host="alice"))
    lab.inject(HostReboot(host="bob"))
    lab.clock.sleep(120)
    status = lab.drbd["r0"].status()
    assert {n: (s.role, s.disk) for n, s in status.items()} == {
        "alice": ("Secondary", "UpToDate"), "bob": ("Secondary", "UpToDate")}
    for volume in ("lv-vm1", "lv-vm2"):
        acked = [op for op in lab.history() if op.volume == volume and op.outcome == "ok"]
        assert acked and all(op.seq in lab.stored_records(volume) for op in acked), volume


def test_a_disks_latency_is_the_topologys(tmp_path: Path) -> None:
    """`hosts[].disks[].latency_ms` sets the simulated disk's service time: the same pair on
    5 ms disks acknowledges each protocol C write no sooner than 5 ms after it was issued,
    and on the default 0.5 ms disks sooner than that (it was a constant, issue 13)."""
    import yaml

    data = yaml.safe_load((TOPOLOGIES / "two-node-clvm.yaml").read_text())
    for host in data["hosts"]:
        host["disks"][0]["latency_ms"] = 5.0
    slow_path = tmp_path / "slow-disks.yaml"
    slow_path.write_text(yaml.safe_dump(data))
    spent = {}
    for name, path in (("slow", slow_path), ("default", TOPOLOGIES / "two-node-clvm.yaml")):
        lab = SimBackend().create(load_topology(path), lab_name="t", seed=3,
                                  options=LabOptions(write_interval_s=1.0))
        lab.clock.sleep(10)
        spent[name] = min(op.completed - op.invoked for op in lab.history()
                          if op.outcome == "ok" and op.completed is not None)
    assert spent["slow"] >= 0.005 > spent["default"]


def test_writers_are_not_phase_locked_and_their_phases_follow_the_seed() -> None:
    """Guests finish booting at different instants, so their writers do not all write at
    the same moment of each period (they did: protocol A losses came in multiples of the
    writer count). Each writer's phase comes from the lab's seed and the guest alone: the
    same seed gives the same history, another seed other phases."""
    def phases(seed: int) -> list[float]:
        lab = SimBackend().create(load_topology(TOPOLOGIES / "nova-drbd.yaml"), lab_name="t",
                                  seed=seed, options=LabOptions(write_interval_s=2.0))
        lab.clock.sleep(30)
        first = {}
        for op in lab.history():
            first.setdefault(op.instance, op.invoked % 2.0)
        return [round(first[i], 6) for i in sorted(first)]

    a = phases(3)
    assert len(set(a)) == len(a) == 6
    assert phases(3) == a and phases(4) != a


def test_an_lv_a_running_guest_uses_is_not_deactivated_under_it() -> None:
    """lvm2 activate.c lv_deactivate refuses an open LV ("LV vg/lv in use: not
    deactivating"): vm1 runs on alice over lv-vm1, so `lvchange -an` there fails and vm1
    keeps writing; on bob, where nothing holds lv-vm1 open, it is deactivated. Before,
    the simulator pulled the device from under the running guest."""
    lab = SimBackend().create(load_topology(TOPOLOGIES / "two-node-clvm.yaml"), lab_name="t",
                              seed=3, options=LabOptions(write_interval_s=1.0))
    assert isinstance(lab, SimLab)
    lab.clock.sleep(20)
    on_alice = lab.lvm_hosts["alice"].deactivate("vg-shared", "lv-vm1")
    on_bob = lab.lvm_hosts["bob"].deactivate("vg-shared", "lv-vm1")
    lab.clock.sleep(10)
    assert on_alice.triggered and not on_alice.ok
    assert "LV vg-shared/lv-vm1 in use: not deactivating" in str(on_alice.value)
    assert on_bob.triggered and on_bob.ok
    assert lab.lvm_hosts["alice"].table("vg-shared", "lv-vm1") is not None
    assert lab.lvm_hosts["bob"].table("vg-shared", "lv-vm1") is None
    late = [op for op in lab.history() if op.instance == "vm1" and op.invoked > 25]
    assert late and all(op.outcome == "ok" for op in late if op.completed is not None)
