"""DRBD resources, volume groups and logical volumes from every host's files."""

from __future__ import annotations

from typing import Any, get_args

from stackdrill.echo import shown
from stackdrill.errors import Problem
from stackdrill.importer.draft import Draft
from stackdrill.importer.drbd import DrbdConfig, Option, Resource
from stackdrill.importer.drbdadm import flatten
from stackdrill.importer.files import ConfigError
from stackdrill.importer.result import Source
from stackdrill.topology.model import (
    AfterSb0Pri,
    AfterSb1Pri,
    AfterSb2Pri,
    FencingPolicy,
    OnIoError,
)

ALGS = ("md5", "sha1", "sha256", "crc32c")
# drbd.conf option -> (topology field, allowed values or None for a number)
MAPPED: dict[tuple[str, str], tuple[str, tuple[str, ...] | None]] = {
    ("net", "protocol"): ("protocol", ("A", "B", "C")),
    ("net", "allow-two-primaries"): ("allow_two_primaries", ("yes", "no", "")),
    ("net", "after-sb-0pri"): ("after_sb_0pri", get_args(AfterSb0Pri)),
    ("net", "after-sb-1pri"): ("after_sb_1pri", get_args(AfterSb1Pri)),
    ("net", "after-sb-2pri"): ("after_sb_2pri", get_args(AfterSb2Pri)),
    ("net", "verify-alg"): ("verify_alg", ALGS),
    ("net", "csums-alg"): ("csums_alg", ALGS),
    ("disk", "fencing"): ("fencing", get_args(FencingPolicy)),
    ("net", "fencing"): ("fencing", get_args(FencingPolicy)),  # 8.3 placed it under net
    ("disk", "on-io-error"): ("on_io_error", get_args(OnIoError)),
    ("disk", "resync-rate"): ("resync_rate_mbit", None),
    ("syncer", "rate"): ("resync_rate_mbit", None),
    ("net", "ping-int"): ("net.ping_int", None),
    ("net", "ping-timeout"): ("net.ping_timeout", None),
    ("net", "timeout"): ("net.timeout", None),
    ("net", "ko-count"): ("net.ko_count", None),
    ("net", "connect-int"): ("net.connect_int", None),
}
IGNORED = {  # DRBD 8.4 options that change nothing the lab rehearses
    "net": {"max-buffers", "max-epoch-size", "unplug-watermark", "sndbuf-size", "rcvbuf-size",
            "cram-hmac-alg", "shared-secret", "tcp-cork", "use-rle"},
    "disk": {"disk-barrier", "disk-flushes", "disk-drain", "md-flushes", "al-extents",
             "al-updates", "c-plan-ahead", "c-delay-target", "c-fill-target", "c-max-rate",
             "c-min-rate", "max-bio-bvecs", "read-balancing", "size", "resync-after",
             "discard-zeroes-if-aligned", "rs-discard-granularity"},
    "startup": {"wfc-timeout", "degr-wfc-timeout", "outdated-wfc-timeout", "wait-after-sb",
                "stacked-timeouts"},
    "options": {"cpu-mask"},
}
DIFFERENT = {  # DRBD 8.4 options the lab models its own way
    "handlers": "the lab does not run handler scripts: fencing follows the `fencing` policy "
                "and the cluster's fencing, split brain is reported by the drill's checks",
    "net/rr-conflict": "the lab resolves a resync-direction conflict by the after-sb policies",
    "net/always-asbp": "the lab applies the after-sb policies only as DRBD does by default",
    "net/data-integrity-alg": "the lab models no on-the-wire corruption",
    "net/on-congestion": "the lab models protocol A's send buffer without congestion policy",
    "net/congestion-fill": "the lab models protocol A's send buffer without congestion policy",
    "net/congestion-extents": "the lab models protocol A's send buffer without congestion "
                              "policy",
    "disk/disk-timeout": "the lab fails a disk at once; it models no per-request disk timeout",
    "options/on-no-data-accessible": "the lab suspends I/O only through the drill's "
                                     "`drbdadm suspend-io`",
}


