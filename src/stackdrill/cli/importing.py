"""`stackdrill import CONFIG_DIR`: the operator's configuration as a topology file."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click

from stackdrill.cli.output import write_report
from stackdrill.echo import cut

if TYPE_CHECKING:
    from stackdrill.importer.result import Unmapped


@click.command("import", epilog="""\b
Examples:
  stackdrill import fixtures/nova-drbd -o nova.yaml
  stackdrill import fixtures/two-node-clvm --json
See README "Importing your configuration".""")
@click.argument("config_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the topology here (default: print it).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the mapping and what was not mapped as JSON (the topology goes "
                   "to -o).")
def import_cmd(config_dir: Path, output: Path | None, as_json: bool) -> None:
    """Read the operator's configuration from CONFIG_DIR and write a topology, a comment
    per field saying where it came from. What could not be mapped goes to stderr; exit 2
    when some of it would make the topology wrong, or on a file that cannot be read.

    CONFIG_DIR holds one directory per host with that host's files at their real paths
    (as sosreport or an Ansible fetch collects them), and optionally a Nova export:

    \b
    HOST/etc/drbd.conf             DRBD 8.4, with the files it includes
    HOST/etc/lvm/lvm.conf          locking_type, use_lvmlockd, filters
    HOST/etc/corosync/corosync.conf
    HOST/var/lib/pacemaker/cib/cib.xml (the cluster's fencing)
    HOST/etc/systemd/network/      *.network (addresses, MTU), *.netdev (VXLAN, bridge)
    HOST/etc/libvirt/qemu/*.xml    domain XML (virsh dumpxml)
    HOST/etc/dnsmasq.d/*.conf      dhcp-host: the guests' fixed IPs (and etc/dnsmasq.conf)
    HOST/commands/lsblk.json       lsblk --json --bytes -o NAME,SIZE,TYPE
    HOST/commands/vgs.json         vgs --reportformat json --units g --nosuffix
                                       -o +pv_name,vg_extent_size,vg_lock_type
    HOST/commands/lvs.json         lvs --reportformat json --units g --nosuffix
    HOST/proc/cpuinfo, meminfo, drbd
    nova-inventory.json            {"servers": [...], "volumes": [...],
                                    "networks": [...], "subnets": [...]} from the APIs
    """
    from stackdrill.importer import import_config
    from stackdrill.importer.emit import render

    result = import_config(config_dir)
    text = render(result, str(config_dir))
    if output is not None:
        write_report(output, text)
    if as_json:
        click.echo(json.dumps({"mapped": [asdict(m) for m in result.mapped],
                               "unmapped": [asdict(u) for u in result.unmapped]},
                              indent=2, default=str))
    elif output is None:
        click.echo(text, nl=False)
    for item in result.unmapped:
        click.echo(f"stackdrill: not mapped: {unmapped_line(item)}", err=True)
    if result.wrong:
        click.echo(f"stackdrill: error: {len(result.wrong)} setting(s) not mapped would make "
                   "the topology wrong (listed above)", err=True)
        sys.exit(2)


def unmapped_line(item: Unmapped) -> str:
    """One option the import did not map, printable and bounded: `file:line: option: kind:
    why` (a hostile file name or option cannot break the line)."""
    line = f"{item.source}: {item.option}: {item.kind.value}: {item.why}"
    return "".join(c if c.isprintable() else "?" for c in cut(line, 300))
