"""exactly_once: what an operator checks with `virsh list` on every host after a recovery."""

from __future__ import annotations

from stackdrill.api import Observation, PowerState
from stackdrill.checks import exactly_once


def obs(running: dict[str, list[str]], power: dict[str, PowerState] | None = None) -> Observation:
    return Observation(time=100.0, running=running, power=power or {}, drbd={}, lvm=[], quorum={})


def test_every_instance_once_passes() -> None:
    """After evacuating cmp1, vm1 and vm2 each run on one survivor: the recovery succeeded."""
    r = exactly_once(obs({"vm1": ["cmp2"], "vm2": ["cmp3"]}), ["vm1", "vm2"])
    assert r.ok and r.ran


def test_zombie_on_returning_host_fails_and_names_it() -> None:
    """A returning host that restarts its old guest gives one volume two writers."""
    r = exactly_once(obs({"vm1": ["cmp2", "cmp1"], "vm2": ["cmp3"]}), ["vm1", "vm2"])
    assert not r.ok
    assert "vm1 on cmp1+cmp2" in r.detail
    assert r.data["duplicates"] == {"vm1": ["cmp1", "cmp2"]}


def test_forgotten_instance_fails() -> None:
    """A recovery that skips an instance leaves it running nowhere."""
    r = exactly_once(obs({"vm1": ["cmp2"], "vm3": []}), ["vm1", "vm2", "vm3"])
    assert not r.ok
    assert r.data["missing"] == ["vm2", "vm3"]


def test_stale_guest_and_wrong_host() -> None:
    """Guests nobody expects (not cleaned from a returning host) and a misplacement fail."""
    r = exactly_once(
        obs({"vm1": ["cmp2"], "old": ["cmp1"]}), ["vm1"], expected_hosts={"vm1": "cmp3"}
    )
    assert not r.ok
    assert r.data["unexpected"] == ["old"]
    assert "vm1 on cmp2 (expected cmp3)" in r.detail
    assert exactly_once(obs({"vm1": ["cmp3"], "old": ["cmp1"]}), ["vm1"], allow_unexpected=True).ok


def test_running_on_powered_off_host_is_suspicious() -> None:
    """A guest cannot run on a host whose power controller says off: the view is wrong."""
    r = exactly_once(obs({"vm1": ["cmp1"]}, {"cmp1": PowerState.OFF}), ["vm1"])
    assert not r.ok and "powered-off" in r.detail
