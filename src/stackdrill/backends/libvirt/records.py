"""Which libvirt URIs a lab used, kept on disk so that another process can tear it down.

`stackdrill down --lab NAME` and `down --all` run without the topology. A lab on the default
URI only is found there, as always; a lab that also used other daemons writes their URIs
here before it creates anything, and the record goes once its teardown removed everything.
Besides the records, `down` looks at every daemon of scripts/second-libvirtd.sh that runs
(stackdrill's own), where a lab that crashed before its record was written may have left
something. Only what carries the lab's names and marks is ever removed (teardown.py).
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

from stackdrill.backends import lifetime
from stackdrill.topology.libvirt_uri import HV_DIR, HV_NAME, uri_problem

RECORDS = Path("/var/lib/stackdrill/libvirt-uris")
_LAB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _path(lab: str, root: Path | None) -> Path | None:
    return (root or RECORDS) / f"{lab}.json" if _LAB_NAME.fullmatch(lab) else None


def write(lab: str, uris: list[str], root: Path | None = None) -> None:
    """Record the lab's URIs and its owner (this process) before anything is created."""
    path = _path(lab, root)
    if path is None:
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"uris": sorted(uris), "owner": lifetime.owner_token()}))
    tmp.replace(path)


def forget(lab: str, root: Path | None = None) -> None:
    path = _path(lab, root)
    if path is not None:
        path.unlink(missing_ok=True)


def read(lab: str, root: Path | None = None) -> tuple[list[str], str]:
    """(URIs, owner) recorded for the lab; ([], "") when there is no usable record. A URI
    a topology could not name is dropped (the record is ours, but `down` opens them)."""
    path = _path(lab, root)
    try:
        data = json.loads(path.read_text()) if path is not None else {}
    except (OSError, ValueError):
        return [], ""
    uris = data.get("uris") if isinstance(data, dict) else None
    owner = data.get("owner", "") if isinstance(data, dict) else ""
    if not isinstance(uris, list):
        return [], ""
    return ([u for u in uris if isinstance(u, str) and uri_problem(u) is None],
            owner if isinstance(owner, str) else "")


def recorded_labs(root: Path | None = None) -> list[str]:
    directory = root or RECORDS
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.json") if _LAB_NAME.fullmatch(p.stem))


def local_daemons(directory: Path = Path(HV_DIR)) -> list[str]:
    """The URIs of the second local daemons that run now (their sockets exist)."""
    with contextlib.suppress(OSError):
        return sorted(f"qemu+unix:///system?socket={d}/libvirt-sock"
                      for d in directory.iterdir()
                      if HV_NAME.fullmatch(d.name) and (d / "libvirt-sock").is_socket())
    return []
