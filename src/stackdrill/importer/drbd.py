"""DRBD 8.4 configuration: drbd.conf with its `include`s, `common` inherited by every
resource, `on <host>` sections, and the net/disk/startup/handlers/options sections, read
into typed values with the file and line of every option.

The grammar is drbd-utils' user/v84/drbdadm_parser.c: a statement is words ending in `;`
or followed by a `{ ... }` block; `include "glob";` may appear at the top level. Where
drbd-utils is installed, `drbdadm_check.py` asks drbdadm itself and the tests compare.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from stackdrill.echo import shown
from stackdrill.errors import Problem
from stackdrill.importer.files import ConfigDir, ConfigError
from stackdrill.importer.result import Source
from stackdrill.importer.tokens import MAX_DEPTH, SyntaxProblem, Token, tokenize

MAX_INCLUDE_DEPTH = 8
SECTIONS = ("net", "disk", "startup", "handlers", "options", "syncer")


@dataclass(frozen=True)
class Stmt:
    """`words;` or `words { body }`, where it was written."""

    words: tuple[str, ...]
    source: Source
    body: tuple[Stmt, ...] | None = None


@dataclass(frozen=True)
class Option:
    name: str
    value: str  # "" for a bare flag such as `allow-two-primaries;`
    source: Source


@dataclass(frozen=True)
class OnHost:
    """One `on <host> { ... }` section."""

    host: str
    source: Source
    device: str | None = None
    minor: int | None = None
    disk: str | None = None
    address: str | None = None  # "10.60.0.1" (port dropped)
    port: int | None = None
    other: tuple[Option, ...] = ()


@dataclass(frozen=True)
class Resource:
    name: str
    source: Source
    hosts: tuple[OnHost, ...]
    sections: dict[str, tuple[Option, ...]] = field(default_factory=dict)
    other: tuple[Option, ...] = ()  # resource-level statements not understood


@dataclass(frozen=True)
class DrbdConfig:
    common: dict[str, tuple[Option, ...]]
    resources: tuple[Resource, ...]
    other: tuple[Option, ...] = ()  # global section and unknown top-level statements
    absolute_includes: bool = False  # drbdadm would read the importing machine's files

    def options(self, resource: Resource, section: str) -> dict[str, Option]:
        """The resource's options of one section, `common`'s first (a resource's own
        setting overrides the inherited one, as drbdadm does)."""
        merged = {o.name: o for o in self.common.get(section, ())}
        merged.update({o.name: o for o in resource.sections.get(section, ())})
        return merged


@dataclass
class _Walk:
    """What reading the include tree found: the files, and whether an include was
    absolute (read from the host's tree here, from / by drbdadm)."""

    files: set[Path]
    absolute: bool = False


def parse_statements(text: str, source_file: str) -> tuple[Stmt, ...]:
    """The file as a tree of statements."""
    tokens = list(tokenize(text, "{};"))
    stmts, pos = _block(tokens, 0, source_file, 0)
    if pos < len(tokens):
        raise SyntaxProblem(tokens[pos].line, "unexpected '}'")
    return stmts


def _block(tokens: list[Token], pos: int, file: str, depth: int) -> tuple[tuple[Stmt, ...], int]:
    if depth > MAX_DEPTH:
        raise SyntaxProblem(tokens[pos].line if pos < len(tokens) else 0,
                            f"nested deeper than {MAX_DEPTH} levels")
    out: list[Stmt] = []
    words: list[Token] = []
    while pos < len(tokens):
        tok = tokens[pos]
        if tok.is_punct("}"):
            if words:
                raise SyntaxProblem(words[-1].line, f"missing ';' after {shown(words[-1].text)}")
            return tuple(out), pos
        if tok.is_punct(";"):
            if words:
                out.append(Stmt(tuple(w.text for w in words), Source(file, words[0].line)))
            words, pos = [], pos + 1
        elif tok.is_punct("{"):
            if not words:
                raise SyntaxProblem(tok.line, "'{' without a name before it")
            body, pos = _block(tokens, pos + 1, file, depth + 1)
            if pos >= len(tokens):
                raise SyntaxProblem(tok.line, "'{' is never closed")
            out.append(Stmt(tuple(w.text for w in words), Source(file, words[0].line), body))
            words, pos = [], pos + 1
        else:
            words.append(tok)
            pos += 1
    if words:
        raise SyntaxProblem(words[-1].line, f"missing ';' after {shown(words[-1].text)}")
    return tuple(out), pos


def read_drbd(cdir: ConfigDir, conf: Path, files: set[Path] | None = None) -> DrbdConfig:
    """drbd.conf and everything it includes, as one config; `files` collects the paths."""
    walk = _Walk(files if files is not None else set())
    stmts = list(_with_includes(cdir, conf, 0, set(), walk))
    return replace(interpret(stmts), absolute_includes=walk.absolute)


def _with_includes(cdir: ConfigDir, path: Path, depth: int, seen: set[Path],
                   walk: _Walk) -> Iterator[Stmt]:
    """The file's statements with each `include` replaced by the included files' (in
    glob order, relative to drbd.conf's directory as drbdadm resolves them)."""
    name = cdir.rel(path)
    resolved = cdir.inside(path, name)
    if resolved in seen or depth > MAX_INCLUDE_DEPTH:
        raise ConfigError(name, [Problem("", "include loop (the file includes itself, "
                                         "directly or through others)")])
    walk.files.add(path)
    try:
        stmts = parse_statements(cdir.read(path), name)
    except SyntaxProblem as exc:
        raise ConfigError(f"{name}:{exc.line}", [Problem("", exc.message)]) from None
    for stmt in stmts:
        if stmt.words[0] == "include" and stmt.body is None:
            yield from _include(cdir, path, stmt, depth, seen | {resolved}, walk)
        else:
            yield stmt


def _include(cdir: ConfigDir, path: Path, stmt: Stmt, depth: int, seen: set[Path],
             walk: _Walk) -> Iterator[Stmt]:
    where = str(stmt.source)
    if len(stmt.words) != 2:
        raise ConfigError(where, [Problem("", "include takes one file name or glob")])
    pattern = stmt.words[1]
    base = path.parent
    if pattern.startswith("/"):  # an absolute path names the host's own tree
        base, pattern = _host_root(cdir, path), pattern.lstrip("/")
        walk.absolute = True
    if ".." in Path(pattern).parts:
        raise ConfigError(where, [Problem("", f"{shown(stmt.words[1])}: '..' in an include "
                                          "is refused")])
    for included in cdir.glob(base, pattern, where):
        yield from _with_includes(cdir, included, depth + 1, seen, walk)


def _host_root(cdir: ConfigDir, path: Path) -> Path:
    """CONFIG_DIR/<host>: where an absolute include such as /etc/drbd.d/*.res points."""
    rel = path.relative_to(cdir.root)
    return cdir.root / rel.parts[0]


def interpret(stmts: list[Stmt]) -> DrbdConfig:
    common: dict[str, tuple[Option, ...]] = {}
    resources: list[Resource] = []
    other: list[Option] = []
    for stmt in stmts:
        head = stmt.words[0]
        if head == "common" and stmt.body is not None:
            common = _sections(stmt.body, other)
        elif head == "resource" and stmt.body is not None and len(stmt.words) == 2:
            resources.append(_resource(stmt))
        elif head == "global" and stmt.body is not None:
            other += [_option(s) for s in stmt.body]
        else:
            other.append(_option(stmt))
    return DrbdConfig(common, tuple(resources), tuple(other))


def _option(stmt: Stmt) -> Option:
    return Option(stmt.words[0], " ".join(stmt.words[1:]), stmt.source)


def _sections(body: tuple[Stmt, ...], other: list[Option]) -> dict[str, tuple[Option, ...]]:
    out: dict[str, tuple[Option, ...]] = {}
    for stmt in body:
        if stmt.body is not None and stmt.words[0] in SECTIONS and len(stmt.words) == 1:
            out[stmt.words[0]] = out.get(stmt.words[0], ()) + tuple(
                _option(s) for s in stmt.body)
        else:
            other.append(_option(stmt))
    return out


def _resource(stmt: Stmt) -> Resource:
    assert stmt.body is not None
    hosts: list[OnHost] = []
    shared: list[Stmt] = []  # statements outside `on`: apply to every host
    rest: list[Stmt] = []
    for sub in stmt.body:
        if sub.words[0] == "on" and sub.body is not None and len(sub.words) == 2:
            hosts.append(_on_host(sub.words[1], sub.source, sub.body))
        elif sub.body is None and sub.words[0] in ("device", "disk", "meta-disk", "address"):
            shared.append(sub)
        else:
            rest.append(sub)
    other: list[Option] = []
    sections = _sections(tuple(rest), other)
    if shared:
        hosts = [_merge_shared(h, tuple(shared)) for h in hosts]
    return Resource(stmt.words[1], stmt.source, tuple(hosts), sections, tuple(other))


def _merge_shared(host: OnHost, shared: tuple[Stmt, ...]) -> OnHost:
    """A host section inherits the resource-level device/disk/meta-disk it lacks."""
    inherited = _on_host(host.host, host.source, shared)
    return OnHost(host.host, host.source,
                  device=host.device or inherited.device,
                  minor=host.minor if host.minor is not None else inherited.minor,
                  disk=host.disk or inherited.disk,
                  address=host.address or inherited.address,
                  port=host.port if host.port is not None else inherited.port,
                  other=host.other + inherited.other)


def _on_host(host: str, source: Source, body: tuple[Stmt, ...]) -> OnHost:
    fields: dict[str, object] = {}
    other: list[Option] = []
    for stmt in body:
        words = stmt.words
        if words[0] == "device" and stmt.body is None:
            fields.update(_device(words[1:], stmt.source))
        elif words[0] == "disk" and stmt.body is None and len(words) == 2:
            fields["disk"] = words[1]
        elif words[0] == "address" and stmt.body is None and len(words) in (2, 3):
            fields.update(_address(words[-1], stmt.source))
        else:
            other.append(_option(stmt))
    return OnHost(host, source, other=tuple(other), **fields)  # type: ignore[arg-type]


def _device(words: tuple[str, ...], source: Source) -> dict[str, object]:
    """`device /dev/drbd0;`, `device /dev/drbd0 minor 0;`, `device minor 0;`."""
    out: dict[str, object] = {}
    if words and words[0] != "minor":
        out["device"] = words[0]
        words = words[1:]
    if len(words) == 2 and words[0] == "minor" and words[1].isdigit():
        out["minor"] = int(words[1])
    elif words:
        raise ConfigError(str(source), [Problem("", "device: expected /dev/drbdN [minor N]")])
    device = out.get("device")
    if "minor" not in out and isinstance(device, str) and device.removeprefix(
            "/dev/drbd").isdigit():
        out["minor"] = int(device.removeprefix("/dev/drbd"))
    return out


def _address(text: str, source: Source) -> dict[str, object]:
    """`10.60.0.1:7789` (IPv4; `[fd00::1]:7789` for IPv6)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(str(source), [Problem("", f"address: expected IP:PORT, got "
                                                f"{shown(text)}")])
    return {"address": host.strip("[]"), "port": int(port)}
