#!/usr/bin/env python3
"""Build the stackdrill guest image from Debian packages, cached by a hash of its inputs.

Why this shape: the machine has no KVM for standard guests, so guests run under qemu TCG, where
a systemd guest needs ~43 s to a prompt. A debootstrap root with a tiny init (no systemd, no
udevd) and a direct kernel boot gets there in ~15 s. Nothing is downloaded but Debian packages:
the kernel comes from `linux-image-*` (apt-get download + dpkg-deb -x), the root from
`debootstrap --variant=minbase`, the root file system is made by `mke2fs -d` (no loop devices).

Output (in the cache directory, printed as JSON on stdout):
  vmlinuz, initrd.img, root.qcow2, manifest.json
Usage: build.py [--cache DIR] [--force] [--print-dir]
Needs root (debootstrap), and the host packages in scripts/system-packages-vm.txt.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUITE = "bookworm"
MIRROR = os.environ.get("STACKDRILL_DEBIAN_MIRROR", "http://deb.debian.org/debian")
KERNEL_META = "linux-image-amd64"
ROOT_SIZE = "1536M"
PACKAGES = (
    "drbd-utils", "lvm2", "lvm2-lockd", "corosync", "dlm-controld", "iproute2", "kmod",
    "procps", "iputils-ping", "qemu-guest-agent", "iperf3", "e2fsprogs", "util-linux",
    "nftables", "iputils-tracepath", "arping", "ethtool",
    # iSCSI between guests: LIO's target (targetcli-fb on python3-rtslib-fb) on the storage
    # guests, open-iscsi's initiator on the compute guests
    "targetcli-fb", "open-iscsi",
    # the Vagrant box (backends/vagrant/box.py): Vagrant reaches its machines over SSH as a
    # `vagrant` user with sudo; sshd only starts when the kernel command line brings a key
    "openssh-server", "sudo",
)
# Modules the drills use; copied with their dependencies (the whole tree is ~400 MB).
GUEST_MODULES = (
    "virtio_pci", "virtio_blk", "virtio_net", "virtio_console", "ext4", "crc32c_generic",
    "crc32c-intel", "dm_mod", "dm_snapshot", "drbd", "dlm", "configfs", "bridge", "veth", "vxlan",
    "sch_netem", "sch_tbf", "sch_htb", "nf_tables", "nft_ct", "nft_reject_inet", "nft_numgen",
    "nf_conntrack", "tun", "loop", "af_packet",
    "target_core_mod", "target_core_iblock", "iscsi_target_mod", "iscsi_tcp", "sd_mod",
)
INITRAMFS_MODULES = ("crc32c_generic", "crc32c-intel", "virtio_pci", "virtio_blk", "ext4")
LVM_CONF = """\
# stackdrill guest: no udevd, and DRBD backing disks must not show up as duplicate PVs.
# The lab's provisioning rewrites global_filter when a VG sits on a local disk.
devices {
    use_devicesfile = 0
    global_filter = [ "a|^/dev/drbd.*|", "r|.*|" ]
    obtain_device_list_from_udev = 0
}
activation {
    udev_sync = 0
    udev_rules = 0
}
global {
    use_lvmlockd = 0
}
"""

# sshd for Vagrant: keys only, no DNS lookups (no resolver in the lab), its host key made at boot
SSHD_CONF = """\
HostKey /run/sshd-keys/ssh_host_ed25519_key
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UseDNS no
"""


def log(msg: str) -> None:
    print(f"[image] {msg}", file=sys.stderr, flush=True)


def run(*cmd: str, **kw: object) -> str:
    log("$ " + " ".join(cmd))
    out = subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)  # type: ignore[call-overload]
    return str(out.stdout)


def default_cache() -> Path:
    """Outside the repo; under /var/cache for root because qemu (user libvirt-qemu) cannot
    traverse /root, and the lab's disks are backed by these files."""
    env = os.environ.get("STACKDRILL_IMAGE_CACHE")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/cache/stackdrill/images")
    return Path.home() / ".cache" / "stackdrill" / "images"


