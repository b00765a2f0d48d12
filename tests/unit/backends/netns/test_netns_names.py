"""Names, slots and records of the netns backend (pure logic: runs without root)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stackdrill.backends import lifetime
from stackdrill.backends.netns import names as naming
from stackdrill.backends.netns.names import LabNames, allocate, is_stackdrill_ns, release


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(naming, "REGISTRY_DIR", tmp_path / "reg")
    return tmp_path / "reg"


def test_every_interface_name_fits_ifnamsiz_and_carries_the_prefix() -> None:
    """Linux refuses interface names longer than 15 bytes (IFNAMSIZ 16 with NUL)."""
    n = LabNames("0abc")
    names = [n.underlay_if(9), n.switch_bridge(9), n.switch_port(9, 999), n.vxlan_if(9),
             n.overlay_bridge(9), n.instance_port(999), n.instance_if(), n.ifb(9)]
    for name in names:
        assert len(name) <= 15, name
        assert name.startswith("sd0abc"), name
    with pytest.raises(ValueError, match="too long"):
        n.switch_port(999, 99999)


def test_namespaces_of_two_labs_never_share_a_name() -> None:
    a, b = LabNames("0001"), LabNames("0002")
    assert a.host_ns("cmp1") != b.host_ns("cmp1")
    assert a.owns_ns(a.host_ns("cmp1")) and not b.owns_ns(a.host_ns("cmp1"))
    assert a.bridge_mac(0, 1) != b.bridge_mac(0, 1)
    assert a.subnet(0) != b.subnet(0) and not a.subnet(3).overlaps(b.subnet(0))
    assert a.vni(255) < b.vni(0)


def test_bridge_macs_are_locally_administered_unicast() -> None:
    mac = LabNames("ffff").bridge_mac(3, 7)
    first = int(mac.split(":")[0], 16)
    assert first & 0x02 and not first & 0x01


def test_only_stackdrill_shaped_namespaces_are_recognised() -> None:
    """down_all must never take someone else's namespace for ours."""
    assert is_stackdrill_ns("sd-00a1-h-cmp1")
    for other in ("sd-xyz1-h-a", "sd-00a1", "sdx-00a1-h", "docker-1", "sd-00A1-h-a", "cni-123"):
        assert not is_stackdrill_ns(other), other


def test_two_labs_in_one_process_get_distinct_slots(registry: Path) -> None:
    a, stale_a = allocate("one")
    b, stale_b = allocate("two")
    assert a.lab_id != b.lab_id and stale_a == stale_b == []
    release(a)
    c, _ = allocate("three")
    assert c.lab_id == a.lab_id  # the freed slot is reused
    release(b)
    release(c)
    assert not list(registry.glob("*.json"))


def test_a_slot_of_a_dead_process_is_reclaimed_and_reported(registry: Path) -> None:
    """A lab whose owner was SIGKILLed leaves a slot; the next lab reports it for cleanup."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]);"
            "from stackdrill.backends.netns import names as n; from pathlib import Path;"
            "n.REGISTRY_DIR = Path(sys.argv[2]); print(n.allocate('dead')[0].lab_id)")
    src = str(Path(naming.__file__).parents[3])
    out = subprocess.run([sys.executable, "-c", code, src, str(registry)], capture_output=True,
                         text=True, check=True, timeout=60)
    dead_id = out.stdout.strip()
    names, stale = allocate("alive")
    assert stale == [dead_id]
    assert names.lab_id == dead_id
    assert naming.read_slots()[0].pid == os.getpid()
    release(names)


def _in_another_process(registry: Path, code: str) -> str:
    """Run `code` (with `n` the names module on `registry`) in a process that then exits."""
    prelude = ("import sys; sys.path.insert(0, sys.argv[1]);"
               "from stackdrill.backends.netns import names as n; from pathlib import Path;"
               "n.REGISTRY_DIR = Path(sys.argv[2]);")
    src = str(Path(naming.__file__).parents[3])
    out = subprocess.run([sys.executable, "-c", prelude + code, src, str(registry)],
                         capture_output=True, text=True, check=True, timeout=60)
    return out.stdout.strip()


def test_a_kept_slot_and_a_live_owners_slot_are_never_reclaimed(registry: Path) -> None:
    """Only a slot whose owner died without keeping it is reclaimed: a kept lab has no
    owner to die, and a running lab is someone's."""
    kept_id = _in_another_process(
        registry, "names = n.allocate('kept')[0]; n.mark_kept(names, 'kept'); "
                  "print(names.lab_id)")
    dead_id = _in_another_process(registry, "print(n.allocate('dead')[0].lab_id)")
    live, stale = allocate("live")
    assert stale == [dead_id] and live.lab_id == dead_id
    _, stale = allocate("next")
    assert stale == []
    slots = {r.lab_id: r for r in naming.read_slots()}
    assert slots[kept_id].kept and slots[kept_id].pid is None
    assert slots[live.lab_id].pid == os.getpid()
    assert [r.lab_name for r in naming.kept_slots()] == ["kept"]


def test_a_trailing_newline_is_not_part_of_a_name() -> None:
    """`$` with re.match accepts "x\\n": such a lab id or namespace name must not pass as
    ours (cleanup would then act on a name stackdrill never made)."""
    with pytest.raises(ValueError, match="four hex digits"):
        LabNames("0abc\n")
    assert not is_stackdrill_ns("sd-0abc-h-cmp1\n")
    assert is_stackdrill_ns("sd-0abc-h-cmp1")


def test_a_slot_whose_owner_is_a_zombie_or_a_reused_pid_is_reclaimed(registry: Path) -> None:
    """Liveness is the owner's pid *and* start time, as for scratch directories and libvirt
    marks: a zombie (exited, never reaped — this container's PID 1 reaps nothing) and a
    later process that got the same pid are not the owner."""
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])  # not waited for: a zombie
    try:
        deadline = time.monotonic() + 30
        while Path(f"/proc/{zombie.pid}/stat").read_text().rpartition(")")[2].split()[0] \
                != "Z" and time.monotonic() < deadline:
            time.sleep(0.05)
        reused = f"{os.getpid()} 1"  # this pid, but not this process's start time
        records = [naming.SlotRecord("0001", "z", zombie.pid, owner=f"{zombie.pid} ?"),
                   naming.SlotRecord("0002", "r", os.getpid(), owner=reused),
                   naming.SlotRecord("0003", "me", os.getpid(), owner=lifetime.owner_token())]
        assert [r.in_use for r in records] == [False, False, True]
    finally:
        zombie.wait(timeout=10)
