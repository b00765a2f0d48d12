"""What the oracle declares before a random drill runs: a lone copy whose disk then fails."""

from __future__ import annotations

from stackdrill.drill.model import RecoverSpec, Step
from stackdrill.faults import DiskFailure, LinkDown, RateLimit
from stackdrill.fuzz import build, run_drill
from stackdrill.fuzz.oracle import declared_damage

RECOVER = Step(at=0, recover=RecoverSpec(parallel=1))


def test_a_cut_then_a_disk_failure_declares_the_writes_since_the_cut() -> None:
    """The primary cmp1 loses its replication link at 32 s, writes on alone, and its disk
    fails at 73 s: what it acknowledged in between existed on that disk only (the seed-293
    double fault). Declared before the run: losses after 32 s, never before."""
    drill = build(293, "mirrored-compute", [
        RECOVER,
        Step(at=32, id="cut", inject=LinkDown(host="cmp1", network="storage")),
        Step(at=73, id="disk", inject=DiskFailure(host="cmp1", disk="sdb"))])
    damage = declared_damage(drill)
    assert damage.lone_copy_from == 32 and damage.losses_from == 32
    assert {"inst-a", "inst-b"} <= damage.may_be_unrecoverable
    outcome = run_drill(293, drill)
    assert outcome.ok, outcome.summary()
    bounded = next(c for c in outcome.checks if c.name == "divergence_bounded")
    assert bounded.data.get("lost", 0) > 0, "the double fault lost nothing: nothing to excuse"


def test_a_disk_failure_without_a_cut_or_after_a_mere_rate_limit_excuses_nothing() -> None:
    """Replication intact when the disk fails: the peer has every acknowledged write
    (protocol C), so no loss is declared and acked_writes demands zero lost."""
    for first in (None, Step(at=20, id="slow", inject=RateLimit(host="cmp1",
                                                               network="storage", mbit=10))):
        steps = [RECOVER, *([first] if first else []),
                 Step(at=73, id="disk", inject=DiskFailure(host="cmp1", disk="sdb"))]
        damage = declared_damage(build(7, "mirrored-compute", steps))
        assert damage.lone_copy_from is None and damage.losses_from is None
