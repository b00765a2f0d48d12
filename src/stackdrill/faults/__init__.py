"""The fault catalogue shared by every backend: each fault is a value with a heal."""

from __future__ import annotations

from stackdrill.faults.catalogue import (
    FAULT_KINDS,
    UNHEALABLE,
    CorruptBlocks,
    DiskFailure,
    Fault,
    FaultAdapter,
    HostCrash,
    HostHang,
    HostReboot,
    LinkDown,
    OverlayFdbStale,
    PacketLoss,
    Partition,
    PowerControllerDown,
    RateLimit,
    SlowDisk,
    TunnelEndpointDown,
    UnderlayMtu,
    describe,
    fault_kinds,
)

__all__ = [
    "FAULT_KINDS",
    "UNHEALABLE",
    "CorruptBlocks",
    "DiskFailure",
    "Fault",
    "FaultAdapter",
    "HostCrash",
    "HostHang",
    "HostReboot",
    "LinkDown",
    "OverlayFdbStale",
    "PacketLoss",
    "Partition",
    "PowerControllerDown",
    "RateLimit",
    "SlowDisk",
    "TunnelEndpointDown",
    "UnderlayMtu",
    "describe",
    "fault_kinds",
]
