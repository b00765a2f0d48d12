"""Partitions, packet loss and rate limits on the lab bridges' ports, on each hypervisor.

Each guest NIC gets a stable tap name (see LabNames.tap), so a rule keeps meaning the same
port across power cycles. Faults live in one nftables table per lab (`bridge sd_<lab>`), one
base chain per fault in the bridge `forward` hook: heal deletes that chain, teardown the table.
Loss uses `numgen random` and rate limits a policer plus `tbf` toward the guest, because this
host kernel has no netem (MACHINE-FACTS); the guests' own kernel has it if delay is needed.

A dropped direction (sender -> receiver) is dropped where the receiver's tap is: on the
receiver's hypervisor. From a sender on the same daemon it is matched by both taps; from
one on another daemon (a lab across hypervisors, see underlay.py) its frames arrive
through the network's VXLAN port and are matched by the sender's MAC there. Rules go to
each hypervisor through its host access (hvaccess.py): this machine, or the namespace of a
second local daemon; a hypervisor stackdrill has no access to is refused.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING

from stackdrill.backends.libvirt import underlay
from stackdrill.backends.libvirt.hvaccess import HostAccess, LocalHost
from stackdrill.errors import UnsupportedError
from stackdrill.faults import Cut, Fault, PacketLoss, Partition, RateLimit, describe

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab

log = logging.getLogger(__name__)


def table(lab: str) -> str:
    return f"sd_{lab}"


def chain(fault: Fault) -> str:
    """One chain per fault value: the same value heals what it injected."""
    return "f_" + hashlib.sha256(describe(fault).encode()).hexdigest()[:12]


def rules(lab: LibvirtLab, fault: Fault) -> dict[str, list[str]]:
    """nft rule bodies (inside the fault's chain) that realise `fault`, per hypervisor
    (a URI of it: the host's whose tap the rules match)."""
    out: dict[str, list[str]] = {}
    if isinstance(fault, (Partition, Cut)):
        for sender, receiver, net in _drops(lab, fault):
            rule = _drop(lab, sender, receiver, net)
            if rule is not None:
                out.setdefault(_where(lab, receiver), []).append(rule)
        return out
    if isinstance(fault, PacketLoss):
        tap = _require_tap(lab, fault.host, fault.network)
        per_mille = round(fault.probability * 1000)
        return {_where(lab, fault.host):
                [f'iifname "{tap}" numgen random mod 1000 < {per_mille} drop']}
    if isinstance(fault, RateLimit):
        tap = _require_tap(lab, fault.host, fault.network)
        kbytes = max(1, round(fault.mbit * 1000 / 8))
        return {_where(lab, fault.host):
                [f'iifname "{tap}" limit rate over {kbytes} kbytes/second '
                 f'burst {max(16, kbytes // 10)} kbytes drop']}
    raise UnsupportedError(f"not a network fault: {fault.kind}")


def _drops(lab: LibvirtLab, fault: Partition | Cut) -> list[tuple[str, str, str]]:
    """(sender, receiver, network) of every direction the fault cuts."""
    nets = [fault.network] if fault.network else [n.name for n in lab.topology.networks]
    out = []
    for net in nets:
        if isinstance(fault, Partition):
            for i, group in enumerate(fault.groups):
                for other in fault.groups[i + 1:]:
                    for a in group:
                        out += [(a, b, net) for b in other] + [(b, a, net) for b in other]
        else:
            out += [(s, r, net) for s, r in fault.directed()]
    return out


def _drop(lab: LibvirtLab, sender: str, receiver: str, net: str) -> str | None:
    """The rule, on the receiver's hypervisor, that drops what `sender` sends it on `net`."""
    ts, tr = _tap(lab, sender, net), _tap(lab, receiver, net)
    if not (ts and tr):
        return None
    if underlay.same_hypervisor(lab, sender, receiver):
        return f'iifname "{ts}" oifname "{tr}" drop'
    mac = lab.nodes[sender].nics[net].mac
    return f'iifname "{lab.names.vxlan(net)}" ether saddr {mac} oifname "{tr}" drop'


def _where(lab: LibvirtLab, host: str) -> str:
    """The URI that stands for the host's hypervisor (the lab's first URI of that daemon:
    two URIs of one daemon share its bridges, and get its rules once)."""
    key = underlay.hypervisor_key(lab.nodes[host].uri)
    return next(uri for uri in lab.conns if underlay.hypervisor_key(uri) == key)


def scripts(lab: LibvirtLab, fault: Fault) -> dict[str, str]:
    """The nft script per hypervisor (a URI of it) that realises `fault`."""
    out = {}
    for uri, body in rules(lab, fault).items():
        lines = "\n".join(f"    {rule}" for rule in body)
        out[uri] = (f"table bridge {table(lab.name)} {{\n  chain {chain(fault)} {{\n"
                    f"    type filter hook forward priority 0; policy accept;\n{lines}\n"
                    "  }\n}\n")
    return out


def ruleset(lab: LibvirtLab, fault: Fault) -> str:
    """Every hypervisor's script, as one text (what the fault put in force, for a report)."""
    return "".join(scripts(lab, fault).values())


def _tap(lab: LibvirtLab, host: str, network: str) -> str | None:
    nic = lab.nodes[host].nics.get(network)
    return nic.tap if nic else None


def _require_tap(lab: LibvirtLab, host: str, network: str) -> str:
    tap = _tap(lab, host, network)
    if tap is None:
        raise UnsupportedError(f"host {host} has no interface on network {network!r}")
    return tap


def _access(lab: LibvirtLab, uri: str) -> HostAccess:
    try:
        return underlay.access(uri)
    except UnsupportedError as exc:
        raise UnsupportedError(f"bridge faults on {uri}: {exc}") from exc


def _nft(host: HostAccess, script: str, check: bool = True) -> None:
    host.run(["nft", "-f", "-"], stdin=script, check=check)


def inject(lab: LibvirtLab, fault: Fault, dry_run: bool = False) -> str:
    """Apply the fault's chain on each hypervisor concerned; returns the nft scripts (the
    test driver only renders them)."""
    per_uri = scripts(lab, fault)
    hosts = {uri: _access(lab, uri) for uri in per_uri}
    if not dry_run:
        for uri, script in per_uri.items():
            _nft(hosts[uri], script)
        if isinstance(fault, RateLimit):
            hosts[_where(lab, fault.host)].shape(
                _require_tap(lab, fault.host, fault.network), fault.mbit)
    return "".join(per_uri.values())


def heal(lab: LibvirtLab, fault: Fault, dry_run: bool = False) -> None:
    if dry_run:
        return
    for uri in rules(lab, fault):
        _nft(_access(lab, uri), f"delete chain bridge {table(lab.name)} {chain(fault)}\n",
             check=False)
    if isinstance(fault, RateLimit):
        _access(lab, _where(lab, fault.host)).shape(
            _require_tap(lab, fault.host, fault.network), None)


def remove_table(lab_name: str, host: HostAccess | None = None) -> None:
    """Teardown: drop every fault chain of the lab at once on one hypervisor (this
    machine's by default; an absent table is fine)."""
    _nft(host or LocalHost(), f"delete table bridge {table(lab_name)}\n", check=False)
