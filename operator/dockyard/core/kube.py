"""The one module that talks to the Kubernetes API (besides kopf's own watching).

`Kube.ensure` makes a child object match a built manifest with server-side apply, and writes
nothing when every field the manifest sets already has that value: an unchanged reconcile issues no
write. It reads no more than it must either: once a manifest has been compared with (or applied to)
a child, the pair (manifest digest, the child's resourceVersion) is remembered, and as long as the
watch-fed cache (`core/cache.py`) shows the child at that resourceVersion and the manifest has the
same digest, the child is known to match without a GET. For kinds with a `metadata.generation`
(a Deployment), a change that keeps the generation and the labels, annotations and owners (a
controller's status update: a rollout moves a Deployment's resourceVersion three or four times)
is known not to touch what the manifest sets, and costs nothing either. Anyone else's change (a
hand edit) costs one GET and a comparison. So a drift pass over unchanged registries issues no
request at all; the first pass after a restart reads each child once.

Creates and deletes tolerate 409/404 from races. Every request is counted in
`dockyard_kube_requests_total{verb,kind}` so tests and dashboards can see reads and writes.

Errors: `core.apiserver.ApiError` for anything but the tolerated 404/409; the handler edge maps
them (`core/errors.py`). Requests go through `core/apiserver.py`; the API discovery that maps a
kind to its resource (plural, namespaced or not) is done here, once per API group version.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

import urllib3
from prometheus_client import CollectorRegistry, Counter

from dockyard.core.apiserver import ApiError, ApiServer, load_credentials
from dockyard.core.cache import ClusterCache, Summary, metadata_key

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


CONNECTION_POOL_SIZE: Final = 96
"""Kept-alive connections to the API server. Handler threads (32), reconciles' concurrent steps
(32), the children's events, drift passes, the intake and the status writer call it at once; a
request beyond the pool opens (and throws away) a new TLS connection, which under a burst cost
more CPU than the requests (with the client's default of 10, and still with 32)."""


def connect(*, pool_size: int = CONNECTION_POOL_SIZE) -> ApiServer:
    """The API server with in-cluster credentials when running in a pod, else the kubeconfig's."""
    return ApiServer(load_credentials(), pool_size=pool_size, user_agent=FIELD_MANAGER)


class NotServed(LookupError):
    """The API server does not serve a kind (e.g. cert-manager's Certificate when it is absent)."""


def group_version_path(api_version: str) -> str:
    """`/api/v1` for the core group, `/apis/<group>/<version>` for the others."""
    return f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"


@dataclass(frozen=True)
class Resource:
    api_version: str
    kind: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None, name: str | None = None, subresource: str | None = None) -> str:
        prefix = group_version_path(self.api_version)
        if namespace and self.namespaced:
            prefix += f"/namespaces/{namespace}"
        path = f"{prefix}/{self.plural}"
        if name:
            path += f"/{name}"
        if subresource:
            path += f"/{subresource}"
        return path


def resources_of(api_version: str, listing: Mapping[str, Any]) -> dict[str, Resource]:
    """A group version's kinds from its discovery document (an APIResourceList); subresources
    (`deployments/status`) are skipped."""
    return {
        item["kind"]: Resource(api_version, item["kind"], item["name"], bool(item.get("namespaced")))
        for item in listing.get("resources") or []
        if "/" not in item["name"]
    }


