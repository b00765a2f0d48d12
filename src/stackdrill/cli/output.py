"""Writing a report file (`run --report`, `compare --report`), safely when run as root.

- The extension decides the format (.json or .html); anything else is refused before
  the drill runs (exit 2), never silently written as JSON.
- A symlink at the target is refused, never followed (it could point at any file root
  may write); the write itself goes to a new temporary file in the target's directory,
  which then replaces the target by rename, which replaces a directory entry and never
  follows one. A full disk leaves the old file whole and no partial file.
- Only the last directory level is created: `--report reports/x.html` works in a fresh
  checkout, while a mistyped path does not silently grow a tree anywhere on the disk.
- An OS error is an OutputError (exit 4) with one clear line; the verdict was printed
  before the write.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from stackdrill.errors import InputError, OutputError, Problem

FORMATS = (".json", ".html")


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def check_report_path(path: Path, option: str = "--report") -> None:
    """Refuse, before any work, a report path that could not or must not be written."""
    if path.suffix not in FORMATS:
        raise InputError(option, [Problem(str(path)[:200], "the report's extension must be "
                                          ".json or .html")])
    parent = path.parent
    if not parent.exists() and not parent.parent.is_dir():
        raise InputError(option, [Problem(str(path)[:200], f"directory {parent.parent} does "
                                          "not exist (only the report's own directory is "
                                          "created)")])
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise InputError(option, [Problem(str(path)[:200], _reason(exc))]) from None
    if stat.S_ISLNK(info.st_mode):
        raise InputError(option, [Problem(str(path)[:200], "is a symbolic link: refusing "
                                          "to write through it")])
    if not stat.S_ISREG(info.st_mode):
        raise InputError(option, [Problem(str(path)[:200], "exists and is not a regular "
                                          "file")])


def write_report(path: Path, text: str) -> None:
    """Write `text` to `path` atomically (temporary file + rename); OutputError on failure."""
    try:
        _ensure_parent(path.parent)
        if path.is_symlink():
            raise OutputError(f"cannot write report {path}: it is a symbolic link")
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"cannot write report {path}: {_reason(exc)}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fchmod(out.fileno(), 0o666 & ~_umask())  # as a plain write would (not 0600)
            os.fsync(out.fileno())
        Path(tmp).replace(path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write report {path}: {_reason(exc)}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _ensure_parent(parent: Path) -> None:
    if not parent.exists():
        parent.mkdir()  # one level only: check_report_path refused a deeper missing tree


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
