"""Partitions, packet loss and rate limits on the lab bridges' ports, on the hypervisor.

Each guest NIC gets a stable tap name (see LabNames.tap), so a rule keeps meaning the same
port across power cycles. Faults live in one nftables table per lab (`bridge sd_<lab>`), one
base chain per fault in the bridge `forward` hook: heal deletes that chain, teardown the table.
Loss uses `numgen random` and rate limits a policer plus `tbf` toward the guest, because this
host kernel has no netem (MACHINE-FACTS); the guests' own kernel has it if delay is needed.
Applied on the local hypervisor only: a remote URI's bridges are out of our reach here.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
from collections.abc import Iterable
from typing import TYPE_CHECKING

from stackdrill.errors import UnsupportedError
from stackdrill.faults import Cut, Fault, PacketLoss, Partition, RateLimit, describe

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab

log = logging.getLogger(__name__)
LOCAL_URIS = ("qemu:///", "qemu+unix:///", "test:")


def table(lab: str) -> str:
    return f"sd_{lab}"


def chain(fault: Fault) -> str:
    """One chain per fault value: the same value heals what it injected."""
    return "f_" + hashlib.sha256(describe(fault).encode()).hexdigest()[:12]


def rules(lab: LibvirtLab, fault: Fault) -> list[str]:
    """nft rule bodies (inside the fault's chain) that realise `fault`."""
    if isinstance(fault, Partition):
        nets = [fault.network] if fault.network else [n.name for n in lab.topology.networks]
        out = []
        for net in nets:
            for i, group in enumerate(fault.groups):
                for other in fault.groups[i + 1:]:
                    for a in group:
                        for b in other:
                            ta, tb = _tap(lab, a, net), _tap(lab, b, net)
                            if ta and tb:
                                out.append(f'iifname "{ta}" oifname "{tb}" drop')
                                out.append(f'iifname "{tb}" oifname "{ta}" drop')
        return out
    if isinstance(fault, Cut):
        nets = [fault.network] if fault.network else [n.name for n in lab.topology.networks]
        out = []
        for net in nets:
            for sender, receiver in fault.directed():
                ta, tb = _tap(lab, sender, net), _tap(lab, receiver, net)
                if ta and tb:
                    out.append(f'iifname "{ta}" oifname "{tb}" drop')
        return out
    if isinstance(fault, PacketLoss):
        tap = _require_tap(lab, fault.host, fault.network)
        per_mille = round(fault.probability * 1000)
        return [f'iifname "{tap}" numgen random mod 1000 < {per_mille} drop']
    if isinstance(fault, RateLimit):
        tap = _require_tap(lab, fault.host, fault.network)
        kbytes = max(1, round(fault.mbit * 1000 / 8))
        return [f'iifname "{tap}" limit rate over {kbytes} kbytes/second '
                f'burst {max(16, kbytes // 10)} kbytes drop']
    raise UnsupportedError(f"not a network fault: {fault.kind}")


def ruleset(lab: LibvirtLab, fault: Fault) -> str:
    body = "\n".join(f"    {rule}" for rule in rules(lab, fault))
    return (f"table bridge {table(lab.name)} {{\n  chain {chain(fault)} {{\n"
            f"    type filter hook forward priority 0; policy accept;\n{body}\n  }}\n}}\n")


def _tap(lab: LibvirtLab, host: str, network: str) -> str | None:
    nic = lab.nodes[host].nics.get(network)
    return nic.tap if nic else None


def _require_tap(lab: LibvirtLab, host: str, network: str) -> str:
    tap = _tap(lab, host, network)
    if tap is None:
        raise UnsupportedError(f"host {host} has no interface on network {network!r}")
    return tap


def _local(lab: LibvirtLab, hosts: Iterable[str]) -> None:
    for host in hosts:
        if not lab.nodes[host].uri.startswith(LOCAL_URIS):
            raise UnsupportedError(f"{host} runs on {lab.nodes[host].uri}: bridge faults are "
                                   "applied on the local hypervisor only")


def _nft(script: str, check: bool = True) -> None:
    subprocess.run(["nft", "-f", "-"], input=script, text=True, check=check,
                   capture_output=True, timeout=30)


def _tbf(tap: str, mbit: float | None) -> None:
    """Shape traffic toward the guest (the tap's egress); None removes the qdisc."""
    if mbit is None:
        cmd = ["tc", "qdisc", "del", "dev", tap, "root"]
    else:
        cmd = ["tc", "qdisc", "replace", "dev", tap, "root", "tbf", "rate", f"{mbit}mbit",
               "burst", "32kbit", "latency", "50ms"]
    subprocess.run(cmd, check=False, capture_output=True, timeout=30)


def inject(lab: LibvirtLab, fault: Fault, dry_run: bool = False) -> str:
    """Apply the fault's chain; returns the nft script (the test driver only renders it)."""
    _local(lab, fault.targets())
    script = ruleset(lab, fault)
    if not dry_run:
        _nft(script)
        if isinstance(fault, RateLimit):
            _tbf(_require_tap(lab, fault.host, fault.network), fault.mbit)
    return script


def heal(lab: LibvirtLab, fault: Fault, dry_run: bool = False) -> None:
    if dry_run:
        return
    _nft(f"delete chain bridge {table(lab.name)} {chain(fault)}\n", check=False)
    if isinstance(fault, RateLimit):
        _tbf(_require_tap(lab, fault.host, fault.network), None)


def remove_table(lab_name: str) -> None:
    """Teardown: drop every fault chain of the lab at once (absent table is fine)."""
    _nft(f"delete table bridge {table(lab_name)}\n", check=False)
