"""Lookups by name (`Topology.volume`, `.instance`, ...) go through an index of each tuple;
they must answer as the linear scan did, and never from a tuple the topology no longer has."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackdrill.topology import load_topology
from stackdrill.topology import model as topology_model

TOPOLOGIES = Path(__file__).resolve().parents[3] / "lab" / "topologies"


def test_every_name_finds_the_item_the_linear_scan_found() -> None:
    topo = load_topology(TOPOLOGIES / "nova-drbd.yaml")
    for volume in topo.volumes:
        assert topo.volume(volume.name) is volume
    for instance in topo.instances:
        assert topo.instance(instance.name) is instance
    for host in topo.hosts:
        assert topo.host(host.name) is host
    with pytest.raises(KeyError, match="unknown volume 'nope'"):
        topo.volume("nope")


def test_a_copy_with_other_volumes_is_looked_up_in_its_own_volumes() -> None:
    topo = load_topology(TOPOLOGIES / "nova-drbd.yaml")
    first = topo.volumes[0]
    assert topo.volume(first.name) is first  # indexed now
    bigger = first.model_copy(update={"size_gb": first.size_gb + 1})
    other = topo.model_copy(update={"volumes": (bigger, *topo.volumes[1:])})
    assert other.volume(first.name) is bigger
    assert topo.volume(first.name) is first
    fewer = topo.model_copy(update={"volumes": topo.volumes[1:]})
    with pytest.raises(KeyError):
        fewer.volume(first.name)


def test_the_first_of_two_items_with_one_name_wins_as_before() -> None:
    topo = load_topology(TOPOLOGIES / "nova-drbd.yaml")
    first = topo.volumes[0]
    twin = first.model_copy(update={"size_gb": first.size_gb + 1})
    doubled = topo.model_copy(update={"volumes": (first, twin)})
    assert doubled.volume(first.name) is first


def test_the_indexes_stay_bounded_and_an_evicted_one_is_rebuilt() -> None:
    topo = load_topology(TOPOLOGIES / "nova-drbd.yaml")
    copies = [topo.model_copy(update={"volumes": tuple(topo.volumes)})
              for _ in range(topology_model._INDEXES_KEPT + 10)]
    for copy in copies:
        assert copy.volume(topo.volumes[-1].name) is topo.volumes[-1]
    assert len(topology_model._INDEXES) <= topology_model._INDEXES_KEPT
    assert copies[0].volume(topo.volumes[0].name) is topo.volumes[0]
