"""Workloads in real guests: a journaling writer per (instance, volume), and its history.

Same behaviour as the simulator's workload: record n goes to block n of the volume with
O_DIRECT|O_DSYNC and is acknowledged only when the write returns; after a restart elsewhere
the writer first replays the volume and continues after the last record it finds. Each
instance runs in its own network namespace inside the guest (the compute "guest").

The history must survive a power cut of the guest, so the writer reports every invoke and
outcome on the serial console, which virtlogd writes to a file on the hypervisor: a write
whose `ok` line never reached the host is "info" (unknown), as a Jepsen client would record
it. Times are the guest's uptime and boot id, which the lab maps to its own clock
(guestclock.py): a guest whose wall clock is stepped does not move its writes in time.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from stackdrill.api import StoredRecord, WriteOp

BLOCK = 512
STATE = "/run/stackdrill/instances"
WRITER = r"""#!/bin/sh
# writer INSTANCE INCARNATION VOLUME DEVICE INTERVAL
inst=$1 inc=$2 vol=$3 dev=$4 interval=$5
out=${SDW_CONSOLE:-/dev/ttyS0}
state=${SDW_STATE:-/run/stackdrill/instances}/$inst
mkdir -p "$state"
echo $$ > "$state/$vol.pid"
last=$(tr '\0' '\n' < "$dev" | grep -a '^SDREC ' | awk 'BEGIN{m=0} $2>m{m=$2} END{print m}')
seq=$((last + 1))
host=$(hostname)
boot=$(cat /proc/sys/kernel/random/boot_id)
now() { read -r up _ < /proc/uptime; echo "$up"; }
while :; do
    sum=$(printf '%s' "$vol:$inst:$inc:$seq" | sha256sum | cut -c1-16)
    echo "SDW|$inst|$vol|$inc|$seq|$sum|invoke|$(now)|$host|$boot" >> "$out"
    if printf 'SDREC %s %s %s %s\n' "$seq" "$inc" "$sum" "$inst" | \
        dd of="$dev" bs=512 seek="$seq" count=1 conv=sync oflag=direct,dsync 2>/dev/null; then
        echo "SDW|$inst|$vol|$inc|$seq|$sum|ok|$(now)|$host|$boot" >> "$out"
        echo "$seq" > "$state/$vol.ok"
    else
        echo "SDW|$inst|$vol|$inc|$seq|$sum|fail|$(now)|$host|$boot" >> "$out"
    fi
    seq=$((seq + 1))
    sleep "$interval"
done
"""
# An instance the drill gives no writer (LabOptions.writers) still runs, as on the simulator
# and netns: a process that holds its volume open (qemu opens its disks at start, so the
# LV is busy and `lvchange -an` refuses it) and writes nothing.
IDLE = r"""#!/bin/sh
# idle INSTANCE INCARNATION VOLUME DEVICE INTERVAL
inst=$1 vol=$3 dev=$4
state=${SDW_STATE:-/run/stackdrill/instances}/$inst
mkdir -p "$state"
echo $$ > "$state/$vol.pid"
# its volume not there (a host back Secondary, the LV not active): it runs all the same,
# as the writer does with every write failing and as the simulator's guest does
[ -e "$dev" ] && exec sleep infinity 3<"$dev"
exec sleep infinity
"""
_LINE = re.compile(
    r"SDW\|(?P<inst>[^|]+)\|(?P<vol>[^|]+)\|(?P<inc>\d+)\|(?P<seq>\d+)\|(?P<sum>[0-9a-f]+)\|"
    r"(?P<what>invoke|ok|fail)\|(?P<t>[0-9.]+)\|(?P<host>[a-z0-9-]+)\|(?P<boot>[0-9a-f-]{36})")
_RECORD = re.compile(r"^SDREC (\d+) (\d+) ([0-9a-f]{16})", re.M)


def checksum(volume: str, instance: str, incarnation: int, seq: int) -> str:
    """The simulator's record checksum, so records compare across backends."""
    return hashlib.sha256(f"{volume}:{instance}:{incarnation}:{seq}".encode()).hexdigest()[:16]


def start_command(instance: str, incarnation: int, volume: str, device: str,
                  interval: float, writes: bool = True) -> str:
    """Install the writer (or, for an instance without one, the idle holder) and start it
    detached in the instance's own network namespace."""
    script, text = ("writer", WRITER) if writes else ("idle", IDLE)
    return (
        f"mkdir -p {STATE}/{instance} && cat > /run/stackdrill/{script}.sh <<'EOF'\n{text}EOF\n"
        f"ip netns add {instance} 2>/dev/null; ip -n {instance} link set lo up; "
        f"setsid ip netns exec {instance} sh /run/stackdrill/{script}.sh {instance} "
        f"{incarnation} {volume} {device} {interval} </dev/null >/dev/null 2>&1 &"
    )


