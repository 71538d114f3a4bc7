"""Fixtures for tests against the local control plane (see hack/localcluster)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import secrets
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import kopf
import kubernetes.client
import kubernetes.config
import kubernetes.config.kube_config
import pytest
from kopf.testing import KopfRunner

from localcluster import LocalCluster, LocalClusterError, ensure_binaries
from localcluster.ports import free_port
from localcluster.realnode import RealNodeCluster, ensure_images, ensure_node_binaries
from localcluster.realnode import host as real_node_host

# Tests want drift repair soon; the operator reads this at its startup.
os.environ.setdefault("DOCKYARD_DRIFT_INTERVAL_SECONDS", "3")


# Every process this session starts inherits this mark (the clusters' env() is os.environ-based),
# so one left running after the session is found by it: see `no_operator_outlives_the_session`.
SESSION_MARK: str = "PYTEST_DOCKYARD_SESSION"
os.environ.setdefault(SESSION_MARK, secrets.token_hex(8))


def _operators_of_this_session() -> list[int]:
    """`python -m dockyard` processes (not this one) whose environment carries this session's mark."""
    mark = f"{SESSION_MARK}={os.environ[SESSION_MARK]}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if b"-m" in argv and b"dockyard" in argv and mark in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
    return found


@pytest.fixture(scope="session", autouse=True)
def no_operator_outlives_the_session() -> Iterator[None]:
    """An operator process a test started and never stopped runs on after the suite (an orphan,
    still reconciling); it is an error of the session, and is killed."""
    yield
    left = _operators_of_this_session()
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    assert not left, f"operator processes left running by the tests: {left}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that start a real node of their own run first: the session's node, once up, holds the
    machine's one real-node lock until the session ends."""
    items.sort(key=lambda item: item.get_closest_marker("before_real_node") is None)


@pytest.fixture(scope="session")
def bin_dir() -> Path:
    """The control-plane binaries, built on first use (a cold build takes 10-25 minutes)."""
    try:
        return ensure_binaries()
    except LocalClusterError as error:
        pytest.fail(f"cannot build the local control plane: {error}", pytrace=False)


def build_tool(name: str) -> Path:
    """A tool from hack/build-tools.sh (built from the Go module proxy on first use, then cached)."""
    script = Path(__file__).resolve().parents[2] / "hack" / "build-tools.sh"
    built = subprocess.run(["bash", str(script), name], capture_output=True, text=True, timeout=1800)
    if built.returncode != 0:
        pytest.fail(f"cannot build {name}: {built.stderr.strip()}", pytrace=False)
    return Path(built.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def distribution_v3() -> Path:
    """CNCF distribution 3.x, the version of the operator's default image `registry:3`."""
    return build_tool("registry")


@pytest.fixture(scope="session")
def oras() -> Path:
    """The ORAS client (artifacts attached to an image as referrers)."""
    return build_tool("oras")


@pytest.fixture(scope="session")
def cluster(bin_dir: Path) -> Iterator[LocalCluster]:
    """One control plane for the whole session; give each test its own `namespace`."""
    with LocalCluster(bin_dir, startup_timeout=180) as running:
        yield running


@pytest.fixture(scope="session")
def real_node_cluster(bin_dir: Path) -> Iterator[RealNodeCluster]:
    """A control plane with one real node (containerd, kubelet, kube-proxy, CoreDNS,
    local-path-provisioner) and the locally built images, for tests whose pods must really run;
    the kwok `cluster` stays for everything else. Stopping it must leave the host as it was."""
    if os.geteuid() != 0:
        pytest.skip("the real node needs root (containerd, kubelet, iptables and mounts)")
    try:
        binaries = ensure_node_binaries()
        images = ensure_images(binaries)
    except LocalClusterError as error:
        pytest.fail(f"cannot build the real node: {error}", pytrace=False)
    before = real_node_host.observe()
    killed = real_node_host.read_record()  # a node that was killed: its start restores these
    if killed is not None:
        before = dataclasses.replace(before, sysctls={**before.sysctls, **killed.snapshot.sysctls})
    with RealNodeCluster(bin_dir, binaries, images, startup_timeout=240) as running:
        workdir = str(running.workdir)
        yield running
    left = real_node_host.leftovers(before, real_node_host.observe(), workdir)
    assert not running.cleanup_failures and not left, f"the real node left behind: {running.cleanup_failures + left}"


@pytest.fixture(scope="session")
def api(cluster: LocalCluster) -> Iterator[kubernetes.client.ApiClient]:
    client = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def namespace(cluster: LocalCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test, deleted (without waiting) afterwards."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{slug}-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@contextlib.contextmanager
def running_operator(
    cluster: LocalCluster,
    *scope: str,
    state_dir: Path | None = None,
    events_port: int | None = None,
    events_host: str = "127.0.0.1",
) -> Iterator[str]:
    """The operator in this process (kopf's KopfRunner) against the test cluster, watching `scope`
    (`-A` or `-n NAME`); yields its metrics URL. Its event intake listens on `events_port` (a free
    one if None) and registries are configured to post there; its delivery queue lives in
    `state_dir` (a fresh temporary one if None; pass the same one to a restarted operator). Pods on a
    real node reach the intake on `events_host` (the node's bridge gateway). kopf logs
    in through the kubernetes client, which reads $KUBECONFIG once when imported, so its default
    location is patched too."""
    patch = pytest.MonkeyPatch()
    patch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    patch.setattr(kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(cluster.kubeconfig))
    patch.setattr(kubernetes.client.Configuration, "_default", kubernetes.client.Configuration._default)
    port = free_port()
    events_port = events_port or free_port()
    temporary = tempfile.TemporaryDirectory(prefix="dockyard-state-") if state_dir is None else None
    patch.setenv("DOCKYARD_METRICS_HOST", "127.0.0.1")
    patch.setenv("DOCKYARD_METRICS_PORT", str(port))
    patch.setenv("DOCKYARD_EVENTS_HOST", events_host)
    patch.setenv("DOCKYARD_EVENTS_PORT", str(events_port))
    patch.setenv("DOCKYARD_EVENTS_URL", f"http://{events_host}:{events_port}")
    patch.setenv("DOCKYARD_STATE_DIR", str(state_dir or temporary.name))  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        with KopfRunner(
            ["run", "--standalone", *scope, "-m", "dockyard.main"], settings=kopf.OperatorSettings(), timeout=60
        ) as runner:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    httpx.get(url, timeout=2)
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            yield url
        assert runner.exception is None, runner.output
    finally:
        patch.undo()
        if temporary is not None:
            temporary.cleanup()
