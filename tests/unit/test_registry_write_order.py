"""The order of a Registry's writes (`RegistryReconciler.reconcile`) over an in-memory store: a new
registry's Deployment is among the first writes, before the Secrets and ConfigMaps its pods mount;
an existing Deployment is written after them; and values generated in a reconcile that lose to
another writer's (a cache behind) are replaced by the stored ones before anything is built from
them."""

from __future__ import annotations

import base64
import builtins
from typing import Any

import pytest
from test_cache_and_ensure import MemoryKube

from dockyard.core.cache import ClusterCache
from dockyard.core.pki import issue_ca
from dockyard.models.registry import RegistrySpec
from dockyard.registries.manifests.config import content_hash
from dockyard.registries.reconcile import RegistryReconciler

SPEC: dict[str, Any] = {
    "sku": "Basic",
    "storage": {"s3": {"bucket": "images", "region": "us-east-1", "credentialsSecretRef": {"name": "s3"}}},
}
BODY: dict[str, Any] = {
    "apiVersion": "dockyard.dev/v1alpha1",
    "kind": "Registry",
    "metadata": {"name": "hub", "namespace": "team", "uid": "uid-hub", "generation": 1},
    "spec": SPEC,
}


class Store(MemoryKube):
    """No watch-fed cache (every read is a GET of the store); creates that find the object
    stored answer as the API server's 409 does: with the stored object."""

    def __init__(self) -> None:
        super().__init__(ClusterCache())
        self.hidden: dict[tuple[str, str], dict[str, Any]] = {}
        """Stored, but not seen by the reads before this reconcile's first write."""

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        if (kind, name) in self.hidden and not self.writes():
            self.calls.append(f"get {kind}/{name}")
            return None
        return super().get(api_version, kind, namespace, name)

    def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str = ""
    ) -> builtins.list[dict[str, Any]]:
        return []

    def create_if_missing(self, api_version: str, kind: str, namespace: str, name: str, build: Any) -> dict[str, Any]:
        stored = self.objects.get((kind, name))
        if stored is not None:
            if (kind, name) in self.hidden:
                self.calls.append(f"create {kind}/{name} (409)")
            return stored
        self.calls.append(f"create {kind}/{name}")
        self.objects[(kind, name)] = build()
        return self.objects[(kind, name)]

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str, **_: Any) -> bool:
        return self.objects.pop((kind, name), None) is not None

    def writes(self) -> builtins.list[str]:
        return [call for call in self.calls if not call.startswith("get ")]


def reconcile(kube: Store, status: dict[str, Any] | None = None, **spec: Any) -> None:
    body = {**BODY, "spec": {**SPEC, **spec}, **({"status": status} if status else {})}
    RegistryReconciler(kube, "registry:3", "dockyard:dev", "http://ops:8090").reconcile(
        body, RegistrySpec.model_validate(body["spec"])
    )


def test_a_new_deployment_is_written_before_what_its_pods_mount() -> None:
    kube = Store()
    reconcile(kube)
    writes = kube.writes()
    deployment = writes.index("apply Deployment/hub")
    for mounted in ("apply Secret/hub-tls", "apply ConfigMap/hub-config", "apply Secret/hub-auth"):
        assert writes.index(mounted) > deployment, f"{mounted} after the Deployment: {writes}"
    # What its pods need to be created, and its config hash, are written with it or before.
    for needed in ("apply ServiceAccount/hub-token-service", "create Secret/hub-ca", "create Secret/hub-events"):
        assert writes.index(needed) < writes.index("apply Secret/hub-tls"), writes
    assert writes.count("apply Deployment/hub") == 1


def test_an_existing_deployment_is_written_after_the_content_its_new_pods_mount() -> None:
    kube = Store()
    reconcile(kube)
    kube.calls.clear()
    moved = {**SPEC["storage"]["s3"], "bucket": "images-2"}
    reconcile(kube, storage={"s3": moved})  # a new config: the pods roll
    writes = kube.writes()
    assert "apply ConfigMap/hub-config" in writes and "apply Deployment/hub" in writes
    assert writes.index("apply Deployment/hub") > writes.index("apply ConfigMap/hub-config"), writes


@pytest.mark.parametrize("reconciled_before", [False, True])
def test_generated_values_that_lose_to_stored_ones_are_replaced_before_use(reconciled_before: bool) -> None:
    kube = Store()
    others = issue_ca("another writer's CA")
    # Stored by another writer, and not visible to this reconcile's first read (a cache behind).
    stored_ca: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "hub-ca", "namespace": "team"},
        "data": {
            "tls.crt": base64.b64encode(others.cert_pem).decode(),
            "tls.key": base64.b64encode(others.key_pem).decode(),
        },
    }
    stored_events: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "hub-events", "namespace": "team"},
        "data": {"token": base64.b64encode(b"stored-token").decode()},
    }
    kube.hidden = {("Secret", "hub-ca"): stored_ca, ("Secret", "hub-events"): stored_events}
    kube.objects.update(kube.hidden)
    reconcile(kube, status={"observedGeneration": 1} if reconciled_before else None)
    writes = kube.writes()
    assert "create Secret/hub-ca (409)" in writes and "create Secret/hub-events (409)" in writes
    tls = kube.objects[("Secret", "hub-tls")]
    assert base64.b64decode(tls["data"]["ca.crt"]) == others.cert_pem, "the serving certificate is the stored CA's"
    assert kube.objects[("Secret", "hub-ca")] is stored_ca, "the stored CA is kept"
    if reconciled_before:
        # Reconciled before, its cache may be behind: the Deployment waits for what is stored.
        assert writes.count("apply Deployment/hub") == 1, writes
        assert writes.index("apply Deployment/hub") > writes.index("apply Secret/hub-tls"), writes
    else:
        # New: the Deployment written first carried the lost values' hash; written again, last.
        assert writes.count("apply Deployment/hub") == 2, writes
    assert writes[-1] == "apply Deployment/hub", writes
    template = kube.objects[("Deployment", "hub")]["spec"]["template"]["metadata"]["annotations"]
    serving = base64.b64decode(tls["data"]["tls.crt"]).decode()
    config = kube.objects[("ConfigMap", "hub-config")]["data"]["config.yml"]
    assert content_hash(config, content_hash(serving), stored_events["data"]["token"]) in template.values()
