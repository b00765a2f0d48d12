"""Reading the operator's collected files, bounded: nothing outside CONFIG_DIR, no file
larger than `MAX_FILE_BYTES`, no more than `MAX_FILES` matched by one glob, text only
as UTF-8. A hostile tree (an include pointing at /etc/shadow, a glob over thousands of
files, /dev/zero behind a symlink) ends in one line naming the file, never a hang."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from stackdrill.echo import shown
from stackdrill.errors import InputError, Problem
from stackdrill.validation import problems_from_validation
from stackdrill.yamlio import read_text

MAX_FILE_BYTES = 1 << 20  # a drbd.conf, lvm.conf or domain XML is a few KiB
MAX_FILES = 256  # files one glob may match; a real drbd.d holds a few dozen
MAX_HOSTS = 256
HOST_RE = re.compile(r"[a-z][a-z0-9-]{0,30}")


class ConfigError(InputError):
    """A file in CONFIG_DIR cannot be read or is not what its name says."""


Model = TypeVar("Model", bound=BaseModel)


def parse_json(text: str, file: str, model: type[Model]) -> Model:
    """A command's JSON output (lsblk, vgs, lvs) or an API export as `model`; anything
    else one ConfigError naming the file and where in it."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ConfigError(file, [Problem("", f"not JSON: {exc}"[:120])]) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(file, problems_from_validation(exc, data)) from None


@dataclass(frozen=True)
class ConfigDir:
    """CONFIG_DIR: one directory per host holding its files at their real paths."""

    root: Path

    def rel(self, path: Path) -> str:
        """The path as the user sees it in messages: relative to CONFIG_DIR."""
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def inside(self, path: Path, named_in: str) -> Path:
        """`path` resolved; refused when it leaves CONFIG_DIR (a symlink or an absolute
        include to the importing machine's own /etc)."""
        resolved = path.resolve()
        if not resolved.is_relative_to(self.root.resolve()):
            raise ConfigError(named_in, [Problem("", f"{shown(str(path), 80)} is outside "
                                         "CONFIG_DIR: refused")])
        return resolved

    def read(self, path: Path) -> str:
        self.inside(path, self.rel(path))
        try:
            return read_text(path, ConfigError, MAX_FILE_BYTES,
                             "a configuration file is a few KiB")
        except ConfigError as exc:  # named as the user sees it, relative to CONFIG_DIR
            raise ConfigError(self.rel(path), exc.problems) from None

    def hosts(self) -> list[str]:
        """The host directories, by name; a name that cannot be a host is refused."""
        if not self.root.is_dir():
            raise ConfigError(str(self.root), [Problem("", "not a directory")])
        names = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        if len(names) > MAX_HOSTS:
            raise ConfigError(str(self.root), [Problem("", f"more than {MAX_HOSTS} host "
                                               "directories: refused")])
        for name in names:
            if not HOST_RE.fullmatch(name):
                raise ConfigError(str(self.root), [Problem(
                    shown(name), "a host directory must be named like a host: lower-case "
                    "letters, digits and '-', starting with a letter, at most 31")])
        if not names:
            raise ConfigError(str(self.root), [Problem("", "no host directories (expected "
                                               "CONFIG_DIR/<host>/etc/...)")])
        return names

    def glob(self, base: Path, pattern: str, named_in: str) -> list[Path]:
        """Files matching `pattern` under `base`, sorted, at most `MAX_FILES`."""
        found: list[Path] = []
        for count, path in enumerate(base.glob(pattern)):
            if count >= MAX_FILES:
                raise ConfigError(named_in, [Problem("", f"{shown(pattern)} matches more "
                                             f"than {MAX_FILES} files: refused")])
            if path.is_file():
                found.append(path)
        return sorted(found)
