"""The watch-fed cache and `Kube.ensure`'s read-avoidance, with kopf's index shape and an
in-memory object store standing in for the API (the logic under test is the operator's own)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter

from dockyard.core.apiserver import ApiError
from dockyard.core.cache import ClusterCache, Packed, Summary, Unknown, metadata_key, pack, slim, summarize
from dockyard.core.kube import Kube, NotServed


class Store(list[Any]):
    """kopf's `Store`: the values of one key."""


class Index(dict[Any, Store]):
    """kopf's `Index`: key → Store."""

    def put(self, key: Any, value: Any) -> None:
        self[key] = Store([value])


def indices() -> dict[str, Index]:
    names = [
        "dockyard_secrets",
        "dockyard_configmaps",
        "dockyard_services",
        "dockyard_claims",
        "dockyard_deployments",
        "dockyard_ingresses",
        "dockyard_registries",
        "dockyard_webhooks",
        "dockyard_webhooks_by_registry",
        "dockyard_replications_by_registry",
    ]
    return {name: Index() for name in names}


class MemoryKube(Kube):
    """`Kube` over a dict of objects; every GET and apply is counted as the real one counts them."""

    def __init__(self, cache: ClusterCache) -> None:
        self.cache = cache
        self._verified = {}
        self._verified_lock = threading.Lock()
        self.requests = Counter("requests", "r", ["verb", "kind"], registry=CollectorRegistry())
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.version = 0
        self.calls: list[str] = []

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        self.calls.append(f"get {kind}/{name}")
        return self.objects.get((kind, name))

    def _apply(self, desired: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(f"apply {desired['kind']}/{desired['metadata']['name']}")
        self.version += 1
        stored = {**desired, "metadata": {**desired["metadata"], "resourceVersion": str(self.version)}}
        self.objects[(desired["kind"], desired["metadata"]["name"])] = stored
        return stored

    def edit(self, kind: str, name: str, **data: str) -> None:
        """Someone else changes the object (a new resourceVersion)."""
        self.version += 1
        current = self.objects[(kind, name)]
        self.objects[(kind, name)] = {
            **current,
            "data": {**current.get("data", {}), **data},
            "metadata": {**current["metadata"], "resourceVersion": str(self.version)},
        }


def config_map(value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "hub-config", "namespace": "team", "labels": {"app.kubernetes.io/managed-by": "dockyard"}},
        "data": {"config.yml": value},
    }


@pytest.fixture
def watched() -> Iterator[tuple[MemoryKube, dict[str, Index]]]:
    bound = indices()
    cache = ClusterCache()
    cache.bind(bound)
    yield MemoryKube(cache), bound


def deliver(kube: MemoryKube, bound: dict[str, Index], kind: str = "ConfigMap", name: str = "hub-config") -> None:
    """The watch delivers the object as stored."""
    bound["dockyard_configmaps"].put(("team", name), summarize(kind, kube.objects[(kind, name)]))


def test_a_verified_child_at_the_same_version_costs_no_request(watched: tuple[MemoryKube, dict[str, Index]]) -> None:
    kube, bound = watched
    assert kube.ensure(config_map("a")) == "created"
    assert kube.calls == ["apply ConfigMap/hub-config"], "absent in the cache: created without a GET"
    deliver(kube, bound)
    kube.calls.clear()
    for _ in range(3):
        assert kube.ensure(config_map("a")) == "unchanged"
    assert kube.calls == []


def test_a_hand_edit_costs_one_get_and_a_repair(watched: tuple[MemoryKube, dict[str, Index]]) -> None:
    kube, bound = watched
    kube.ensure(config_map("a"))
    deliver(kube, bound)
    kube.edit("ConfigMap", "hub-config", **{"config.yml": "edited"})
    deliver(kube, bound)
    kube.calls.clear()
    assert kube.ensure(config_map("a")) == "updated"
    assert kube.calls == ["get ConfigMap/hub-config", "apply ConfigMap/hub-config"]


