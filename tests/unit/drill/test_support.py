"""Declared limits: a drill asking a backend for more than it declared is refused up front,
naming the fault (or feature) and the backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackdrill.backends import backend_class
from stackdrill.drill import load_drill
from stackdrill.drill.support import ensure_supported, unsupported
from stackdrill.errors import UnsupportedError

DRILLS = Path(__file__).resolve().parents[3] / "lab" / "drills"


def test_sim_realises_every_shipped_drill() -> None:
    caps = backend_class("sim").capabilities
    for path in sorted(DRILLS.glob("*.yaml")):
        assert unsupported(load_drill(path), "sim", caps) == [], path.name


def test_netns_refuses_a_disk_failure_drill_naming_fault_and_backend() -> None:
    caps = backend_class("netns").capabilities
    drill = load_drill(DRILLS / "disk-failure.yaml")
    with pytest.raises(UnsupportedError) as info:
        ensure_supported(drill, "netns", caps)
    message = str(info.value)
    assert "schedule[0].inject: backend 'netns' cannot realise fault 'disk_failure'" in message
    assert "backend 'netns' cannot realise drbd" in message