def digest(manifest: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


ObjectKey = tuple[str, str, str | None, str]


@dataclass(frozen=True)
class Verified:
    """A child seen to match a manifest: the manifest's digest and what the child was then."""

    wanted: str
    resource_version: str
    generation: int
    metadata_key: int

    def still_matches(self, wanted: str, cached: Summary) -> bool:
        if wanted != self.wanted:
            return False
        if cached.resource_version == self.resource_version:
            return True
        # Same spec (generation) and the same metadata: only the status moved.
        return bool(self.generation) and (cached.generation, cached.metadata_key) == (
            self.generation,
            self.metadata_key,
        )


class Kube:
    def __init__(
        self, api: ApiServer, registry: CollectorRegistry | None = None, cache: ClusterCache | None = None
    ) -> None:
        self.api = api
        self._kinds: dict[str, dict[str, Resource]] = {}
        """Each group version's kinds, from its discovery document."""
        self._lock = threading.Lock()
        self.cache = cache or ClusterCache()
        self._verified: dict[ObjectKey, Verified] = {}
        """What each child was when last seen to match its manifest; see the module doc."""
        self._verified_lock = threading.Lock()
        self.requests = Counter(
            "dockyard_kube_requests",
            "Requests to the Kubernetes API by verb (get, list, create, apply, patch, delete) and kind.",
            ["verb", "kind"],
            registry=registry,
        )

    def _resource(self, api_version: str, kind: str) -> Resource:
        with self._lock:
            kinds = self._kinds.get(api_version)
        if kinds is None:
            self._count("get", "APIResourceList")
            try:
                kinds = resources_of(api_version, self.api.call("GET", group_version_path(api_version)))
            except ApiError as error:
                if error.status == 404:
                    raise NotServed(f"{api_version} is not served") from None
                raise
            with self._lock:
                self._kinds[api_version] = kinds
        resource = kinds.get(kind)
        if resource is None:
            raise NotServed(f"{kind} ({api_version}) is not served")
        return resource

    def discover(self, kinds: Iterable[tuple[str, str]]) -> None:
        """Look up each (apiVersion, kind) once now, so the first reconcile after a start does not
        pay the discovery requests (one per API group version) in the middle of its writes.
        A kind the server does not serve (cert-manager's, absent) is skipped."""
        for api_version, kind in kinds:
            with contextlib.suppress(NotServed):
                self._resource(api_version, kind)

    def _count(self, verb: str, kind: str) -> None:
        self.requests.labels(verb=verb, kind=kind).inc()

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        self._count("get", kind)
        try:
            return self.api.call("GET", self._resource(api_version, kind).path(namespace, name))
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str = ""
    ) -> list[dict[str, Any]]:
        """Every object of a kind (in a namespace, or all), without `managedFields`."""
        self._count("list", kind)
        listing = self.api.call(
            "GET", self._resource(api_version, kind).path(namespace), query=[("labelSelector", label_selector)]
        )
        items: list[dict[str, Any]] = listing.get("items") or []
        for item in items:
            (item.get("metadata") or {}).pop("managedFields", None)
            # A list's items carry no kind of their own.
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items

    def kind_served(self, api_version: str, kind: str) -> bool:
        """Whether the API server serves a kind (e.g. cert-manager's Certificate)."""
        try:
            self._resource(api_version, kind)
            return True
        except NotServed:
            with self._lock:  # looked up again next time: it may be installed meanwhile
                self._kinds.pop(api_version, None)
            return False

    def read_child(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A child (labelled object) from the cache, or from the API when the cache cannot say.
        From the cache, only the summarised fields are present (see `cache.Summary`)."""
        cached = self.cache.child(api_version, kind, namespace, name)
        if isinstance(cached, Summary):
            return cached.as_object()
        if cached is None:
            return None
        return self.get(api_version, kind, namespace, name)

    def ensure(self, desired: dict[str, Any]) -> Outcome:
        """Make a child match `desired` (a built manifest carrying the children's labels)."""
        meta = desired["metadata"]
        api_version, kind, namespace, name = desired["apiVersion"], desired["kind"], meta.get("namespace"), meta["name"]
        key: ObjectKey = (api_version, kind, namespace, name)
        wanted = digest(desired)
        cached = self.cache.child(api_version, kind, namespace or "", name)
        current: dict[str, Any] | None
        if cached is None:
            current = None
        elif isinstance(cached, Summary) and self._is_verified(key, wanted, cached):
            return "unchanged"
        else:
            current = self.get(api_version, kind, namespace, name)
        if current is not None and contains(current, desired):
            self._verify(key, wanted, current)
            return "unchanged"
        self._verify(key, wanted, self._apply(desired))
        return "created" if current is None else "updated"

    def _is_verified(self, key: ObjectKey, wanted: str, cached: Summary) -> bool:
        with self._verified_lock:
            verified = self._verified.get(key)
        return verified is not None and verified.still_matches(wanted, cached)

    def _verify(self, key: ObjectKey, wanted: str, stored: Mapping[str, Any]) -> None:
        meta = stored.get("metadata") or {}
        version = str(meta.get("resourceVersion") or "")
        with self._verified_lock:
            if version:
                self._verified[key] = Verified(wanted, version, int(meta.get("generation") or 0), metadata_key(meta))
            else:
                self._verified.pop(key, None)

    def create_if_missing(
        self, api_version: str, kind: str, namespace: str, name: str, build: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """Create an object whose content must never be regenerated (generated secrets); `build`
        runs only when it does not exist yet. Returns what is stored, whoever created it (from the
        cache: its summarised fields)."""
        cached = self.cache.child(api_version, kind, namespace, name)
        if isinstance(cached, Summary):
            return cached.as_object()
        current = None if cached is None else self.get(api_version, kind, namespace, name)
        if current is not None:
            return current
        self._count("create", kind)
        body = build()
        try:
            created = self.api.call("POST", self._resource(api_version, kind).path(namespace), body=body)
            self._verify((api_version, kind, namespace, name), digest(body), created)
            return created
        except ApiError as error:
            if error.status != 409:
                raise
        stored = self.get(api_version, kind, namespace, name)
        assert stored is not None
        return stored

    def _apply(self, desired: dict[str, Any]) -> dict[str, Any]:
        self._count("apply", desired["kind"])
        meta = desired["metadata"]
        return self.api.call(
            "PATCH",
            self._resource(desired["apiVersion"], desired["kind"]).path(meta.get("namespace"), meta["name"]),
            query=[("fieldManager", FIELD_MANAGER), ("force", True)],
            body=desired,
            content_type="application/apply-patch+yaml",  # JSON is YAML
        )

    def delete(
        self, api_version: str, kind: str, namespace: str | None, name: str, *, propagation: str | None = None
    ) -> bool:
        """Delete an object; `propagation="Background"` also deletes what it owns (a Job's pods:
        batch/v1 orphans them by default)."""
        with self._verified_lock:
            self._verified.pop((api_version, kind, namespace, name), None)
        self._count("delete", kind)
        body = {"propagationPolicy": propagation} if propagation else None
        try:
            self.api.call("DELETE", self._resource(api_version, kind).path(namespace, name), body=body)
            return True
        except ApiError as error:
            if error.status == 404:
                return False
            raise

    def patch_status(
        self, api_version: str, kind: str, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Merge `status` into the object's status; the object as stored (None if it is gone)."""
        self._count("patch", f"{kind}/status")
        try:
            return self.api.call(
                "PATCH",
                self._resource(api_version, kind).path(namespace, name, "status"),
                body={"status": status},
                content_type="application/merge-patch+json",
            )
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def create(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """Create an object; None when one of that name exists already (409). Deterministic names
        make this the exactly-once step: a second create of the same child is refused by the API."""
        meta = body["metadata"]
        self._count("create", body["kind"])
        try:
            return self.api.call(
                "POST", self._resource(body["apiVersion"], body["kind"]).path(meta.get("namespace")), body=body
            )
        except ApiError as error:
            if error.status == 409:
                return None
            raise

    def patch(
        self, api_version: str, kind: str, namespace: str | None, name: str, patch: dict[str, Any]
    ) -> dict[str, Any] | None:
        """A JSON merge patch of an object (None if it is gone). Never used on a resource's spec by
        the operator; the CLI uses it for `spec.cancel`."""
        self._count("patch", kind)
        try:
            return self.api.call(
                "PATCH",
                self._resource(api_version, kind).path(namespace, name),
                body=patch,
                content_type="application/merge-patch+json",
            )
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def pod_log(self, namespace: str, pod: str, container: str, *, limit_bytes: int | None = None) -> str | None:
        """A container's log as it is now (None when the pod or container is gone or never started)."""
        self._count("get", "Pod/log")
        response = self.api.request(
            "GET",
            f"/api/v1/namespaces/{namespace}/pods/{pod}/log",
            query=[("container", container), ("limitBytes", limit_bytes)],
        )
        if response.status in (400, 404):
            return None
        if response.status >= 400:
            raise ApiError.of(response, response.data)
        return bytes(response.data).decode("utf-8", errors="replace")

    def follow_pod_log(self, namespace: str, pod: str, container: str) -> Iterator[str]:
        """A container's log as it is written (chunks as they arrive, not whole lines), until the
        container ends: the CLI's streaming; never used by the operator, whose handlers must not
        block."""
        self._count("get", "Pod/log")
        response = self.api.request(
            "GET",
            f"/api/v1/namespaces/{namespace}/pods/{pod}/log",
            query=[("container", container), ("follow", True)],
            timeout=urllib3.Timeout(connect=10, read=None),
            stream=True,
        )
        try:
            if response.status >= 400:
                raise ApiError.of(response, response.read())
            chunks = response.read_chunked() if response.chunked else response.stream(decode_content=True)
            for chunk in chunks:
                yield bytes(chunk).decode("utf-8", errors="replace")
        finally:
            response.release_conn()

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
        self.api.call("POST", f"/api/v1/namespaces/{meta['namespace']}/events", body=body)


def kube_from(memo: Mapping[str, object]) -> Kube:
    """The API client that startup put into kopf's `memo`."""
    kube = memo.get(MEMO_KEY)
    if not isinstance(kube, Kube):
        raise LookupError("the Kubernetes client is not in memo: the startup handler has not run")
    return kube
