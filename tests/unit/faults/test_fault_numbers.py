"""No number in a fault, a drill, a topology or an expectation may be inf or nan: a fault
is a finite thing the backends turn into tc/nft figures, and a comparison with nan is
always false, so a nan bound would let everything through."""

from __future__ import annotations

import math
import typing

import pytest
from pydantic import BaseModel, ValidationError

from stackdrill.drill import model as drill_model
from stackdrill.faults import FAULT_KINDS, FaultAdapter, catalogue
from stackdrill.topology import model as topology_model


def _float_fields(module: object) -> list[tuple[type[BaseModel], str]]:
    found = []
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, BaseModel):
            for name, field in value.model_fields.items():
                if field.annotation is float or float in typing.get_args(field.annotation):
                    found.append((value, name))
    return found


@pytest.mark.parametrize("module", [drill_model, topology_model, catalogue])
def test_every_input_model_refuses_inf_and_nan(module: object) -> None:
    fields = _float_fields(module)
    assert fields, f"{module}: no float field to check"
    for cls, name in fields:
        for bad in (math.inf, -math.inf, math.nan):
            with pytest.raises(ValidationError, match="finite number"):
                cls.__pydantic_validator__.validate_assignment(
                    cls.model_construct(), name, bad)


@pytest.mark.parametrize(("kind", "params"), [
    ("rate_limit", {"host": "cmp1", "network": "storage", "mbit": 1e9}),
    ("slow_disk", {"host": "cmp1", "disk": "sdb", "latency_ms": 1e300}),
])
def test_a_fault_with_an_unbounded_figure_is_refused(kind: str, params: dict[str, object]
                                                     ) -> None:
    assert kind in FAULT_KINDS
    with pytest.raises(ValidationError, match="less than or equal"):
        FaultAdapter.validate_python({"kind": kind, **params})
