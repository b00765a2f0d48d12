"""A killed lvmlockd on the simulator: its LV lock stays in the DLM (recorded on the guests:
lvmlockd-killed) until its host leaves the cluster; then the other node may take the LV."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from stackdrill.conformance import labs
from stackdrill.conformance.clvm_lab import CLUSTER, LV, VG, A, B, sim_lab
from stackdrill.conformance.situations.lvm_common import sim_wait
from stackdrill.faults import DaemonKill, HostCrash


def test_the_orphaned_lock_is_freed_only_when_its_host_leaves_and_is_fenced() -> None:
    lab = sim_lab("lvmlockd")
    a, b = lab.lvm_hosts[A], lab.lvm_hosts[B]

    def steps() -> Generator[Any, Any, list[Exception | None]]:
        for host in (a, b):
            yield from sim_wait(host.deactivate(VG, LV))
        seen = [(yield from sim_wait(a.activate(VG, LV, "ex")))]
        lab.inject(DaemonKill(host=A))
        seen.append((yield from sim_wait(a.deactivate(VG, LV))))
        seen.append((yield from sim_wait(b.activate(VG, LV, "ex"))))  # still a's
        lab.inject(HostCrash(host=A, power_back=False))
        yield lab.kernel.env.timeout(30)
        lab.clusters[CLUSTER].ack_manual_fence(A)
        yield lab.kernel.env.timeout(30)
        seen.append((yield from sim_wait(b.activate(VG, LV, "ex"))))
        return seen

    activated, deactivated, refused, after_fence = labs.sim_run(lab, steps())
    assert activated is None and deactivated is None
    assert refused is not None and "LV locked by other host" in str(refused)
    assert after_fence is None, after_fence
