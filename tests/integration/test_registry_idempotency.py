"""A reconcile whose inputs did not change issues no write. Its own module and its own operator,
watching only the test's namespace, so that no other test's registries (or their namespaces going
away) write in the window measured."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import running_operator
from test_registry import S3, _apply, _get, _metric_sum, _ready, _until, crds  # noqa: F401

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
    before_reconciles, before_writes = reconciles(), writes()
    _until(lambda: reconciles() >= before_reconciles + 3, "three drift reconciles", 30)
    assert writes() == before_writes
