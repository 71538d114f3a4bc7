"""What the benchmarks read besides watch events, without a cluster: percentiles, Prometheus text,
a process's memory (VmRSS / VmHWM) and CPU time from /proc, and first-seen times of watch events.

Everything here is plain Python so tests/unit/test_bench_probes.py can check it without a cluster.
"""

from __future__ import annotations

import math
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

Labels = tuple[tuple[str, str], ...]
"""A sample's labels, sorted by name: hashable, comparable between two scrapes."""

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
MIB = 1024 * 1024


def say(*parts: object) -> None:
    """Print a result line at once: an interrupted run still shows everything measured so far."""
    print(*parts, flush=True)


def pct(values: Iterable[float], p: float) -> float:
    """The p-th percentile by nearest rank of the sorted values (p in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def latency_line(label: str, seconds: list[float], width: int = 52) -> str:
    if not seconds:
        return f"{label:<{width}} n=0"
    ms = [v * 1000 for v in seconds]
    return (
        f"{label:<{width}} n={len(ms):<4} p50={pct(ms, 50):8.1f} ms  p99={pct(ms, 99):8.1f} ms  max={max(ms):8.1f} ms"
    )


def parse_prometheus(text: str, names: Iterable[str] | None = None) -> dict[str, dict[Labels, float]]:
    """Samples of the Prometheus text format by metric name, then by labels; only `names` if given."""
    wanted = set(names) if names is not None else None
    found: dict[str, dict[Labels, float]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, labels, value = match.groups()
        if wanted is not None and name not in wanted:
            continue
        pairs = tuple(sorted((k, _unescape(v)) for k, v in _LABEL.findall(labels or "")))
        try:
            found.setdefault(name, {})[pairs] = float(value)
        except ValueError:
            continue
    return found


def _unescape(value: str) -> str:
    return value.replace(r"\"", '"').replace(r"\n", "\n").replace("\\\\", "\\")


def counter_delta(
    before: Mapping[Labels, float], after: Mapping[Labels, float], by: Iterable[str]
) -> dict[tuple[str, ...], float]:
    """How much a counter grew between two scrapes, summed by the label names `by` (a counter
    first seen in `after` counts from 0); entries that did not grow are left out."""
    keys = tuple(by)
    grown: dict[tuple[str, ...], float] = {}
    for labels, value in after.items():
        increase = value - before.get(labels, 0.0)
        if increase <= 0:
            continue
        named = dict(labels)
        key = tuple(named.get(k, "") for k in keys)
        grown[key] = grown.get(key, 0.0) + increase
    return grown


@dataclass(frozen=True)
class Memory:
    rss: int
    """VmRSS in bytes: resident now."""
    hwm: int
    """VmHWM in bytes: the highest VmRSS of the process's life."""


def read_memory(pid: int, proc: str = "/proc") -> Memory | None:
    """VmRSS and VmHWM of a process, or None once it is gone."""
    try:
        text = open(f"{proc}/{pid}/status").read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            number, _, unit = rest.strip().partition(" ")
            values[key] = int(number) * (1024 if unit.strip() == "kB" else 1)
    if "VmRSS" not in values:
        return None  # a zombie has no memory lines
    return Memory(rss=values["VmRSS"], hwm=values.get("VmHWM", values["VmRSS"]))


