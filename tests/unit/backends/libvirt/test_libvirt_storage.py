"""The storage driver's commands, as an operator would type them, against a scripted guest.

libvirt's test driver has no guest agent, so `lab.run` is replaced by a fake guest that
answers /proc/drbd and records every command; the real thing runs in test_libvirt_vm.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("libvirt")

from libvirt_support import TEST_URI, two_node, unique_lab

from stackdrill.api import AttachMode, TransientDriverError
from stackdrill.backends.libvirt import LibvirtBackend, iscsi
from stackdrill.backends.libvirt.agent import GuestCommandError, ShellResult
from stackdrill.backends.libvirt.lab import LibvirtLab
from stackdrill.backends.libvirt.storage import StorageError
from stackdrill.topology import parse_topology

VERSION = "version: 8.4.11 (api:1/proto:86-101)\n"  # the first line of every /proc/drbd
PROC = {
    "Secondary": VERSION
    + " 0: cs:WFConnection ro:Secondary/Unknown ds:UpToDate/DUnknown C r-----\n"
                 "    ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0\n",
    "Outdated": VERSION
    + " 0: cs:WFConnection ro:Secondary/Unknown ds:Outdated/DUnknown C r-----\n"
                "    ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0\n",
}


class FakeGuests:
    """alice is gone (agent silent); bob answers with the given DRBD state."""

    def __init__(self, bob_state: str, fail: str | None = None, disk: str = "") -> None:
        self.bob_state = bob_state
        self.fail = fail
        self.disk = disk  # what an iSCSI login prints: the attached disk (none: "")
        self.commands: list[tuple[str, str]] = []

    def run(self, host: str, command: str, timeout: float = 60.0) -> ShellResult:
        if host == "alice":
            raise GuestCommandError("alice: guest agent is not connected")
        self.commands.append((host, command))
        if command.startswith("cat /proc/drbd"):
            return ShellResult(command, 0, PROC[self.bob_state] + "===\n0\n", "")
        if self.fail and command.startswith(self.fail):
            return ShellResult(command, 11, "", "State change failed: (-1) Multiple primaries")
        if "--login" in command:
            return ShellResult(command, 0 if self.disk else 1, self.disk + "\n",
                               "" if self.disk else "no disk appeared")
        return ShellResult(command, 0, "", "")


@pytest.fixture
def lab() -> Iterator[LibvirtLab]:
    backend = LibvirtBackend(TEST_URI, lab_root=Path("/stackdrill-test"))
    with backend.create(two_node(), lab_name=unique_lab("sto"), seed=1) as created:
        yield created


def test_prepare_on_the_surviving_replica_promotes_then_activates(
        lab: LibvirtLab, monkeypatch: pytest.MonkeyPatch) -> None:
    """Failover by hand: `drbdadm primary r0` on the survivor, then `lvchange -aey`."""
    guests = FakeGuests("Secondary")
    monkeypatch.setattr(lab, "run", guests.run)
    path = lab.drivers.storage.prepare("vol1", "bob", failed=["alice"]).result(timeout=10)
    assert (path.mode, path.served_by, path.path) == (AttachMode.LOCAL, "bob", "/dev/vg0/vol1")
    issued = [c for h, c in guests.commands if not c.startswith("cat ")]
    assert issued == ["drbdadm primary r0", "lvchange -aey vg0/vol1"]


def test_replicas_report_the_unreachable_host_as_unknown(
        lab: LibvirtLab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lab, "run", FakeGuests("Secondary").run)
    replicas = {r.host: r for r in lab.drivers.storage.replicas("vol1")}
    assert not replicas["alice"].reachable and replicas["alice"].disk_state == "DUnknown"
    assert replicas["bob"].reachable and replicas["bob"].role == "Secondary"


def test_an_outdated_replica_is_never_promoted(
        lab: LibvirtLab, monkeypatch: pytest.MonkeyPatch) -> None:
    """DRBD marks a disconnected Secondary Outdated when fencing says so; promoting it would
    serve stale data, so the driver refuses before running anything."""
    guests = FakeGuests("Outdated")
    monkeypatch.setattr(lab, "run", guests.run)
    with pytest.raises(TransientDriverError, match="no reachable UpToDate replica"):
        lab.drivers.storage.prepare("vol1", "bob", failed=["alice"]).result(timeout=10)
    assert not [c for _, c in guests.commands if c.startswith("drbdadm primary")]


def test_drbd_refusing_the_promotion_is_reported_with_its_words(
        lab: LibvirtLab, monkeypatch: pytest.MonkeyPatch) -> None:
    guests = FakeGuests("Secondary", fail="drbdadm primary")
    monkeypatch.setattr(lab, "run", guests.run)
    with pytest.raises(StorageError, match="Multiple primaries"):
        lab.drivers.storage.prepare("vol1", "bob").result(timeout=10)
    assert not [c for _, c in guests.commands if c.startswith("lvchange")]


class LockingDrbdadm(FakeGuests):
    """bob's drbdadm as the real one behaves: a second call on r0 while one runs fails at
    once with exit 20 (its lock on /var/lock/drbd-147-0), and `primary` makes bob
    Primary (so /proc/drbd says so from then on)."""

    def __init__(self) -> None:
        super().__init__("Secondary")
        self.running = threading.Lock()

    def run(self, host: str, command: str, timeout: float = 60.0) -> ShellResult:
        if command.startswith("cat /proc/drbd") and self.bob_state == "Primary":
            text = PROC["Secondary"].replace("ro:Secondary/", "ro:Primary/")
            self.commands.append((host, command))
            return ShellResult(command, 0, text + "===\n0\n", "")
        if not command.startswith("drbdadm primary"):
            return super().run(host, command, timeout)
        self.commands.append((host, command))
        if not self.running.acquire(blocking=False):
            return ShellResult(command, 20, "", "lock on /var/lock/drbd-147-0 currently "
                               "held by pid:639")
        try:
            time.sleep(0.3)
            self.bob_state = "Primary"
            return ShellResult(command, 0, "", "")
        finally:
            self.running.release()


def test_two_volumes_of_one_resource_prepared_at_once_promote_it_once(
        lab: LibvirtLab, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a failover every volume of the resource is prepared in parallel; the real
    drbdadm refuses a second call while the first runs, which failed one reattach of
    storage-primary-loss on guests."""
    topo = lab.topology.model_dump(mode="json")
    topo["volumes"].append({"name": "vol2", "vg": "vg0", "size_gb": 10})
    monkeypatch.setattr(lab, "topology", parse_topology(topo, "<test>"))
    guests = LockingDrbdadm()
    monkeypatch.setattr(lab, "run", guests.run)
    storage = lab.drivers.storage
    both = [storage.prepare(v, "bob", failed=["alice"]) for v in ("vol1", "vol2")]
    assert [f.result(timeout=10).path for f in both] == ["/dev/vg0/vol1", "/dev/vg0/vol2"]
    assert [c for _, c in guests.commands if c.startswith("drbdadm")] == ["drbdadm primary r0"]


