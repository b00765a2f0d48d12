"""Failover: roles, promotion rules, fencing, crashed primary, disk failures."""

from __future__ import annotations

from test_drbd_lab import Lab

from stackdrill.topology.model import Protocol


def _fail_over(protocol: Protocol) -> Lab:
    lab = Lab(protocol=protocol, bandwidth_mbit=10.0, latency_ms=5.0,
              res_kw={"connect_int_s": 2.0})
    lab.workload("n1", 300, 0.001)
    lab.k.call_later(0.2, lab.hosts["n1"].crash)
    lab.run(7.0)
    assert lab.promote("n2").ok
    lab.write("n2", 5000, "after-failover")
    lab.run(8.0)
    lab.hosts["n1"].power_on()
    return lab


def test_crashed_primary_rejoins_and_its_unreplicated_writes_are_discarded() -> None:
    """UG 2.x/18.2: a crashed Primary comes back Secondary with the crashed-primary flag;
    its current UUID is the new Primary's bitmap UUID, so it becomes SyncTarget and the
    blocks in its activity log that never reached the peer are overwritten."""
    lab = _fail_over(Protocol.A)
    lab.run(38.005)  # booted at 38.0, handshake ~15 ms later
    assert lab.st("n1").crashed_primary and lab.st("n1").role == "Secondary"
    lab.run(80.0)
    s1 = lab.st("n1")
    assert s1.connection == "Connected" and s1.disk == "UpToDate"
    assert not s1.crashed_primary
    discarded = lab.res.discarded_blocks("n1")
    assert discarded and set(discarded) == {d.addr for d in lab.res.dropped_writes(False)}
    for addr in range(300):
        assert lab.res.device("n1").peek(addr) == lab.res.device("n2").peek(addr)
    assert lab.res.device("n1").peek(5000) == "after-failover"
    assert lab.events("resync-started")[-1].get("discarded_blocks") == len(discarded)


def test_protocol_c_failover_loses_no_acked_write() -> None:
    """UG 2.3 protocol C: after failover every write acknowledged by the old Primary is
    on the new Primary; only never-acknowledged blocks may be discarded on rejoin."""
    lab = _fail_over(Protocol.C)
    lab.run(80.0)
    assert lab.lost_on("n2", "n1") == []
    assert all(a not in lab.acked["n1"] for a in lab.res.discarded_blocks("n1"))


def test_crashed_primary_without_failover_becomes_sync_source() -> None:
    """drbd_uuid_compare rule 40: nobody was promoted, the crashed Primary comes back and
    pushes its activity-log blocks to the peer — protocol A's in-flight writes survive."""
    lab = Lab(protocol=Protocol.A, bandwidth_mbit=10.0, latency_ms=5.0,
              res_kw={"connect_int_s": 2.0})
    lab.workload("n1", 300, 0.001)
    lab.k.call_later(0.2, lab.hosts["n1"].crash)
    lab.run(1.0)
    lab.hosts["n1"].power_on()
    lab.run(60.0)
    assert lab.events("resync-started")[-1].get("source") == "n1"
    assert lab.lost_on("n2", "n1") == []


def test_two_primaries_refused_unless_allowed() -> None:
    """drbd_state.c is_valid_state SS_TWO_PRIMARIES: "Multiple primaries not allowed by
    config" while the peer is Primary and connected; allowed with allow-two-primaries."""
    lab = Lab()
    ev = lab.promote("n2")
    assert not ev.ok and "Multiple primaries not allowed by config" in str(ev.value)
    dual = Lab(allow_two_primaries=True)
    assert dual.promote("n2").ok
    assert dual.st("n1").peer_role == "Primary" and dual.st("n2").role == "Primary"
    assert dual.settle(dual.write("n2", 1, "x")).ok
    assert dual.res.device("n1").peek(1) == "x"


def test_promotion_needs_uptodate_data_unless_forced() -> None:
    """is_valid_state SS_NO_UP_TO_DATE_DISK "Need access to UpToDate data": a disconnected
    node with an Outdated (or Inconsistent) disk cannot be promoted; `--force` can."""
    lab = Lab(fencing="resource-only", outdate_peer=lambda peer, req: True)
    lab.net.set_link("n2", "repl", False)
    lab.run(12.0)  # idle: within ping-int + ping-timeout
    assert lab.st("n2").disk == "Outdated"
    ev = lab.promote("n2")
    assert not ev.ok and "Need access to UpToDate data" in str(ev.value)
    assert lab.promote("n2", force=True).ok
    assert lab.st("n2").disk == "UpToDate"


