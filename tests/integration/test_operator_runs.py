"""The operator skeleton against a real API server: it logs in with the test kubeconfig, answers
its liveness probe, serves its metrics, and stops cleanly, releasing the metrics port; the same
through `python -m dockyard`, watching one namespace and logging JSON."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import kopf
import pytest
from kopf.testing import KopfRunner

from dockyard.main import FINALIZER, VERSION
from localcluster.ports import free_port

pytestmark = pytest.mark.integration


def _wait_for(url: str, exited: Callable[[], bool], deadline_s: float = 30) -> httpx.Response:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if exited():
            pytest.fail(f"the operator exited before {url} answered")
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail(f"nothing answered at {url} within {deadline_s}s")


@pytest.fixture
def metrics_port(cluster: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[int]:
    """The environment of an operator pointed at the test cluster, with its metrics on a free port."""
    for name in list(os.environ):
        if name.startswith(("DOCKYARD_", "KUBERNETES_SERVICE_")):
            monkeypatch.delenv(name)
    # kopf and the operator's own requests log in with $KUBECONFIG's current context (core/apiserver.py).
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    port = free_port()
    monkeypatch.setenv("DOCKYARD_METRICS_HOST", "127.0.0.1")
    monkeypatch.setenv("DOCKYARD_METRICS_PORT", str(port))
    monkeypatch.setenv("DOCKYARD_EVENTS_PORT", "0")
    monkeypatch.setenv("DOCKYARD_STATE_DIR", str(tmp_path / "state"))
    yield port


def test_operator_answers_probe_serves_metrics_and_stops_cleanly(cluster: Any, metrics_port: int) -> None:
    liveness = f"http://127.0.0.1:{free_port()}/healthz"
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    settings = kopf.OperatorSettings()
    args = ["run", "--standalone", "-A", "-m", "dockyard.main", "--liveness", liveness]

    with KopfRunner(args, settings=settings, timeout=60) as runner:
        probe = _wait_for(liveness, runner.future.done)
        metrics = _wait_for(metrics_url, runner.future.done)
        time.sleep(2)  # kopf scans the API right after startup; every failed request logs an ERROR

    assert runner.exception is None, runner.output
    assert runner.exit_code == 0, runner.output
    # It read the API's discovery documents with the kubeconfig's credentials (a refused or failed
    # request would have logged an ERROR and stopped the startup).
    discovered = [
        line
        for line in metrics.text.splitlines()
        if line.startswith("dockyard_kube_requests_total{") and 'kind="APIResourceList"' in line
    ]
    assert discovered and float(discovered[0].rsplit(" ", 1)[1]) >= 1, metrics.text
    assert "[ERROR" not in runner.output, runner.output
    assert probe.status_code == 200
    payload = probe.json()
    assert payload["version"] == VERSION
    assert 0 <= payload["uptimeSeconds"] < 60
    assert metrics.status_code == 200
    assert f'dockyard_build_info{{version="{VERSION}"}} 1.0' in metrics.text
    assert settings.persistence.finalizer == FINALIZER == "dockyard.dev/finalizer"
    with pytest.raises(httpx.ConnectError):
        httpx.get(metrics_url, timeout=2)


def test_python_m_dockyard_watches_one_namespace_logs_json_and_exits_0_on_sigterm(
    cluster: Any, namespace: str, tmp_path: Path
) -> None:
    health_port, metrics_port = free_port(), free_port()
    env = {k: v for k, v in cluster.env().items() if not k.startswith("DOCKYARD_")} | {
        "DOCKYARD_NAMESPACE": namespace,
        "DOCKYARD_HEALTH_HOST": "127.0.0.1",
        "DOCKYARD_HEALTH_PORT": str(health_port),
        "DOCKYARD_METRICS_HOST": "127.0.0.1",
        "DOCKYARD_METRICS_PORT": str(metrics_port),
        "DOCKYARD_LOG_FORMAT": "json",
        "DOCKYARD_EVENTS_PORT": "0",
        "DOCKYARD_STATE_DIR": str(tmp_path / "state"),
    }
    operator = subprocess.Popen(
        [sys.executable, "-m", "dockyard"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        probe = _wait_for(f"http://127.0.0.1:{health_port}/healthz", lambda: operator.poll() is not None)
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2)
        time.sleep(2)  # as above: a failed login or API scan would end the process
        operator.send_signal(signal.SIGTERM)
        output, _ = operator.communicate(timeout=30)
    finally:
        if operator.poll() is None:
            operator.kill()
            operator.wait()

    assert operator.returncode == 0, output
    assert probe.status_code == 200 and probe.json()["version"] == VERSION
    assert "dockyard_build_info" in metrics.text
    records = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert any(f"watching {namespace}," in record.get("message", "") for record in records), output
    assert not [record for record in records if record.get("severity") in ("error", "fatal")], output