def stop_command(instance: str) -> str:
    return (f"for p in {STATE}/{instance}/*.pid; do [ -f \"$p\" ] && kill -9 $(cat \"$p\"); "
            f"done 2>/dev/null; rm -rf {STATE}/{instance}; ip netns del {instance} 2>/dev/null; "
            "true")


def kill_command(instance: str) -> str:
    """SIGKILL of the instance's workload processes (its "qemu") and what they run (dd,
    sleep): each was started by setsid, so its pid is its process group. The state
    directory stays, so the guest still lists the instance, not running (a crashed domain
    keeps its definition). Fails when no process of it was alive: nothing was killed."""
    return (f"k=0; for p in {STATE}/{instance}/*.pid; do [ -f \"$p\" ] || continue; "
            "pid=$(cat \"$p\"); kill -0 \"$pid\" 2>/dev/null || continue; "
            "kill -9 -- -\"$pid\" 2>/dev/null || kill -9 \"$pid\"; k=1; done; "
            "[ $k = 1 ] || { echo \"no live process of %s\" >&2; exit 1; }" % instance)


def signal_command(sig: str) -> str:
    """Stop (STOP) or continue (CONT) every writer on a guest."""
    return (f"for p in {STATE}/*/*.pid; do [ -f \"$p\" ] && kill -{sig} $(cat \"$p\"); "
            "done 2>/dev/null; true")


def list_command() -> str:
    """One line per instance: name and whether any writer process is alive."""
    return (f"for d in {STATE}/*/; do [ -d \"$d\" ] || continue; n=$(basename $d); a=no; "
            "for p in $d*.pid; do [ -f \"$p\" ] && kill -0 $(cat \"$p\") 2>/dev/null && a=yes; "
            "done; echo \"$n $a\"; done")


def parse_history(lines: Iterable[str], lab_time: Callable[[str, str, float], float]
                  ) -> list[WriteOp]:
    """Pair invoke lines with their outcome; an invoke without one is `info` (unknown).
    `lab_time(host, boot_id, uptime)` is the lab time of a guest's stamp."""
    ops: dict[tuple[str, str, int, int], dict[str, object]] = {}
    for line in lines:
        m = _LINE.search(line)
        if not m:
            continue
        key = (m["inst"], m["vol"], int(m["inc"]), int(m["seq"]))
        entry = ops.setdefault(key, {"sum": m["sum"], "host": m["host"]})
        entry[m["what"]] = lab_time(m["host"], m["boot"], float(m["t"]))
    history = []
    for (inst, vol, inc, seq), e in ops.items():
        if "invoke" not in e:
            continue
        outcome = "ok" if "ok" in e else "fail" if "fail" in e else "info"
        completed = e.get(outcome) if outcome != "info" else None
        history.append(WriteOp(
            instance=inst, volume=vol, incarnation=inc, seq=seq, checksum=str(e["sum"]),
            invoked=float(e["invoke"]),  # type: ignore[arg-type]
            completed=None if completed is None else float(completed),  # type: ignore[arg-type]
            outcome=outcome, host=str(e["host"])))
    return sorted(history, key=lambda op: (op.invoked, op.instance, op.volume, op.seq))


def console_lines(paths: Iterable[Path]) -> list[str]:
    out: list[str] = []
    for path in paths:
        try:
            out.extend(path.read_text(errors="replace").splitlines())
        except OSError:
            continue
    return out


def parse_records(text: str) -> dict[int, StoredRecord]:
    """SDREC records read back from a volume (`tr '\\0' '\\n' < dev | grep -a ^SDREC`)."""
    return {int(seq): StoredRecord(int(seq), int(inc), csum)
            for seq, inc, csum in _RECORD.findall(text)}


# turns a volume's bytes into its SDREC lines
RECORDS_FILTER = "tr '\\0' '\\n' | grep -a '^SDREC '"


def read_command(device: str, blocks: int) -> str:
    """Read the first `blocks` blocks back (record n lives in block n): reading the whole
    LV under TCG takes minutes, and no writer goes past the last seq it invoked."""
    return f"head -c {blocks * BLOCK} {device} | {RECORDS_FILTER}"
