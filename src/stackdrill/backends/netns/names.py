"""Names, slots, address ranges and VNIs of one netns lab.

Everything a lab creates carries its prefix (`sd-<id>-` for namespaces, `sd<id>` for
interfaces, `sd_<id>_` for nftables tables), so cleanup can find exactly what is ours
and nothing else. Several labs side by side (pytest-xdist workers, two terminals) get
different ids from a slot registry under /run guarded by an flock: the id is the slot.

Addresses and VNIs written in a topology are used verbatim: every lab host is its own
network namespace, so two labs with the same addresses never meet. Networks the backend
makes up itself (the controller's management address when the topology has no controller
host, benchmark networks) come from the slot's own range, which no other lab uses.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from stackdrill.backends import lifetime

NS_PREFIX = "sd-"  # network namespaces: sd-<id>-...
IF_PREFIX = "sd"  # interfaces (IFNAMSIZ 15): sd<id>...
NFT_PREFIX = "sd_"  # nftables tables: sd_<id>_...
REGISTRY_DIR = Path(os.environ.get("STACKDRILL_NETNS_RUN", "/run/stackdrill/netns"))
MAX_SLOTS = 4096
# whole names only (fullmatch): `$` with .match would accept a trailing newline
ID_RE = re.compile(r"[0-9a-f]{4}")
NS_RE = re.compile(r"sd-([0-9a-f]{4})-[a-z0-9-]+")
SLOT_RANGE = ipaddress.ip_network("100.64.0.0/10")  # shared address space, never routed here


@dataclass(frozen=True)
class LabNames:
    """Every name a lab with this id may create."""

    lab_id: str  # four hex digits

    def __post_init__(self) -> None:
        if not ID_RE.fullmatch(self.lab_id):
            raise ValueError(f"lab id must be four hex digits, got {self.lab_id!r}")

    @property
    def slot(self) -> int:
        return int(self.lab_id, 16)

    @property
    def ns_prefix(self) -> str:
        return f"{NS_PREFIX}{self.lab_id}-"

    def host_ns(self, host: str) -> str:
        return f"{self.ns_prefix}h-{host}"

    def instance_ns(self, instance: str) -> str:
        return f"{self.ns_prefix}i-{instance}"

    @property
    def switch_ns(self) -> str:
        return f"{self.ns_prefix}sw"

    @property
    def controller_ns(self) -> str:
        return f"{self.ns_prefix}ctl"

    # interfaces: short, index based (IFNAMSIZ is 16 with the NUL)
    def _if(self, suffix: str) -> str:
        name = f"{IF_PREFIX}{self.lab_id}{suffix}"
        if len(name) > 15:
            raise ValueError(f"interface name too long: {name}")
        return name

    def underlay_if(self, net: int) -> str:
        """The host's side of its link to underlay network `net`."""
        return self._if(f"u{net}")

    def switch_bridge(self, net: int) -> str:
        return self._if(f"b{net}")

    def switch_port(self, net: int, host: int) -> str:
        return self._if(f"n{net}h{host}")

    def vxlan_if(self, overlay: int) -> str:
        return self._if(f"vx{overlay}")

    def overlay_bridge(self, overlay: int) -> str:
        return self._if(f"ov{overlay}")

    def instance_port(self, instance: int) -> str:
        """The host's side of an instance's veth (a tap in Nova's words)."""
        return self._if(f"t{instance}")

    def instance_if(self) -> str:
        """The instance's own interface (its eth0)."""
        return self._if("e0")

    def ifb(self, net: int) -> str:
        return self._if(f"f{net}")

    def nft_table(self, what: str) -> str:
        return f"{NFT_PREFIX}{self.lab_id}_{what}"

    def bridge_mac(self, overlay: int, host: int) -> str:
        """A fixed, locally administered MAC for a host's overlay bridge."""
        return _mac(0x5D, self.slot, overlay, host)

    def subnet(self, index: int) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        """The slot's own /24 number `index` (0..3) for networks the backend makes up."""
        if not 0 <= index < 4:
            raise ValueError("a lab has four private /24s")
        base = int(SLOT_RANGE.network_address) + (self.slot * 4 + index) * 256
        return ipaddress.ip_network(f"{ipaddress.ip_address(base)}/24")

    def vni(self, index: int) -> int:
        """The slot's own VNI number `index` (0..255) for overlays the backend makes up."""
        if not 0 <= index < 256:
            raise ValueError("a lab has 256 private VNIs")
        return 0x100000 + self.slot * 256 + index

    def owns_ns(self, name: str) -> bool:
        return name.startswith(self.ns_prefix)


