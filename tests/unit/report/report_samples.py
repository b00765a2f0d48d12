"""Hand-built topology and report for the report tests: cmp1 dies, its guests move."""

from __future__ import annotations

from stackdrill.checks import CheckResult
from stackdrill.faults import HostCrash
from stackdrill.report import (
    FaultRecord,
    InstanceReport,
    Report,
    TimelineEvent,
    TimeSlice,
    verdict_for,
)
from stackdrill.topology import Topology

TOPOLOGY = Topology.model_validate(
    {
        "name": "mini-nova",
        "hosts": [
            {"name": "cmp1", "roles": ["compute"]},
            {"name": "cmp2", "roles": ["compute"]},
            {"name": "cmp3", "roles": ["compute"]},
            {"name": "sto1", "roles": ["storage"], "disks": [{"name": "sdb", "size_gb": 100}]},
            {"name": "sto2", "roles": ["storage"], "disks": [{"name": "sdb", "size_gb": 100}]},
        ],
        "networks": [
            {
                "name": "mgmt",
                "purposes": ["management"],
                "cidr": "10.0.0.0/24",
                "addresses": {
                    "cmp1": "10.0.0.1",
                    "cmp2": "10.0.0.2",
                    "cmp3": "10.0.0.3",
                    "sto1": "10.0.0.11",
                    "sto2": "10.0.0.12",
                },
            },
            {
                "name": "repl",
                "purposes": ["replication"],
                "cidr": "10.1.0.0/30",
                "addresses": {"sto1": "10.1.0.1", "sto2": "10.1.0.2"},
            },
            {
                "name": "tunnel",
                "purposes": ["tunnel"],
                "cidr": "10.2.0.0/24",
                "addresses": {"cmp1": "10.2.0.1", "cmp2": "10.2.0.2", "cmp3": "10.2.0.3"},
            },
        ],
        "overlays": [{"name": "tenant", "vni": 7, "network": "tunnel", "cidr": "192.168.7.0/24"}],
        "drbd": [
            {
                "name": "r0",
                "nodes": ["sto1", "sto2"],
                "disk": "sdb",
                "size_gb": 90,
                "network": "repl",
                "primary": ["sto1"],
            }
        ],
        "volume_groups": [{"name": "vg0", "pv": {"drbd": "r0"}, "locking": "clustered"}],
        "flavors": {"small": {"vcpus": 1, "ram_mb": 1024}},
        "volumes": [
            {"name": "vol1", "vg": "vg0", "size_gb": 5},
            {"name": "vol2", "vg": "vg0", "size_gb": 5},
        ],
        "instances": [
            {
                "name": "web1",
                "flavor": "small",
                "host": "cmp1",
                "overlay": "tenant",
                "mac": "fa:16:3e:00:00:01",
                "ip": "192.168.7.11",
                "volumes": ["vol1"],
            },
            {
                "name": "db1",
                "flavor": "small",
                "host": "cmp1",
                "overlay": "tenant",
                "mac": "fa:16:3e:00:00:02",
                "ip": "192.168.7.12",
                "volumes": ["vol2"],
            },
            {
                "name": "app1",
                "flavor": "small",
                "host": "cmp2",
                "overlay": "tenant",
                "mac": "fa:16:3e:00:00:03",
                "ip": "192.168.7.13",
            },
        ],
    }
)


def slices(*bounds: tuple[str, float]) -> tuple[TimeSlice, ...]:
    """Contiguous phases from the fault at t=10: ("detection", 16.0) ends detection at 16."""
    out, start = [], 10.0
    for phase, end in bounds:
        out.append(TimeSlice(phase=phase, start=start, end=end))
        start = end
    return tuple(out)