def test_resource_only_fencing_outdates_the_peer() -> None:
    """UG 8.x Resource-level fencing (fencing resource-only): a Primary that loses its
    peer calls the fence-peer handler; the peer's disk becomes Outdated. Without the
    handler's success, promoting the disconnected peer is refused ("Refusing to be Primary
    while peer is not outdated")."""
    calls: list[tuple[str, str]] = []

    def outdate(peer: str, req: str) -> bool:
        calls.append((peer, req))
        return True
    lab = Lab(fencing="resource-only", outdate_peer=outdate)
    lab.net.set_link("n2", "repl", False)
    lab.run(12.0)  # idle: within ping-int + ping-timeout
    assert calls == [("n2", "n1")]
    assert lab.st("n1").peer_disk == "Outdated"
    failing = Lab(fencing="resource-only", outdate_peer=lambda p, r: False)
    failing.net.set_link("n2", "repl", False)
    failing.run(12.0)
    ev = failing.promote("n2")
    assert not ev.ok and "peer is not outdated" in str(ev.value)


def test_resource_and_stonith_freezes_io_until_peer_is_shot() -> None:
    """UG 8.x fencing resource-and-stonith: the Primary suspends all I/O when it loses its
    peer and resumes only after the fence-peer handler reports the peer fenced."""
    lab_holder: list[Lab] = []

    def stonith(victim: str, req: str) -> bool:
        lab = lab_holder[0]
        lab.k.call_later(5.0, lab.hosts[victim].power_off)
        return False  # first attempt: fencing in progress, I/O stays frozen
    lab = Lab(fencing="resource-and-stonith", stonith=stonith)
    lab_holder.append(lab)
    lab.net.set_link("n2", "repl", False)
    lab.run(11.0)
    assert lab.st("n1").suspended
    ev = lab.write("n1", 1, "x")
    lab.run(20.0)
    assert not ev.triggered  # frozen: the fence-peer handler did not succeed
    ok = Lab(fencing="resource-and-stonith", stonith=lambda v, r: True)
    ok.net.set_link("n2", "repl", False)
    ok.run(11.0)
    ev2 = ok.write("n1", 1, "x")
    assert ok.settle(ev2).ok and not ok.st("n1").suspended
    assert ok.events("fence-peer")[0].get("result") == "fenced"


def test_dual_primary_with_stonith_never_splits_brain() -> None:
    """UG 2.2/8.x: dual-primary needs resource-and-stonith. Both Primaries freeze on
    connection loss; the stonith callback powers one off; the survivor resumes; the victim
    rejoins as SyncTarget — no split brain."""
    holder: list[Lab] = []

    def stonith(victim: str, req: str) -> bool:
        lab = holder[0]
        if not lab.hosts[req].up:
            return False
        if req == "n1":  # the cluster decides: n1 wins the race
            lab.hosts[victim].power_off()
            return True
        return False
    lab = Lab(allow_two_primaries=True, primary=("n1", "n2"), fencing="resource-and-stonith",
              stonith=stonith, res_kw={"connect_int_s": 2.0})
    holder.append(lab)
    lab.workload("n1", 100, 0.1, tag="a")
    lab.workload("n2", 100, 0.1, base=1000, tag="b")
    lab.k.call_later(1.0, lambda: lab.net.set_link("n2", "repl", False))
    lab.run(20.0)
    lab.net.set_link("n2", "repl", True)
    lab.hosts["n2"].power_on()
    lab.run(120.0)
    assert not lab.events("split-brain")
    assert lab.st("n2").connection == "Connected" and lab.st("n2").disk == "UpToDate"
    assert lab.lost_on("n1", "n2") == []  # every write n2 acked before it died survived


def test_stonith_with_protocol_a_never_connects() -> None:
    """drbd_nl.c _check_net_options ERR_STONITH_AND_PROT_A: `drbdadm up` attaches the
    disks, then the connect is refused (154); the resource stays StandAlone with its disks
    Consistent (recorded: conformance situation drbd-net-options-refused-at-up)."""
    lab = Lab(fencing="resource-and-stonith", protocol=Protocol.A)
    lab.run(30.0)
    assert lab.st("n1").connection == "StandAlone"
    assert lab.st("n2").connection == "StandAlone"
    assert lab.st("n1").disk == "Consistent" and lab.st("n2").disk == "Consistent"


