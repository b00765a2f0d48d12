"""The corpus on disk: one small JSON recording per situation, read back with errors that
name the file, the path in it and the problem (exit 2 at the CLI, never a traceback).

Recordings are written pretty-printed with sorted keys, so a re-recording shows as a
small, readable diff of the values that moved.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from stackdrill.conformance.model import Recording, Situation
from stackdrill.errors import InputError, Problem
from stackdrill.yamlio import problems_from_validation

DEFAULT_DIR = Path("tests/conformance/recordings")
MAX_BYTES = 1 << 20  # a recording is a few hundred bytes; anything near this is not one


@dataclass
class CorpusError(InputError):
    """Several malformed recordings, each rendered `file: path: problem` on its own line."""

    errors: list[InputError] = field(default_factory=list)

    def render(self) -> str:
        return "\n".join(e.render() for e in self.errors)


def recording_path(directory: Path, situation: str) -> Path:
    return directory / f"{situation}.json"


def render(recording: Recording) -> str:
    data = recording.model_dump(mode="json")
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(directory: Path, recording: Recording) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = recording_path(directory, recording.situation)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(render(recording), encoding="utf-8")
    tmp.replace(path)
    return path


def read(path: Path, situations: Mapping[str, Situation]) -> Recording:
    """One recording, checked against the situation it names (known, recorded by a backend
    that can record it, exactly the fields the situation declares)."""
    where = str(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise InputError(where, [Problem("", exc.strerror or str(exc))]) from None
    if len(raw) > MAX_BYTES:
        raise InputError(where, [Problem("", f"larger than {MAX_BYTES} bytes")])
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(where, [Problem("", f"not JSON: {exc}")]) from None
    try:
        recording = Recording.model_validate(data)
    except ValidationError as exc:
        raise InputError(where, problems_from_validation(exc)) from None
    problems = _against_situation(recording, situations)
    if path.stem != recording.situation:
        problems.append(Problem("situation", f"{recording.situation!r} is recorded in a file "
                                             f"named {path.name!r}"))
    if problems:
        raise InputError(where, problems)
    return recording


def _against_situation(recording: Recording,
                       situations: Mapping[str, Situation]) -> list[Problem]:
    situation = situations.get(recording.situation)
    if situation is None:
        known = ", ".join(sorted(situations))
        return [Problem("situation", f"unknown situation {recording.situation!r} "
                                     f"(known: {known})")]
    problems = []
    if recording.backend not in situation.recorders:
        problems.append(Problem("backend", f"situation {situation.name} is not recorded on "
                                           f"{recording.backend}"))
    for name in sorted(set(recording.fields) - set(situation.tolerances)):
        problems.append(Problem(f"fields.{name}", "the situation declares no such field"))
    for name in sorted(set(situation.tolerances) - set(recording.fields)):
        problems.append(Problem(f"fields.{name}", "missing (the situation declares it)"))
    return problems


def read_all(directory: Path, situations: Mapping[str, Situation]) -> list[Recording]:
    """Every recording in `directory`, sorted by situation; all problems at once."""
    if not directory.is_dir():
        raise InputError(str(directory), [Problem("", "no such directory")])
    recordings: list[Recording] = []
    errors: list[InputError] = []
    for path in sorted(directory.glob("*.json")):
        try:
            recordings.append(read(path, situations))
        except InputError as exc:
            errors.append(exc)
    if errors:
        raise CorpusError(str(directory), [], errors)
    return recordings
