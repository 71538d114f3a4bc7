import asyncio
import base64
from typing import Any

from dockyard.core.cache import ClusterCache
from dockyard.events.intake import RegistryTokens
from dockyard.webhooks.fanout import delivery_id
from dockyard.webhooks.resolve import effective_webhook_limit


class Secrets:
    cache = ClusterCache()  # unbound: every lookup goes to `get`

    def read_child(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get(api_version, kind, namespace, name)  # type: ignore[no-any-return]

    def __init__(self, tokens: dict[str, str]) -> None:
        self.tokens = tokens
        self.reads: list[str] = []

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads.append(f"{namespace}/{name}")
        token = self.tokens.get(f"{namespace}/{name}")
        return None if token is None else {"data": {"token": base64.b64encode(token.encode()).decode()}}


def verify(tokens: RegistryTokens, namespace: str, registry: str, presented: str) -> bool:
    return asyncio.run(tokens.verify(namespace, registry, presented))


def test_a_registry_is_heard_only_with_its_own_token() -> None:
    kube = Secrets({"team/hub-events": "hub-token", "team/other-events": "other-token"})
    tokens = RegistryTokens(kube)  # type: ignore[arg-type]
    assert verify(tokens, "team", "hub", "hub-token")
    assert not verify(tokens, "team", "hub", "other-token")
    assert verify(tokens, "team", "hub", "hub-token")
    assert kube.reads == ["team/hub-events"], "a known token is checked from the cache"


def test_names_that_cannot_be_registries_or_are_not_watched_cost_no_lookup() -> None:
    kube = Secrets({"team/hub-events": "t"})
    tokens = RegistryTokens(kube, lambda namespace, registry: (namespace, registry) == ("team", "hub"))  # type: ignore[arg-type]
    assert not verify(tokens, "team", "unknown", "t")
    assert not verify(tokens, "Team", "hub", "t")
    assert not verify(tokens, "team", "hub", "")
    assert not verify(tokens, "team", "hub", "tøken")
    assert kube.reads == ["team/hub-events"]


def test_delivery_ids_are_stable_per_webhook_and_event() -> None:
    assert delivery_id("w1", "e1") == delivery_id("w1", "e1")
    assert len({delivery_id("w1", "e1"), delivery_id("w2", "e1"), delivery_id("w1", "e2")}) == 3


def test_the_webhook_limit_is_the_one_the_registry_runs_at() -> None:
    assert effective_webhook_limit({"spec": {"sku": "Premium"}}) == 500
    blocked = {"spec": {"sku": "Basic"}, "status": {"usage": {"webhooks": {"used": 5, "limit": 500}}}}
    assert effective_webhook_limit(blocked) == 500
    assert effective_webhook_limit({"spec": {}}) == 2
