"""`disk save` / `disk restore` on the simulated lab: a whole copy of a detached backing
disk, its blocks and the DRBD meta data on it, written back later (drbd9-tests'
revert-older-data; what the Primary's handshake then decides is compared with the guests
in the conformance corpus, drbd-revert-older-data)."""

from __future__ import annotations

from pathlib import Path

from stackdrill.api import LabOptions
from stackdrill.api.commands import Command, DiskCommand, DrbdCommand
from stackdrill.backends.sim import SimBackend
from stackdrill.backends.sim.lab import SimLab
from stackdrill.topology import load_topology

TOPOLOGIES = Path(__file__).resolve().parents[4] / "lab" / "topologies"
SAVE = DiskCommand(host="cmp2", op="save", disk="sdb")
RESTORE = DiskCommand(host="cmp2", op="restore", disk="sdb")


def _lab() -> SimLab:
    lab = SimBackend().create(load_topology(TOPOLOGIES / "drbd-pair.yaml"), lab_name="t",
                              seed=1, options=LabOptions(writers=frozenset()))
    assert isinstance(lab, SimLab)
    return lab


def _do(lab: SimLab, command: Command, label: str) -> str:
    lab.execute(command, label)
    lab.clock.sleep(60)
    result = lab.command_results()[label]
    assert result.ok, result.detail
    return result.detail


def _drbdadm(op: str) -> DrbdCommand:
    return DrbdCommand.model_validate({"host": "cmp2", "op": op, "resource": "r0"})


def test_a_restored_copy_brings_back_the_old_blocks_and_the_old_generation() -> None:
    lab = _lab()
    res, disk = lab.drbd["r0"], lab.disks[("cmp2", "sdb")]
    _do(lab, _drbdadm("detach"), "detach")
    _do(lab, SAVE, "save")
    saved_uuids = res.status()["cmp2"].uuids
    _do(lab, _drbdadm("attach"), "attach")
    lab.clock.sleep(120)  # the bitmap resync of the detached time
    written = res.device("cmp1").write(777, "after the copy")
    lab.clock.sleep(1)
    assert written.ok and disk.peek(777) == "after the copy"
    _do(lab, _drbdadm("detach"), "detach-again")
    assert res.status()["cmp2"].uuids != saved_uuids
    _do(lab, RESTORE, "restore")
    assert disk.peek(777) is None
    assert res.status()["cmp2"].uuids == saved_uuids


def test_restoring_twice_writes_the_same_copy_and_the_copy_itself_is_not_changed() -> None:
    """The copy is kept aside: a later write to the disk does not reach it."""
    lab = _lab()
    disk = lab.disks[("cmp2", "sdb")]
    _do(lab, _drbdadm("detach"), "detach")
    disk.blocks[5] = "before"
    _do(lab, SAVE, "save")
    disk.blocks[5] = "after"
    _do(lab, RESTORE, "restore")
    disk.blocks[5] = "changed again"
    _do(lab, RESTORE, "restore-again")
    assert disk.peek(5) == "before"