def kernel_package() -> tuple[str, str]:
    """The concrete linux-image package the meta package points at, and its version."""
    deps = run("apt-cache", "depends", KERNEL_META)
    pkg = next(
        line.split(":", 1)[1].strip() for line in deps.splitlines()
        if line.strip().startswith("Depends:") and "linux-image-" in line
    )
    policy = run("apt-cache", "policy", pkg)
    version = next(
        line.split(":", 1)[1].strip() for line in policy.splitlines()
        if line.strip().startswith("Candidate:")
    )
    return pkg, version


def input_hash(kernel: tuple[str, str]) -> str:
    """Everything that changes the image: scripts, package lists, kernel version, this file."""
    h = hashlib.sha256()
    for part in (SUITE, MIRROR, ROOT_SIZE, *PACKAGES, *GUEST_MODULES, *INITRAMFS_MODULES,
                 LVM_CONF, SSHD_CONF, *kernel):
        h.update(part.encode() + b"\0")
    for name in ("build.py", "guest-init.sh", "initramfs-init.sh"):
        h.update((HERE / name).read_bytes())
    return h.hexdigest()[:16]


def module_closure(moddir: Path, wanted: tuple[str, ...]) -> list[str]:
    """Relative module paths for `wanted` and their dependencies, dependencies first."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in (moddir / "modules.dep").read_text().splitlines():
        path, _, rest = line.partition(":")
        deps[path] = rest.split()
        by_name[Path(path).name.removesuffix(".ko").replace("-", "_")] = path
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for dep in deps[path]:
            visit(dep)
        order.append(path)

    for name in wanted:
        key = name.replace("-", "_")
        if key not in by_name:
            log(f"module {name} not found (built in?)")
            continue
        visit(by_name[key])
    return order


def write_cpio(root: Path, out: Path) -> None:
    """A gzip'ed newc cpio of `root` (no cpio binary needed)."""
    import gzip

    def header(name: str, mode: int, size: int, ino: int) -> bytes:
        fields = [ino, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, len(name) + 1, 0]
        hdr = b"070701" + b"".join(f"{f:08x}".encode() for f in fields)
        data = hdr + name.encode() + b"\0"
        return data + b"\0" * (-len(data) % 4)

    with gzip.open(out, "wb", compresslevel=6) as fh:
        ino = 1
        for path in sorted(root.rglob("*")):
            rel = str(path.relative_to(root))
            st = path.lstat()
            if path.is_symlink():
                body = str(path.readlink()).encode()
            elif path.is_dir():
                body = b""
            else:
                body = path.read_bytes()
            fh.write(header(rel, st.st_mode, len(body), ino))
            fh.write(body + b"\0" * (-len(body) % 4))
            ino += 1
        fh.write(header("TRAILER!!!", 0, 0, 0))


def add_vagrant_user(root: Path) -> None:
    """The box's login: user `vagrant` with passwordless sudo, as Vagrant boxes have it. No key
    is baked in (each lab brings its own on the kernel command line, guest-init.sh), and the
    host keys debootstrap generated are removed so that no two guests share one."""
    run("useradd", "--root", str(root), "--create-home", "--shell", "/bin/bash", "--uid", "1000",
        "--user-group", "vagrant")
    sudoers = root / "etc/sudoers.d/vagrant"
    sudoers.write_text("vagrant ALL=(ALL) NOPASSWD: ALL\n")
    sudoers.chmod(0o440)
    (root / "etc/ssh/sshd_config.d/stackdrill.conf").write_text(SSHD_CONF)
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()


