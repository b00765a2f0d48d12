"""Netlink requests for a fresh namespace, sent in batches: one write, the answers after.

pyroute2's IPRoute makes a round trip per request through an asyncio loop (~0.7 ms here),
and a lab's build is hundreds of requests (a full overlay mesh alone is hosts² FDB
entries). The kernel handles every message of one write in order and answers each that
fails (`netlink_rcv_skb`), so a namespace's whole build goes out in a few writes: each
request is a pyroute2 message, only the last of a chunk asks for an ACK, and reading up
to that ACK collects every error. Devices get interface indexes chosen here, so that
later requests in the same write (an address, a bridge port, a VXLAN's underlay device)
can name them without a lookup in between: from FIRST_INDEX up, above those a fresh
namespace may already hold (`lo` is 1; a loaded tunnel module adds its fallback device,
`sit0`, `tunl0`, `gre0`..., to every new namespace, from 2 up).
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from pyroute2.netlink import (
    NLM_F_ACK,
    NLM_F_APPEND,
    NLM_F_CREATE,
    NLM_F_EXCL,
    NLM_F_REQUEST,
    NLMSG_ERROR,
    nlmsg,
)
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.marshal import Marshal
from pyroute2.netlink.rtnl import RTM_NEWADDR, RTM_NEWLINK, RTM_NEWNEIGH
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import IFF_UP, ifinfmsg
from pyroute2.netlink.rtnl.ndmsg import NTF_SELF, NUD_NOARP, NUD_PERMANENT, ndmsg

from stackdrill.backends.netns import nsops

LOOPBACK_INDEX = 1  # the kernel's LOOPBACK_IFINDEX
FIRST_INDEX = 100
CHUNK = 256  # requests per write: fits the send buffer, and their errors the receive one
RCVBUF = 1 << 20
TIMEOUT_S = 30.0  # the kernel answers at once; this only bounds a wait that cannot end
CREATE = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL
APPEND = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_APPEND
CHANGE = NLM_F_REQUEST


@dataclass(frozen=True)
class Request:
    """One netlink message to be, and what it does (for the error that names it).

    Equal keys make equal bytes, so a message that many namespaces get (the same FDB
    entry on every host but one) is encoded once: pyroute2 takes 0.1-0.3 ms to encode
    one here, and a 50-host mesh has 2450 FDB entries. A veth's message holds a namespace's file
    descriptor and has no key.
    """

    what: str
    msg_type: int
    flags: int
    make: Callable[[Mapping[str, int]], nlmsg]  # given the batch's open namespace fds
    key: tuple[Any, ...] | None


def _link(index: int, ifname: str | None, up: bool, attrs: list[Any]) -> ifinfmsg:
    msg = ifinfmsg()
    msg["index"] = index
    msg["flags"] = IFF_UP if up else 0
    msg["change"] = IFF_UP if up else 0
    msg["attrs"] = ([["IFLA_IFNAME", ifname]] if ifname else []) + attrs
    return msg


def _common(mtu: int | None, master: int | None, mac: str | None) -> list[Any]:
    out: list[Any] = []
    if mtu is not None:
        out.append(["IFLA_MTU", mtu])
    if master is not None:
        out.append(["IFLA_MASTER", master])
    if mac is not None:
        out.append(["IFLA_ADDRESS", mac])
    return out


def _kind(kind: str, data: list[Any]) -> list[Any]:
    info: list[Any] = [["IFLA_INFO_KIND", kind]]
    if data:
        info.append(["IFLA_INFO_DATA", {"attrs": data}])
    return [["IFLA_LINKINFO", {"attrs": info}]]


def _address(index: int, address: str, prefixlen: int) -> ifaddrmsg:
    msg = ifaddrmsg()
    msg["family"] = socket.AF_INET6 if ":" in address else socket.AF_INET
    msg["prefixlen"] = prefixlen
    msg["index"] = index
    msg["attrs"] = [["IFA_LOCAL", address], ["IFA_ADDRESS", address]]
    return msg


def _fdb(index: int, mac: str, dst: str) -> ndmsg:
    """What `bridge fdb add|append` sends: a permanent entry on the device itself."""
    msg = ndmsg()
    msg["family"] = socket.AF_BRIDGE
    msg["ifindex"] = index
    msg["state"] = NUD_NOARP | NUD_PERMANENT
    msg["flags"] = NTF_SELF
    msg["attrs"] = [["NDA_LLADDR", mac], ["NDA_DST", dst]]
    return msg


@dataclass
class Batch:
    """The requests for one namespace, in the order the kernel must apply them."""

    ns: str
    requests: list[Request] = field(default_factory=list)
    peers: set[str] = field(default_factory=set)  # namespaces a veth's far end goes to
    indexes: dict[str, int] = field(default_factory=dict)

    def index(self, ifname: str) -> int:
        """The interface index `ifname` gets in this (fresh) namespace: the next one the
        first time it is asked for."""
        if ifname not in self.indexes:
            self.indexes[ifname] = FIRST_INDEX + len(self.indexes)
        return self.indexes[ifname]

    def _add(self, what: str, msg_type: int, flags: int,
             make: Callable[[Mapping[str, int]], nlmsg], key: tuple[Any, ...] | None) -> None:
        self.requests.append(Request(what, msg_type, flags, make, key))

    def set_up(self, index: int, what: str) -> None:
        self._add(f"set {what} up", RTM_NEWLINK, CHANGE,
                  lambda _: _link(index, None, True, []), ("up", index))

    def bridge(self, index: int, ifname: str, *, mtu: int | None = None,
               mac: str | None = None) -> None:
        """A bridge without STP or forward delay, up."""
        data = [["IFLA_BR_STP_STATE", 0], ["IFLA_BR_FORWARD_DELAY", 0]]
        self._add(f"add bridge {ifname}", RTM_NEWLINK, CREATE,
                  lambda _: _link(index, ifname, True,
                                  _common(mtu, None, mac) + _kind("bridge", data)),
                  ("bridge", index, ifname, mtu, mac))

    def veth(self, index: int, ifname: str, *, master: int, mtu: int,
             peer_ns: str, peer_index: int, peer_ifname: str) -> None:
        """A veth pair: this end up on bridge `master`, the other end (down) with index
        `peer_index` in namespace `peer_ns`."""
        def make(fds: Mapping[str, int]) -> nlmsg:
            peer = {"index": peer_index, "flags": 0, "change": 0,
                    "attrs": [["IFLA_IFNAME", peer_ifname], ["IFLA_MTU", mtu],
                              ["IFLA_NET_NS_FD", fds[peer_ns]]]}
            return _link(index, ifname, True, _common(mtu, master, None)
                         + _kind("veth", [["VETH_INFO_PEER", peer]]))

        self.peers.add(peer_ns)
        self._add(f"add veth {ifname} (peer {peer_ifname} in {peer_ns})", RTM_NEWLINK,
                  CREATE, make, None)

    def vxlan(self, index: int, ifname: str, *, vni: int, local: str, port: int,
              underlay: int, master: int, mtu: int) -> None:
        """A VXLAN device without learning (static FDB only), up on bridge `master`."""
        data = [["IFLA_VXLAN_ID", vni], ["IFLA_VXLAN_LOCAL", local],
                ["IFLA_VXLAN_PORT", port], ["IFLA_VXLAN_LINK", underlay],
                ["IFLA_VXLAN_LEARNING", 0]]
        self._add(f"add vxlan {ifname}", RTM_NEWLINK, CREATE,
                  lambda _: _link(index, ifname, True,
                                  _common(mtu, master, None) + _kind("vxlan", data)),
                  ("vxlan", index, ifname, vni, local, port, underlay, master, mtu))

    def address(self, index: int, address: str, prefixlen: int) -> None:
        self._add(f"add address {address}/{prefixlen} on index {index}", RTM_NEWADDR,
                  CREATE, lambda _: _address(index, address, prefixlen),
                  ("addr", index, address, prefixlen))

    def fdb(self, index: int, mac: str, dst: str, *, append: bool) -> None:
        """A static entry on a VXLAN device (`append`: one more remote for `mac`)."""
        self._add(f"fdb {'append' if append else 'add'} {mac} dst {dst} on index {index}",
                  RTM_NEWNEIGH, APPEND if append else CREATE,
                  lambda _: _fdb(index, mac, dst), ("fdb", index, mac, dst, append))


class Build:
    """The batches that build a set of fresh namespaces, sent in the order each was first
    asked for (the namespace that creates veth pairs first, then those they reach into)."""

    def __init__(self) -> None:
        self.batches: dict[str, Batch] = {}

    def batch(self, ns: str) -> Batch:
        if ns not in self.batches:
            self.batches[ns] = Batch(ns)
        return self.batches[ns]

    def send(self) -> None:
        send(list(self.batches.values()))


def send(batches: Sequence[Batch]) -> None:
    """Send each batch into its namespace, in the order given (a veth's far end must exist
    before the far namespace's batch addresses it); the first failure raises
    NetlinkError naming the namespace and the request."""
    encoded: dict[tuple[Any, ...], bytes] = {}
    for batch in batches:
        if batch.requests:
            _send_one(batch, encoded)


def _send_one(batch: Batch, encoded: dict[tuple[Any, ...], bytes]) -> None:
    with ExitStack() as stack:
        fds = {ns: os.open(nsops.NETNS_DIR / ns, os.O_RDONLY) for ns in sorted(batch.peers)}
        for fd in fds.values():
            stack.callback(os.close, fd)
        sock = stack.enter_context(_socket_in(batch.ns))
        for start in range(0, len(batch.requests), CHUNK):
            chunk = batch.requests[start:start + CHUNK]
            data = b"".join(_encode(req, start + i, i == len(chunk) - 1, fds, encoded)
                            for i, req in enumerate(chunk))
            errors = _exchange(sock, data, start + len(chunk) - 1)
            if errors:
                seq, code, text = errors[0]
                raise NetlinkError(code, f"{batch.ns}: {batch.requests[seq].what}: {text}")


def _socket_in(ns: str) -> socket.socket:
    sock = nsops.socket_in(ns, socket.AF_NETLINK, socket.SOCK_RAW)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        sock.settimeout(TIMEOUT_S)
        sock.bind((0, 0))
    except OSError:
        sock.close()
        raise
    return sock


def _encode(req: Request, seq: int, ack: bool, fds: Mapping[str, int],
            encoded: dict[tuple[Any, ...], bytes]) -> bytes:
    """The request's bytes with sequence number `seq` (its position in the batch); only
    the last of a chunk asks for an ACK, errors are answered anyway."""
    body = encoded.get(req.key) if req.key is not None else None
    if body is None:
        msg = req.make(fds)
        msg["header"]["type"] = req.msg_type
        msg["header"]["flags"] = req.flags
        msg["header"]["pid"] = 0
        msg.encode()
        body = bytes(msg.data)
        if req.key is not None:
            encoded[req.key] = body
    out = bytearray(body)
    # struct nlmsghdr { u32 len; u16 type; u16 flags; u32 seq; u32 pid; }
    struct.pack_into("=HI", out, 6, req.flags | (NLM_F_ACK if ack else 0), seq)
    return bytes(out)


def _exchange(sock: socket.socket, data: bytes,
              last_seq: int) -> list[tuple[int, int, str]]:
    """Write `data` and read answers until the ACK of its last message (`last_seq`); the
    errors as (sequence number, errno, text)."""
    sock.send(data)
    marshal = Marshal()
    errors: list[tuple[int, int, str]] = []
    while True:
        for msg in marshal.parse(sock.recv(RCVBUF)):
            header = msg["header"]
            if header["type"] != NLMSG_ERROR:
                continue
            error = header.get("error")
            if error is not None:  # NetlinkError (the kernel's text or strerror), OSError
                code = error.code if isinstance(error, NetlinkError) else error.errno
                text = str(error.args[1]) if len(error.args) > 1 else os.strerror(code)
                errors.append((header["sequence_number"], code, text))
            if header["sequence_number"] == last_seq:
                return errors
