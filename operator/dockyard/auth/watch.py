"""The token service's own watch of Tokens and ScopeMaps, and its local snapshot.

Each kind: LIST (in pages) into the directory, then WATCH from the list's resourceVersion (again
after each server timeout, LIST again after 410 Gone or any error, after a pause). Changes reach
logins as soon as the watch delivers them: no operator, no mounted Secret in between.

The snapshot (`--snapshot`, an emptyDir in the pod) is the directory written as JSON, atomically
(temporary file + rename), at most once a second after a change. At start it is loaded before the
first LIST, so logins keep working while the API server is unreachable (a container restart, an
API outage); the LIST replaces it as soon as the API answers. It holds verifiers (SHA-256 of
random passwords), never a password.

API access: in a pod, the projected ServiceAccount token (re-read at every request: the kubelet
rotates it) and the cluster CA; elsewhere a kubeconfig (`--kubeconfig`) with a token or a client
certificate. The service needs only get/list/watch on tokens and scopemaps in its namespace.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import ssl
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp
import yaml

from dockyard.auth.directory import SCOPE_MAP, TOKEN, AccessDirectory
from dockyard.models import API_VERSION

log = logging.getLogger("dockyard.auth.watch")

SERVICE_ACCOUNT_DIR: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount")
LIST_PAGE: Final = 500
WATCH_TIMEOUT_SECONDS: Final = 300
RETRY_SECONDS: Final = 2.0
SNAPSHOT_INTERVAL_SECONDS: Final = 1.0
PLURALS: Final = {TOKEN: "tokens", SCOPE_MAP: "scopemaps"}


@dataclass(frozen=True)
class ApiAccess:
    server: str
    ssl_context: ssl.SSLContext
    token: str | None = None
    token_file: Path | None = None

    def headers(self) -> dict[str, str]:
        token = self.token_file.read_text().strip() if self.token_file else self.token
        return {"Authorization": f"Bearer {token}"} if token else {}


def in_cluster_access() -> ApiAccess | None:
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    token_file = SERVICE_ACCOUNT_DIR / "token"
    if not host or not port or not token_file.exists():
        return None
    context = ssl.create_default_context(cafile=str(SERVICE_ACCOUNT_DIR / "ca.crt"))
    host = f"[{host}]" if ":" in host else host
    return ApiAccess(f"https://{host}:{port}", context, token_file=token_file)


def kubeconfig_access(path: Path) -> ApiAccess:
    """The current context of a kubeconfig: server, CA, and a token or a client certificate."""
    config = yaml.safe_load(path.read_text())
    context_name = config.get("current-context")
    context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    user: dict[str, Any] = next((u["user"] for u in config.get("users") or () if u["name"] == context.get("user")), {})
    directory = path.parent

    def data_file(key: str) -> str | None:
        """A `*-data` (base64) field written to a private temporary file, or the file field."""
        if f"{key}-data" in (cluster | user):
            handle = tempfile.NamedTemporaryFile("wb", delete=False, prefix="dockyard-auth-")  # noqa: SIM115
            handle.write(base64.b64decode((cluster | user)[f"{key}-data"]))
            handle.close()
            return handle.name
        value = (cluster | user).get(key)
        return str(directory / value) if value else None

    ssl_context = ssl.create_default_context(cafile=data_file("certificate-authority"))
    if cluster.get("insecure-skip-tls-verify"):
        ssl_context.check_hostname = False
        ssl_context.verify_mode = ssl.CERT_NONE
    cert, key = data_file("client-certificate"), data_file("client-key")
    if cert and key:
        ssl_context.load_cert_chain(cert, key)
    token_file = Path(user["tokenFile"]) if user.get("tokenFile") else None
    return ApiAccess(cluster["server"].rstrip("/"), ssl_context, token=user.get("token"), token_file=token_file)


class Gone(Exception):
    """410: the resourceVersion is too old; list again."""


class ResourceWatch:
    """List and watch one kind of one namespace into the directory."""

    def __init__(self, access: ApiAccess, namespace: str, kind: str, directory: AccessDirectory) -> None:
        self.access, self.namespace, self.kind, self.directory = access, namespace, kind, directory
        self.synced = asyncio.Event()
        self.path = f"{access.server}/apis/{API_VERSION}/namespaces/{namespace}/{PLURALS[kind]}"

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(ssl=self.access.ssl_context)
        async with aiohttp.ClientSession(connector=connector) as session:
            while True:
                try:
                    version = await self._list(session)
                    self.synced.set()
                    while True:
                        version = await self._watch(session, version)
                except asyncio.CancelledError:
                    raise
                except Gone:
                    continue
                except Exception as error:
                    log.warning("%s watch interrupted (%s); retrying in %ss", self.kind, error, RETRY_SECONDS)
                    await asyncio.sleep(RETRY_SECONDS)

    async def _list(self, session: aiohttp.ClientSession) -> str:
        items: list[dict[str, Any]] = []
        params = {"limit": str(LIST_PAGE)}
        while True:
            async with session.get(self.path, params=params, headers=self.access.headers()) as response:
                if response.status != 200:
                    raise RuntimeError(f"LIST {PLURALS[self.kind]}: HTTP {response.status}")
                page = await response.json()
            items += page.get("items") or []
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                break
            params = {"limit": str(LIST_PAGE), "continue": token}
        self.directory.replace(self.kind, items)
        log.info("%s listed: %d in the namespace", self.kind, len(items))
        return str(page["metadata"]["resourceVersion"])

    async def _watch(self, session: aiohttp.ClientSession, version: str) -> str:
        params = {
            "watch": "1",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_TIMEOUT_SECONDS),
        }
        timeout = aiohttp.ClientTimeout(total=None, sock_read=WATCH_TIMEOUT_SECONDS + 30)
        async with session.get(self.path, params=params, headers=self.access.headers(), timeout=timeout) as response:
            if response.status == 410:
                raise Gone
            if response.status != 200:
                raise RuntimeError(f"WATCH {PLURALS[self.kind]}: HTTP {response.status}")
            async for event in _lines(response):
                kind, body = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if body.get("code") == 410:
                        raise Gone
                    raise RuntimeError(f"WATCH {PLURALS[self.kind]}: {body.get('message')}")
                version = str((body.get("metadata") or {}).get("resourceVersion") or version)
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    self.directory.apply(self.kind, kind, body)
        return version


async def _lines(response: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    """Watch events, one JSON object a line, however long (a ScopeMap of 500 actions exceeds
    aiohttp's line limit)."""
    buffer = b""
    async for chunk in response.content.iter_any():
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)


