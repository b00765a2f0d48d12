"""What an import produced: the topology, where each field came from, and what was not
mapped, as typed values (the CLI, the gate and the dangers pass read them)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from stackdrill.topology.model import Topology


@dataclass(frozen=True, order=True)
class Source:
    """A place in the operator's files: a path relative to CONFIG_DIR and a line (or, for
    JSON output files, the key path inside the document)."""

    file: str
    line: int | None = None
    key: str | None = None

    def __str__(self) -> str:
        if self.line is not None:
            return f"{self.file}:{self.line}"
        return f"{self.file}#{self.key}" if self.key else self.file


class UnmappedKind(StrEnum):
    """How much it matters that an option did not reach the topology."""

    IGNORED = "ignored"  # not relevant to the lab (logging, buffers, scripts' paths)
    MODELLED_DIFFERENTLY = "modelled-differently"  # the lab has its own model of it
    WRONG = "wrong"  # the topology would misrepresent the real setup without it


@dataclass(frozen=True)
class Mapped:
    """One topology field and the operator's setting it was read from."""

    path: str  # e.g. drbd[0].after_sb_1pri, as the project's error paths spell them
    source: Source
    value: str


@dataclass(frozen=True)
class Unmapped:
    """An option that did not reach the topology, and why."""

    source: Source
    option: str
    why: str
    kind: UnmappedKind


@dataclass(frozen=True)
class ImportResult:
    topology: Topology
    mapped: tuple[Mapped, ...]
    unmapped: tuple[Unmapped, ...]

    @property
    def wrong(self) -> tuple[Unmapped, ...]:
        """The unmapped items without which the topology misrepresents the setup."""
        return tuple(u for u in self.unmapped if u.kind is UnmappedKind.WRONG)

    def origin(self, path: str) -> Source | None:
        return next((m.source for m in self.mapped if m.path == path), None)


class Notes:
    """Collects mapped fields and unmapped options while a config directory is read."""

    def __init__(self) -> None:
        self.mapped: dict[str, Mapped] = {}
        self.unmapped: list[Unmapped] = []

    def mapped_from(self, path: str, source: Source, value: object) -> None:
        self.mapped[path] = Mapped(path, source, str(value))

    def unmapped_option(self, source: Source, option: str, why: str,
                        kind: UnmappedKind) -> None:
        """Noted once per place and option (an option inherited by both `on` sections
        of a resource is one line of the operator's file)."""
        item = Unmapped(source, option, why, kind)
        if item not in self.unmapped:
            self.unmapped.append(item)

    def ignored(self, source: Source, option: str, why: str) -> None:
        self.unmapped_option(source, option, why, UnmappedKind.IGNORED)

    def differently(self, source: Source, option: str, why: str) -> None:
        self.unmapped_option(source, option, why, UnmappedKind.MODELLED_DIFFERENTLY)

    def wrong(self, source: Source, option: str, why: str) -> None:
        self.unmapped_option(source, option, why, UnmappedKind.WRONG)
