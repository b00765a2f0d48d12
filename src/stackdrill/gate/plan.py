"""What the gate runs: a drill with its title, its victim and why it was chosen, or the
reason a standard drill does not apply to this topology.

A drill that does not apply is a value of its own (`NotApplicable`), so it can never be
counted as a pass: the report shows it with its reason and the exit code ignores it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from stackdrill.drill.model import Drill


class Expect(StrEnum):
    """What a drill is run to show.

    PASS: its expectations are the claims the configuration must meet (the standard
    drills); its report passing is the gate's PASS.
    DAMAGE: it demonstrates a danger found in the configuration, written as the shipped
    demonstrations are (split-brain-1pri, quorum-no-two-node, lvm-local-race): its
    expectations describe the damage, so its report passing means the damage showed,
    which is the gate's FAIL; its report failing means the predicted damage did not show
    on this backend, which the gate reports as a PASS with that note."""

    PASS = "pass"
    DAMAGE = "damage"


@dataclass(frozen=True)
class GateDrill:
    """One drill of the gate: the drill itself and what the report says about it."""

    drill: Drill
    title: str
    victim: str = ""
    why: str = ""
    expects: Expect = Expect.PASS

    @property
    def name(self) -> str:
        return self.drill.name


@dataclass(frozen=True)
class NotApplicable:
    """A standard drill this topology gives no way to run, and why (never a pass)."""

    name: str
    title: str
    reason: str


Planned = GateDrill | NotApplicable