def _mac(kind: int, slot: int, a: int, b: int) -> str:
    octets = [0x02, kind, (slot >> 8) & 0xFF, slot & 0xFF, a & 0xFF, b & 0xFF]
    return ":".join(f"{o:02x}" for o in octets)


def is_stackdrill_ns(name: str) -> bool:
    """True only for namespace names of the shape stackdrill gives them."""
    return bool(NS_RE.fullmatch(name))


# ------------------------------------------------------------------ the slot registry


@contextmanager
def _registry_lock() -> Iterator[None]:
    REGISTRY_DIR.mkdir(parents=True, exist_ok=True)
    with (REGISTRY_DIR / ".lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass(frozen=True)
class SlotRecord:
    """Who holds a slot: a running process (`pid`, and `owner`, its pid and start time as
    `lifetime.owner_token` gives them, so a later process reusing the pid or a zombie is no
    owner), or nobody because the lab was kept on purpose (`kept`; then `pid` is None and
    only `down --lab NAME` frees it)."""

    lab_id: str
    lab_name: str
    pid: int | None
    kept: bool = False
    owner: str = ""

    @property
    def owner_alive(self) -> bool:
        """A slot written by an older stackdrill has a pid only: judged by the pid alone."""
        if self.pid is None:
            return False
        return not lifetime.owner_gone(self.owner or str(self.pid))

    @property
    def in_use(self) -> bool:
        """Not to be reclaimed: its owner runs, or it was kept."""
        return self.kept or self.owner_alive


def read_slots() -> list[SlotRecord]:
    """Every slot file, live, kept or stale."""
    out: list[SlotRecord] = []
    if not REGISTRY_DIR.is_dir():
        return out
    for path in sorted(REGISTRY_DIR.glob("*.json")):
        try:
            data = json.loads(path.read_text())
            kept = bool(data.get("kept"))
            out.append(SlotRecord(str(data["lab_id"]), str(data["lab_name"]),
                                  None if kept else int(data["pid"]), kept,
                                  str(data.get("owner", ""))))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out


def _write_slot(record: SlotRecord) -> None:
    """Atomically (a half-written slot file would read as a free slot). A kept slot's
    pid is written as 0: an older stackdrill on the same machine, which knows no `kept`,
    then takes it for live (kill(0, 0) succeeds) and leaves it alone."""
    path = REGISTRY_DIR / f"{record.lab_id}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"lab_id": record.lab_id, "lab_name": record.lab_name,
                               "pid": record.pid or 0, "kept": record.kept,
                               "owner": record.owner}))
    tmp.replace(path)


def allocate(lab_name: str, reclaim: bool = True,
             clean: Callable[[str], object] | None = None) -> tuple[LabNames, list[str]]:
    """Take the lowest free slot for `lab_name` (owned by this process).

    Returns the names and the ids of stale slots (dead owner, not kept) that were
    reclaimed. Their leftovers must be gone before anyone reuses the id: `clean(lab_id)`
    removes them while the registry lock is held (afterwards, another lab may already own
    the id). A kept lab's slot is never reclaimed: it has no owner to die.
    """
    with _registry_lock():
        taken: dict[str, SlotRecord] = {r.lab_id: r for r in read_slots()}
        stale = [i for i, r in taken.items() if not r.in_use] if reclaim else []
        for lab_id in stale:
            if clean is not None:
                clean(lab_id)
            (REGISTRY_DIR / f"{lab_id}.json").unlink(missing_ok=True)
            del taken[lab_id]
        for slot in range(1, MAX_SLOTS):
            lab_id = f"{slot:04x}"
            if lab_id not in taken:
                _write_slot(SlotRecord(lab_id, lab_name, os.getpid(),
                                       owner=lifetime.owner_token()))
                return LabNames(lab_id), stale
    raise RuntimeError(f"all {MAX_SLOTS} netns lab slots are taken")


def mark_kept(names: LabNames, lab_name: str) -> None:
    """The lab outlives its owner on purpose: no run reclaims its slot from now on."""
    with _registry_lock():
        _write_slot(SlotRecord(names.lab_id, lab_name, None, kept=True))


def kept_slots() -> list[SlotRecord]:
    return [r for r in read_slots() if r.kept]


def release(names: LabNames) -> None:
    with _registry_lock():
        (REGISTRY_DIR / f"{names.lab_id}.json").unlink(missing_ok=True)
