"""A reconcile whose inputs did not change issues no write. Its own module and its own operator,
watching only the test's namespace, so that no other test's registries (or their namespaces going
away) write in the window measured."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import kopf
import kubernetes.client
import kubernetes.config.kube_config
import pytest
from kopf.testing import KopfRunner

from test_registry import S3, WRITE_VERBS, _apply, _get, _metric_sum, _ready, _until, crds  # noqa: F401

pytestmark = pytest.mark.integration


@pytest.fixture
def namespaced_operator(cluster: Any, namespace: str) -> Iterator[str]:
    patch = pytest.MonkeyPatch()
    patch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    patch.setattr(kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(cluster.kubeconfig))
    patch.setattr(kubernetes.client.Configuration, "_default", kubernetes.client.Configuration._default)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    patch.setenv("DOCKYARD_METRICS_HOST", "127.0.0.1")
    patch.setenv("DOCKYARD_METRICS_PORT", str(port))
    try:
        with KopfRunner(["run", "--standalone", "-n", namespace, "-m", "dockyard.main"], settings=kopf.OperatorSettings(), timeout=60) as runner:
            url = f"http://127.0.0.1:{port}/metrics"
            _until(lambda: _get(url), "the operator's metrics endpoint")
            yield url
        assert runner.exception is None, runner.output
    finally:
        patch.undo()


def test_unchanged_registry_causes_no_writes(cluster: Any, crds: None, namespace: str, namespaced_operator: str) -> None:
    url = namespaced_operator
    _apply(cluster, namespace, "quiet", {"sku": "Basic", "adminUser": {"enabled": True}, "storage": S3})
    _until(lambda: _ready(cluster, namespace, "quiet"), "Registry quiet Ready=True", 90)

    def reconciles() -> float:
        return _metric_sum(_get(url) or "", "dockyard_reconcile_total", kind="Registry")

    def writes() -> float:
        text = _get(url) or ""
        return sum(_metric_sum(text, "dockyard_kube_requests_total", verb=verb) for verb in WRITE_VERBS)

    assert writes() > 0  # the counter does count this operator's writes
    before_reconciles, before_writes = reconciles(), writes()
    _until(lambda: reconciles() >= before_reconciles + 3, "three drift reconciles", 30)
    assert writes() == before_writes
