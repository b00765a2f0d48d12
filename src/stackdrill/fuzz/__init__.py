"""Randomized drills: seeded fault schedules over the shipped topologies, the damage each
may legitimately cause, the invariants every one must hold, and a shrinker for failures."""

from __future__ import annotations

from stackdrill.fuzz.drive import Outcome, reproduce_command, run_drill, run_seed
from stackdrill.fuzz.oracle import Damage, declared_damage
from stackdrill.fuzz.schedule import TOPOLOGIES, RandomDrill, build, generate
from stackdrill.fuzz.shrink import shrink

__all__ = [
    "TOPOLOGIES",
    "Damage",
    "Outcome",
    "RandomDrill",
    "build",
    "declared_damage",
    "generate",
    "reproduce_command",
    "run_drill",
    "run_seed",
    "shrink",
]