def machine_cpu(proc: str = "/proc") -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, every CPU summed (`/proc/stat`'s
    first line; idle and iowait are not busy; guest time is inside user already)."""
    fields = [int(v) for v in open(f"{proc}/stat").readline().split()[1:]]
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    tick = os.sysconf("SC_CLK_TCK")
    return (total - idle) / tick, total / tick


def phase_cpu_line(
    before: tuple[dict[str, float], tuple[float, float]], after: tuple[dict[str, float], tuple[float, float]]
) -> str:
    """What a phase cost in CPU seconds, by process, and how busy the machine was over it: near
    100 % the phase was bound by the CPUs, well below it by waiting."""
    (procs_before, (busy_before, total_before)), (procs_after, (busy_after, total_after)) = before, after
    used = {name: procs_after[name] - procs_before.get(name, 0.0) for name in procs_after}
    busy = busy_after - busy_before
    share = busy / (total_after - total_before) * 100 if total_after > total_before else 0.0
    return (
        "CPU seconds in this phase: "
        + ", ".join(f"{name} {v:.0f}" for name, v in sorted(used.items(), key=lambda item: -item[1]))
        + f"; machine busy {busy:.0f} s, {share:.0f} % of all CPUs"
    )


def cpu_seconds(pid: int, proc: str = "/proc", children: bool = False) -> float | None:
    """User + system CPU time of a process (plus its waited-for children's if asked), or None."""
    try:
        text = open(f"{proc}/{pid}/stat").read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat(5)
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def mib(value: float) -> str:
    return f"{value / MIB:.0f} MiB"


@dataclass
class MemorySampler:
    """Samples a process's VmRSS every `interval` seconds in a thread; `mark` starts a phase."""

    pid: int
    interval: float = 1.0
    read: Callable[[int], Memory | None] = read_memory
    samples: list[tuple[float, int]] = field(default_factory=list)
    hwm: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def start(self) -> MemorySampler:
        self.sample()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def sample(self) -> Memory | None:
        memory = self.read(self.pid)
        if memory is not None:
            with self._lock:
                self.samples.append((time.monotonic(), memory.rss))
                self.hwm = max(self.hwm, memory.hwm)
        return memory

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def between(self, start: float, end: float | None = None) -> list[int]:
        with self._lock:
            return [rss for t, rss in self.samples if t >= start and (end is None or t <= end)]

    def peak(self, start: float = 0.0, end: float | None = None) -> int:
        return max(self.between(start, end), default=0)

    def latest(self) -> int:
        with self._lock:
            return self.samples[-1][1] if self.samples else 0

    def describe(self, since: float) -> str:
        """`now X, peak since `since` Y, VmHWM Z` for a phase's result line."""
        self.sample()
        return (
            f"operator RSS now {mib(self.latest())}, peak {mib(self.peak(since))} in this phase, VmHWM {mib(self.hwm)}"
        )


class Seen:
    """First time (monotonic) each (what, name) was observed, e.g. ("ready", "b17")."""

    def __init__(self) -> None:
        self.times: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def mark(self, what: str, name: str, at: float | None = None) -> None:
        with self._lock:
            self.times.setdefault((what, name), time.monotonic() if at is None else at)

    def get(self, what: str, name: str) -> float | None:
        with self._lock:
            return self.times.get((what, name))

    def count(self, what: str, names: Iterable[str]) -> int:
        with self._lock:
            return sum(1 for n in names if (what, n) in self.times)

    def wait(
        self,
        what: str,
        names: list[str],
        timeout: float,
        *,
        progress: Callable[[int, float], None] | None = None,
        every: float = 30.0,
        poll: float = 0.1,
    ) -> list[str]:
        """Wait until every name was seen as `what` or `timeout` passed; returns the names still
        missing. `progress(count, elapsed)` is called every `every` seconds while waiting."""
        began = time.monotonic()
        next_report = began + every
        while True:
            with self._lock:
                missing = [n for n in names if (what, n) not in self.times]
            now = time.monotonic()
            if not missing or now - began >= timeout:
                return missing
            if progress is not None and now >= next_report:
                progress(len(names) - len(missing), now - began)
                next_report = now + every
            time.sleep(poll)

    def spans(self, what: str, started: Mapping[str, float]) -> list[float]:
        """For each name seen as `what`, the seconds from `started[name]` to then."""
        with self._lock:
            return [self.times[(what, n)] - t for n, t in started.items() if (what, n) in self.times]

    def reached(
        self, what: str, names: list[str], began: float, fractions: tuple[float, ...] = (0.25, 0.5, 0.75, 0.9, 1.0)
    ) -> list[tuple[float, float | None]]:
        """For each fraction, the seconds from `began` until that share of `names` was seen as
        `what` (None: not reached): where a burst's time went, and which stage trails."""
        with self._lock:
            found = sorted(self.times[(what, n)] - began for n in names if (what, n) in self.times)
        out: list[tuple[float, float | None]] = []
        for fraction in fractions:
            needed = max(1, math.ceil(fraction * len(names)))
            out.append((fraction, found[needed - 1] if needed <= len(found) else None))
        return out

    def last(self, what: str, names: Iterable[str]) -> float | None:
        with self._lock:
            found = [self.times[(what, n)] for n in names if (what, n) in self.times]
        return max(found) if found else None


def timeline_line(label: str, reached: list[tuple[float, float | None]]) -> str:
    """The line `label: 25 % 12.0 s, 50 % 20.1 s, ...` ("-" where not reached)."""
    return f"{label}: " + ", ".join(
        f"{fraction * 100:.0f} % {'-' if at is None else f'{at:.1f} s'}" for fraction, at in reached
    )


def nodes_for(pods: int, pods_per_node: int, spare: int = 1) -> int:
    """Fake nodes for `pods` pods at `pods_per_node` each, plus `spare`."""
    return math.ceil(pods / pods_per_node) + spare


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)
