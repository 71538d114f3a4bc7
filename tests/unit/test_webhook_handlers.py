"""Webhook handlers that run on the event loop (`handlers/webhook.py`): what they hand to a thread,
and what they decide without one."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Any

import kopf
import pytest
from prometheus_client import CollectorRegistry

from dockyard.core import kube as kube_module
from dockyard.core.cache import WEBHOOKS_BY_REGISTRY_INDEX, ClusterCache
from dockyard.core.kube import Kube
from dockyard.handlers import webhook as handlers
from dockyard.webhooks import service as service_module
from dockyard.webhooks.service import WebhookService


class Store(list[Any]):
    """kopf's `Store`: the values of one key."""


def registry(uid: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "team", "name": "hub", "uid": uid}, "spec": {"sku": "Standard"}}


@pytest.fixture
def memo(tmp_path: Path) -> kopf.Memo:
    cache = ClusterCache()
    cache.bind({WEBHOOKS_BY_REGISTRY_INDEX: {}})
    kube = Kube(None, registry=CollectorRegistry(), cache=cache)  # type: ignore[arg-type]  # no request made
    service = WebhookService(kube, tmp_path, CollectorRegistry(), history_days=1, user_agent="test", concurrency=1)
    return kopf.Memo({kube_module.MEMO_KEY: kube, service_module.MEMO_KEY: service})


def test_a_new_registry_without_webhooks_takes_no_thread_one_with_some_has_them_reconciled(
    memo: kopf.Memo, monkeypatch: pytest.MonkeyPatch
) -> None:
    reconciled: list[tuple[str, str]] = []
    monkeypatch.setattr(handlers, "reconcile_registry_webhooks", lambda kube, service, *key: reconciled.append(key))
    asyncio.run(handlers.registry_changed_for_webhooks(body=registry("u1"), type="ADDED", memo=memo))
    assert reconciled == []  # nothing waits for this registry: decided on the loop
    # A Webhook created before its Registry waits for it; the Registry deleted and created again.
    index = kube_module.kube_from(memo).cache._indices[WEBHOOKS_BY_REGISTRY_INDEX]  # type: ignore[index]
    index[("team", "hub")] = Store([{"metadata": {"name": "ci"}}])
    asyncio.run(handlers.registry_changed_for_webhooks(body=registry("u1"), type="DELETED", memo=memo))
    asyncio.run(handlers.registry_changed_for_webhooks(body=registry("u2"), type="ADDED", memo=memo))
    assert reconciled == [("team", "hub"), ("team", "hub")]


def test_a_webhook_added_is_counted_from_the_event_loop(memo: kopf.Memo, monkeypatch: pytest.MonkeyPatch) -> None:
    queued: list[tuple[str, str]] = []
    monkeypatch.setattr(handlers, "referrers_changed", lambda memo, namespace, name: queued.append((namespace, name)))
    assert inspect.iscoroutinefunction(handlers.webhook_added)  # kopf runs a sync handler in a thread
    body = {"metadata": {"namespace": "team", "name": "ci"}, "spec": {"registryRef": {"name": "hub"}}}
    asyncio.run(handlers.webhook_added(body=body, memo=memo))
    assert queued == [("team", "hub")]
