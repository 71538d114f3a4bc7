"""Operator-wide Prometheus metrics on an injected registry, and the endpoint that serves them.

Each operator run registers its metrics on its own `CollectorRegistry`, never the global default,
so several runs in one process (tests) cannot collide; handlers reach it through kopf's `memo`
(`metrics_from`). Scrapes are answered by a thread of their own, so they do not wait for the
event loop, and `MetricsServer.stop` releases the port before it returns.

Metrics:
- `dockyard_build_info{version}` 1 — which version is running;
- `dockyard_reconcile_total{kind,result}` — reconciles by outcome (`RECONCILE_RESULTS`);
- `dockyard_reconcile_duration_seconds{kind}` — how long they took;
- `process_*`, `python_*` — the standard process, platform and GC collectors.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final
from wsgiref.simple_server import WSGIServer

import kopf
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)

MEMO_KEY = "metrics"

RECONCILE_RESULTS: Final = ("success", "retry", "invalid", "error")
"""`success`: returned normally; `retry`: `kopf.TemporaryError`; `invalid`: `kopf.PermanentError`;
`error`: any other exception (kopf retries it with backoff)."""

_RECONCILE_BUCKETS: Final = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class OperatorMetrics:
    registry: CollectorRegistry
    build_info: Gauge
    reconcile_total: Counter
    reconcile_duration_seconds: Histogram

    @contextmanager
    def observe_reconcile(self, kind: str) -> Iterator[None]:
        """Count and time the reconcile in the `with` block by how it ended; exceptions propagate."""
        started = time.perf_counter()
        result = "error"
        try:
            yield
            result = "success"
        except kopf.TemporaryError:
            result = "retry"
            raise
        except kopf.PermanentError:
            result = "invalid"
            raise
        finally:
            self.reconcile_total.labels(kind=kind, result=result).inc()
            self.reconcile_duration_seconds.labels(kind=kind).observe(time.perf_counter() - started)


def register_metrics(registry: CollectorRegistry, *, version: str) -> OperatorMetrics:
    """Register the operator-wide metrics on `registry`; call once per registry."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    build_info = Gauge("dockyard_build_info", "The running Dockyard version.", ["version"], registry=registry)
    build_info.labels(version=version).set(1)
    return OperatorMetrics(
        registry=registry,
        build_info=build_info,
        reconcile_total=Counter(
            "dockyard_reconcile_total",
            "Reconciles by kind and result (success, retry, invalid, error).",
            ["kind", "result"],
            registry=registry,
        ),
        reconcile_duration_seconds=Histogram(
            "dockyard_reconcile_duration_seconds",
            "Time spent in one reconcile, by kind.",
            ["kind"],
            buckets=_RECONCILE_BUCKETS,
            registry=registry,
        ),
    )


@dataclass(frozen=True)
class MetricsServer:
    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> MetricsServer:
    """Serve `registry` at `http://host:port/` (any path) until `stop()`; port 0 picks a free one."""
    server, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(server=server, thread=thread)


def metrics_from(memo: Mapping[str, object]) -> OperatorMetrics:
    """The metrics that startup put into kopf's `memo`."""
    metrics = memo.get(MEMO_KEY)
    if not isinstance(metrics, OperatorMetrics):
        raise LookupError("the operator metrics are not in memo: the startup handler has not run")
    return metrics
