"""The Vagrant box, made from the libvirt backend's guest image (lab/images/build.py).

A libvirt box (vagrant-libvirt's format 1) is a tar of `metadata.json`, `box.img` (the
qcow2 root disk) and an optional `Vagrantfile` merged under the project's. Ours also
carries the kernel and initrd, because the image boots them directly (no bootloader), and
its Vagrantfile points vagrant-libvirt at them. The box is named after the image's hash, so
a rebuilt image gets a new box and an unchanged one is added once per VAGRANT_HOME.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

from stackdrill.backends.libvirt.image import GuestImage
from stackdrill.errors import BackendUnavailableError

BOX_PREFIX = "stackdrill/bookworm-"
BOX_VERSION = "1.0.0"  # the image hash in the name tells images apart
ADD_TIMEOUT_S = 600.0  # unpacking ~250 MB into VAGRANT_HOME

BOX_VAGRANTFILE = """\
# The stackdrill guest image as a box: direct kernel boot, no bootloader.
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |lv|
    lv.kernel = File.join(__dir__, "vmlinuz")
    lv.initrd = File.join(__dir__, "initrd.img")
    lv.cmd_line = "console=ttyS0 root=/dev/vda rw quiet"
  end
end
"""


def box_name(image: GuestImage) -> str:
    """`stackdrill/bookworm-<image hash>`: the image directory is named by its hash."""
    return BOX_PREFIX + Path(image.root).parent.name


def metadata(image: GuestImage) -> dict[str, object]:
    """vagrant-libvirt's format 1: one qcow2 disk; its size in whole GB, rounded up (the
    domain's disk may be larger than the image, never smaller)."""
    gib = 1 << 30
    return {"provider": "libvirt", "format": "qcow2",
            "virtual_size": -(-image.root_bytes // gib)}


def write_box(image: GuestImage, out: Path) -> Path:
    """The box file for `image` (uncompressed: the qcow2 barely compresses, and a tar is
    written at disk speed)."""
    with tarfile.open(out, "w") as tar:
        for name, data in (("metadata.json", json.dumps(metadata(image)).encode()),
                           ("Vagrantfile", BOX_VAGRANTFILE.encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
        tar.add(image.root, arcname="box.img")
        tar.add(image.kernel, arcname="vmlinuz")
        tar.add(image.initrd, arcname="initrd.img")
    return out


def catalog(name: str, box_file: Path) -> dict[str, object]:
    """Vagrant's box catalog for one local box file: with a version, Vagrant neither warns
    about an unversioned box nor watches the file for changes (the name carries the hash)."""
    return {"name": name, "versions": [{"version": BOX_VERSION, "providers": [
        {"name": "libvirt", "url": box_file.resolve().as_uri()}]}]}


def is_added(name: str, vagrant_home: Path) -> bool:
    """Vagrant stores box `a/b` under boxes/a-VAGRANTSLASH-b/<version>/<provider>/."""
    stored = vagrant_home / "boxes" / name.replace("/", "-VAGRANTSLASH-")
    return (stored / BOX_VERSION / "libvirt" / "box.img").exists()


def ensure_box(image: GuestImage, vagrant_home: Path, env: dict[str, str]) -> str:
    """The box for `image` in `vagrant_home`, added now if it is not there yet."""
    name = box_name(image)
    if is_added(name, vagrant_home):
        return name
    vagrant_home.mkdir(parents=True, exist_ok=True)
    stem = vagrant_home / name.replace("/", "-")
    box_file = write_box(image, stem.with_suffix(".box"))
    catalog_file = stem.with_suffix(".json")
    catalog_file.write_text(json.dumps(catalog(name, box_file)))
    try:
        out = subprocess.run(["vagrant", "box", "add", "--force", str(catalog_file)],
                             env=env, capture_output=True, text=True, timeout=ADD_TIMEOUT_S,
                             check=False)
    except subprocess.TimeoutExpired as exc:
        raise BackendUnavailableError(f"vagrant box add {name}: no result within "
                                      f"{ADD_TIMEOUT_S:.0f} s") from exc
    finally:
        box_file.unlink(missing_ok=True)
        catalog_file.unlink(missing_ok=True)
    if out.returncode != 0:
        tail = "\n".join((out.stdout + out.stderr).splitlines()[-5:])
        raise BackendUnavailableError(f"vagrant box add {name} failed:\n{tail}")
    return name