class Snapshot:
    """The directory on local disk."""

    def __init__(self, directory: AccessDirectory, path: Path) -> None:
        self.directory, self.path = directory, path
        self.written = -1

    def load(self) -> bool:
        try:
            data: Mapping[str, Any] = json.loads(self.path.read_text())
            self.directory.load_snapshot(data)
        except FileNotFoundError:
            return False
        except (ValueError, KeyError, TypeError) as error:
            log.warning("snapshot %s unusable (%s); waiting for the API", self.path, error)
            return False
        self.written = self.directory.revision
        log.info(
            "snapshot loaded: %d tokens, %d scope maps", len(self.directory.tokens), len(self.directory.scope_maps)
        )
        return True

    def write(self) -> None:
        revision = self.directory.revision
        data = json.dumps(self.directory.to_snapshot(), separators=(",", ":"))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".snapshot-")
        try:
            with os.fdopen(handle, "w") as file:
                file.write(data)
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        self.written = revision

    async def run(self, synced: list[asyncio.Event]) -> None:
        """Write after changes, once every watch has listed (a half-listed view is not kept)."""
        while True:
            await asyncio.sleep(SNAPSHOT_INTERVAL_SECONDS)
            if all(event.is_set() for event in synced) and self.directory.revision != self.written:
                try:
                    await asyncio.to_thread(self.write)
                except OSError as error:
                    log.warning("snapshot not written: %s", error)


async def watch_access(
    directory: AccessDirectory, access: ApiAccess, namespace: str, snapshot: Snapshot | None
) -> list[asyncio.Task[None]]:
    """Start the two watches and the snapshot writer; the tasks run until cancelled."""
    watches = [ResourceWatch(access, namespace, kind, directory) for kind in (SCOPE_MAP, TOKEN)]
    tasks = [asyncio.create_task(w.run(), name=f"watch-{w.kind}") for w in watches]
    if snapshot is not None:
        tasks.append(asyncio.create_task(snapshot.run([w.synced for w in watches]), name="snapshot"))
    return tasks
