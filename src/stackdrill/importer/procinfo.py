"""What a sosreport keeps of /proc: the CPU count (/proc/cpuinfo), the memory
(/proc/meminfo) and each DRBD minor's roles (/proc/drbd, DRBD 8.4's status)."""

from __future__ import annotations

import re

ROLE_LINE = re.compile(r"\s*(?P<minor>\d+): cs:\S+ ro:(?P<local>\w+)/(?P<peer>\w+)")


def cpu_count(text: str) -> int | None:
    count = sum(1 for line in text.splitlines() if line.split(":")[0].strip() == "processor")
    return count or None


def memory_mib(text: str) -> int | None:
    for line in text.splitlines():
        key, _sep, rest = line.partition(":")
        if key == "MemTotal":
            value = rest.split()
            if value and value[0].isdigit() and len(value[0]) < 15:
                return int(value[0]) // 1024
    return None


def drbd_roles(text: str) -> dict[int, tuple[str, int]]:
    """minor -> (this host's role, the line it was read from)."""
    out: dict[int, tuple[str, int]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = ROLE_LINE.match(line)
        if match and len(match["minor"]) < 8:
            out[int(match["minor"])] = (match["local"], number)
    return out
