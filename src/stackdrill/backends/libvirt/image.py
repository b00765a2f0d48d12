"""Where the guest image is: the output of lab/images/build.py, cached outside the repo.

The backend only reads the cache; building belongs to the build script (and to the test command,
which runs it when the image is missing), because it needs debootstrap and a minute of CPU.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from stackdrill.errors import BackendUnavailableError

BUILD_HINT = "build it with: sudo python3 lab/images/build.py"


@dataclass(frozen=True)
class GuestImage:
    kernel: str
    initrd: str
    root: str  # qcow2 base of every node's overlay
    cmdline: str
    root_bytes: int

    @classmethod
    def placeholder(cls) -> GuestImage:
        """Paths for libvirt's test driver, which never opens them."""
        return cls("/nonexistent/vmlinuz", "/nonexistent/initrd.img", "/nonexistent/root.qcow2",
                   "console=ttyS0 root=/dev/vda rw", 1536 << 20)


def cache_dir() -> Path:
    env = os.environ.get("STACKDRILL_IMAGE_CACHE")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/cache/stackdrill/images")
    return Path.home() / ".cache" / "stackdrill" / "images"


def find_image(directory: Path | None = None) -> GuestImage:
    """The image in `directory` (or STACKDRILL_IMAGE_DIR, or the newest one in the cache)."""
    if directory is None and os.environ.get("STACKDRILL_IMAGE_DIR"):
        directory = Path(os.environ["STACKDRILL_IMAGE_DIR"])
    if directory is None:
        cache = cache_dir()
        built = sorted(
            (p for p in cache.glob("*/manifest.json")), key=lambda p: p.stat().st_mtime
        ) if cache.is_dir() else []
        if not built:
            raise BackendUnavailableError(f"no guest image in {cache}; {BUILD_HINT}")
        directory = built[-1].parent
    manifest_path = directory / "manifest.json"
    if not manifest_path.exists():
        raise BackendUnavailableError(f"no guest image in {directory}; {BUILD_HINT}")
    manifest = json.loads(manifest_path.read_text())
    root = directory / "root.qcow2"
    return GuestImage(
        kernel=str(directory / "vmlinuz"),
        initrd=str(directory / "initrd.img"),
        root=str(root),
        cmdline=str(manifest["cmdline"]),
        root_bytes=_qcow2_virtual_size(root),
    )


def _qcow2_virtual_size(path: Path) -> int:
    """The virtual size from the qcow2 header (bytes 24..32, big endian)."""
    with path.open("rb") as fh:
        header = fh.read(32)
    if header[:4] != b"QFI\xfb":
        raise BackendUnavailableError(f"{path} is not a qcow2 image")
    return int.from_bytes(header[24:32], "big")


def build_image(script: Path, timeout: float = 900.0) -> GuestImage:
    """Run lab/images/build.py (root, debootstrap; ~50 s here) and return its image."""
    import subprocess
    import sys

    if os.geteuid() != 0:
        raise BackendUnavailableError(f"building the guest image needs root; {BUILD_HINT}")
    out = subprocess.run([sys.executable, str(script)], check=False, capture_output=True,
                         text=True, timeout=timeout)
    if out.returncode != 0:
        tail = "\n".join(out.stderr.splitlines()[-5:])
        raise BackendUnavailableError(f"guest image build failed:\n{tail}")
    return find_image(Path(out.stdout.strip().splitlines()[-1]))
