"""The four drivers the recovery engine uses: power, compute, storage and network, each
operation a future that succeeds or fails with a DriverError."""

from __future__ import annotations

import pytest
from contract_support import HOSTS, INSTANCES, Nature, failure, settle, wait_for

from stackdrill.api import (
    AttachMode,
    DriverError,
    GuestInfo,
    HostHealth,
    Lab,
    PowerState,
    Replica,
    VolumePath,
    Witness,
)

# ---------------------------------------------------------------- power


def test_power_off_confirms_off_and_power_on_boots_the_host(lab: Lab) -> None:
    power = lab.drivers.power
    assert [power.state(h) for h in HOSTS] == [PowerState.ON] * len(HOSTS)
    assert settle(lab, power.power_off("cmp2")) is None
    assert power.state("cmp2") is PowerState.OFF  # confirmed when the future completes
    assert power.state("cmp1") is PowerState.ON
    settle(lab, power.power_off("cmp2"))  # fencing a host that is off is no error
    assert settle(lab, power.power_on("cmp2")) is None
    assert power.state("cmp2") is PowerState.ON


# ---------------------------------------------------------------- compute


def test_health_names_the_host_its_power_and_its_witnesses(lab: Lab, nature: Nature) -> None:
    compute = lab.drivers.compute
    if nature.heartbeats is None:  # each host reports at least once within its interval
        wait_for(lab, lambda: all(compute.health(h).last_heartbeat is not None
                                  for h in HOSTS), "a heartbeat of every host", timeout=15.0)
    for host in HOSTS:
        health = compute.health(host)
        assert isinstance(health, HostHealth) and health.host == host
        assert health.power is lab.drivers.power.state(host) is PowerState.ON
        witnesses = compute.witnesses(host)
        assert all(isinstance(w, Witness) for w in witnesses)
        assert bool(witnesses) is (nature.witnesses is None), nature.witnesses
        beat = health.last_heartbeat
        assert beat is None or 0.0 <= beat <= lab.clock.now()
    settle(lab, lab.drivers.power.power_off("cmp2"))
    assert compute.health("cmp2").power is PowerState.OFF
    if nature.heartbeats is not None:
        assert all(compute.health(h).last_heartbeat is None for h in HOSTS)
        pytest.skip(nature.heartbeats)


def test_guests_lists_a_hosts_instances_and_fails_on_a_powered_off_host(
        lab: Lab, nature: Nature) -> None:
    compute = lab.drivers.compute
    if nature.guests is not None:
        error = failure(lab, compute.guests("cmp1"))
        assert isinstance(error, DriverError) and "guest agent" in str(error)
    else:
        assert settle(lab, compute.guests("cmp1")) == [GuestInfo("web1", True)]
    settle(lab, lab.drivers.power.power_off("cmp2"))
    assert isinstance(failure(lab, compute.guests("cmp2")), DriverError)


def test_an_instance_is_destroyed_started_elsewhere_and_verified(
        lab: Lab, nature: Nature) -> None:
    """The recovery engine's evacuation by hand: web2 leaves cmp2 and runs on cmp1 on its
    volume served from the storage host."""
    d = lab.drivers
    if nature.guests is not None:
        for operation in (d.compute.destroy("web2", "cmp2"),
                          d.compute.start("web2", "cmp1", {"vol2": "/dev/vg1/vol2"}),
                          d.compute.verify("web2", "cmp2")):
            error = failure(lab, operation)
            assert isinstance(error, DriverError) and "guest agent" in str(error)
        pytest.skip(nature.guests)
    assert settle(lab, d.compute.verify("web2", "cmp2")) is True
    settle(lab, d.compute.destroy("web2", "cmp2"))
    assert lab.observe().running["web2"] == []
    assert settle(lab, d.compute.verify("web2", "cmp2")) is False
    path = settle(lab, d.storage.prepare("vol2", "cmp1", failed=["cmp2"]))
    settle(lab, d.compute.start("web2", "cmp1", {"vol2": path.path}))
    assert settle(lab, d.compute.verify("web2", "cmp1")) is True
    assert lab.observe().running["web2"] == ["cmp1"]
    settle(lab, lab.drivers.power.power_off("cmp2"))
    error = failure(lab, d.compute.start("web2", "cmp2", {"vol2": path.path}))
    assert isinstance(error, DriverError)  # no guest starts on a host that is off


