"""What every backend that runs in real time shares: one wall clock, one scheduler whose
failures surface where the engine waits, one driver pool, one way to wait for a state.

netns and libvirt labs compose a `RealTime`; the simulator has its own kernel instead.
"""

from __future__ import annotations

from stackdrill.backends.realtime.clock import WallClock
from stackdrill.backends.realtime.runtime import RealTime
from stackdrill.backends.realtime.schedule import Schedule

__all__ = ["RealTime", "Schedule", "WallClock"]
