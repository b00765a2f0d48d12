"""Simulated hosts: power, hang, reboot with a boot time, and who is told when that changes.

A host is `on` (services up), `booting`, `hung` (powered, frozen: no I/O, no
heartbeats, links keep carrier) or `off`. Models that live on a host (DRBD,
LVM, hypervisor, workload) subscribe to its changes; nothing polls.
"""

from __future__ import annotations

from collections.abc import Callable

from stackdrill.api import PowerChanged, PowerState
from stackdrill.backends.sim.kernel import Kernel
from stackdrill.topology import Host

Listener = Callable[["SimHost", PowerState, PowerState], None]


class SimHost:
    up: bool  # running: executes I/O, sends heartbeats, answers on the network
    powered: bool  # drawing power (may still write to shared storage when it thaws)

    def __init__(self, kernel: Kernel, spec: Host) -> None:
        self.kernel = kernel
        self.spec = spec
        self.name = spec.name
        self.power = PowerState.ON
        self.boot_count = 1
        self._listeners: list[Listener] = []
        self._boot_event: object | None = None
        self.why = "built"  # why the power last changed: a listener tells a reboot from a cut
        # the host's wall clock minus the lab's: nothing modelled here reads it (DRBD's
        # jiffies, corosync's and the DLM's monotonic timers, the lab's own clock for
        # heartbeats and the workloads' history), as on the real guests (clock-skew drill)
        self.wall_clock_offset_s = 0.0

    @property
    def power(self) -> PowerState:
        return self._power

    @power.setter
    def power(self, state: PowerState) -> None:
        """Every assignment keeps `up` and `powered` true to it: they are plain attributes
        because the network and the I/O paths read them a dozen times per simulated write
        (a property call each was ~2 % of a large drill), the power seldom changes."""
        self._power = state
        self.up = state is PowerState.ON
        self.powered = state in (PowerState.ON, PowerState.HUNG, PowerState.BOOTING)

    def step_wall_clock(self, seconds: float) -> None:
        """`date -s` on the host: its wall clock jumps; its monotonic clock does not."""
        self.wall_clock_offset_s += seconds
        self.kernel.log(f"host/{self.name}", "clock-stepped", seconds=seconds,
                        offset=self.wall_clock_offset_s)

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _set(self, state: PowerState, why: str) -> None:
        old = self.power
        if old is state:
            return
        self.power = state
        self.why = why
        self.kernel.emit(PowerChanged(self.name, state, old, why))
        for listener in list(self._listeners):
            listener(self, old, state)

    def crash(self) -> None:
        """Power cut: everything volatile on the host is gone at once."""
        self._boot_event = None
        self._set(PowerState.OFF, "power-cut")

    def power_off(self) -> None:
        self._boot_event = None
        self._set(PowerState.OFF, "fenced")

    def hang(self) -> None:
        if self.power is PowerState.ON:
            self._set(PowerState.HUNG, "hang")

    def thaw(self) -> None:
        if self.power is PowerState.HUNG:
            self._set(PowerState.ON, "thaw")

    def power_on(self) -> None:
        """Start booting; services come up after the host's boot time."""
        if self.power is not PowerState.OFF:
            return
        self._set(PowerState.BOOTING, "power-on")
        token = object()
        self._boot_event = token

        def booted() -> None:
            if self._boot_event is token and self.power is PowerState.BOOTING:
                self.boot_count += 1
                self._set(PowerState.ON, "booted")

        self.kernel.call_later(self.spec.boot_s, booted)

    def reboot(self) -> None:
        """Clean reboot: services stop, then the host boots again by itself."""
        if self.power is PowerState.OFF:
            return
        self._set(PowerState.OFF, "reboot")
        self.power_on()