def build(cache: Path, force: bool) -> Path:
    kernel = kernel_package()
    digest = input_hash(kernel)
    out = cache / digest
    if (out / "manifest.json").exists() and not force:
        log(f"cached: {out}")
        return out
    started = time.monotonic()
    timings: dict[str, float] = {}
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="stackdrill-image-", dir=cache))
    try:
        t = time.monotonic()
        run("apt-get", "download", f"{kernel[0]}={kernel[1]}", cwd=work)
        deb = next(work.glob("linux-image-*.deb"))
        kdir = work / "kernel"
        run("dpkg-deb", "-x", str(deb), str(kdir))
        kver = next(p.name for p in (kdir / "lib/modules").iterdir())
        run("depmod", "-b", str(kdir), kver)
        timings["kernel_s"] = time.monotonic() - t

        t = time.monotonic()
        root = work / "root"
        run("debootstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES), SUITE,
            str(root), MIRROR)
        timings["debootstrap_s"] = time.monotonic() - t

        t = time.monotonic()
        moddir = kdir / "lib/modules" / kver
        target = root / "lib/modules" / kver
        for rel in module_closure(moddir, GUEST_MODULES):
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(moddir / rel, target / rel)
        for extra in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
            if (moddir / extra).exists():
                shutil.copy2(moddir / extra, target / extra)
        run("depmod", "-b", str(root), kver)
        shutil.copy2(HERE / "guest-init.sh", root / "sbin/stackdrill-init")
        (root / "sbin/stackdrill-init").chmod(0o755)
        (root / "etc/lvm/lvm.conf").write_text(LVM_CONF)
        (root / "etc/hostname").write_text("stackdrill\n")
        (root / "etc/fstab").write_text("/dev/vda / ext4 rw 0 1\n")
        add_vagrant_user(root)
        shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
        (root / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
        for junk in ("usr/share/doc", "usr/share/man", "usr/share/locale"):
            shutil.rmtree(root / junk, ignore_errors=True)

        ird = work / "initramfs"
        (ird / "bin").mkdir(parents=True)
        (ird / "modules").mkdir()
        shutil.copy2("/bin/busybox", ird / "bin/busybox")
        (ird / "bin/sh").symlink_to("busybox")
        order = module_closure(moddir, INITRAMFS_MODULES)
        for rel in order:
            shutil.copy2(moddir / rel, ird / "modules" / Path(rel).name)
        (ird / "modules.order").write_text("\n".join(Path(r).name for r in order) + "\n")
        shutil.copy2(HERE / "initramfs-init.sh", ird / "init")
        (ird / "init").chmod(0o755)
        for name in ("proc", "sys", "dev", "newroot"):
            (ird / name).mkdir()
        write_cpio(ird, work / "initrd.img")
        shutil.copy2(kdir / "boot" / f"vmlinuz-{kver}", work / "vmlinuz")
        timings["modules_initramfs_s"] = time.monotonic() - t

        t = time.monotonic()
        raw = work / "root.raw"
        run("mke2fs", "-q", "-t", "ext4", "-L", "stackdrill", "-d", str(root), str(raw), ROOT_SIZE)
        run("qemu-img", "convert", "-O", "qcow2", str(raw), str(work / "root.qcow2"))
        raw.unlink()
        timings["rootfs_s"] = time.monotonic() - t

        manifest = {
            "hash": digest, "suite": SUITE, "kernel": {"package": kernel[0],
            "version": kernel[1], "release": kver}, "packages": list(PACKAGES),
            "cmdline": "console=ttyS0 root=/dev/vda rw quiet",
            "timings": {k: round(v, 1) for k, v in timings.items()},
            "build_s": round(time.monotonic() - started, 1),
        }
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        final = cache / digest
        if final.exists():
            shutil.rmtree(final)
        final.mkdir()
        for name in ("vmlinuz", "initrd.img", "root.qcow2", "manifest.json"):
            (work / name).rename(final / name)
        for path in [cache, final, *final.iterdir()]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        log(f"built {final} in {manifest['build_s']} s")
        return final
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=default_cache())
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--print-dir", action="store_true",
                        help="print the cached image directory if it exists; exit 1 if not")
    args = parser.parse_args()
    if args.print_dir:
        out = args.cache / input_hash(kernel_package())
        if (out / "manifest.json").exists():
            print(out)
            return 0
        return 1
    out = build(args.cache, args.force)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