def test_on_io_error_detach_keeps_serving_from_the_peer() -> None:
    """UG 2.x "Disk error handling strategies" / on-io-error detach: the node drops its
    failed disk and goes Diskless; the Primary keeps serving reads and writes over the
    network from its peer and the application sees no error."""
    lab = Lab()
    lab.settle(lab.write("n1", 1, "before"))
    lab.disks["n1"].fail()
    assert lab.settle(lab.write("n1", 2, "during")).ok
    r = lab.settle(lab.read("n1", 1))
    assert r.ok and r.value == "before"
    st = lab.st("n1")
    assert st.disk == "Diskless" and st.role == "Primary" and not lab.errors
    assert lab.res.device("n2").peek(2) == "during"
    lab.disks["n1"].replace()
    lab.res.attach("n1")
    assert lab.st("n1").disk == "Inconsistent"
    lab.run(60.0)
    assert lab.st("n1").disk == "UpToDate"
    assert lab.disks["n1"].peek(1) == "before" and lab.disks["n1"].peek(2) == "during"
    assert lab.events("resync-started")[-1].get("mode") == "full"


def test_on_io_error_pass_on() -> None:
    """on-io-error pass_on (drbd_int.h __drbd_chk_io_error: the disk goes Inconsistent,
    stays attached); the error reaches the upper layer when no peer has the data
    (drbd_req.c completes a write OK if the local or the remote copy succeeded)."""
    lab = Lab(on_io_error="pass_on")
    lab.res.disconnect("n1")
    lab.disks["n1"].fail()
    ev = lab.settle(lab.write("n1", 1, "x"))
    assert not ev.ok and lab.st("n1").disk == "Inconsistent"
    connected = Lab(on_io_error="pass_on")
    connected.disks["n1"].fail()
    assert connected.settle(connected.write("n1", 1, "x")).ok
    assert connected.st("n1").disk == "Inconsistent"


def test_on_io_error_call_local_io_error_runs_the_handler() -> None:
    """drbd.conf(5) call-local-io-error: invoke the local-io-error handler (in the 8.4
    code path together with detaching the disk)."""
    lab = Lab(on_io_error="call-local-io-error")
    lab.disks["n1"].fail()
    assert lab.settle(lab.write("n1", 1, "x")).ok
    assert lab.events("handler")[0].get("handler") == "local-io-error"
    assert lab.st("n1").disk == "Diskless"


def test_secondary_disk_failure_tracks_out_of_sync_on_primary() -> None:
    """A failed Secondary disk detaches; the Primary sees the peer Diskless, starts a new
    data generation and records further writes as out of sync."""
    lab = Lab()
    lab.disks["n2"].fail()
    lab.settle(lab.write("n1", 1, "x"))
    lab.settle(lab.write("n1", 2, "y"))
    assert lab.st("n2").disk == "Diskless" and lab.st("n1").peer_disk == "Diskless"
    assert lab.st("n1").out_of_sync_kb >= 4
    assert not lab.errors


def test_hung_primary_thaws_into_split_brain() -> None:
    """The "zombie" returning host: a hung Primary is declared dead, its peer is promoted;
    when it thaws it is still Primary, notices the lost connection and starts its own
    data generation, so the handshake finds split brain (2 primaries -> disconnect)."""
    lab = Lab(allow_two_primaries=False, res_kw={"connect_int_s": 2.0})
    lab.k.call_later(1.0, lab.hosts["n1"].hang)
    lab.run(12.0)
    assert lab.st("n2").connection == "WFConnection"
    assert lab.promote("n2").ok
    lab.write("n2", 7, "new")
    lab.run(13.0)
    lab.hosts["n1"].thaw()
    lab.write("n1", 8, "zombie")
    lab.run(40.0)
    assert lab.st("n1").split_brain and lab.st("n2").split_brain
    assert lab.st("n1").connection == "StandAlone"


def test_rebooted_node_with_fencing_comes_up_consistent() -> None:
    """drbd_nl.c drbd_adm_attach: with a fencing policy a node attaches Consistent (not
    UpToDate) unless it knows its peer is Outdated; promoting it alone first calls the
    fence-peer handler, and succeeds only when the handler outdates the peer. drbd_set_role
    asks the handler again on each of its four tries (SS_NO_UP_TO_DATE_DISK with a
    Consistent disk), so one `drbdadm primary` outlives a handler that fails once."""
    answers: list[bool] = []
    lab = Lab(fencing="resource-only", outdate_peer=lambda p, r: answers.pop(0),
              primary=())
    lab.hosts["n2"].crash()
    lab.hosts["n2"].power_on()
    lab.net.set_link("n1", "repl", False)
    lab.run(40.0)
    assert lab.st("n2").disk == "Consistent"
    answers[:] = [False] * 4
    ev = lab.promote("n2")
    assert not ev.ok and "(-2) Need access to UpToDate data" in str(ev.value)
    assert answers == [] and lab.st("n2").role == "Secondary"
    answers[:] = [False, True]
    assert lab.promote("n2").ok and lab.st("n2").disk == "UpToDate"
    assert answers == [] and lab.st("n2").peer_disk == "Outdated"
