#!/bin/busybox sh
# The initramfs: load the few modules Debian builds as modules but the root disk needs
# (virtio_pci, virtio_blk, ext4), mount /dev/vda and hand over to the guest's own init.
/bin/busybox mkdir -p /proc /sys /dev /newroot
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
for m in $(/bin/busybox cat /modules.order); do
    /bin/busybox insmod "/modules/$m" 2>/dev/null
done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do
    /bin/busybox sleep 0.1
    i=$((i + 1))
done
/bin/busybox mount -t ext4 -o rw /dev/vda /newroot || {
    echo "initramfs: cannot mount /dev/vda"; /bin/busybox sh
}
/bin/busybox mount --move /dev /newroot/dev
/bin/busybox umount /proc /sys
exec /bin/busybox switch_root /newroot /sbin/stackdrill-init
