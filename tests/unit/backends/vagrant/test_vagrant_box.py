"""The box made from the guest image: what vagrant-libvirt reads from it."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from stackdrill.backends.libvirt.image import GuestImage
from stackdrill.backends.vagrant.box import (
    BOX_VERSION,
    box_name,
    catalog,
    is_added,
    write_box,
)


def fake_image(tmp_path: Path, size: int = 1536 << 20) -> GuestImage:
    image = tmp_path / "0123abcd"
    image.mkdir()
    for name in ("root.qcow2", "vmlinuz", "initrd.img"):
        (image / name).write_bytes(name.encode())
    return GuestImage(kernel=str(image / "vmlinuz"), initrd=str(image / "initrd.img"),
                      root=str(image / "root.qcow2"), cmdline="console=ttyS0", root_bytes=size)


def test_the_box_holds_the_disk_the_kernel_and_a_vagrantfile_that_boots_them(
        tmp_path: Path) -> None:
    image = fake_image(tmp_path)
    box = write_box(image, tmp_path / "b.box")
    with tarfile.open(box) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    assert members["box.img"] == b"root.qcow2"
    assert members["vmlinuz"] == b"vmlinuz" and members["initrd.img"] == b"initrd.img"
    meta = json.loads(members["metadata.json"])
    # 1.5 GiB rounds up: the domain's disk may be larger than the image, never smaller
    assert meta == {"provider": "libvirt", "format": "qcow2", "virtual_size": 2}
    vagrantfile = members["Vagrantfile"].decode()
    assert 'lv.kernel = File.join(__dir__, "vmlinuz")' in vagrantfile
    assert 'lv.initrd = File.join(__dir__, "initrd.img")' in vagrantfile


def test_the_box_is_named_after_the_image_and_found_once_added(tmp_path: Path) -> None:
    image = fake_image(tmp_path)
    name = box_name(image)
    assert name == "stackdrill/bookworm-0123abcd"
    home = tmp_path / "home"
    assert not is_added(name, home)
    stored = home / "boxes" / "stackdrill-VAGRANTSLASH-bookworm-0123abcd" / BOX_VERSION
    (stored / "libvirt").mkdir(parents=True)
    (stored / "libvirt" / "box.img").write_bytes(b"")
    assert is_added(name, home)


def test_the_catalog_gives_the_local_box_a_version(tmp_path: Path) -> None:
    got = catalog("stackdrill/bookworm-x", tmp_path / "x.box")
    versions = got["versions"]
    assert isinstance(versions, list)
    (version,) = versions
    assert version["version"] == BOX_VERSION
    assert version["providers"] == [{"name": "libvirt",
                                     "url": (tmp_path / "x.box").as_uri()}]
