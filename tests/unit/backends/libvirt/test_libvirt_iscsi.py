"""The initiator's shell that finds a volume's disk, against open-iscsi's own output.

`recorded/` holds what `iscsiadm -m session` and `iscsiadm -m session -P 3` printed on a
compute guest of nova-mini (open-iscsi 2.1.8, Debian bookworm) after its storage Primary
sto1 (10.82.0.21) died and sto2 (10.82.0.22) took over: vol-web1 had its dead session to
sto1 (disk sda, transport-offline) and a new one to sto2 (disk sdb); vol-db1 only the new
one. Before the disk was looked up by target *and* portal, the login after a failover
found the dead session's disk and restarted the guest on it (vm-storage-primary-loss on
libvirt: three writers stuck in D state until the replacement timeout, then I/O errors).
A fake `iscsiadm` on PATH replays the recording; `awk` is the real one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from stackdrill.backends.libvirt import iscsi

RECORDED = Path(__file__).parent / "recorded"
STO1, STO2 = "10.82.0.21:3260", "10.82.0.22:3260"


@pytest.fixture
def replay(tmp_path: Path) -> dict[str, str]:
    """An environment whose `iscsiadm` prints the recorded sessions."""
    fake = tmp_path / "iscsiadm"
    fake.write_text(
        "#!/bin/sh\n"
        f'case "$*" in *"-P 3"*) cat {RECORDED / "iscsiadm-m-session-P3.txt"} ;; '
        f'"-m session") cat {RECORDED / "iscsiadm-m-session.txt"} ;; *) exit 21 ;; esac\n')
    fake.chmod(0o755)
    return {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}


def shell(command: str, env: dict[str, str]) -> list[str]:
    sh = shutil.which("sh")
    assert sh is not None
    done = subprocess.run([sh, "-c", command], env=env, capture_output=True, text=True,
                          timeout=10, check=True)
    return done.stdout.split()


def test_the_disk_is_the_one_of_the_session_at_the_new_portal(replay: dict[str, str]) -> None:
    web1 = iscsi.target_iqn("vol-web1")
    assert shell(iscsi.session_disk(web1, STO2), replay) == ["sdb"]
    assert shell(iscsi.session_disk(web1, STO1), replay) == ["sda"]


def test_no_session_at_a_portal_finds_no_disk(replay: dict[str, str]) -> None:
    db1 = iscsi.target_iqn("vol-db1")
    assert shell(iscsi.session_disk(db1, STO1), replay) == []
    assert shell(iscsi.session_disk(db1, STO2), replay) == ["sdc"]


def test_every_portal_of_a_target_is_listed_for_the_stale_logout(
        replay: dict[str, str]) -> None:
    web1, db1 = iscsi.target_iqn("vol-web1"), iscsi.target_iqn("vol-db1")
    assert shell(iscsi.session_portals(web1), replay) == [STO1, STO2]
    assert shell(iscsi.session_portals(db1), replay) == [STO2]
    assert shell(iscsi.session_portals(iscsi.target_iqn("vol-app2")), replay) == []

