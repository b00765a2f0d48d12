"""Each parser on small inputs: what an operator writes, and what they get wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackdrill.importer.corosync import parse_corosync
from stackdrill.importer.drbd import read_drbd
from stackdrill.importer.drbdadm import drbdadm_path, dump_xml, flatten
from stackdrill.importer.files import MAX_FILES, ConfigDir, ConfigError
from stackdrill.importer.libvirt_xml import DiskKind, parse_domain
from stackdrill.importer.lvm import parse_lvm_conf
from stackdrill.importer.nova import parse_inventory

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures"
RES = """resource r0 {
  net { protocol A; }
  on a { device /dev/drbd3; disk /dev/sdb; address 10.0.0.1:7789; meta-disk internal; }
  on b { device /dev/drbd3; disk /dev/sdc; address 10.0.0.2:7789; meta-disk internal; }
}
"""


def _tree(tmp_path: Path, files: dict[str, str]) -> ConfigDir:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return ConfigDir(tmp_path)


def test_a_resource_inherits_common_and_overrides_it(tmp_path: Path) -> None:
    cdir = _tree(tmp_path, {
        "a/etc/drbd.conf": 'common { net { protocol C; ko-count 4; } }\ninclude "drbd.d/*.res";\n',
        "a/etc/drbd.d/r0.res": RES})
    config = read_drbd(cdir, tmp_path / "a/etc/drbd.conf")
    res = config.resources[0]
    net = config.options(res, "net")
    assert net["protocol"].value == "A"  # the resource's own wins
    assert str(net["protocol"].source) == "a/etc/drbd.d/r0.res:2"
    assert net["ko-count"].value == "4"  # inherited from common
    assert [(h.host, h.minor, h.disk, h.address, h.port) for h in res.hosts] == [
        ("a", 3, "/dev/sdb", "10.0.0.1", 7789), ("b", 3, "/dev/sdc", "10.0.0.2", 7789)]


def test_an_include_loop_is_one_error(tmp_path: Path) -> None:
    cdir = _tree(tmp_path, {"a/etc/drbd.conf": 'include "drbd.d/*.res";\n',
                            "a/etc/drbd.d/x.res": 'include "../drbd.conf";\n'})
    with pytest.raises(ConfigError, match=r"'\.\.' in an include"):
        read_drbd(cdir, tmp_path / "a/etc/drbd.conf")
    (tmp_path / "a/etc/drbd.d/x.res").write_text('include "x.res";\n')
    with pytest.raises(ConfigError, match="include loop"):
        read_drbd(cdir, tmp_path / "a/etc/drbd.conf")


def test_an_include_outside_config_dir_is_refused(tmp_path: Path) -> None:
    cdir = _tree(tmp_path / "cfg", {"a/etc/drbd.conf": 'include "evil/*.res";\n'})
    (tmp_path / "outside.res").write_text(RES)
    (tmp_path / "cfg/a/etc/evil").mkdir()
    (tmp_path / "cfg/a/etc/evil/x.res").symlink_to(tmp_path / "outside.res")
    with pytest.raises(ConfigError, match="outside CONFIG_DIR"):
        read_drbd(cdir, tmp_path / "cfg/a/etc/drbd.conf")


def test_a_glob_over_too_many_files_is_refused(tmp_path: Path) -> None:
    files = {f"a/etc/drbd.d/r{i}.res": "" for i in range(MAX_FILES + 1)}
    cdir = _tree(tmp_path, {"a/etc/drbd.conf": 'include "drbd.d/*.res";\n', **files})
    with pytest.raises(ConfigError, match=f"more than {MAX_FILES} files"):
        read_drbd(cdir, tmp_path / "a/etc/drbd.conf")


def test_a_missing_semicolon_names_the_line(tmp_path: Path) -> None:
    cdir = _tree(tmp_path, {"a/etc/drbd.conf": "resource r0 {\n  net {\n    protocol C\n  }\n}\n"})
    with pytest.raises(ConfigError) as caught:
        read_drbd(cdir, tmp_path / "a/etc/drbd.conf")
    assert str(caught.value) == "a/etc/drbd.conf:3: missing ';' after 'C'"


@pytest.mark.skipif(drbdadm_path() is None, reason="drbd-utils (drbdadm-84) not installed")
@pytest.mark.parametrize("conf", sorted(FIXTURES.glob("**/etc/drbd.conf")),
                         ids=lambda p: str(p.relative_to(FIXTURES)))
def test_the_parser_reads_every_fixture_as_drbdadm_does(conf: Path) -> None:
    story = FIXTURES / conf.relative_to(FIXTURES).parts[0]
    if story.name == "dangers":
        story = story / conf.relative_to(story).parts[0]
    ours = flatten(read_drbd(ConfigDir(story), conf))
    tool = drbdadm_path()
    assert tool is not None
    assert any(key[0] == "host" for key in ours)  # the `on` sections were read
    assert ours == dump_xml(tool, conf)


def test_lvm_conf_sections_lists_and_lines() -> None:
    text = 'global {\n  use_lvmlockd = 1\n}\ndevices {\n  filter = [ "a|drbd|", "r|.*|" ]\n}\n'
    settings = {s.key: s for s in parse_lvm_conf(text, "lvm.conf")}
    assert settings["global/use_lvmlockd"].value == 1
    assert settings["devices/filter"].value == ("a|drbd|", "r|.*|")
    assert str(settings["devices/filter"].source) == "lvm.conf:5"
    with pytest.raises(ConfigError, match=r"lvm\.conf:3: expected a value, got '}'"):
        parse_lvm_conf("global {\n  locking_type = \n}", "lvm.conf")


def test_corosync_keys_keep_their_node_block() -> None:
    text = ("nodelist {\n  node {\n    name: a\n  }\n  node {\n    name: b\n  }\n}\n"
            "quorum {\n  two_node: 1\n}\n")
    keys = parse_corosync(text, "c.conf")
    names = [k for k in keys if k.path == "nodelist.node.name"]
    assert [(k.value, k.block) for k in names] == [("a", 2), ("b", 5)]
    assert keys[-1].path == "quorum.two_node" and str(keys[-1].source) == "c.conf:10"
    with pytest.raises(ConfigError, match="never closed"):
        parse_corosync("quorum {\n two_node: 1\n", "c.conf")


def test_domain_xml_disks_and_nics() -> None:
    dom = parse_domain((FIXTURES / "nova-drbd/cmp1/etc/libvirt/qemu/instance-00000001.xml")
                       .read_text(), "x.xml")
    assert (dom.name, dom.vcpus, dom.memory_mib, dom.nova_name) == (
        "instance-00000001", 1, 2048, "web1")
    disk = dom.disks[0]
    assert (disk.kind, disk.volume_id, disk.portal) == (
        DiskKind.ISCSI, "6f1d2a40-3c55-4f0e-9a57-5a1c3e0b7d01", "10.20.0.21")
    assert [(n.mac, n.bridge) for n in dom.nics] == [("fa:16:3e:00:00:01", "br-tenant")]


@pytest.mark.parametrize("xml", [
    '<!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><domain><name>&b;</name></domain>',
    '<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><domain><name>&x;</name></domain>',
])
def test_entities_in_domain_xml_are_refused_not_expanded(xml: str) -> None:
    with pytest.raises(ConfigError, match="refused"):
        parse_domain(xml, "bomb.xml")


def test_a_nova_export_missing_a_field_names_it() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_inventory('{"servers": [{"id": "1", "name": "a", "flavor": {}}]}', "inv.json")
    assert "servers[0].'OS-EXT-SRV-ATTR:host': required key is missing" in str(caught.value)
