"""Corosync clusters from the hosts' corosync.conf files (one per cluster_name)."""

from __future__ import annotations

from typing import Any

from stackdrill.errors import Problem
from stackdrill.importer.corosync import Key
from stackdrill.importer.draft import Draft
from stackdrill.importer.files import ConfigError
from stackdrill.importer.result import Source

IGNORED_PREFIXES = ("logging.", "totem.crypto_", "totem.version", "totem.transport",
                    "totem.interface.", "system.", "resources.", "nodelist.node.nodeid",
                    "totem.secauth", "totem.ip_version", "totem.link_mode")
DIFFERENT = {
    "nodelist.node.ring1_addr": "the lab models one corosync link per cluster",
    "totem.consensus": "the lab derives membership from the token timeout alone",
    "totem.join": "the lab derives membership from the token timeout alone",
}


def clusters(draft: Draft) -> None:
    seen: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {}
    for host, files in draft.hosts.items():
        if not files.corosync:
            continue
        name_key = _one(files.corosync, "totem.cluster_name")
        name = name_key.value if name_key else "cluster"
        content = tuple((k.path, k.value) for k in files.corosync)
        if name in seen:
            if seen[name][1] != content:
                src = name_key.source if name_key else files.corosync[0].source
                draft.notes.wrong(src, "corosync.conf", f"{host}'s differs from "
                                  f"{seen[name][0]}'s; {seen[name][0]}'s is used")
            continue
        seen[name] = (host, content)
        _cluster(draft, name, files.corosync)
        _fencing(draft, len(draft.data["clusters"]) - 1, files.corosync[0].source)


def _one(keys: tuple[Key, ...], path: str) -> Key | None:
    return next((k for k in keys if k.path == path), None)


def _cluster(draft: Draft, name: str, keys: tuple[Key, ...]) -> None:
    item: dict[str, Any] = {}
    _i, base = draft.append("clusters", item)
    draft.put(f"{base}.name", item, "name", name, (_one(keys, "totem.cluster_name") or
                                                     keys[0]).source)
    _nodes(draft, item, base, keys)
    for key in keys:
        _key(draft, item, base, key)


def _nodes(draft: Draft, item: dict[str, Any], base: str, keys: tuple[Key, ...]) -> None:
    blocks: dict[int, dict[str, Key]] = {}
    for key in keys:
        if key.path.startswith("nodelist.node."):
            blocks.setdefault(key.block, {})[key.path.removeprefix("nodelist.node.")] = key
    nodes: list[str] = []
    votes: dict[str, int] = {}
    for block in blocks.values():
        ring = block.get("ring0_addr")
        named = block.get("name")
        host = named.value if named else (draft.host_of(ring.value) if ring else None)
        where = (named or ring or next(iter(block.values()))).source
        if host is None or host not in draft.hosts:
            raise ConfigError(str(where), [Problem("", "a corosync node that is none of "
                                           "CONFIG_DIR's hosts")])
        nodes.append(host)
        if ring is not None and "network" not in item and (net := draft.network_of(ring.value)):
            draft.put(f"{base}.network", item, "network", net, ring.source)
            draft.add_purpose(net, "cluster")
        if (v := block.get("quorum_votes")) and v.value.isdigit():
            votes[host] = int(v.value)
    draft.put(f"{base}.nodes", item, "nodes", nodes, keys[0].source)
    if votes:
        draft.put(f"{base}.votes", item, "votes", votes, keys[0].source)


def _key(draft: Draft, item: dict[str, Any], base: str, key: Key) -> None:
    path = key.path
    flags = {"quorum.two_node": "two_node", "quorum.wait_for_all": "wait_for_all"}
    if path in flags and key.value in ("0", "1"):
        draft.put(f"{base}.{flags[path]}", item, flags[path], key.value == "1", key.source)
    elif path in ("quorum.expected_votes", "totem.token") and key.value.isdigit() \
            and len(key.value) < 7:
        field = "expected_votes" if path == "quorum.expected_votes" else "token_ms"
        draft.put(f"{base}.{field}", item, field, int(key.value), key.source)
    elif path == "quorum.provider":
        if key.value != "corosync_votequorum":
            draft.notes.wrong(key.source, path, "the lab models corosync_votequorum only")
    elif path in DIFFERENT:
        draft.notes.differently(key.source, path, DIFFERENT[path])
    elif path.startswith("quorum.") or path in flags:
        draft.notes.wrong(key.source, path, f"{key.value[:20]!r}: a quorum option the lab "
                          "does not model changes who keeps quorum")
    elif path.startswith(IGNORED_PREFIXES) or path in (
            "totem.cluster_name", "nodelist.node.name", "nodelist.node.ring0_addr",
            "nodelist.node.quorum_votes"):
        if not path.startswith(("totem.cluster_name", "nodelist.node.")):
            draft.notes.ignored(key.source, path, "not relevant to the lab")
    else:
        draft.notes.ignored(key.source, path, "not read by the importer")


def _fencing(draft: Draft, index: int, corosync: Source) -> None:
    """The cluster's fencing from its nodes' Pacemaker CIBs. Without one the lab would
    have to guess, and a guessed fence device can make a gate pass that the real cluster
    fails: that is reported as wrong, not assumed."""
    item: dict[str, Any] = draft.data["clusters"][index]
    cibs = [(h, draft.hosts[h].cib) for h in item.get("nodes", ()) if h in draft.hosts]
    found = [(h, c) for h, c in cibs if c is not None]
    if not found:
        draft.notes.wrong(corosync, "fencing", "no Pacemaker CIB (var/lib/pacemaker/cib/"
                          "cib.xml) on any node: how the cluster fences is unknown; the lab "
                          "assumed power")
        return
    host, cib = found[0]
    for other, theirs in found[1:]:
        if theirs.fencing is not cib.fencing:
            draft.notes.wrong(theirs.source, "fencing", f"{other}'s CIB says "
                              f"{theirs.fencing.value}, {host}'s {cib.fencing.value}; "
                              f"{host}'s is used")
    draft.put(f"clusters[{index}].fencing", item, "fencing", cib.fencing.value, cib.source)