def sample_report(*, lose_db1: bool = False) -> Report:
    """cmp1 crashes at t=10; detected at 16, fenced at 19; web1 -> cmp2, db1 -> cmp3."""
    checks = [
        CheckResult.passed("exactly_once", "3 instances each running on exactly one host"),
        CheckResult.passed("fencing_order", "2 instance start(s) on a new host, each fenced"),
        CheckResult.of(
            "acked_writes",
            ["db1: 3 of 120 acked writes lost (vol2#118,119,120)"] if lose_db1 else [],
            "240 acked writes on 2 volumes, 0 lost",
        ),
        CheckResult.not_run("lvm_consistency", "phase verify not reached")
        if lose_db1
        else CheckResult.passed("lvm_consistency", "1 VG(s) consistent on sto1, sto2"),
    ]
    crash = HostCrash(host="cmp1")
    timeline = [
        TimelineEvent(at=10.0, end=70.0, lane="fault", label="host_crash host=cmp1"),
        TimelineEvent(at=10.0, end=16.0, lane="detection", label="heartbeats missed"),
        TimelineEvent(at=16.0, lane="detection", label="cmp1 down (corroborated)"),
        TimelineEvent(at=16.0, end=19.0, lane="fencing", label="power off cmp1"),
        TimelineEvent(at=19.0, end=19.5, lane="planning", label="place 2 instances"),
        TimelineEvent(at=19.5, end=22.0, lane="instance:web1", label="storage"),
        TimelineEvent(at=22.0, end=31.0, lane="instance:web1", label="compute"),
        TimelineEvent(at=31.0, end=32.0, lane="instance:web1", label="verify"),
        TimelineEvent(at=19.5, end=24.0, lane="instance:db1", label="storage"),
        TimelineEvent(
            at=24.0, end=36.0, lane="instance:db1", label="compute", ok=False if lose_db1 else None
        ),
        TimelineEvent(at=40.0, lane="check", label="exactly_once", ok=True),
        TimelineEvent(at=40.0, lane="check", label="acked_writes", ok=not lose_db1),
    ]
    return Report(
        drill="compute-host-loss",
        backend="sim",
        seed=42,
        verdict=verdict_for(checks),
        trace_sha256="ab" * 32,
        topology=TOPOLOGY.name,
        started=0.0,
        duration=75.0,
        instances=(
            InstanceReport(
                name="web1",
                host_before="cmp1",
                host_after="cmp2",
                state="recovered",
                acked_writes=120,
                rto_s=22.0,
                attach_mode="remote",
                time_spent=slices(("detection", 16.0), ("fencing", 19.0), ("planning", 19.5),
                                  ("storage", 22.0), ("compute", 31.0), ("verify", 32.0)),
            ),
            InstanceReport(
                name="db1",
                host_before="cmp1",
                host_after="cmp3",
                state="recovered",
                acked_writes=120,
                lost_writes=3 if lose_db1 else 0,
                rto_s=26.0,
                attach_mode="remote",
                time_spent=slices(("detection", 16.0), ("fencing", 19.0), ("planning", 19.5),
                                  ("storage", 24.0), ("compute", 36.0)),
            ),
            InstanceReport(name="app1", host_before="cmp2", host_after="cmp2", state="running"),
        ),
        checks=tuple(checks),
        faults=(FaultRecord.of(crash, at=10.0, healed_at=70.0),),
        timeline=tuple(timeline),
        phases={"detection": 6.0, "fencing": 3.0, "planning": 0.5, "recovery": 16.5},
        steps={
            "web1": {"storage": 2.5, "compute": 9.0, "verify": 1.0},
            "db1": {"storage": 4.5, "compute": 12.0},
        },
        state_before={
            "drbd": {"r0": {"sto1": {"role": "Primary", "disk": "UpToDate"}}},
            "lvm": {"vg0": {"seqno": 4}},
        },
        state_after={
            "drbd": {"r0": {"sto1": {"role": "Primary", "disk": "UpToDate"}}},
            "lvm": {"vg0": {"seqno": 6}},
        },
        extra={"events": 1234},
    )