def test_an_unrelated_change_costs_one_get_then_nothing(watched: tuple[MemoryKube, dict[str, Index]]) -> None:
    kube, bound = watched
    kube.ensure(config_map("a"))
    kube.edit("ConfigMap", "hub-config", extra="added by someone")  # our fields untouched
    deliver(kube, bound)
    kube.calls.clear()
    assert kube.ensure(config_map("a")) == "unchanged"
    assert kube.ensure(config_map("a")) == "unchanged"
    assert kube.calls == ["get ConfigMap/hub-config"]


def test_a_new_manifest_is_compared_again(watched: tuple[MemoryKube, dict[str, Index]]) -> None:
    kube, bound = watched
    kube.ensure(config_map("a"))
    deliver(kube, bound)
    kube.calls.clear()
    assert kube.ensure(config_map("b")) == "updated"
    assert kube.calls == ["get ConfigMap/hub-config", "apply ConfigMap/hub-config"]


def deployment(image: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "hub", "namespace": "team", "labels": {"app.kubernetes.io/managed-by": "dockyard"}},
        "spec": {"template": {"spec": {"containers": [{"name": "registry", "image": image}]}}},
    }


def store_deployment(kube: MemoryKube, bound: dict[str, Index], **changes: Any) -> None:
    """Someone else writes the Deployment (a new resourceVersion), and the watch delivers it."""
    kube.version += 1
    current = kube.objects[("Deployment", "hub")]
    meta = {**current["metadata"], "resourceVersion": str(kube.version), **changes.pop("metadata", {})}
    kube.objects[("Deployment", "hub")] = {**current, **changes, "metadata": meta}
    bound["dockyard_deployments"].put(("team", "hub"), summarize("Deployment", kube.objects[("Deployment", "hub")]))


@pytest.fixture
def deployed(watched: tuple[MemoryKube, dict[str, Index]]) -> tuple[MemoryKube, dict[str, Index]]:
    kube, bound = watched
    original = kube._apply

    def apply_with_generation(desired: dict[str, Any]) -> dict[str, Any]:
        stored = original(desired)
        stored["metadata"]["generation"] = 1
        return stored

    kube._apply = apply_with_generation  # type: ignore[method-assign]
    assert kube.ensure(deployment("registry:3")) == "created"
    store_deployment(kube, bound)
    kube.calls.clear()
    return kube, bound


def test_a_status_update_at_the_same_generation_costs_no_request(deployed: tuple[MemoryKube, dict[str, Index]]) -> None:
    kube, bound = deployed
    for replicas in (1, 2, 3):  # a rollout: the controller writes the status again and again
        store_deployment(kube, bound, status={"readyReplicas": replicas})
        assert kube.ensure(deployment("registry:3")) == "unchanged"
    assert kube.calls == []


def test_a_spec_edit_bumps_the_generation_and_is_repaired(deployed: tuple[MemoryKube, dict[str, Index]]) -> None:
    kube, bound = deployed
    edited = {"template": {"spec": {"containers": [{"name": "registry", "image": "evil:1"}]}}}
    store_deployment(kube, bound, spec=edited, metadata={"generation": 2})
    assert kube.ensure(deployment("registry:3")) == "updated"
    assert kube.calls == ["get Deployment/hub", "apply Deployment/hub"]


@pytest.mark.parametrize(
    "metadata",
    [
        {"labels": {}},  # our label removed by hand: no generation bump
        {"annotations": {"note": "added"}},
        {"ownerReferences": [{"uid": "someone-else", "controller": True}]},
    ],
)
def test_a_metadata_edit_at_the_same_generation_is_looked_at(
    deployed: tuple[MemoryKube, dict[str, Index]], metadata: dict[str, Any]
) -> None:
    kube, bound = deployed
    store_deployment(kube, bound, metadata=metadata)
    kube.ensure(deployment("registry:3"))
    assert kube.calls[0] == "get Deployment/hub"


