"""The instance workload: numbered, checksummed records written to its volumes over NBD.

Run as `python -m stackdrill.backends.netns.workload ...` inside the instance's host
namespace, as the guest's hypervisor process (qemu holds a guest's NBD connection the
same way). Each record lives in its own 512-byte block at `seq * 512`; a write counts as
acknowledged only after the server confirmed it with FUA (or a flush). The process prints
one JSON line per event on stdout (invoke / ok / fail / info): the lab turns them into
the Jepsen-style history. A new incarnation continues after the highest seq it finds, so
a restart elsewhere never overwrites what an earlier incarnation acknowledged.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

if __package__:
    from stackdrill.backends.netns.nbd import NbdClient, NbdError
else:  # run by path as the guest process: stay light (no pydantic, no pyroute2 import)
    from nbd import NbdClient, NbdError  # type: ignore[import-not-found,no-redef]

BLOCK = 512
MAGIC = b"SDREC001"
HEADER = struct.Struct(">8sQI32s")  # magic, seq, incarnation, instance
PAYLOAD = 64
MAX_RECORDS = 1 << 20  # scanning bound (512 MiB of records)
CHUNK = 128  # blocks per read while scanning
GAP = 16  # empty blocks in a row that end a scan


@dataclass(frozen=True)
class Record:
    seq: int
    incarnation: int
    instance: str
    checksum: str


def checksum(seq: int, incarnation: int, instance: str, payload: bytes) -> str:
    digest = hashlib.sha256(struct.pack(">QI", seq, incarnation) + instance.encode() + payload)
    return digest.hexdigest()[:16]


def payload_for(seq: int, incarnation: int, instance: str) -> bytes:
    return hashlib.sha256(f"{instance}/{incarnation}/{seq}".encode()).digest() * 2


def encode(seq: int, incarnation: int, instance: str) -> tuple[bytes, str]:
    payload = payload_for(seq, incarnation, instance)
    csum = checksum(seq, incarnation, instance, payload)
    body = HEADER.pack(MAGIC, seq, incarnation, instance.encode()[:32]) + payload
    block = body + csum.encode() + bytes(BLOCK - len(body) - len(csum))
    return block, csum


def decode(block: bytes) -> Record | None:
    """The record in this block, or None when the block holds no valid record."""
    if len(block) < BLOCK or block[:8] != MAGIC:
        return None
    _, seq, inc, raw_name = HEADER.unpack_from(block)
    instance = raw_name.rstrip(b"\0").decode(errors="replace")
    payload = block[HEADER.size:HEADER.size + PAYLOAD]
    stored = block[HEADER.size + PAYLOAD:HEADER.size + PAYLOAD + 16].decode(errors="replace")
    if checksum(seq, inc, instance, payload) != stored:
        return None
    return Record(seq, inc, instance, stored)


def scan_blocks(read: Callable[[int, int], bytes], limit: int = MAX_RECORDS) -> dict[int, Record]:
    """Every valid record, read through `read(offset, length)` in chunks.

    Stops after GAP empty blocks in a row: a write whose answer was lost leaves at most a
    one-block hole, so records after a hole are still found.
    """
    out: dict[int, Record] = {}
    empty = 0
    seq = 1
    while seq < limit and empty < GAP:
        count = min(CHUNK, limit - seq)
        data = read(seq * BLOCK, count * BLOCK)
        for i in range(count):
            rec = decode(data[i * BLOCK:(i + 1) * BLOCK])
            if rec is None:
                empty += 1
                if empty >= GAP:
                    break
            else:
                empty = 0
                out[rec.seq] = rec
        seq += count
    return out


def scan_file(path: str, limit: int = MAX_RECORDS) -> dict[int, Record]:
    """Every valid record in a volume's backing file."""
    size = os.path.getsize(path)  # noqa: PTH202
    with open(path, "rb") as fh:  # noqa: PTH123 - plain binary read

        def read(offset: int, length: int) -> bytes:
            fh.seek(offset)
            return fh.read(length).ljust(length, b"\0")

        return scan_blocks(read, min(limit, size // BLOCK))


# ------------------------------------------------------------------ the process


def _emit(**fields: object) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def _last_seq(client: NbdClient, limit: int) -> int:
    return max(scan_blocks(client.pread, limit), default=0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--instance", required=True)
    ap.add_argument("--incarnation", type=int, required=True)
    ap.add_argument("--volume", action="append", default=[], help="NAME=nbd://HOST:PORT/EXPORT")
    ap.add_argument("--interval", type=float, default=0.05)
    ap.add_argument("--max-seconds", type=float, default=3600.0)
    ap.add_argument("--max-writes", type=int, default=100000)
    args = ap.parse_args(argv)

    uris = dict(v.split("=", 1) for v in args.volume)
    clients: dict[str, NbdClient | None] = {}
    seqs: dict[str, int] = {}
    for name, uri in uris.items():
        first = NbdClient.connect(uri)
        clients[name] = first
        seqs[name] = _last_seq(first, min(MAX_RECORDS, first.size // BLOCK))
    _emit(ev="ready", pid=os.getpid(), t=time.monotonic(), seqs=seqs)
    deadline = time.monotonic() + args.max_seconds
    writes = 0
    while time.monotonic() < deadline and writes < args.max_writes:
        for name in sorted(clients):
            client: NbdClient | None = clients[name]
            if client is None:  # lost earlier: a guest keeps retrying its disk
                try:
                    client = clients[name] = NbdClient.connect(uris[name], timeout=1.0)
                except OSError:
                    continue
            seq = seqs[name] + 1
            block, csum = encode(seq, args.incarnation, args.instance)
            _emit(ev="invoke", volume=name, seq=seq, checksum=csum, t=time.monotonic())
            seqs[name] = seq  # never reuse a seq: an unanswered write may have landed
            try:
                client.pwrite(seq * BLOCK, block, fua=True)
            except NbdError as exc:
                if exc.errno:  # the server refused it: surely not written
                    _emit(ev="fail", volume=name, seq=seq, t=time.monotonic(), error=str(exc))
                    continue
                _emit(ev="info", volume=name, seq=seq, t=time.monotonic(), error=str(exc))
                clients[name] = None
                continue
            except OSError as exc:  # connection lost: the write may or may not have landed
                _emit(ev="info", volume=name, seq=seq, t=time.monotonic(), error=str(exc))
                client.sock.close()
                clients[name] = None
                continue
            writes += 1
            _emit(ev="ok", volume=name, seq=seq, t=time.monotonic())
        time.sleep(args.interval)
    for last in clients.values():
        if last is not None:
            last.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
