"""Re-record the corpus: run each situation on the real backend that records it and write
its recording (`python -m stackdrill.conformance.record`, as root for netns; wrapped by
scripts/record-conformance.sh). Slow and privileged, so never part of a CI run.

Each recording states the software it was observed on: the kernel release and the
user-space tools the situation drives (iproute2, nftables, iperf3, iputils; for real
guests libvirt, qemu and, from the guest, its kernel, DRBD module and drbd-utils), so a
re-recording on other software shows as a version change next to any value change.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import logging
import platform
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from stackdrill.conformance import clvm_lab, drbd_lab
from stackdrill.conformance.corpus import DEFAULT_DIR, write
from stackdrill.conformance.model import Recording, RecordingBackend, Situation
from stackdrill.conformance.situations import SITUATIONS

log = logging.getLogger(__name__)

# tool -> the command that prints its version (its first line's version number is kept)
TOOLS: dict[RecordingBackend, dict[str, list[str]]] = {
    "netns": {"iproute2": ["ip", "-V"], "nftables": ["nft", "--version"],
              "iperf3": ["iperf3", "--version"], "iputils-ping": ["ping", "-V"],
              "tracepath": ["tracepath", "-V"]},
    "libvirt": {"libvirt": ["virsh", "--version"], "qemu": ["qemu-system-x86_64", "--version"]},
}
_VERSION = re.compile(r"\d+(?:\.\d+)+|\d{6,}")  # 6.1.0, 3.12, or iputils' 20221126


def tool_version(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=10,
                              check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unknown ({type(exc).__name__})"
    found = _VERSION.search((done.stdout + done.stderr).split("\n", 1)[0])
    return found.group(0) if found else "unknown"


def versions(backend: RecordingBackend) -> dict[str, str]:
    from importlib import metadata

    found = {"kernel": platform.release(), "python": platform.python_version()}
    found["pyroute2"] = metadata.version("pyroute2") if backend == "netns" else "-"
    found.update({tool: tool_version(argv) for tool, argv in TOOLS[backend].items()})
    return {k: v for k, v in found.items() if v != "-"}


def record(situation: Situation, backend: RecordingBackend, directory: Path,
           today: Callable[[], datetime.date] = datetime.date.today) -> Path:
    fields = situation.recorders[backend]()
    found = versions(backend)
    if backend == "libvirt":  # the software in the guests is what the situation observed
        found |= drbd_lab.guest_versions_seen() | clvm_lab.guest_versions_seen()
    recording = Recording(situation=situation.name, backend=backend,
                          recorded_on=today().isoformat(), versions=found, fields=fields)
    return write(directory, recording)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("situations", nargs="*", help="names (default: all on --backend)")
    ap.add_argument("--backend", choices=sorted(TOOLS), default="netns")
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    unknown = [n for n in args.situations if n not in SITUATIONS]
    if unknown:
        print(f"unknown situation(s): {', '.join(unknown)}; known: "
              f"{', '.join(sorted(SITUATIONS))}", file=sys.stderr)
        return 2
    names = args.situations or sorted(SITUATIONS)
    chosen = [SITUATIONS[n] for n in names if args.backend in SITUATIONS[n].recorders]
    if not chosen:
        print(f"no situation to record on {args.backend}", file=sys.stderr)
        return 2
    # real guests boot once for every situation of the run, and are destroyed at its end;
    # each lab boots only when a situation uses it
    with contextlib.ExitStack() as labs:
        if args.backend == "libvirt":
            labs.enter_context(drbd_lab.session())
            labs.enter_context(clvm_lab.session())
        failed = _record_all(chosen, args.backend, args.dir)
    return 1 if failed else 0


def _record_all(chosen: Sequence[Situation], backend: RecordingBackend, directory: Path) -> int:
    failed = 0
    for situation in chosen:
        print(f"recording {situation.name} on {backend} ...", flush=True)
        try:
            path = record(situation, backend, directory)
        except Exception:  # one situation that cannot run does not stop the others
            log.exception("recording %s failed", situation.name)
            failed += 1
            continue
        print(f"  -> {path}", flush=True)
    return failed


if __name__ == "__main__":
    sys.exit(main())