def resources(draft: Draft) -> None:
    """Every resource some host's drbd.conf defines, once, checked against the others."""
    seen: dict[str, tuple[str, dict[tuple[str, ...], str]]] = {}
    for name, files in draft.hosts.items():
        if files.drbd is None:
            continue
        _global_options(draft, files.drbd, name)
        for res in files.drbd.resources:
            flat = {k: v for k, v in flatten(files.drbd).items()
                    if k[0] == "common" or k[1] == res.name}
            if res.name in seen:
                first, theirs = seen[res.name]
                if theirs != flat:
                    draft.notes.wrong(res.source, f"resource {res.name}", f"{name}'s "
                                      f"definition differs from {first}'s; {first}'s is used")
                continue
            seen[res.name] = (name, flat)
            _resource(draft, files.drbd, res)


def _global_options(draft: Draft, config: DrbdConfig, host: str) -> None:
    for opt in config.other:
        if opt.name in ("usage-count", "dialog-refresh", "disable-ip-verification",
                        "minor-count", "udev-always-use-vnr"):
            draft.notes.ignored(opt.source, opt.name, "not relevant to the lab")
        else:
            draft.notes.wrong(opt.source, opt.name, f"not a DRBD 8.4 statement the importer "
                              f"knows here ({host})")


def _resource(draft: Draft, config: DrbdConfig, res: Resource) -> None:
    if len(res.hosts) != 2:
        raise ConfigError(str(res.source), [Problem("", f"resource {res.name}: DRBD 8.4 "
                                            f"needs two `on` sections, got {len(res.hosts)}")])
    item: dict[str, Any] = {}
    _index, base = draft.append("drbd", item)
    draft.put(f"{base}.name", item, "name", res.name, res.source)
    nodes = [h.host.split(".")[0] for h in res.hosts]
    draft.put(f"{base}.nodes", item, "nodes", nodes, res.hosts[0].source)
    first = res.hosts[0]
    if first.minor is not None:
        draft.put(f"{base}.minor", item, "minor", first.minor, first.source)
    _backing(draft, res, item, base)
    if first.address is not None and (net := draft.network_of(first.address)):
        draft.put(f"{base}.network", item, "network", net, first.source)
        draft.add_purpose(net, "replication")
    elif first.address is not None:
        raise ConfigError(str(first.source), [Problem("", f"address {first.address} of "
                          f"{first.host} is on no network the hosts' systemd-networkd "
                          "files configure")])
    for section in ("net", "disk", "startup", "handlers", "options", "syncer"):
        for opt in config.options(res, section).values():
            _option(draft, item, base, section, opt)
    for opt in res.other:
        draft.notes.wrong(opt.source, opt.name, "not a resource statement the importer knows")
    for on in res.hosts:
        for opt in on.other:
            if opt.name == "meta-disk":
                draft.notes.ignored(opt.source, opt.name, "the lab models no DRBD metadata")
            elif opt.name == "volume":
                draft.notes.wrong(opt.source, opt.name, "the lab models one volume per "
                                  "resource: write device/disk in the `on` section")
            else:
                draft.notes.wrong(opt.source, opt.name, f"not an `on {on.host}` statement "
                                  "the importer knows")
    _primary(draft, config, res, item, base)


def _backing(draft: Draft, res: Resource, item: dict[str, Any], base: str) -> None:
    """The backing disk (same name on both nodes in the lab) and the device's size."""
    names = []
    for on in res.hosts:
        if on.disk is None:
            raise ConfigError(str(on.source), [Problem("", f"resource {res.name}: no disk "
                                               f"for {on.host}")])
        if on.host.split(".")[0] not in draft.hosts:
            raise ConfigError(str(on.source), [Problem("", f"resource {res.name}: `on "
                              f"{shown(on.host)}` is none of CONFIG_DIR's host directories")])
        disk = draft.need_disk(on.host.split(".")[0], on.disk)
        if disk is None:
            raise ConfigError(str(on.source), [Problem("", f"size of {on.disk} on {on.host} "
                              f"unknown: add {on.host}/commands/lsblk.json")])
        names.append(disk)
    if len(set(names)) > 1:
        draft.notes.differently(res.hosts[1].source, "disk", f"backing disks {names[0]} and "
                                f"{names[1]}: the lab names one disk on both nodes")
    draft.put(f"{base}.disk", item, "disk", names[0], res.hosts[0].source)
    host = res.hosts[0].host.split(".")[0]
    size, src = draft.disks[host][names[0]]
    files = draft.hosts[host]
    device = next((d for d in files.lsblk if d.name == f"drbd{res.hosts[0].minor}"), None)
    if device is not None:
        size, src = device.size >> 30, Source(files.lsblk_file, key=f"{device.name}.size")
    draft.put(f"{base}.size_gb", item, "size_gb", max(1, size), src)


