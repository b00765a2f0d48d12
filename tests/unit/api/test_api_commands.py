"""Operator commands carry only names LVM itself would accept: every way a command
enters (a drill's schedule, the CLI, a replayed named lab) goes through these models."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from stackdrill.api.commands import Command, LvmCommand

COMMAND: TypeAdapter[Command] = TypeAdapter(Command)


@pytest.mark.parametrize("lv", ["lv0", "vm1_disk.2", "a+b-c"])
def test_lvm_names_lvm_accepts(lv: str) -> None:
    cmd = COMMAND.validate_python({"tool": "lvm", "host": "a", "op": "lvcreate", "vg": "vg0",
                                   "lv": lv, "extents": 1})
    assert isinstance(cmd, LvmCommand) and cmd.lv == lv


@pytest.mark.parametrize(("field", "value"), [
    ("lv", "snapshot0"), ("lv", "pvmove1"), ("lv", "x_tmeta"), ("lv", "-x"), ("lv", ".."),
    ("lv", "lv0\n"), ("lv", "a b"), ("lv", "$(reboot)"), ("lv", "x" * 128),
    ("vg", "-vg"), ("vg", "vg/x"), ("vg", ""), ("vg", "vg'0"),
])
def test_lvm_names_lvm_refuses(field: str, value: str) -> None:
    data = {"tool": "lvm", "host": "a", "op": "lvcreate", "vg": "vg0", "lv": "lv0",
            "extents": 1, field: value}
    with pytest.raises(ValidationError) as info:
        COMMAND.validate_python(data)
    (err,) = info.value.errors()
    assert err["loc"][-1] == field
