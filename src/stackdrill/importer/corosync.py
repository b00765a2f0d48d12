"""corosync.conf (corosync.conf(5)): `name {` opens a section, `}` closes it,
`key: value` sets a key; `#` comments whole lines. Read line by line with the line of
every key; no Python library reads this format (corosync's own is lib/cmap + exec/coroparse.c)."""

from __future__ import annotations

from dataclasses import dataclass

from stackdrill.echo import shown
from stackdrill.errors import Problem
from stackdrill.importer.files import ConfigError
from stackdrill.importer.result import Source

MAX_DEPTH = 16


@dataclass(frozen=True)
class Key:
    path: str  # "quorum.two_node", "nodelist.node.name"
    value: str
    source: Source
    block: int  # which `node { }` (or other repeated section) it is in: its opening line


def parse_corosync(text: str, file: str) -> tuple[Key, ...]:
    out: list[Key] = []
    stack: list[tuple[str, int]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{file}:{number}"
        if line.endswith("{"):
            name = line[:-1].strip()
            if not name or len(stack) >= MAX_DEPTH:
                raise ConfigError(where, [Problem("", "a section needs a name" if not name
                                                  else f"nested deeper than {MAX_DEPTH}")])
            stack.append((name, number))
        elif line == "}":
            if not stack:
                raise ConfigError(where, [Problem("", "'}' closes no section")])
            stack.pop()
        else:
            key, sep, value = line.partition(":")
            if not sep or not key.strip():
                raise ConfigError(where, [Problem("", "expected 'key: value', 'name {' or '}'")])
            path = ".".join([*(s[0] for s in stack), key.strip()])
            out.append(Key(path, value.strip(), Source(file, number),
                           stack[-1][1] if stack else 0))
    if stack:
        raise ConfigError(f"{file}:{stack[-1][1]}", [Problem("", f"section {shown(stack[-1][0])} "
                                                              "is never closed")])
    return tuple(out)
