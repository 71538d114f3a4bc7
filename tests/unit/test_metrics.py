import socket
from contextlib import nullcontext

import httpx
import kopf
import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from dockyard.metrics import MEMO_KEY, OperatorMetrics, metrics_from, register_metrics, serve_metrics


@pytest.fixture
def metrics() -> OperatorMetrics:
    return register_metrics(CollectorRegistry(), version="1.2.3")


def test_build_info_carries_the_version(metrics: OperatorMetrics) -> None:
    assert metrics.registry.get_sample_value("dockyard_build_info", {"version": "1.2.3"}) == 1
    assert REGISTRY.get_sample_value("dockyard_build_info", {"version": "1.2.3"}) is None


def test_two_registries_do_not_collide() -> None:
    register_metrics(CollectorRegistry(), version="a")
    register_metrics(CollectorRegistry(), version="b")


@pytest.mark.parametrize(
    ("error", "result"),
    [
        (None, "success"),
        (kopf.TemporaryError("later", delay=1), "retry"),
        (kopf.PermanentError("never"), "invalid"),
        (RuntimeError("boom"), "error"),
    ],
)
def test_reconcile_is_counted_by_result_and_timed(
    metrics: OperatorMetrics, error: Exception | None, result: str
) -> None:
    with pytest.raises(type(error)) if error else nullcontext():
        with metrics.observe_reconcile("Registry"):
            if error:
                raise error
    value = metrics.registry.get_sample_value
    assert value("dockyard_reconcile_total", {"kind": "Registry", "result": result}) == 1
    assert value("dockyard_reconcile_duration_seconds_count", {"kind": "Registry"}) == 1
    others = {"success", "retry", "invalid", "error"} - {result}
    assert all(value("dockyard_reconcile_total", {"kind": "Registry", "result": r}) is None for r in others)


def test_endpoint_serves_the_registry_and_stop_releases_the_port(metrics: OperatorMetrics) -> None:
    server = serve_metrics(metrics.registry, "127.0.0.1", 0)
    try:
        response = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5)
    finally:
        server.stop()
    assert response.status_code == 200
    assert 'dockyard_build_info{version="1.2.3"} 1.0' in response.text
    assert "# TYPE dockyard_reconcile_duration_seconds histogram" in response.text
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5)
    with socket.socket() as successor:
        successor.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        successor.bind(("127.0.0.1", server.port))
        successor.listen()


def test_metrics_from_memo(metrics: OperatorMetrics) -> None:
    assert metrics_from({MEMO_KEY: metrics}) is metrics
    with pytest.raises(LookupError):
        metrics_from({})
