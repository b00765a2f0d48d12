#!/bin/sh
# PID 1 of a stackdrill guest. No systemd and no udevd: a TCG guest with them needs ~43 s to a
# prompt, this one ~15 s. It mounts the kernel file systems, loads the modules the drills use,
# names the virtio-serial ports as udev would, and runs qemu-guest-agent, through which the host
# controls the guest (no IP, no sshd: a Vagrant machine's addresses and sshd come from its
# command line, below). Everything else (addresses, DRBD, LVM, corosync) is provisioned by
# the host through the agent.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sysfs /sys 2>/dev/null
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm /run/lock /run/lvm /tmp /var/log
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mkdir -p /run/lock /run/lvm /run/lvm/lock
mount -t tmpfs tmpfs /tmp
mount -o remount,rw /
mount -t configfs none /sys/kernel/config 2>/dev/null
ln -sfn /dev /dev/misc          # dlm_controld and libdlm look for /dev/misc/dlm-*
ln -sfn /proc/self/fd /dev/fd

# sd.net=NAME,MAC,ADDRESS/PREFIX,MTU: name the NIC with MAC after its network, address it.
sd_net() {
    set -f; old_ifs=$IFS; IFS=,
    set -- $1
    IFS=$old_ifs; set +f
    for dev in /sys/class/net/*; do
        [ "$(cat "$dev/address")" = "$2" ] || continue
        ip link set dev "${dev##*/}" name "$1"
        ip link set dev "$1" mtu "$4" up
        ip addr replace "$3" dev "$1"
    done
}

# sd.ssh_key=TYPE:BASE64: the lab's public key for user vagrant, and sshd with a fresh host key.
sd_sshd() {
    install -d -m 700 -o vagrant -g vagrant /home/vagrant/.ssh
    echo "$1" | tr : ' ' > /home/vagrant/.ssh/authorized_keys
    chown vagrant:vagrant /home/vagrant/.ssh/authorized_keys
    chmod 600 /home/vagrant/.ssh/authorized_keys
    install -d -m 700 /run/sshd-keys
    install -d -m 755 /run/sshd
    ssh-keygen -q -t ed25519 -N '' -f /run/sshd-keys/ssh_host_ed25519_key
    /usr/sbin/sshd || echo "stackdrill-init: sshd failed" > /dev/console
}

for arg in $(cat /proc/cmdline); do
    case "$arg" in
        sd.hostname=*) hostname "${arg#sd.hostname=}" ;;
    esac
done
hostname > /etc/hostname
# the guest's own name resolves without DNS (sudo looks it up; there is no resolver in a lab)
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' "$(hostname)" > /etc/hosts

# libcrc32c (needed by drbd) finds no crc32c implementation unless crc32c_generic is loaded first.
for m in crc32c_generic virtio_net virtio_console dm_mod dm_snapshot libcrc32c \
         lru_cache drbd configfs dlm bridge veth vxlan sch_netem sch_tbf; do
    modprobe -q "$m" || echo "stackdrill-init: modprobe $m failed" > /dev/console
done
mount -t configfs none /sys/kernel/config 2>/dev/null

ip link set lo up

# A Vagrant machine (backends/vagrant/box.py) must have its addresses and sshd before anything
# can reach it, so its NICs (sd.net=NAME,MAC,ADDRESS/PREFIX,MTU) and login key
# (sd.ssh_key=TYPE:BASE64) come on the kernel command line. The libvirt backend passes neither:
# it configures the guest through the agent.
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        sd.net=*) sd_net "${arg#sd.net=}" ;;
        sd.ssh_key=*) sd_sshd "${arg#sd.ssh_key=}" ;;
    esac
done

# udev would make /dev/virtio-ports/<name>; without it, do the same from sysfs (bounded wait).
mkdir -p /dev/virtio-ports
i=0
while [ $i -lt 50 ]; do
    for p in /sys/class/virtio-ports/*; do
        [ -r "$p/name" ] || continue
        ln -sfn "/dev/${p##*/}" "/dev/virtio-ports/$(cat "$p/name")"
    done
    [ -e /dev/virtio-ports/org.qemu.guest_agent.0 ] && break
    i=$((i + 1))
    sleep 0.1
done

qemu-ga -d -m virtio-serial -p /dev/virtio-ports/org.qemu.guest_agent.0 -f /run/qemu-ga.pid \
    -l /var/log/qemu-ga.log
echo "stackdrill-init: ready $(hostname) $(cut -d' ' -f1 /proc/uptime)s" > /dev/console

# PID 1 must never exit; reap children while we wait (busybox-free, plain sh).
trap 'poweroff -f' USR2
trap 'reboot -f' INT
while :; do
    sleep 3600 &
    wait $!
done
