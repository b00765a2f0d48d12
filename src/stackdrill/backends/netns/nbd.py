"""A minimal NBD client (fixed newstyle handshake, simple replies), in userspace.

This kernel has neither an NBD client (`CONFIG_BLK_DEV_NBD` unset) nor an iSCSI initiator,
so the block protocol is spoken from userspace, exactly as qemu's own NBD block driver
does on a compute host: the guest's "hypervisor" process holds the connection to the
export served by nbdkit on the storage host. Protocol: NetworkBlockDevice/nbd
doc/proto.md (NBD_OPT_EXPORT_NAME, NBD_CMD_READ/WRITE/FLUSH/DISC, FUA).
"""

from __future__ import annotations

import contextlib
import socket
import struct
from urllib.parse import urlparse

NBDMAGIC = b"NBDMAGIC"
IHAVEOPT = 0x49484156454F5054
FLAG_FIXED_NEWSTYLE = 1
FLAG_NO_ZEROES = 2
OPT_EXPORT_NAME = 1
REQUEST_MAGIC = 0x25609513
REPLY_MAGIC = 0x67446698
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH = 0, 1, 2, 3
CMD_FLAG_FUA = 1
TFLAG_SEND_FLUSH = 1 << 2
TFLAG_SEND_FUA = 1 << 3


class NbdError(OSError):
    """The server answered a request with an error, or the connection broke."""


def parse_uri(uri: str) -> tuple[str, int, str]:
    """nbd://HOST:PORT/EXPORT -> (host, port, export)."""
    parsed = urlparse(uri)
    if parsed.scheme != "nbd" or not parsed.hostname:
        raise ValueError(f"not an nbd:// URI: {uri!r}")
    return parsed.hostname, parsed.port or 10809, parsed.path.lstrip("/")


class NbdClient:
    """One connection to one export. Not thread-safe; one outstanding request at a time."""

    def __init__(self, sock: socket.socket, export: str = "") -> None:
        self.sock = sock
        self.handle = 0
        self.size, self.flags = self._handshake(export)

    @classmethod
    def connect(cls, uri: str, timeout: float = 5.0) -> NbdClient:
        host, port, export = parse_uri(uri)
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock, export)

    def _recv(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise NbdError("NBD connection closed by the server")
            buf += chunk
        return bytes(buf)

    def _handshake(self, export: str) -> tuple[int, int]:
        if self._recv(8) != NBDMAGIC:
            raise NbdError("not an NBD server")
        magic, hflags = struct.unpack(">QH", self._recv(10))
        if magic != IHAVEOPT:
            raise NbdError("old-style NBD servers are not supported")
        cflags = FLAG_FIXED_NEWSTYLE | (FLAG_NO_ZEROES if hflags & FLAG_NO_ZEROES else 0)
        name = export.encode()
        self.sock.sendall(struct.pack(">IQII", cflags, IHAVEOPT, OPT_EXPORT_NAME, len(name))
                          + name)
        size, tflags = struct.unpack(">QH", self._recv(10))
        if not cflags & FLAG_NO_ZEROES:
            self._recv(124)
        return size, tflags

    def _request(self, cmd: int, offset: int, length: int, data: bytes = b"",
                 flags: int = 0) -> bytes:
        self.handle += 1
        self.sock.sendall(struct.pack(">IHHQQI", REQUEST_MAGIC, flags, cmd, self.handle,
                                      offset, length) + data)
        if cmd == CMD_DISC:
            return b""
        magic, error, handle = struct.unpack(">IIQ", self._recv(16))
        if magic != REPLY_MAGIC or handle != self.handle:
            raise NbdError("NBD reply out of sequence")
        if error:
            raise NbdError(error, f"NBD server error {error}")
        return self._recv(length) if cmd == CMD_READ else b""

    def pread(self, offset: int, length: int) -> bytes:
        return self._request(CMD_READ, offset, length)

    def pwrite(self, offset: int, data: bytes, fua: bool = True) -> None:
        """Write; with `fua` it is on stable storage when this returns (flush if no FUA)."""
        use_fua = fua and bool(self.flags & TFLAG_SEND_FUA)
        self._request(CMD_WRITE, offset, len(data), data, CMD_FLAG_FUA if use_fua else 0)
        if fua and not use_fua and self.flags & TFLAG_SEND_FLUSH:
            self._request(CMD_FLUSH, 0, 0)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._request(CMD_DISC, 0, 0)
        self.sock.close()
