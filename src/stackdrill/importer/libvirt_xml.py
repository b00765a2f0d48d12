"""libvirt domain XML (`virsh dumpxml`, or /etc/libvirt/qemu/*.xml): name, vCPUs,
memory, the block devices behind its disks (an LV, a DRBD device, an iSCSI LUN, an image
file), its NICs (MAC, bridge) and, on a Nova guest, the metadata Nova writes (instance
name, flavor, fixed IPs). Parsed with defusedxml: a DTD, an entity bomb or an external
entity is refused, never expanded or fetched."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET

from stackdrill.errors import Problem
from stackdrill.importer.files import ConfigError
from stackdrill.importer.result import Source

NOVA_NS = {"nova": "http://openstack.org/xmlns/libvirt/nova/1.1"}
BY_PATH_ISCSI = re.compile(r"/dev/disk/by-path/ip-(?P<portal>[^-]+)-iscsi-(?P<iqn>.+)-lun-\d+")
CINDER_IQN = re.compile(r"iqn\.[0-9-]+\.[^:]+:volume-(?P<id>[0-9a-f-]{36})")
LV_PATH = re.compile(r"/dev/(?!mapper/|disk/|drbd)(?P<vg>[^/]+)/(?P<lv>[^/]+)")
MAPPER = re.compile(r"/dev/mapper/(?P<vg>(?:[^-]|--)+)-(?P<lv>(?:[^-]|--)+)")
KIB_PER_UNIT = {"KiB": 1, "k": 1, "MiB": 1024, "M": 1024, "GiB": 1 << 20, "G": 1 << 20,
                "b": 1 / 1024, "bytes": 1 / 1024}


class DiskKind(StrEnum):
    LV = "lv"
    DRBD = "drbd"
    ISCSI = "iscsi"
    FILE = "file"
    OTHER = "other"


@dataclass(frozen=True)
class DomainDisk:
    kind: DiskKind
    path: str  # what the source names
    source: Source
    vg: str | None = None
    lv: str | None = None
    volume_id: str | None = None  # a Cinder volume's id, from its IQN
    portal: str | None = None  # the iSCSI target's address


@dataclass(frozen=True)
class Nic:
    mac: str
    bridge: str | None
    source: Source


@dataclass(frozen=True)
class Domain:
    name: str
    source: Source
    vcpus: int
    memory_mib: int
    disks: tuple[DomainDisk, ...]
    nics: tuple[Nic, ...]
    nova_name: str | None = None
    nova_flavor: str | None = None
    nova_ips: tuple[str, ...] = ()


def parse_domain(text: str, file: str) -> Domain:
    try:
        root = SafeET.fromstring(text)
    except defusedxml.DefusedXmlException as exc:
        raise ConfigError(file, [Problem("", f"refused: {type(exc).__name__} (a DTD or "
                                         "entities, which domain XML never has)")]) from None
    except ParseError as exc:
        raise ConfigError(file, [Problem("", f"not XML: {exc}"[:120])]) from None
    if root.tag != "domain":
        raise ConfigError(file, [Problem("", f"not a libvirt domain (root <{root.tag[:40]}>)")])
    name = _text(root, "name", file)
    return Domain(
        name=name, source=Source(file, key="name"),
        vcpus=_int(_text(root, "vcpu", file), file, "vcpu"),
        memory_mib=_memory_mib(root, file),
        disks=tuple(_disk(d, i, file) for i, d in enumerate(root.findall("./devices/disk"))
                    if d.get("device", "disk") == "disk"),
        nics=tuple(_nic(n, i, file) for i, n in enumerate(root.findall("./devices/interface"))),
        **_nova(root))


def _text(root: Element, path: str, file: str) -> str:
    found = root.find(path)
    if found is None or not (found.text or "").strip():
        raise ConfigError(file, [Problem(path, "missing")])
    return (found.text or "").strip()


def _int(text: str, file: str, path: str) -> int:
    if not text.isdigit() or len(text) > 12:
        raise ConfigError(file, [Problem(path, f"not a number: {text[:40]!r}")])
    return int(text)


def _memory_mib(root: Element, file: str) -> int:
    node = root.find("memory")
    if node is None:
        raise ConfigError(file, [Problem("memory", "missing")])
    unit = node.get("unit", "KiB")
    if unit not in KIB_PER_UNIT:
        raise ConfigError(file, [Problem("memory", f"unknown unit {unit[:20]!r}")])
    return int(_int((node.text or "").strip(), file, "memory") * KIB_PER_UNIT[unit] // 1024)


def _disk(node: Element, index: int, file: str) -> DomainDisk:
    src = node.find("source")
    where = Source(file, key=f"devices/disk[{index}]/source")
    if src is None:
        return DomainDisk(DiskKind.OTHER, "", where)
    if node.get("type") == "network" and src.get("protocol") == "iscsi":
        target = src.find("host")
        return _iscsi(src.get("name", ""), where,
                      target.get("name") if target is not None else None)
    path = src.get("dev") or src.get("file") or ""
    if node.get("type") == "file":
        return DomainDisk(DiskKind.FILE, path, where)
    if match := BY_PATH_ISCSI.fullmatch(path):
        return _iscsi(match["iqn"], where, match["portal"].rpartition(":")[0])
    if path.removeprefix("/dev/drbd").isdigit():
        return DomainDisk(DiskKind.DRBD, path, where)
    if match := LV_PATH.fullmatch(path):
        return DomainDisk(DiskKind.LV, path, where, vg=match["vg"], lv=match["lv"])
    if match := MAPPER.fullmatch(path):
        return DomainDisk(DiskKind.LV, path, where, vg=match["vg"].replace("--", "-"),
                          lv=match["lv"].replace("--", "-"))
    return DomainDisk(DiskKind.OTHER, path, where)


def _iscsi(iqn: str, where: Source, portal: str | None) -> DomainDisk:
    match = CINDER_IQN.match(iqn)
    return DomainDisk(DiskKind.ISCSI, iqn, where, volume_id=match["id"] if match else None,
                      portal=portal)


def _nic(node: Element, index: int, file: str) -> Nic:
    mac = node.find("mac")
    src = node.find("source")
    return Nic(mac=(mac.get("address", "") if mac is not None else "").lower(),
               bridge=src.get("bridge") if src is not None else None,
               source=Source(file, key=f"devices/interface[{index}]"))


def _nova(root: Element) -> dict[str, Any]:
    inst = root.find("./metadata/nova:instance", NOVA_NS)
    if inst is None:
        return {}
    name = inst.find("nova:name", NOVA_NS)
    flavor = inst.find("nova:flavor", NOVA_NS)
    ips = inst.findall("./nova:ports/nova:port/nova:ip", NOVA_NS)
    return {"nova_name": (name.text or "").strip() if name is not None else None,
            "nova_flavor": flavor.get("name") if flavor is not None else None,
            "nova_ips": tuple(ip.get("address", "") for ip in ips)}