def test_a_returning_host_asks_the_boot_hook_and_keeps_evacuated_guests_down(
        lab: Lab, nature: Nature) -> None:
    """Nova's init_host: a host that boots again asks the control plane which of its
    guests were evacuated meanwhile, and does not resume those."""
    asked: list[tuple[str, list[str]]] = []

    def evacuated(host: str, guests: list[str]) -> list[str]:
        asked.append((host, list(guests)))
        return ["web1"]

    lab.drivers.compute.set_boot_hook(evacuated)
    settle(lab, lab.drivers.power.power_off("cmp1"))
    settle(lab, lab.drivers.power.power_on("cmp1"))
    lab.clock.sleep(0.5)
    if nature.guests is not None:
        assert asked == []  # no compute service runs to ask
        pytest.skip(nature.guests)
    assert asked == [("cmp1", ["web1"])]
    assert lab.observe().running["web1"] == []
    assert lab.observe().running["web2"] == ["cmp2"]


# ---------------------------------------------------------------- storage


def test_replicas_list_the_volumes_copy_on_the_storage_host(lab: Lab) -> None:
    storage = lab.drivers.storage
    for volume in ("vol1", "vol2"):
        assert storage.replicas(volume) == [Replica("stor", "(local)", "UpToDate", True)]
    settle(lab, lab.drivers.power.power_off("stor"))
    [replica] = storage.replicas("vol1")
    assert (replica.host, replica.reachable) == ("stor", False)


def test_prepare_serves_a_volume_and_refuses_a_failed_hosts_only_replica(
        lab: Lab, nature: Nature) -> None:
    storage = lab.drivers.storage
    refused = failure(lab, storage.prepare("vol1", "cmp2", failed=["stor"]))
    assert isinstance(refused, DriverError) and "vol1" in str(refused)
    settle(lab, lab.drivers.power.power_off("stor"))
    assert isinstance(failure(lab, storage.prepare("vol1", "cmp2")), DriverError)
    settle(lab, lab.drivers.power.power_on("stor"))
    if nature.guests is not None:
        for operation in (storage.prepare("vol1", "stor"), storage.release("vol1", "stor")):
            error = failure(lab, operation)
            assert isinstance(error, DriverError) and "guest agent" in str(error)
        pytest.skip(f"{nature.guests} (lvchange runs in the storage host's guest)")
    path = settle(lab, storage.prepare("vol1", "cmp2", failed=["cmp1"]))
    assert isinstance(path, VolumePath)
    assert (path.volume, path.host, path.mode, path.served_by) == (
        "vol1", "cmp2", AttachMode.REMOTE, "stor")
    assert settle(lab, storage.release("vol1", "cmp1")) is None


# ---------------------------------------------------------------- network


def test_an_instance_port_is_plugged_unplugged_and_reached_on_the_overlay(
        lab: Lab, nature: Nature) -> None:
    network = lab.drivers.network
    if nature.guests is not None:
        assert settle(lab, network.reachable("web1")) is False  # no port was ever plugged
        error = failure(lab, network.plug("web1", "cmp1"))
        assert isinstance(error, DriverError) and "guest agent" in str(error)
        pytest.skip(f"{nature.guests} (ports live in the guests' overlay bridges)")
    assert settle(lab, network.reachable("web1")) is True
    settle(lab, network.unplug("web1", "cmp1"))
    assert settle(lab, network.reachable("web1")) is False
    settle(lab, network.plug("web1", "cmp1"))
    assert settle(lab, network.reachable("web1")) is True
    for name, (host, _volume) in INSTANCES.items():
        assert lab.observe().running[name] == [host]  # ports, not guests, changed
