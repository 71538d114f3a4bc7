"""The real node's binaries (hack/build-node.sh) and what Debian installs beside them."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..build import run_build_script
from ..errors import LocalClusterError

HACK = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = HACK / "build-node.sh"
VERSIONS = HACK / "versions.env"
MISSING_TOOLCHAIN_EXIT = 3
BUILT = ("kubelet", "kube-proxy", "pause", "coredns", "local-path-provisioner", "kaniko-executor", "registry")
# From Debian (build-node.sh installs them): the runtime, the CNI plugins and the host tools.
HOST_COMMANDS = ("containerd", "containerd-shim-runc-v2", "ctr", "runc", "ip", "nft", "iptables-save", "skopeo")
CNI_DIRS = (Path("/usr/lib/cni"), Path("/opt/cni/bin"))


@dataclass(frozen=True)
class NodeBinaries:
    built: dict[str, Path]
    """kubelet, kube-proxy, pause, coredns, local-path-provisioner, kaniko-executor, registry."""
    containerd: Path
    runc: Path
    ctr: Path
    cni_bin_dir: Path
    busybox: Path

    def __getitem__(self, name: str) -> Path:
        return self.built[name]


def read_versions(path: Path = VERSIONS) -> dict[str, str]:
    versions = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "=" in line:
            key, value = line.split("=", 1)
            versions[key.strip()] = value.strip()
    return versions


def parse_build_output(stdout: str) -> dict[str, Path]:
    """`name path` lines (the script's stdout) to a mapping; other lines are ignored."""
    found = {}
    for line in stdout.splitlines():
        name, _, path = line.strip().partition(" ")
        if name in BUILT and path:
            found[name] = Path(path)
    return found


def ensure_node_binaries(script: Path = BUILD_SCRIPT, skip_apt: bool = False) -> NodeBinaries:
    """Run hack/build-node.sh (installs Debian packages, builds what is missing, cached) and find
    the Debian binaries. Raises LocalClusterError with the script's `error: ...` sentences."""
    env = dict(os.environ)
    if skip_apt:
        env["SKIP_APT"] = "1"
    stdout = run_build_script(script, env)
    built = parse_build_output(stdout)
    missing = [name for name in BUILT if name not in built or not os.access(built[name], os.X_OK)]
    if missing:
        raise LocalClusterError(f"{script.name} did not provide {', '.join(missing)} (stdout: {stdout.strip()!r})")
    return NodeBinaries(built=built, **host_binaries())


def host_binaries() -> dict[str, Path]:
    missing = [command for command in HOST_COMMANDS if shutil.which(command) is None]
    cni = next((d for d in CNI_DIRS if (d / "bridge").exists() and (d / "host-local").exists()), None)
    busybox = Path("/bin/busybox")
    if not busybox.exists() and shutil.which("busybox"):
        busybox = Path(str(shutil.which("busybox")))
    if cni is None:
        missing.append("the CNI plugins (bridge, host-local, portmap)")
    if not busybox.exists():
        missing.append("busybox (static)")
    if missing:
        raise LocalClusterError(f"missing on this host: {', '.join(missing)} (hack/build-node.sh installs them)")
    assert cni is not None

    def which(command: str) -> Path:
        return Path(str(shutil.which(command)))

    return {
        "containerd": which("containerd"),
        "runc": which("runc"),
        "ctr": which("ctr"),
        "cni_bin_dir": cni,
        "busybox": busybox,
    }
