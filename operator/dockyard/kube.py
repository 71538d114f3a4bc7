"""The one module that talks to the Kubernetes API (besides kopf's own watching).

`Kube.ensure` makes a child object match a built manifest with server-side apply, but first reads
the object and writes nothing when every field the manifest sets already has that value: an
unchanged reconcile issues no write. Creates and deletes tolerate 409/404 from races. Every request
is counted in `dockyard_kube_requests_total{verb,kind}` so tests and dashboards can see writes.

Errors: `kubernetes.client.ApiException` for anything but the tolerated 404/409; callers map
them to `kopf.TemporaryError`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal

from kubernetes import client, config
from kubernetes.client import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError
from prometheus_client import CollectorRegistry, Counter

FIELD_MANAGER: Final = "dockyard"
MEMO_KEY: Final = "kube"
WRITE_VERBS: Final = ("create", "apply", "patch", "delete")

Outcome = Literal["created", "updated", "unchanged"]


def contains(actual: Any, desired: Any) -> bool:
    """Whether `actual` already holds every value `desired` sets (fields the API server adds,
    such as defaults, are ignored). A key whose desired value is None must be absent: in a merge
    patch None deletes the key."""
    if isinstance(desired, dict):
        return isinstance(actual, dict) and all(
            actual.get(k) is None if v is None else (k in actual and contains(actual[k], v)) for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(desired)
            and all(contains(a, d) for a, d in zip(actual, desired, strict=True))
        )
    return bool(actual == desired)


def load_api_client() -> client.ApiClient:
    """In-cluster credentials when running in a pod, else the kubeconfig (KUBECONFIG)."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        return client.ApiClient()
    except config.ConfigException:
        api: client.ApiClient = config.new_client_from_config()  # type: ignore[no-untyped-call]
        return api


class Kube:
    def __init__(self, api_client: client.ApiClient, registry: CollectorRegistry | None = None) -> None:
        self._dynamic = DynamicClient(api_client)  # type: ignore[no-untyped-call]
        self._lock = threading.Lock()
        self.requests = Counter(
            "dockyard_kube_requests",
            "Requests to the Kubernetes API by verb (get, list, create, apply, patch, delete) and kind.",
            ["verb", "kind"],
            registry=registry,
        )

    def _resource(self, api_version: str, kind: str) -> Any:
        with self._lock:  # discovery caches are not thread-safe
            return self._dynamic.resources.get(api_version=api_version, kind=kind)

    def _count(self, verb: str, kind: str) -> None:
        self.requests.labels(verb=verb, kind=kind).inc()

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        self._count("get", kind)
        try:
            return dict(self._resource(api_version, kind).get(name=name, namespace=namespace).to_dict())
        except NotFoundError:
            return None

    def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str = ""
    ) -> list[dict[str, Any]]:
        self._count("list", kind)
        result = self._resource(api_version, kind).get(namespace=namespace, label_selector=label_selector)
        return [dict(item) for item in result.to_dict()["items"]]

    def kind_served(self, api_version: str, kind: str) -> bool:
        """Whether the API server serves a kind (e.g. cert-manager's Certificate)."""
        try:
            self._resource(api_version, kind)
            return True
        except ResourceNotFoundError:
            with self._lock:
                self._dynamic.resources.invalidate_cache()
            return False

    def ensure(self, desired: dict[str, Any], current: dict[str, Any] | Literal["read"] | None = "read") -> Outcome:
        """`current`: the object as just read by the caller (None: absent), to save a second GET."""
        meta = desired["metadata"]
        if current == "read":
            current = self.get(desired["apiVersion"], desired["kind"], meta.get("namespace"), meta["name"])
        if current is not None and contains(current, desired):
            return "unchanged"
        self._apply(desired)
        return "created" if current is None else "updated"

    def create_if_missing(
        self, api_version: str, kind: str, namespace: str, name: str, build: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """Create an object whose content must never be regenerated (generated secrets); `build`
        runs only when it does not exist yet. Returns what is stored, whoever created it."""
        current = self.get(api_version, kind, namespace, name)
        if current is not None:
            return current
        self._count("create", kind)
        try:
            created = self._resource(api_version, kind).create(body=build(), namespace=namespace)
            return dict(created.to_dict())
        except ApiException as error:
            if error.status != 409:
                raise
        stored = self.get(api_version, kind, namespace, name)
        assert stored is not None
        return stored

    def _apply(self, desired: dict[str, Any]) -> None:
        self._count("apply", desired["kind"])
        meta = desired["metadata"]
        self._resource(desired["apiVersion"], desired["kind"]).server_side_apply(
            body=desired,
            name=meta["name"],
            namespace=meta.get("namespace"),
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
        )

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        self._count("delete", kind)
        try:
            self._resource(api_version, kind).delete(name=name, namespace=namespace)
            return True
        except NotFoundError:
            return False

    def patch_status(self, api_version: str, kind: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        self._count("patch", f"{kind}/status")
        with contextlib.suppress(NotFoundError):
            self._resource(api_version, kind).status.patch(
                body={"status": status}, name=name, namespace=namespace, content_type="application/merge-patch+json"
            )

    def post_event(
        self, involved: dict[str, Any], type_: Literal["Normal", "Warning"], reason: str, message: str
    ) -> None:
        """An Event about a resource; callers keep secrets out of `message`."""
        self._count("create", "Event")
        meta = involved["metadata"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": involved["apiVersion"],
                "kind": involved["kind"],
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": FIELD_MANAGER},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        self._resource("v1", "Event").create(body=body, namespace=meta["namespace"])


def kube_from(memo: Mapping[str, object]) -> Kube:
    """The API client that startup put into kopf's `memo`."""
    kube = memo.get(MEMO_KEY)
    if not isinstance(kube, Kube):
        raise LookupError("the Kubernetes client is not in memo: the startup handler has not run")
    return kube
