#!/usr/bin/env bash
# The peer suites' situations on real guests and the seed's stories on the whole nova-drbd
# lab, and the acceptance gate on the two-node story's config files (the 34 `vm_peer`
# scenarios, one on the vagrant backend, one across two libvirt
# daemons): drbd9-tests' verify, invalidate, switch-primaries, revert-older-data,
# checksum-resync, fencing, ..., lvm2's lvmlockd activation and killed lvmlockd, CTS's
# one-by-one stops and starts and ResourceRecover, Jepsen's clock bump, on DRBD 8.4,
# lvmlockd and corosync in Debian guests; nova-host-failure, maintenance, cascade, the
# management partitions, the storage Primary's loss over iSCSI, the third node and the
# late returning host. Not part of the every-commit run (scripts/test.sh, CI's 30
# minutes): run it nightly or before a release, as root. Budget: README "VM set budget".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "$(id -u)" != 0 ]; then
    echo "test-vm-peer: needs root (libvirt's system connection, the lab bridges)" >&2
    exit 2
fi
exec bash scripts/vm-set.sh vm_peer
