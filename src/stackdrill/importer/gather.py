"""Each host's files, read and parsed: the one place that knows where on a host a file
lives (its real path, as sosreport or an Ansible `fetch` keeps it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from stackdrill.errors import Problem
from stackdrill.importer import drbdadm
from stackdrill.importer.corosync import Key, parse_corosync
from stackdrill.importer.dnsmasq import FixedAddress, parse_dnsmasq
from stackdrill.importer.drbd import DrbdConfig, read_drbd
from stackdrill.importer.files import MAX_FILES, ConfigDir, ConfigError
from stackdrill.importer.libvirt_xml import Domain, parse_domain
from stackdrill.importer.lvm import (
    BlockDevice,
    LvmSetting,
    LvRow,
    VgRow,
    parse_lsblk,
    parse_lvm_conf,
    parse_lvs,
    parse_vgs,
)
from stackdrill.importer.networkd import UnitFile, parse_unit
from stackdrill.importer.pacemaker import CIB_PATH, CibFencing, parse_cib
from stackdrill.importer.procinfo import cpu_count, drbd_roles, memory_mib
from stackdrill.importer.result import Notes, Source


@dataclass
class HostFiles:
    name: str
    drbd: DrbdConfig | None = None
    lvm: tuple[LvmSetting, ...] = ()
    corosync: tuple[Key, ...] = ()
    cib: CibFencing | None = None
    units: tuple[UnitFile, ...] = ()
    fixed: tuple[FixedAddress, ...] = ()
    domains: tuple[Domain, ...] = ()
    lsblk: tuple[BlockDevice, ...] = ()
    lsblk_file: str = ""
    vgs: tuple[VgRow, ...] = ()
    vgs_file: str = ""
    lvs: tuple[LvRow, ...] = ()
    lvs_file: str = ""
    vcpus: tuple[int, Source] | None = None
    ram_mb: tuple[int, Source] | None = None
    roles: dict[int, tuple[str, Source]] = field(default_factory=dict)  # DRBD minor -> role
    read: set[Path] = field(default_factory=set)


@dataclass
class _Reader:
    """Reads one host's files, remembering which were read."""

    cdir: ConfigDir
    host: HostFiles

    @property
    def base(self) -> Path:
        return self.cdir.root / self.host.name

    def text(self, rel: str) -> tuple[str, str] | None:
        path = self.base / rel
        if not path.is_file():
            return None
        self.host.read.add(path)
        return self.cdir.read(path), self.cdir.rel(path)

    def each(self, pattern: str) -> list[tuple[str, str]]:
        paths = self.cdir.glob(self.base, pattern, f"{self.host.name}/{pattern}")
        self.host.read.update(paths)
        return [(self.cdir.read(p), self.cdir.rel(p)) for p in paths]


def read_host(cdir: ConfigDir, name: str, notes: Notes) -> HostFiles:
    host = HostFiles(name)
    reader = _Reader(cdir, host)
    if (reader.base / "etc/drbd.conf").is_file():
        host.drbd = _drbd(cdir, reader.base / "etc/drbd.conf", host)
    if found := reader.text("etc/lvm/lvm.conf"):
        host.lvm = parse_lvm_conf(*found)
    if found := reader.text("etc/corosync/corosync.conf"):
        host.corosync = parse_corosync(*found)
    if found := reader.text(CIB_PATH):
        host.cib = parse_cib(*found)
    host.units = tuple(parse_unit(*f) for f in reader.each("etc/systemd/network/*.network")
                       + reader.each("etc/systemd/network/*.netdev"))
    dns = ([t] if (t := reader.text("etc/dnsmasq.conf")) else []) + reader.each(
        "etc/dnsmasq.d/*.conf")
    host.fixed = tuple(a for f in dns for a in parse_dnsmasq(*f))
    host.domains = tuple(parse_domain(*f) for f in reader.each("etc/libvirt/qemu/*.xml"))
    _commands(reader)
    _proc(reader)
    _unread(cdir, reader.base, host, notes)
    return host


def _drbd(cdir: ConfigDir, conf: Path, host: HostFiles) -> DrbdConfig:
    config = read_drbd(cdir, conf, host.read)
    tool = drbdadm.drbdadm_path()
    if tool is not None and not config.absolute_includes:
        try:
            theirs = drbdadm.dump_xml(tool, conf.resolve())
        except drbdadm.DrbdadmRefused as exc:
            raise ConfigError(cdir.rel(conf), [Problem("", f"drbdadm: {exc.message}")]) from None
        if theirs != drbdadm.flatten(config):
            raise ConfigError(cdir.rel(conf), [Problem("", "drbdadm dump-xml reads this file "
                                               "differently from the importer: not imported")])
    return config


def _commands(reader: _Reader) -> None:
    host = reader.host
    if found := reader.text("commands/lsblk.json"):
        host.lsblk, host.lsblk_file = parse_lsblk(*found), found[1]
    if found := reader.text("commands/vgs.json"):
        host.vgs, host.vgs_file = parse_vgs(*found), found[1]
    if found := reader.text("commands/lvs.json"):
        host.lvs, host.lvs_file = parse_lvs(*found), found[1]


def _proc(reader: _Reader) -> None:
    host = reader.host
    if (found := reader.text("proc/cpuinfo")) and (count := cpu_count(found[0])):
        host.vcpus = (count, Source(found[1]))
    if (found := reader.text("proc/meminfo")) and (mib := memory_mib(found[0])):
        host.ram_mb = (mib, Source(found[1]))
    if found := reader.text("proc/drbd"):
        host.roles = {minor: (role, Source(found[1], line))
                      for minor, (role, line) in drbd_roles(found[0]).items()}


def _unread(cdir: ConfigDir, base: Path, host: HostFiles, notes: Notes) -> None:
    """Every other file of the host is reported, never silently passed over."""
    found = []
    for seen, path in enumerate(base.rglob("*")):
        if seen >= 20 * MAX_FILES:
            notes.ignored(Source(host.name), "(more files)", "not all files were listed")
            break
        if path.is_file() and path not in host.read:
            found.append(path)
    for path in sorted(found):
        notes.ignored(Source(cdir.rel(path)), "(file)", "the importer does not read this file")
