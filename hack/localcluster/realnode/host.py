"""What a real node changes on the host, and how to put it back.

Before a node starts, `snapshot()` records the host state it may change (sysctls the kubelet and the
CNI plugins set, nftables tables, iptables rules, directories containerd, libcni and the kubelet
create outside the work dir, network namespaces, the kubelet's cgroups). That snapshot and the pids
of every started process go into a state file under /run. `plan_cleanup()` compares a record with
what the host shows now and lists the actions that undo the node (pure, unit-tested);
`run_cleanup()` carries them out. The same path cleans up after a normal stop and after a run that
was killed (found through the state file at the next start). A lock held for the node's lifetime
makes it one real node per machine.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from ..errors import LocalClusterError

STATE_DIR = Path("/run/dockyard-realnode")
STATE_FILE = STATE_DIR / "state.json"
LOCK_FILE = STATE_DIR / "lock"

# Host sysctls the kubelet (vm.*, kernel.*), the node start (ip_forward) and the CNI bridge change.
SYSCTLS = (
    "net.ipv4.ip_forward",
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "net.ipv4.conf.all.route_localnet",
)
# Created outside the work dir whatever the configuration says: shim sockets and runc state
# (/run/containerd), libcni's cache (/var/lib/cni), CRI network namespaces (/run/netns), the
# kubelet's device-plugins dir (/var/lib/kubelet).
WATCHED_DIRS = ("/run/containerd", "/var/lib/cni", "/run/netns", "/var/lib/kubelet", "/run/mount", "/var/log/pods")
NETNS_DIR = Path("/run/netns")
CGROUP_ROOT = Path("/sys/fs/cgroup")
KUBEPODS = "kubepods"
MNT_DETACH = 2


@dataclass(frozen=True)
class Snapshot:
    """The host before a node started."""

    sysctls: dict[str, str]
    nft_tables: list[str]
    iptables: dict[str, str]
    """`iptables-save` / `ip6tables-save` output by family (`ip`, `ip6`), for tables that existed."""
    dirs: list[str]
    netns: list[str]
    kubepods: bool
    """Some kubelet's cgroups existed: then processes in them are not ours to kill."""


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    pid: int
    exe: str
    start: int
    """Start time in clock ticks after boot (/proc/PID/stat field 22): a reused pid does not match."""


@dataclass
class NodeRecord:
    """The state file: enough to undo a node whose process died."""

    owner: ProcessRecord
    workdir: str
    bridge: str
    containerd_socket: str
    snapshot: Snapshot
    processes: list[ProcessRecord] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> NodeRecord:
        data = json.loads(text)
        return cls(
            owner=ProcessRecord(**data["owner"]),
            workdir=data["workdir"],
            bridge=data["bridge"],
            containerd_socket=data["containerd_socket"],
            snapshot=Snapshot(**data["snapshot"]),
            processes=[ProcessRecord(**p) for p in data["processes"]],
        )


@dataclass(frozen=True)
class Observation:
    """The host now, as far as a node's leftovers go."""

    processes: dict[int, tuple[str, int, str]]
    """pid -> (exe, start ticks, command line with spaces)."""
    kubepods_pids: list[int]
    kubepods_cgroups: list[str]
    mounts: list[str]
    netns: list[str]
    links: list[str]
    nft_tables: list[str]
    sysctls: dict[str, str]
    dirs: list[str]


@dataclass(frozen=True)
class Action:
    """One step of a cleanup: kill PID, umount PATH, rm-netns PATH, delete-link NAME,
    delete-nft-table "FAMILY NAME", iptables-restore FAMILY, sysctl KEY=VALUE, rmdir-cgroup PATH,
    remove-dir PATH, remove-tree PATH."""

    kind: str
    target: str
    why: str = ""


# ---- reading the host ---------------------------------------------------------------------------


def read_sysctl(key: str) -> str | None:
    try:
        return (Path("/proc/sys") / key.replace(".", "/")).read_text().strip()
    except OSError:
        return None


def write_sysctl(key: str, value: str) -> None:
    (Path("/proc/sys") / key.replace(".", "/")).write_text(value + "\n")