def _option(draft: Draft, item: dict[str, Any], base: str, section: str, opt: Option) -> None:
    target = MAPPED.get((section, opt.name))
    if target is not None:
        _mapped_option(draft, item, base, opt, *target)
    elif opt.name in IGNORED.get(section, set()):
        draft.notes.ignored(opt.source, f"{section}/{opt.name}", "not relevant to the lab")
    elif section == "handlers" or f"{section}/{opt.name}" in DIFFERENT:
        why = DIFFERENT.get(f"{section}/{opt.name}", DIFFERENT["handlers"])
        draft.notes.differently(opt.source, f"{section}/{opt.name}", why)
    elif (section, opt.name) == ("startup", "become-primary-on"):
        return  # read by _primary
    else:
        draft.notes.wrong(opt.source, f"{section}/{opt.name}", "a DRBD option the importer "
                          "does not know: the lab cannot say what it changes")


def _mapped_option(draft: Draft, item: dict[str, Any], base: str, opt: Option,
                   field: str, allowed: tuple[str, ...] | None) -> None:
    if allowed is not None and opt.value not in allowed:
        draft.notes.wrong(opt.source, opt.name, f"{opt.value[:40]!r}: the lab models only "
                          f"{', '.join(a for a in allowed if a)}")
        return
    value: object = opt.value
    if field == "allow_two_primaries":
        value = opt.value in ("yes", "")
    elif field == "resync_rate_mbit":
        rate = _rate_mbit(opt.value)
        if rate is None:
            draft.notes.wrong(opt.source, opt.name, f"not a rate: {opt.value[:40]!r}")
            return
        value = rate
    elif allowed is None:
        if not opt.value.isdigit() or len(opt.value) > 6:
            draft.notes.wrong(opt.source, opt.name, f"not a number: {opt.value[:40]!r}")
            return
        value = int(opt.value)
    target = item
    if field.startswith("net."):
        target = item.setdefault("net", {})
        field = field.removeprefix("net.")
    draft.put(f"{base}.{'net.' if target is not item else ''}{field}", target, field, value,
              opt.source)


UNITS: dict[str, int] = {"": 1, "k": 1, "K": 1, "m": 1024, "M": 1024, "g": 1 << 20, "G": 1 << 20}


def _rate_mbit(text: str) -> float | None:
    """`resync-rate 100M` (KiB/s by default; K, M, G suffixes, powers of 1024 bytes)."""
    number, unit = (text[:-1], text[-1]) if text[-1:].isalpha() else (text, "")
    if unit not in UNITS or not number.isdigit() or len(number) > 9:
        return None
    return round(int(number) * UNITS[unit] * 1024 * 8 / 1e6, 3)


def _primary(draft: Draft, config: DrbdConfig, res: Resource, item: dict[str, Any],
             base: str) -> None:
    """Who is Primary: /proc/drbd where collected, else `startup { become-primary-on }`,
    else a clustered or shared VG on the device (its users run it dual-primary)."""
    nodes: list[str] = item["nodes"]
    minor = item.get("minor", 0)
    now = [(n, draft.hosts[n].roles[minor]) for n in nodes
           if n in draft.hosts and minor in draft.hosts[n].roles]
    primaries = [(n, src) for n, (role, src) in now if role == "Primary"]
    if primaries:
        draft.put(f"{base}.primary", item, "primary", [n for n, _ in primaries], primaries[0][1])
        return
    become = config.options(res, "startup").get("become-primary-on")
    if become is not None:
        who = nodes if become.value == "both" else [become.value.split(".")[0]]
        draft.put(f"{base}.primary", item, "primary", who, become.source)
