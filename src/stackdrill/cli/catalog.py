"""What `stackdrill list drills|faults|backends` shows, as typed rows: the shipped drills
(and the backends each can run on, from the backends' declared limits), the fault kinds
with their parameters, and the backends with what they need and whether they run here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from pydantic import BaseModel

from stackdrill import shipped
from stackdrill.backends import REGISTRY, backend_class
from stackdrill.drill import load_drill
from stackdrill.drill.support import unsupported
from stackdrill.faults import FAULT_KINDS, Fault
from stackdrill.faults.catalogue import UNHEALABLE


@dataclass(frozen=True)
class DrillRow:
    name: str
    topology: str
    faults: tuple[str, ...]  # the fault kinds its schedule injects, in order, once each
    runs_on: tuple[str, ...]  # backends whose declared limits admit it
    description: str
    path: str


@dataclass(frozen=True)
class FaultRow:
    kind: str
    parameters: tuple[str, ...]  # `name` or `name?` for an optional one
    healable: bool
    backends: tuple[str, ...]  # backends that can realise it
    description: str


@dataclass(frozen=True)
class BackendRow:
    name: str
    available: bool
    why_not: str | None  # why it cannot run on this machine
    needs: str
    in_process: bool  # its labs live in the command's process (cannot be kept)
    faults: tuple[str, ...]
    features: tuple[str, ...]


def _first_line(text: str | None) -> str:
    """The first paragraph of a docstring or description, on one line."""
    return " ".join((text or "").strip().split("\n\n")[0].split())


def backend_rows() -> list[BackendRow]:
    """Every registered backend; one whose Python dependencies are not installed (the
    `vm` extra's libvirt-python) is a row that says so, not a crash of the listing."""
    rows = []
    for name in sorted(REGISTRY):
        try:
            cls = backend_class(name)
        except ImportError as exc:
            rows.append(BackendRow(name, False, f"not installed: {exc}", "", False, (), ()))
            continue
        caps = cls.capabilities
        reason = cls.available()
        rows.append(BackendRow(name, reason is None, reason, caps.needs, caps.in_process,
                               tuple(k for k in FAULT_KINDS if caps.supports_fault(k)),
                               tuple(sorted(caps.features))))
    return rows


def drill_rows() -> list[DrillRow]:
    backends = [(b.name, backend_class(b.name).capabilities) for b in backend_rows()
                if b.faults]  # an uninstalled backend runs nothing
    rows = []
    for found in shipped.drills():
        drill = load_drill(found.path)
        kinds = tuple(dict.fromkeys(fault.kind for _step, fault in drill.faults()))
        runs_on = tuple(name for name, caps in backends if not unsupported(drill, name, caps))
        rows.append(DrillRow(drill.name, drill.topology.name, kinds, runs_on,
                             _first_line(drill.spec.description), str(found.path)))
    return rows


def _fault_classes() -> dict[str, type[BaseModel]]:
    union = get_args(Fault)[0]
    return {str(cls.model_fields["kind"].default): cls for cls in get_args(union)}


def fault_rows() -> list[FaultRow]:
    classes = _fault_classes()
    backends = backend_rows()
    rows = []
    for kind in FAULT_KINDS:
        cls = classes[kind]
        params = tuple(name if field.is_required() else f"{name}?"
                       for name, field in cls.model_fields.items() if name != "kind")
        rows.append(FaultRow(kind, params, kind not in UNHEALABLE,
                             tuple(b.name for b in backends if kind in b.faults),
                             _first_line(cls.__doc__)))
    return rows