def _run(argv: Sequence[str], input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), input=input, capture_output=True, text=True, timeout=60)


def nft_tables() -> list[str]:
    """`FAMILY NAME` of every nftables table (empty without the nft command)."""
    if shutil.which("nft") is None:
        return []
    result = _run(["nft", "list", "tables"])
    return [line.removeprefix("table ").strip() for line in result.stdout.splitlines() if line.startswith("table ")]


def _iptables_dumps() -> dict[str, str]:
    dumps = {}
    for family, command in (("ip", "iptables-save"), ("ip6", "ip6tables-save")):
        if shutil.which(command) is None:
            continue
        result = _run([command])
        if result.returncode == 0 and "*" in result.stdout:
            dumps[family] = result.stdout
    return dumps


def process_start(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count from the last ")".
    return int(stat.rsplit(")", 1)[1].split()[19])


def process_record(name: str, pid: int) -> ProcessRecord:
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        exe = ""
    return ProcessRecord(name, pid, exe, process_start(pid) or 0)


def _processes() -> dict[int, tuple[str, int, str]]:
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            exe = os.readlink(entry / "exe")
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        start = process_start(pid)
        if start is not None:
            found[pid] = (exe, start, cmdline)
    return found


def _kubepods_roots() -> list[Path]:
    """The kubelet's top cgroup (cgroupfs driver) in every hierarchy: cgroup v1 has one per controller."""
    roots = [CGROUP_ROOT / KUBEPODS]
    with contextlib.suppress(OSError):
        roots += [d / KUBEPODS for d in sorted(CGROUP_ROOT.iterdir()) if d.is_dir() and not d.is_symlink()]
    return [r for r in roots if r.is_dir()]


def _kubepods() -> tuple[list[int], list[str]]:
    pids: set[int] = set()
    cgroups: list[str] = []
    for root in _kubepods_roots():
        for directory, _, files in os.walk(root):
            cgroups.append(directory)
            if "cgroup.procs" in files:
                with contextlib.suppress(OSError):
                    pids.update(int(p) for p in Path(directory, "cgroup.procs").read_text().split())
    return sorted(pids), cgroups


def _mounts() -> list[str]:
    targets = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        target = line.split()[4]
        targets.append(target.encode().decode("unicode_escape"))
    return targets


def _links() -> list[str]:
    return sorted(os.listdir("/sys/class/net"))


def _netns() -> list[str]:
    try:
        return sorted(str(NETNS_DIR / name) for name in os.listdir(NETNS_DIR))
    except OSError:
        return []


def snapshot() -> Snapshot:
    sysctls = {key: value for key in SYSCTLS if (value := read_sysctl(key)) is not None}
    return Snapshot(
        sysctls=sysctls,
        nft_tables=nft_tables(),
        iptables=_iptables_dumps(),
        dirs=[d for d in WATCHED_DIRS if os.path.isdir(d)],
        netns=_netns(),
        kubepods=bool(_kubepods_roots()),
    )


def observe() -> Observation:
    pids, cgroups = _kubepods()
    return Observation(
        processes=_processes(),
        kubepods_pids=pids,
        kubepods_cgroups=cgroups,
        mounts=_mounts(),
        netns=_netns(),
        links=_links(),
        nft_tables=nft_tables(),
        sysctls={key: value for key in SYSCTLS if (value := read_sysctl(key)) is not None},
        dirs=[d for d in WATCHED_DIRS if os.path.isdir(d)],
    )


# ---- planning (pure) ----------------------------------------------------------------------------


def plan_cleanup(record: NodeRecord, now: Observation) -> list[Action]:
    """What undoes the node of `record` on a host that looks like `now`, in order: processes
    first (the recorded ones, the shims of its containerd, whatever runs in its kubelet's cgroups),
    then mounts under its work dir (deepest first) and its network namespaces, the bridge, the
    nftables tables and iptables rules it added, sysctls, cgroups, directories, the work dir."""
    before = record.snapshot
    actions: list[Action] = []
    killed: set[int] = set()

    def kill(pid: int, why: str) -> None:
        if pid not in killed and pid != record.owner.pid:
            killed.add(pid)
            actions.append(Action("kill", str(pid), why))

    for process in record.processes:
        seen = now.processes.get(process.pid)
        if seen is not None and seen[0] == process.exe and seen[1] == process.start:
            kill(process.pid, process.name)
    socket_flag = f"-address {record.containerd_socket} "
    for pid, (exe, _, cmdline) in sorted(now.processes.items()):
        if "containerd-shim" in os.path.basename(exe) and socket_flag in cmdline + " ":
            kill(pid, "containerd shim")
    if not before.kubepods:
        for pid in now.kubepods_pids:
            kill(pid, "container process")

    workdir = record.workdir.rstrip("/") + "/"
    ours = [m for m in now.mounts if m.startswith(workdir) or m == workdir.rstrip("/")]
    for mount in sorted(set(ours), key=lambda m: (-m.count("/"), m)):
        actions.append(Action("umount", mount))
    for ns in now.netns:
        if ns not in before.netns:
            actions.append(Action("rm-netns", ns))
    if record.bridge in now.links:
        actions.append(Action("delete-link", record.bridge))
    added_tables = [t for t in now.nft_tables if t not in before.nft_tables]
    for table in added_tables:
        actions.append(Action("delete-nft-table", table))
    for family in sorted(before.iptables):
        actions.append(Action("iptables-restore", family))
    for key, value in sorted(before.sysctls.items()):
        if now.sysctls.get(key) != value:
            actions.append(Action("sysctl", f"{key}={value}"))
    if not before.kubepods:
        for cgroup in sorted(set(now.kubepods_cgroups), key=lambda c: (-c.count("/"), c)):
            actions.append(Action("rmdir-cgroup", cgroup))
    for directory in WATCHED_DIRS:
        if directory in now.dirs and directory not in before.dirs:
            actions.append(Action("remove-dir", directory))
    actions.append(Action("remove-tree", record.workdir))
    return actions


def leftovers(before: Observation, after: Observation, workdir: str) -> list[str]:
    """What a stopped node left behind, compared with the host before it started (for tests)."""
    found: list[str] = []
    new_pids = [pid for pid in after.processes if pid not in before.processes]
    for pid in new_pids:
        exe, _, cmdline = after.processes[pid]
        if workdir in cmdline or os.path.basename(exe).startswith(("containerd", "kubelet", "kube-proxy", "coredns")):
            found.append(f"process {pid} {cmdline[:120]}")
    found += [f"mount {m}" for m in after.mounts if m not in before.mounts]
    found += [f"netns {n}" for n in after.netns if n not in before.netns]
    found += [f"link {link}" for link in after.links if link not in before.links]
    found += [f"nft table {t}" for t in after.nft_tables if t not in before.nft_tables]
    found += [f"cgroup {c}" for c in after.kubepods_cgroups if c not in before.kubepods_cgroups]
    found += [
        f"sysctl {k}={v} (was {before.sysctls.get(k)})" for k, v in after.sysctls.items() if before.sysctls.get(k) != v
    ]
    found += [f"directory {d}" for d in after.dirs if d not in before.dirs]
    if os.path.exists(workdir):
        found.append(f"directory {workdir}")
    return found


# ---- acting -------------------------------------------------------------------------------------


def _umount(path: str) -> None:
    """umount2(2) directly: mount(8) would create /run/mount/utab."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(path.encode(), 0) != 0 and libc.umount2(path.encode(), MNT_DETACH) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), path)


def run_cleanup(record: NodeRecord, actions: Iterable[Action], log: IO[str] | None = None) -> list[str]:
    """Carry out `actions`; returns the ones that failed (as sentences), after trying them all."""
    failures: list[str] = []
    killed: list[int] = []
    for action in actions:
        try:
            _act(record, action, killed)
        except (OSError, subprocess.SubprocessError, LocalClusterError) as error:
            failures.append(f"{action.kind} {action.target}: {error}")
            continue
        if log is not None:
            log.write(f"cleanup: {action.kind} {action.target} {action.why}".rstrip() + "\n")
    return failures


def _act(record: NodeRecord, action: Action, killed: list[int]) -> None:
    kind, target = action.kind, action.target
    if kind == "kill":
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(target), signal.SIGKILL)
        killed.append(int(target))
        return
    if killed:  # the kernel frees mounts and namespaces of killed processes a moment later
        _wait_gone(killed, 5.0)
        killed.clear()
    if kind == "umount":
        with contextlib.suppress(FileNotFoundError):
            _umount(target)
    elif kind == "rm-netns":
        with contextlib.suppress(OSError):
            _umount(target)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)
    elif kind == "delete-link":
        _check(_run(["ip", "link", "delete", target]), f"ip link delete {target}")
    elif kind == "delete-nft-table":
        family, name = target.split()
        _check(_run(["nft", "delete", "table", family, name]), f"nft delete table {target}")
    elif kind == "iptables-restore":
        command = "iptables-restore" if target == "ip" else "ip6tables-restore"
        _check(_run([command], input=record.snapshot.iptables[target]), command)
    elif kind == "sysctl":
        key, value = target.split("=", 1)
        write_sysctl(key, value)
    elif kind == "rmdir-cgroup":
        with contextlib.suppress(FileNotFoundError):
            _rmdir_cgroup(Path(target))
    elif kind == "remove-dir":
        if target == "/run/containerd" and _other_containerd():
            return
        shutil.rmtree(target, ignore_errors=True)
    elif kind == "remove-tree":
        shutil.rmtree(target, ignore_errors=True)
    else:
        raise LocalClusterError(f"unknown cleanup action {kind}")


def _rmdir_cgroup(path: Path) -> None:
    deadline = time.monotonic() + 5
    while True:
        try:
            path.rmdir()
            return
        except OSError:  # EBUSY while the last killed task is being released
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _wait_gone(pids: Sequence[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{pid}") for pid in pids):
        time.sleep(0.05)


def _other_containerd() -> bool:
    return any(os.path.basename(exe).startswith("containerd") for exe, _, _ in _processes().values())


def _check(result: subprocess.CompletedProcess[str], what: str) -> None:
    if result.returncode != 0:
        raise LocalClusterError(f"{what} failed: {result.stderr.strip()}")


# ---- the lock and the state file ----------------------------------------------------------------


class NodeLock:
    """An exclusive lock on this machine's one real node, held until `release()` or process exit."""

    def __init__(self) -> None:
        STATE_DIR.mkdir(mode=0o755, exist_ok=True)
        self._file: IO[str] | None = LOCK_FILE.open("a+")
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "another process"
            self._file.close()
            self._file = None
            raise LocalClusterError(
                f"a real node is already running on this machine ({holder}); there can be one at a time"
            ) from None
        self._file.truncate(0)
        self._file.write(f"process {os.getpid()}\n")
        self._file.flush()

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_record() -> NodeRecord | None:
    try:
        return NodeRecord.from_json(STATE_FILE.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as error:
        raise LocalClusterError(f"unreadable {STATE_FILE} ({error}); remove it after checking the host") from error


def write_record(record: NodeRecord) -> None:
    temporary = STATE_FILE.with_suffix(".tmp")
    temporary.write_text(record.to_json())
    temporary.chmod(0o600)
    temporary.replace(STATE_FILE)


def clear_record() -> None:
    STATE_FILE.unlink(missing_ok=True)


def clean_leftovers(log: IO[str] | None = None) -> list[str] | None:
    """Undo the node of a run that did not stop (its state file is still there); call with the
    lock held. None if there was nothing to do, else the failures (empty when all went well)."""
    record = read_record()
    if record is None:
        return None
    failures = run_cleanup(record, plan_cleanup(record, observe()), log)
    if not failures:
        clear_record()
    return failures


def describe(actions: Sequence[Action]) -> list[str]:
    return [f"{a.kind} {a.target}" + (f" ({a.why})" if a.why else "") for a in actions]


def as_dict(observation: Observation) -> dict[str, Any]:
    return asdict(observation)
