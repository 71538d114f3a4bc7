"""A reconcile whose inputs did not change issues no write, and, once the watch-fed caches have
seen everything, no read either. Its own module and its own operator, watching only the test's
namespace, so that no other test's registries (or their namespaces going away) count in the window
measured."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import running_operator
from test_registry import S3, _apply, _apply_webhook, _get, _metric_sum, _ready, _until, crds  # noqa: F401

from dockyard.core.kube import WRITE_VERBS

pytestmark = pytest.mark.integration


@pytest.fixture
def namespaced_operator(cluster: Any, namespace: str) -> Iterator[str]:
    with running_operator(cluster, "-n", namespace) as url:
        yield url


def test_unchanged_registry_causes_no_writes(
    cluster: Any, crds: None, namespace: str, namespaced_operator: str
) -> None:
    url = namespaced_operator
    _apply(cluster, namespace, "quiet", {"sku": "Basic", "adminUser": {"enabled": True}, "storage": S3})
    _until(lambda: _ready(cluster, namespace, "quiet"), "Registry quiet Ready=True", 90)

    def reconciles() -> float:
        return _metric_sum(_get(url) or "", "dockyard_reconcile_total", kind="Registry")

    def writes() -> float:
        text = _get(url) or ""
        return sum(_metric_sum(text, "dockyard_kube_requests_total", verb=verb) for verb in WRITE_VERBS)

    assert writes() > 0  # the counter does count this operator's writes
    # Creating it wrote each of its Secrets once (a generated one is not applied again after its create).
    owned = cluster.kubectl(
        "get", "secrets", "-n", namespace, "-l", "app.kubernetes.io/managed-by=dockyard", "-o", "name"
    ).stdout.split()
    text = _get(url) or ""
    secret_writes = sum(_metric_sum(text, "dockyard_kube_requests_total", verb=v, kind="Secret") for v in WRITE_VERBS)
    assert len(owned) >= 5 and secret_writes == len(owned), (secret_writes, owned)
    before_reconciles, before_writes = reconciles(), writes()
    _until(lambda: reconciles() >= before_reconciles + 3, "three drift reconciles", 30)
    assert writes() == before_writes


READ_VERBS = ("get", "list")


def test_steady_drift_issues_no_request_at_all(
    cluster: Any, crds: None, namespace: str, namespaced_operator: str
) -> None:
    """Registries and a Webhook in steady state: drift passes compare from the caches. The counter is
    the operator's own `dockyard_kube_requests_total` (kopf's watches are not in it)."""
    url = namespaced_operator
    for name in ("calm", "still"):
        _apply(cluster, namespace, name, {"sku": "Standard", "adminUser": {"enabled": True}, "storage": S3})
    _apply_webhook(cluster, namespace, "calm-hook", "calm", "http://127.0.0.1:9/hook")
    for name in ("calm", "still"):
        _until(lambda name=name: _ready(cluster, namespace, name), f"Registry {name} Ready=True", 90)

    def count(kind: str, verbs: tuple[str, ...]) -> float:
        text = _get(url) or ""
        return sum(_metric_sum(text, f"dockyard_{kind}", verb=verb) for verb in verbs)

    def reconciles() -> float:
        text = _get(url) or ""
        return sum(_metric_sum(text, "dockyard_reconcile_total", kind=kind) for kind in ("Registry", "Webhook"))

    # Settle: the first pass after the rollout reads each child once (controllers moved their
    # resourceVersions since the operator applied them).
    settled = reconciles()
    _until(lambda: reconciles() >= settled + 6, "two drift passes to settle", 60)
    assert count("kube_requests_total", READ_VERBS) > 0  # the counter does count this operator's reads
    before = reconciles(), count("kube_requests_total", READ_VERBS), count("kube_requests_total", WRITE_VERBS)
    _until(lambda: reconciles() >= before[0] + 9, "three more drift passes over 2 registries and 1 webhook", 60)
    after = count("kube_requests_total", READ_VERBS), count("kube_requests_total", WRITE_VERBS)
    assert after == before[1:], f"reads and writes during steady drift: {after[0] - before[1]}, {after[1] - before[2]}"


def test_steady_global_login_server_issues_no_request_at_all(
    cluster: Any, crds: None, namespace: str, namespaced_operator: str
) -> None:
    """A registry serving as the global login server over a routed replica (its Service without
    selector, the operator's EndpointSlice from the pod cache): drift passes of the Registry and the
    Replication's timer read and write nothing once settled."""
    url = namespaced_operator
    _apply(cluster, namespace, "globe", {"sku": "Premium", "storage": S3})
    _until(lambda: _ready(cluster, namespace, "globe"), "Registry globe Ready=True", 90)
    replication = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "Replication",
        "metadata": {"name": "globe-west"},
        "spec": {
            "registryRef": {"name": "globe"},
            "location": "west",
            "nodeSelector": {"type": "kwok"},
            "storage": {"s3": {"bucket": "globe-west", "region": "eu-west-1"}},
        },
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(replication))

    def routed() -> bool:
        body = json.loads(cluster.kubectl("get", "replication", "globe-west", "-n", namespace, "-o", "json").stdout)
        conditions = {c["type"]: c for c in (body.get("status") or {}).get("conditions") or []}
        return conditions.get("GlobalEndpointRouting", {}).get("reason") == "Routed"

    _until(routed, "globe-west Routed", 120)
    _until(
        lambda: cluster.kubectl("get", "endpointslice", "globe-global", "-n", namespace, check=False).returncode == 0,
        "the global EndpointSlice",
        30,
    )

    def count(verbs: tuple[str, ...]) -> float:
        text = _get(url) or ""
        return sum(_metric_sum(text, "dockyard_kube_requests_total", verb=verb) for verb in verbs)

    def reconciles() -> float:
        text = _get(url) or ""
        return sum(_metric_sum(text, "dockyard_reconcile_total", kind=kind) for kind in ("Registry", "Replication"))

    settled = reconciles()
    _until(lambda: reconciles() >= settled + 4, "drift passes to settle", 60)
    before = reconciles(), count(READ_VERBS), count(WRITE_VERBS)
    _until(lambda: reconciles() >= before[0] + 6, "more drift passes and replica timers", 90)
    after = count(READ_VERBS), count(WRITE_VERBS)
    assert after == before[1:], f"reads and writes in steady state: {after[0] - before[1]}, {after[1] - before[2]}"
