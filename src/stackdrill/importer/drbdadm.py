"""drbd-utils' own reading of a drbd.conf (`drbdadm-84 -c FILE dump-xml`), where it is
installed: it needs no kernel module. The importer runs it after its own parser (which
bounds the input and refuses includes outside CONFIG_DIR) so that a file drbdadm would
refuse is refused here too, with drbdadm's message; the tests check both read the same
options from every fixture."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import defusedxml.ElementTree as SafeET

from stackdrill.importer.drbd import DrbdConfig

CANDIDATES = ("/usr/lib/drbd/drbdadm-84", "/lib/drbd/drbdadm-84")
TIMEOUT_S = 10.0
MAX_OUTPUT = 1 << 20

Flat = dict[tuple[str, ...], str]


@dataclass(frozen=True)
class DrbdadmRefused(Exception):
    """drbdadm found the file invalid; `message` is its first lines."""

    message: str


def drbdadm_path() -> str | None:
    """The 8.4 drbdadm when drbd-utils is installed (its v84 helper, or drbdadm-84 on PATH)."""
    for candidate in CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    return shutil.which("drbdadm-84")


def dump_xml(drbdadm: str, conf: Path) -> Flat:
    """drbdadm's reading of `conf`, flattened for comparison with `flatten`."""
    try:
        done = subprocess.run([drbdadm, "-c", str(conf), "dump-xml"], capture_output=True,
                              timeout=TIMEOUT_S, check=False, cwd=conf.parent,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise DrbdadmRefused(f"drbdadm dump-xml took longer than {TIMEOUT_S:.0f} s") from None
    if done.returncode != 0:
        text = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise DrbdadmRefused(" ".join(line.strip() for line in text[:2])[:300] or
                             f"drbdadm exited {done.returncode}")
    return _flat_xml(done.stdout[:MAX_OUTPUT])


def _flat_xml(data: bytes) -> Flat:
    root = SafeET.fromstring(data)
    out: Flat = {}
    for section in root.findall("./common/section"):
        for opt in section.findall("option"):
            out[("common", section.get("name", ""), opt.get("name", ""))] = opt.get("value", "")
    for res in root.findall("./resource"):
        name = res.get("name", "")
        for section in res.findall("section"):
            for opt in section.findall("option"):
                key = ("resource", name, section.get("name", ""), opt.get("name", ""))
                out[key] = opt.get("value", "")
        for host in res.findall("host"):
            hname = host.get("name", "")
            device = host.find("./volume/device")
            disk = host.find("./volume/disk")
            address = host.find("address")
            if device is not None:
                out[("host", name, hname, "minor")] = device.get("minor", "")
            if disk is not None:
                out[("host", name, hname, "disk")] = disk.text or ""
            if address is not None:
                out[("host", name, hname, "address")] = (
                    f"{address.text}:{address.get('port', '')}")
    return out


def flatten(config: DrbdConfig) -> Flat:
    """The built-in parser's reading, in `dump_xml`'s shape."""
    out: Flat = {}
    for section, options in config.common.items():
        for opt in options:
            out[("common", section, opt.name)] = opt.value
    for res in config.resources:
        for section, options in res.sections.items():
            for opt in options:
                out[("resource", res.name, section, opt.name)] = opt.value
        for host in res.hosts:
            if host.minor is not None:
                out[("host", res.name, host.host, "minor")] = str(host.minor)
            if host.disk is not None:
                out[("host", res.name, host.host, "disk")] = host.disk
            if host.address is not None:
                out[("host", res.name, host.host, "address")] = f"{host.address}:{host.port}"
    return out
