"""systemd-networkd files (systemd.network(5), systemd.netdev(5)): `[Section]` headers
and `Key=Value` lines, a key may repeat (several `Address=`). The importer reads the
hosts' addresses and MTUs (.network) and the VXLAN and bridge devices of the overlay
(.netdev). configparser cannot keep repeated keys with their lines, so a few lines here."""

from __future__ import annotations

from dataclasses import dataclass

from stackdrill.errors import Problem
from stackdrill.importer.files import ConfigError
from stackdrill.importer.result import Source


@dataclass(frozen=True)
class UnitKey:
    section: str
    key: str
    value: str
    source: Source


@dataclass(frozen=True)
class UnitFile:
    file: str
    keys: tuple[UnitKey, ...]

    def get(self, section: str, key: str) -> UnitKey | None:
        return next((k for k in self.keys if k.section == section and k.key == key), None)

    def all(self, section: str, key: str) -> tuple[UnitKey, ...]:
        return tuple(k for k in self.keys if k.section == section and k.key == key)


def parse_unit(text: str, file: str) -> UnitFile:
    keys: list[UnitKey] = []
    section = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        if not sep or not section:
            raise ConfigError(f"{file}:{number}", [Problem("", "expected [Section] or Key=Value")])
        keys.append(UnitKey(section, key.strip(), value.strip(), Source(file, number)))
    return UnitFile(file, tuple(keys))
