"""The children's watches: one plain watch per child kind feeds the cache with summaries, and hands
the few events that matter to a listener.

Children (labelled `app.kubernetes.io/managed-by: dockyard`, selected on the server) are watched
here, not by kopf: kopf keeps, for every object it watches, a worker task with its own queue while
events arrive, a per-object memory for the life of the object, and works out changes against the
last-handled state for each event. A Registry has about ten children, so with 1,000 registries
that machinery ran for ~10,000 objects that need none of it: all the operator keeps of a child is
its `Summary`, and all it reacts to is a Deployment's rollout and a child deleted by hand.

Each kind has one thread: LIST (in pages), then WATCH from the list's resourceVersion, again after
each server timeout, and LIST again after 410 Gone or an error. Each event replaces the object's
summary in the kind's index (the shape `ClusterCache` reads: key -> a tuple of one summary);
then the listener is called in the same thread with (kind, event type, body): it must be quick
(hand the work to the event loop). Objects seen in a (re)listing call no listener: the resume
handlers reconcile every Registry after a start anyway.

`start` returns once every kind is listed: kopf runs no resource handler before the startup
handler that awaits it returns, so no handler sees a half-filled cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import urllib3

from dockyard.core.apiserver import ApiError, ApiServer
from dockyard.core.cache import CHILD_INDEX, Summary, summarize

Key = tuple[str, str]
Listener = Callable[[str, str, Mapping[str, Any]], None]
"""(kind, "ADDED" | "MODIFIED" | "DELETED", the object as the watch delivered it)."""

LIST_PAGE: Final = 500
RETRY_SECONDS: Final = 1.0

logger = logging.getLogger("dockyard.children")


@dataclass(frozen=True)
class ChildKind:
    group: str
    version: str
    plural: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None) -> str:
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        return f"{prefix}/namespaces/{namespace}/{self.plural}" if namespace else f"{prefix}/{self.plural}"


CHILD_KINDS: Final = (
    ChildKind("", "v1", "secrets", "Secret"),
    ChildKind("", "v1", "configmaps", "ConfigMap"),
    ChildKind("", "v1", "services", "Service"),
    ChildKind("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim"),
    ChildKind("apps", "v1", "deployments", "Deployment"),
    ChildKind("apps", "v1", "daemonsets", "DaemonSet"),
    ChildKind("networking.k8s.io", "v1", "ingresses", "Ingress"),
    # The token service's identity and its read access to Tokens and ScopeMaps (one set per Registry).
    ChildKind("", "v1", "serviceaccounts", "ServiceAccount"),
    ChildKind("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    ChildKind("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    ChildKind("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy"),
    # Registry and replica pods (their template carries the children's label) and the global login
    # server's EndpointSlices listing them: a pod's readiness moves the slice without a request.
    ChildKind("", "v1", "pods", "Pod"),
    ChildKind("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
)


class ChildWatch:
    def __init__(
        self,
        api: ApiServer,
        label_selector: str,
        namespace: str | None = None,
        server_timeout: int = 60,
        client_timeout: float = 90,
        listener: Listener | None = None,
    ) -> None:
        self._api = api
        self.label_selector = label_selector
        self.namespace = namespace
        self.server_timeout = server_timeout
        self.client_timeout = client_timeout
        self.listener = listener
        self.indices: dict[str, dict[Key, tuple[Summary]]] = {
            CHILD_INDEX[(k.api_version, k.kind)]: {} for k in CHILD_KINDS
        }
        self._stopped = threading.Event()
        self._listed: dict[str, threading.Event] = {k.kind: threading.Event() for k in CHILD_KINDS}
        self._responses: dict[str, Any] = {}
        self._threads: list[threading.Thread] = []

    async def start(self) -> None:
        """Start every kind's watch; return once each has been listed."""
        for kind in CHILD_KINDS:
            thread = threading.Thread(target=self._run, args=(kind,), name=f"watch {kind.plural}", daemon=True)
            thread.start()
            self._threads.append(thread)
        for event in self._listed.values():
            while not event.is_set():
                await asyncio.to_thread(event.wait, 1.0)

    def stop(self) -> None:
        """Stop every watch (a read in progress is cut short)."""
        self._stopped.set()
        for response in list(self._responses.values()):
            with contextlib.suppress(Exception):
                response.shutdown()

    def _request(self, kind: ChildKind, **query: Any) -> urllib3.BaseHTTPResponse:
        return self._api.request(
            "GET",
            kind.path(self.namespace),
            query=query.items(),
            timeout=urllib3.Timeout(connect=10, read=self.client_timeout),
            stream=True,
        )

    def _run(self, kind: ChildKind) -> None:
        index = self.indices[CHILD_INDEX[(kind.api_version, kind.kind)]]
        version: str | None = None
        while not self._stopped.is_set():
            try:
                if version is None:
                    version = self._list(kind, index)
                    self._listed[kind.kind].set()
                version = self._watch(kind, index, version)
            except Exception as error:
                if self._stopped.is_set():
                    return
                if not (isinstance(error, ApiError) and error.status == 410):
                    logger.warning(f"watch of {kind.plural}: {error!r}; listing again")
                    self._stopped.wait(RETRY_SECONDS)
                version = None

    def _list(self, kind: ChildKind, index: dict[Key, tuple[Summary]]) -> str:
        seen: set[Key] = set()
        token: str | None = None
        while True:
            response = self._request(kind, labelSelector=self.label_selector, limit=LIST_PAGE, **{"continue": token})
            try:
                if response.status != 200:
                    raise ApiError.of(response, response.read())
                page = json.loads(response.read())
            finally:
                response.release_conn()
            for item in page.get("items") or []:
                key = _key(item)
                seen.add(key)
                index[key] = (summarize(kind.kind, item),)
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                for gone in set(index) - seen:
                    index.pop(gone, None)
                return str(page["metadata"]["resourceVersion"])

    def _watch(self, kind: ChildKind, index: dict[Key, tuple[Summary]], version: str) -> str:
        response = self._request(
            kind,
            labelSelector=self.label_selector,
            watch="true",
            resourceVersion=version,
            allowWatchBookmarks="true",
            timeoutSeconds=self.server_timeout,
        )
        if response.status != 200:
            error = ApiError.of(response, response.read())
            response.release_conn()
            raise error
        raw = response
        self._responses[kind.kind] = raw
        try:
            for line in _lines(raw):
                event = json.loads(line)
                kind_of_event, obj = event.get("type"), event.get("object") or {}
                if kind_of_event == "ERROR":
                    raise ApiError(int(obj.get("code") or 500), str(obj.get("reason") or "Error"), json.dumps(obj))
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if kind_of_event == "BOOKMARK":
                    continue
                key = _key(obj)
                if kind_of_event == "DELETED":
                    index.pop(key, None)
                else:
                    index[key] = (summarize(kind.kind, obj),)
                if self.listener is not None:
                    try:
                        self.listener(kind.kind, str(kind_of_event), obj)
                    except Exception:
                        logger.exception(f"the listener failed on {kind.kind} {key}")
        finally:
            self._responses.pop(kind.kind, None)
            raw.release_conn()
        return version


def _key(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _lines(response: Any) -> Iterator[bytes]:
    """Lines of a streamed response, as they arrive."""
    pending = b""
    for chunk in response.stream(amt=None, decode_content=True):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        yield from (line for line in complete if line.strip())
    if pending.strip():
        yield pending