def test_the_deployment_controllers_revision_annotation_costs_no_request(
    deployed: tuple[MemoryKube, dict[str, Index]],
) -> None:
    kube, bound = deployed
    revision = {"deployment.kubernetes.io/revision": "1"}
    store_deployment(kube, bound, metadata={"annotations": revision}, status={"readyReplicas": 1})
    assert kube.ensure(deployment("registry:3")) == "unchanged"
    assert kube.calls == []
    # Any other annotation is still looked at.
    store_deployment(kube, bound, metadata={"annotations": {**revision, "note": "added"}})
    kube.ensure(deployment("registry:3"))
    assert kube.calls[0] == "get Deployment/hub"


def test_a_kind_without_generation_is_looked_at_on_every_new_version(
    watched: tuple[MemoryKube, dict[str, Index]],
) -> None:
    kube, bound = watched
    kube.ensure(config_map("a"))
    kube.edit("ConfigMap", "hub-config", extra="x")
    deliver(kube, bound)
    kube.calls.clear()
    kube.ensure(config_map("a"))
    assert kube.calls == ["get ConfigMap/hub-config"]


def test_without_a_cache_every_ensure_reads() -> None:
    kube = MemoryKube(ClusterCache())
    kube.ensure(config_map("a"))
    kube.calls.clear()
    assert kube.ensure(config_map("a")) == "unchanged"
    assert kube.calls == ["get ConfigMap/hub-config"]


def test_create_if_missing_reads_generated_values_from_the_cache(
    watched: tuple[MemoryKube, dict[str, Index]],
) -> None:
    kube, bound = watched
    bound["dockyard_secrets"].put(
        ("team", "hub-admin"),
        summarize("Secret", {"metadata": {"resourceVersion": "7", "annotations": {"a": "b"}}, "data": {"k": "dg=="}}),
    )
    stored = kube.create_if_missing("v1", "Secret", "team", "hub-admin", lambda: pytest.fail("must not generate"))
    assert stored["data"] == {"k": "dg=="} and stored["metadata"]["annotations"] == {"a": "b"}
    assert kube.calls == []


def test_summaries_keep_only_what_is_read_back() -> None:
    deployment = {
        "metadata": {"resourceVersion": "9", "generation": 4, "managedFields": [{"big": "x" * 1000}]},
        "spec": {"template": {"spec": {"containers": [{"name": "registry"}]}}},
        "status": {"readyReplicas": 1},
    }
    summary = summarize("Deployment", deployment)
    assert summary == Summary(
        resource_version="9", generation=4, status={"readyReplicas": 1}, metadata_key=metadata_key({})
    )
    claim = summarize(
        "PersistentVolumeClaim", {"metadata": {}, "spec": {"resources": {"requests": {"storage": "1Gi"}}}}
    )
    assert claim.requested_storage == "1Gi" and claim.as_object()["spec"]["resources"]["requests"]["storage"] == "1Gi"


def test_slim_drops_managed_fields_and_kopf_state() -> None:
    body = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "Webhook",
        "metadata": {
            "name": "w",
            "managedFields": [{}],
            "annotations": {"kopf.dockyard.dev/last-handled-configuration": "{}", "dockyard.dev/ping": "1"},
        },
        "spec": {"registryRef": {"name": "hub"}},
    }
    kept = slim(body)
    assert "managedFields" not in kept["metadata"]
    assert kept["metadata"]["annotations"] == {"dockyard.dev/ping": "1"}


def test_lookups_before_binding_are_unknown_and_after_are_answers() -> None:
    cache = ClusterCache()
    assert cache.registry("team", "hub") is Unknown
    assert cache.webhooks_of("team", "hub") is Unknown
    bound = indices()
    cache.bind(bound)
    assert cache.registry("team", "hub") is None
    assert cache.webhooks_of("team", "hub") == []
    bound["dockyard_webhooks_by_registry"].put(("team", "hub"), {"metadata": {"name": "w"}})
    assert cache.webhooks_of("team", "hub") == [{"metadata": {"name": "w"}}]
    assert cache.child("cert-manager.io/v1", "Certificate", "team", "hub") is Unknown, "not watched"


