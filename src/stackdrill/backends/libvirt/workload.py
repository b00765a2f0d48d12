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
# The writer holds its volume open from its first successful open to its end, as qemu
# holds a guest's disks: a name is not an identity. After a failover's iSCSI logout the
# next login's disk may get the same sdX name; a writer that reopened its disk by name for
# every write (the shell writer did, with dd) wrote the old incarnation's records into
# another volume, and when the name was briefly gone, dd created a regular file in /dev
# that hid the next disk's node. Written with O_DIRECT|O_DSYNC from a page-aligned buffer.
WRITER = r"""import hashlib, mmap, os, socket, sys, time
inst, inc, vol, dev, interval = sys.argv[1:6]
out = os.environ.get("SDW_CONSOLE", "/dev/ttyS0")
state = os.path.join(os.environ.get("SDW_STATE", "/run/stackdrill/instances"), inst)
os.makedirs(state, exist_ok=True)
with open(os.path.join(state, vol + ".pid"), "w") as f:
    f.write("%d\n" % os.getpid())
last = 0
try:
    with open(dev, "rb") as disk:
        while True:
            chunk = disk.read(1 << 20)
            if not chunk:
                break
            at = chunk.find(b"SDREC ")
            while at >= 0:
                word = chunk[at + 6:at + 32].split(b" ", 1)[0]
                if at % 512 == 0 and word.isdigit():
                    last = max(last, int(word))
                at = chunk.find(b"SDREC ", at + 1)
except OSError:
    pass
host = socket.gethostname()
with open("/proc/sys/kernel/random/boot_id") as f:
    boot = f.read().strip()
def now():
    with open("/proc/uptime") as f:
        return f.read().split()[0]
def say(seq, csum, what):
    with open(out, "a") as f:
        f.write("SDW|%s|%s|%s|%d|%s|%s|%s|%s|%s\n" % (inst, vol, inc, seq, csum, what, now(),
                                                    host, boot))
buf = mmap.mmap(-1, 512)
fd = None
seq = last + 1
while True:
    csum = hashlib.sha256(("%s:%s:%s:%d" % (vol, inst, inc, seq)).encode()).hexdigest()[:16]
    say(seq, csum, "invoke")
    buf.seek(0)
    buf.write(("SDREC %d %s %s %s\n" % (seq, inc, csum, inst)).encode().ljust(512, b"\0"))
    try:
        if fd is None:  # not there yet (an LV not active): every write fails until it is
            fd = os.open(dev, os.O_WRONLY | os.O_DIRECT | os.O_DSYNC)
        os.pwrite(fd, buf, seq * 512)
        say(seq, csum, "ok")
        with open(os.path.join(state, vol + ".ok"), "w") as f:
            f.write("%d\n" % seq)
    except OSError:
        say(seq, csum, "fail")
    seq += 1
    time.sleep(float(interval))
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
    script, run, text = ("writer.py", "python3", WRITER) if writes else ("idle.sh", "sh", IDLE)
    return (
        f"mkdir -p {STATE}/{instance} && cat > /run/stackdrill/{script} <<'EOF'\n{text}EOF\n"
        f"ip netns add {instance} 2>/dev/null; ip -n {instance} link set lo up; "
        f"setsid ip netns exec {instance} {run} /run/stackdrill/{script} {instance} "
        f"{incarnation} {volume} {device} {interval} </dev/null >/dev/null 2>&1 &"
    )


STOP_WAIT_TRIES = 100  # x 0.1 s: how long a destroy waits for the killed processes


def stop_command(instance: str) -> str:
    """Destroy the instance: SIGKILL its processes and wait (bounded, as `virsh destroy`
    waits for qemu) until they are gone, so that its disks are closed when the command
    returns (the writer holds its disk open: an `lvchange -an` right after would find the
    LV in use). A process stuck in D state on a dead disk stays; the command returns."""
    return (f"for p in {STATE}/{instance}/*.pid; do [ -f \"$p\" ] || continue; "
            "pid=$(cat \"$p\"); kill -9 \"$pid\" 2>/dev/null; "
            f"for i in $(seq {STOP_WAIT_TRIES}); do kill -0 \"$pid\" 2>/dev/null && "
            "! grep -q '^State:.Z' /proc/$pid/status 2>/dev/null || break; sleep 0.1; done; "
            f"done; rm -rf {STATE}/{instance}; ip netns del {instance} 2>/dev/null; true")


def kill_command(instance: str) -> str:
    """SIGKILL of the instance's workload processes (its "qemu": the writer, or the idle
    holder and its sleep): each was started by setsid, so its pid is its process group. The state
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