@pytest.fixture
def remote_lab() -> Iterator[LibvirtLab]:
    """two_node plus carol, a compute host without a replica on a storage network."""
    data = two_node().model_dump(mode="json")
    data["hosts"].append({"name": "carol", "roles": ["compute"]})
    data["networks"][0]["addresses"]["carol"] = "10.50.0.3"
    data["networks"].append({"name": "storage", "purposes": ["storage"],
                             "cidr": "10.70.0.0/24",
                             "addresses": {"alice": "10.70.0.1", "bob": "10.70.0.2",
                                           "carol": "10.70.0.3"}})
    backend = LibvirtBackend(TEST_URI, lab_root=Path("/stackdrill-test"))
    with backend.create(parse_topology(data, "<test>"), lab_name=unique_lab("iscsi"),
                        seed=1) as created:
        yield created


def test_a_host_without_replica_gets_the_volume_over_iscsi_from_the_survivor(
        remote_lab: LibvirtLab, monkeypatch: pytest.MonkeyPatch) -> None:
    """The replica that can serve (bob: alice is gone) is promoted and activates the LV,
    exports it as its own target on its storage address, and carol logs in to it."""
    guests = FakeGuests("Secondary", disk="/dev/sdb")
    monkeypatch.setattr(remote_lab, "run", guests.run)
    path = remote_lab.drivers.storage.prepare("vol1", "carol", failed=["alice"]).result(10)
    assert (path.mode, path.served_by, path.path) == (AttachMode.REMOTE, "bob", "/dev/sdb")
    issued = [(h, c) for h, c in guests.commands if not c.startswith("cat ")]
    assert [h for h, _ in issued] == ["bob", "bob", "bob", "carol"]
    assert issued[:2] == [("bob", "drbdadm primary r0"), ("bob", "lvchange -aey vg0/vol1")]
    export, login = issued[2][1], issued[3][1]
    assert "BlockStorageObject" in export and f"flock {iscsi.LIO_LOCK} python3" in export
    assert f"vol1 /dev/vg0/vol1 {iscsi.target_iqn('vol1')} 10.70.0.2 3260" in export
    assert f"-T {iscsi.target_iqn('vol1')} -p 10.70.0.2:3260 --login" in login


def test_a_login_that_attaches_no_disk_is_a_storage_error(
        remote_lab: LibvirtLab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remote_lab, "run", FakeGuests("Secondary").run)
    with pytest.raises(StorageError, match="carol: iscsiadm login to bob for vol1"):
        remote_lab.drivers.storage.prepare("vol1", "carol", failed=["alice"]).result(10)


def test_release_on_an_initiator_logs_out_and_leaves_the_replica_alone(
        remote_lab: LibvirtLab, monkeypatch: pytest.MonkeyPatch) -> None:
    guests = FakeGuests("Secondary")
    monkeypatch.setattr(remote_lab, "run", guests.run)
    remote_lab.drivers.storage.release("vol1", "carol").result(timeout=10)
    [(host, command)] = guests.commands
    assert host == "carol" and f"-T {iscsi.target_iqn('vol1')} --logout" in command


def test_release_deactivates_the_lv(lab: LibvirtLab, monkeypatch: pytest.MonkeyPatch) -> None:
    guests = FakeGuests("Secondary")
    monkeypatch.setattr(lab, "run", guests.run)
    lab.drivers.storage.release("vol1", "bob").result(timeout=10)
    [(host, command)] = guests.commands
    # deactivated only where device-mapper has it mapped (a rebooted Secondary has no VG)
    assert host == "bob"
    assert command == ("if dmsetup info vg0-vol1 >/dev/null 2>&1; then "
                       "lvchange -an vg0/vol1; fi")
