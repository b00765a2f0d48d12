"""`import_config`: CONFIG_DIR -> a validated topology, with where each field came from
and what was not mapped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stackdrill.errors import Problem, TopologyError
from stackdrill.importer import cluster, compute, locking, network, storage, volumes
from stackdrill.importer.draft import Draft, as_name
from stackdrill.importer.files import ConfigDir
from stackdrill.importer.gather import read_host
from stackdrill.importer.nova import Inventory, parse_inventory
from stackdrill.importer.result import ImportResult, Mapped, Notes, Source
from stackdrill.topology.load import parse_topology


def import_config(path: Path) -> ImportResult:
    """Read CONFIG_DIR (see README "Importing your configuration"); raise `ConfigError`
    for a file that cannot be read, `TopologyError` when the result does not validate
    (each problem names the operator's file it came from)."""
    cdir = ConfigDir(Path(path))
    notes = Notes()
    hosts = {name: read_host(cdir, name, notes) for name in cdir.hosts()}
    inventory = _inventory(cdir)
    _top_level(cdir, notes)
    draft = Draft(hosts, notes)
    draft.data["name"] = as_name(cdir.root.resolve().name)
    draft.data["description"] = f"imported from {cdir.root.resolve().name}"
    network.networks(draft)
    overlay_of = network.overlays(draft, inventory)
    storage.resources(draft)
    volumes.volume_groups(draft, compute.cinder_names(inventory).get)
    locking.vg_locking(draft)
    locking.lvm_options(draft)
    cluster.clusters(draft)
    compute.instances(draft, inventory, overlay_of)
    network.unused_networks(draft)
    _hosts(draft)
    data = _clean(draft.data)
    try:
        topology = parse_topology(data, str(cdir.root))
    except TopologyError as exc:
        raise TopologyError(str(cdir.root), [_traced(p, notes) for p in exc.problems]) from None
    return ImportResult(topology, tuple(notes.mapped.values()), tuple(notes.unmapped))


def _top_level(cdir: ConfigDir, notes: Notes) -> None:
    """Files beside the host directories, other than the Nova export, are reported."""
    for count, path in enumerate(sorted(p for p in cdir.root.iterdir() if not p.is_dir())):
        if count >= 100:
            notes.ignored(Source("."), "(more files)", "not all files were listed")
            return
        if path.name != compute.INVENTORY:
            notes.ignored(Source(cdir.rel(path)), "(file)", "only the host directories and "
                          f"{compute.INVENTORY} are read")


def _inventory(cdir: ConfigDir) -> Inventory | None:
    path = cdir.root / compute.INVENTORY
    if not path.is_file():
        return None
    return parse_inventory(cdir.read(path), compute.INVENTORY)


def _hosts(draft: Draft) -> None:
    """Every host directory is a host; its roles from what runs on it."""
    for res in draft.data.get("drbd", []):
        for node in res["nodes"]:
            draft.roles.setdefault(node, set()).add("storage")
    hosts: list[dict[str, Any]] = []
    draft.data["hosts"] = hosts
    for i, (name, files) in enumerate(sorted(draft.hosts.items())):
        item: dict[str, Any] = {"name": name}
        hosts.append(item)
        roles = sorted(draft.roles.get(name, set())) or ["controller"]
        item["roles"] = roles
        base = f"hosts[{i}]"
        if files.vcpus:
            draft.put(f"{base}.vcpus", item, "vcpus", files.vcpus[0], files.vcpus[1])
        if files.ram_mb:
            draft.put(f"{base}.ram_mb", item, "ram_mb", files.ram_mb[0], files.ram_mb[1])
        disks = draft.disks.get(name, {})
        if disks:
            item["disks"] = []
            for j, (disk, (size, src)) in enumerate(sorted(disks.items())):
                entry: dict[str, Any] = {"name": disk}
                item["disks"].append(entry)
                draft.put(f"{base}.disks[{j}].size_gb", entry, "size_gb", max(1, size), src)
    order = ("name", "description", "hosts", "networks", "overlays", "drbd", "volume_groups",
             "clusters", "flavors", "volumes", "instances")
    draft.data = {k: draft.data[k] for k in order if k in draft.data}


def _clean(value: Any) -> Any:
    """The draft without its working keys (`_attr`, `_lv`)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _traced(problem: Problem, notes: Notes) -> Problem:
    """The problem, with the operator's file and line its value came from."""
    source = _nearest(problem.path, notes.mapped)
    if source is None:
        return problem
    return Problem(problem.path, f"{problem.message} (from {source})")


def _nearest(path: str, mapped: dict[str, Mapped]) -> Source | None:
    """The origin of `path`, else of the item's name (a problem about a whole VG), else
    of the nearest enclosing field."""
    while path:
        for candidate in (path, f"{path}.name"):
            if candidate in mapped:
                return mapped[candidate].source
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return None