def test_packed_index_values_are_read_as_fresh_parsed_copies_and_counted_without_parsing() -> None:
    body = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "Webhook",
        "metadata": {"name": "w", "namespace": "team", "managedFields": [{"manager": "kubectl"}]},
        "spec": {"registryRef": {"name": "hub"}, "actions": ["push"]},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    packed = pack(body)
    assert isinstance(packed, Packed) and b"managedFields" not in packed.data
    assert packed.unpack() == slim(body)
    cache = ClusterCache()
    bound = indices()
    cache.bind(bound)
    bound["dockyard_webhooks_by_registry"][("team", "hub")] = Store([packed, pack({**body, "metadata": {"name": "v"}})])
    assert cache.count("dockyard_webhooks_by_registry", ("team", "hub")) == 2
    assert cache.count("dockyard_webhooks_by_registry", ("team", "other")) == 0
    first = cache.webhooks_of("team", "hub")
    assert isinstance(first, list) and [w["metadata"]["name"] for w in first] == ["w", "v"]
    first[0]["spec"]["actions"].append("delete")  # a caller's change stays the caller's
    again = cache.webhooks_of("team", "hub")
    assert isinstance(again, list) and again[0]["spec"]["actions"] == ["push"]
    assert [w["metadata"]["name"] for w in cache.all_of("dockyard_webhooks_by_registry")] == ["w", "v"]
    assert ClusterCache().count("dockyard_webhooks_by_registry", ("team", "hub")) is Unknown


class Discovery:
    """An API server that answers discovery only: each group version lists `kinds` of its own
    (and a subresource), cert-manager's group is not served."""

    def __init__(self, kinds: list[tuple[str, str]]) -> None:
        self.kinds = kinds
        self.paths: list[str] = []

    def call(self, method: str, path: str, **_: Any) -> dict[str, Any]:
        self.paths.append(path)
        if "cert-manager" in path:
            raise ApiError(404, "Not Found")
        version = path.removeprefix("/apis/").removeprefix("/api/")
        return {
            "resources": [
                {"name": f"{kind.lower()}s", "kind": kind, "namespaced": kind != "Node"}
                for api_version, kind in self.kinds
                if api_version == version
            ]
            + [{"name": "things/status", "kind": "Thing", "namespaced": True}]
        }


def test_discovery_at_startup_reads_each_group_version_once_and_skips_what_is_not_served() -> None:
    from dockyard.main import DISCOVERED

    api = Discovery(list(DISCOVERED))
    kube = Kube(api, registry=CollectorRegistry(), cache=ClusterCache())  # type: ignore[arg-type]
    kube.discover([*DISCOVERED, ("cert-manager.io/v1", "Certificate")])
    versions = {api_version for api_version, _ in DISCOVERED}
    assert sorted(api.paths) == sorted(
        [*(f"/apis/{v}" if "/" in v else f"/api/{v}" for v in versions), "/apis/cert-manager.io/v1"]
    )
    assert (
        kube._resource("apps/v1", "Deployment").path("team", "hub") == "/apis/apps/v1/namespaces/team/deployments/hub"
    )
    assert kube._resource("v1", "Secret").path("team", "hub", "status") == "/api/v1/namespaces/team/secrets/hub/status"
    assert kube._resource("v1", "Node").path("team", "n1") == "/api/v1/nodes/n1"  # cluster-scoped
    with pytest.raises(NotServed):
        kube._resource("v1", "Thing")  # a subresource is no kind
    assert len(api.paths) == len(versions) + 1  # all from what was discovered at startup


def test_a_kind_not_served_is_looked_up_again_next_time() -> None:
    api = Discovery([("apps/v1", "Deployment")])
    kube = Kube(api, registry=CollectorRegistry(), cache=ClusterCache())  # type: ignore[arg-type]
    assert not kube.kind_served("cert-manager.io/v1", "Certificate")
    assert not kube.kind_served("cert-manager.io/v1", "Certificate")
    assert api.paths == ["/apis/cert-manager.io/v1"] * 2  # installed meanwhile? asked again
    assert kube.kind_served("apps/v1", "Deployment")
    assert not kube.kind_served("apps/v1", "DaemonSet")  # a served group version without the kind
    assert kube.kind_served("apps/v1", "Deployment")
    assert api.paths.count("/apis/apps/v1") == 2
