"""Workload records and the NBD client (nbdkit on loopback only)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackdrill.backends.netns.nbd import NbdClient, parse_uri
from stackdrill.backends.netns.workload import BLOCK, decode, encode, scan_file


def test_a_record_round_trips_and_a_flipped_bit_is_rejected() -> None:
    block, csum = encode(7, 2, "web1")
    assert len(block) == BLOCK
    rec = decode(block)
    assert rec is not None and (rec.seq, rec.incarnation, rec.instance, rec.checksum) == \
        (7, 2, "web1", csum)
    broken = bytearray(block)
    broken[100] ^= 1
    assert decode(bytes(broken)) is None


def test_scan_finds_records_after_a_one_block_hole(tmp_path: Path) -> None:
    """A write whose answer was lost may never have landed: later records must still count."""
    path = tmp_path / "vol.img"
    with path.open("wb") as fh:
        fh.truncate(1 << 20)
        for seq in (1, 2, 4, 5):
            fh.seek(seq * BLOCK)
            fh.write(encode(seq, 1, "web1")[0])
    assert sorted(scan_file(str(path))) == [1, 2, 4, 5]


def test_nbd_uri_parsing() -> None:
    assert parse_uri("nbd://10.0.0.1:10810/vol1") == ("10.0.0.1", 10810, "vol1")
    with pytest.raises(ValueError):
        parse_uri("iscsi://x/y")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def nbdkit(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    if shutil.which("nbdkit") is None:
        pytest.skip("needs nbdkit (scripts/system-packages-netns.txt)")
    path = tmp_path / "disk.img"
    with path.open("wb") as fh:
        fh.truncate(1 << 20)
    port = _free_port()
    proc = subprocess.Popen(["nbdkit", "--foreground", "-i", "127.0.0.1", "-p", str(port),
                             "file", f"file={path}"], stderr=subprocess.DEVNULL)
    uri = f"nbd://127.0.0.1:{port}/disk"
    try:
        for _ in range(200):
            try:
                NbdClient.connect(uri).close()
                break
            except OSError:
                time.sleep(0.02)
        yield uri, path
    finally:
        proc.kill()
        proc.wait(timeout=5)


def test_an_acknowledged_nbd_write_is_in_the_served_file(nbdkit: tuple[str, Path]) -> None:
    """FUA: once the server answers, the data is on its storage (nbdkit file plugin)."""
    uri, path = nbdkit
    client = NbdClient.connect(uri)
    assert client.size == 1 << 20
    block, _ = encode(3, 1, "web1")
    client.pwrite(3 * BLOCK, block)
    assert client.pread(3 * BLOCK, BLOCK) == block
    client.close()
    assert sorted(scan_file(str(path))) == [3]
