"""The connection to the Kubernetes API server: credentials, TLS and one pool of kept-alive
connections, used by `core/kube.py` (requests) and `core/children.py` (watches).

Why not the `kubernetes` package here: importing it loads its ~850 generated model classes, about
15 MiB of the operator's memory (a process with kopf alone: 49 MiB; with kopf and that package: 64),
and the operator uses none of them: every body is parsed from JSON once, into plain dicts. Requests
go through urllib3, which is what that package sends them with, so nothing changes on the wire. The
CLI runs once per command and must understand every kubeconfig (exec plugins, auth providers): it
reads credentials with the kubernetes package's loader and hands them over as `Credentials`.

Credentials (`load_credentials`), in the order the kubernetes package tries them: in a pod, its
service account (the token file is read again every minute: the kubelet rotates it); elsewhere
the current context of $KUBECONFIG (or ~/.kube/config): the server, its CA, and a client
certificate or a bearer token. A user entry that needs a plugin (exec, auth-provider) or a password
is refused with a message saying so, never ignored.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

import urllib3
import yaml

SERVICE_ACCOUNT_DIR: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_RELOAD_SECONDS: Final = 60.0
"""How long a token read from a file is used before the file is read again (client-go's minute)."""
TIMEOUT: Final = urllib3.Timeout(connect=10, read=60)
"""A request that gets no answer in a minute is failed (and retried by its reconcile), not left to
hold a handler thread for ever; watches and log streams set their own."""


class ApiError(Exception):
    """A response with an error status the caller did not expect; `body` is the API server's
    `Status` object as JSON (its `message` is what `message` returns)."""

    def __init__(self, status: int, reason: str, body: str = "") -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.body = body

    @classmethod
    def of(cls, response: urllib3.BaseHTTPResponse, data: bytes) -> ApiError:
        """The error a response stands for, given the body read from it."""
        return cls(response.status, response.reason or "", data[:4096].decode(errors="replace"))

    @property
    def message(self) -> str:
        """The API server's own words (e.g. a CRD validation rule's), else status and reason."""
        try:
            message = json.loads(self.body or "{}").get("message")
        except (ValueError, AttributeError):
            message = None
        return str(message or f"{self.status} {self.reason}")


class CredentialsError(Exception):
    """No usable credentials: no service account, no kubeconfig, or one the operator cannot use."""


@dataclass(frozen=True)
class Credentials:
    server: str
    ca_file: str | None = None
    ca_data: str | None = None
    """PEM."""
    insecure: bool = False
    cert_file: str | None = None
    key_file: str | None = None
    cert_data: bytes | None = None
    key_data: bytes | None = field(default=None, repr=False)  # secrets stay out of any log line
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None
    """Read again every TOKEN_RELOAD_SECONDS (a service account's token is rotated)."""
    namespace: str | None = None
    """The context's (or the pod's) namespace."""

    def current_token(self) -> str | None:
        """The bearer token as it is now (read from `token_file` if there is one)."""
        if self.token_file:
            return Path(self.token_file).read_text().strip() or None
        return self.token

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file, cadata=self.ca_data)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.cert_file and self.key_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        elif self.cert_data and self.key_data:
            # The ssl module loads a certificate chain from files only: written to a private
            # directory, loaded, and removed at once.
            with tempfile.TemporaryDirectory(prefix="dockyard-tls-") as directory:
                cert, key = Path(directory, "tls.crt"), Path(directory, "tls.key")
                for path, data in ((cert, self.cert_data), (key, self.key_data)):
                    path.touch(mode=0o600)
                    path.write_bytes(data)
                context.load_cert_chain(str(cert), str(key))
        return context


def load_credentials(
    environ: Mapping[str, str] | None = None, service_account_dir: Path = SERVICE_ACCOUNT_DIR
) -> Credentials:
    """In-cluster credentials when running in a pod, else the kubeconfig's current context."""
    environ = os.environ if environ is None else environ
    in_cluster = in_cluster_credentials(environ, service_account_dir)
    if in_cluster is not None:
        return in_cluster
    paths = [p for p in (environ.get("KUBECONFIG") or "").split(os.pathsep) if p]
    if not paths:
        default = Path(environ.get("HOME") or Path.home(), ".kube", "config")
        if not default.exists():
            raise CredentialsError("no service account and no kubeconfig ($KUBECONFIG or ~/.kube/config)")
        paths = [str(default)]
    return kubeconfig_credentials([Path(p).expanduser() for p in paths])


def in_cluster_credentials(environ: Mapping[str, str], service_account_dir: Path) -> Credentials | None:
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    token = service_account_dir / "token"
    if not host or not port or not token.exists():
        return None
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    ca = service_account_dir / "ca.crt"
    namespace = service_account_dir / "namespace"
    return Credentials(
        server=f"https://{host}:{port}",
        ca_file=str(ca) if ca.exists() else None,
        token_file=str(token),
        namespace=namespace.read_text().strip() if namespace.exists() else None,
    )


def kubeconfig_credentials(paths: Sequence[Path]) -> Credentials:
    """The current context of kubeconfig files merged as kubectl merges them (the first file that
    sets a value wins); relative paths in a file are relative to that file."""
    current: str | None = None
    entries: dict[str, dict[str, tuple[Path, dict[str, Any]]]] = {"contexts": {}, "clusters": {}, "users": {}}
    for path in paths:
        try:
            document = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise CredentialsError(f"kubeconfig {path}: {error}") from error
        current = current or document.get("current-context")
        for section, singular in (("contexts", "context"), ("clusters", "cluster"), ("users", "user")):
            for item in document.get(section) or []:
                entries[section].setdefault(str(item.get("name")), (path.parent, item.get(singular) or {}))
    if not current or current not in entries["contexts"]:
        raise CredentialsError(f"kubeconfig {', '.join(map(str, paths))}: no current context")
    _, context = entries["contexts"][current]
    if context.get("cluster") not in entries["clusters"]:
        raise CredentialsError(f"kubeconfig context {current}: cluster {context.get('cluster')} is not defined")
    base, cluster = entries["clusters"][context["cluster"]]
    user_base, user = entries["users"].get(str(context.get("user")), (base, {}))
    unsupported = sorted({"exec", "auth-provider", "username", "password"} & set(user))
    if unsupported:
        raise CredentialsError(
            f"kubeconfig user {context.get('user')}: {', '.join(unsupported)} is not supported by the operator;"
            " give it a client certificate or a token (a service account's, in a pod)"
        )

    def file(folder: Path, value: Any) -> str | None:
        return str(folder / value) if value else None

    def data(value: Any) -> bytes | None:
        return base64.b64decode(value) if value else None

    ca_data = data(cluster.get("certificate-authority-data"))
    return Credentials(
        server=str(cluster.get("server") or ""),
        ca_file=file(base, cluster.get("certificate-authority")),
        ca_data=ca_data.decode() if ca_data else None,
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        cert_file=file(user_base, user.get("client-certificate")),
        key_file=file(user_base, user.get("client-key")),
        cert_data=data(user.get("client-certificate-data")),
        key_data=data(user.get("client-key-data")),
        token=user.get("token") or None,
        token_file=file(user_base, user.get("tokenFile")),
        namespace=context.get("namespace") or None,
    )


@dataclass
class _Token:
    value: str | None = None
    read_at: float = field(default=-TOKEN_RELOAD_SECONDS)


class ApiServer:
    """Requests to the API server over a shared pool of kept-alive connections; thread-safe."""

    def __init__(self, credentials: Credentials, *, pool_size: int = 10, user_agent: str = "dockyard") -> None:
        if not credentials.server:
            raise CredentialsError("the kubeconfig's cluster has no server")
        self.credentials = credentials
        self.server = credentials.server.rstrip("/")
        self._headers = {"Accept": "application/json", "User-Agent": user_agent}
        self._token = _Token()
        self._token_lock = threading.Lock()
        # The same retries as the kubernetes package (urllib3's default: a kept-alive connection the
        # server closed meanwhile is retried on a new one); no redirects.
        self._pool = urllib3.PoolManager(
            num_pools=1,
            maxsize=pool_size,
            ssl_context=credentials.ssl_context() if self.server.startswith("https:") else None,
            cert_reqs=ssl.CERT_NONE if credentials.insecure else ssl.CERT_REQUIRED,
            retries=urllib3.Retry(total=3, redirect=False),
            timeout=TIMEOUT,
        )

    def _bearer(self) -> str | None:
        if self.credentials.token_file is None:
            return self.credentials.token
        with self._token_lock:
            if time.monotonic() - self._token.read_at >= TOKEN_RELOAD_SECONDS:
                self._token = _Token(self.credentials.current_token(), time.monotonic())
            return self._token.value

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Iterable[tuple[str, Any]] = (),
        body: Any = None,
        content_type: str = "application/json",
        timeout: urllib3.Timeout | None = None,
        stream: bool = False,
    ) -> urllib3.BaseHTTPResponse:
        """The response whatever its status; with `stream`, unread (the caller reads and releases it)."""
        headers = dict(self._headers)
        token = self._bearer()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        encoded = None
        if body is not None:
            headers["Content-Type"] = content_type
            encoded = json.dumps(body, separators=(",", ":")).encode()
        fields = [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in query if v not in (None, "")]
        url = self.server + path
        if fields:
            url += "?" + urlencode(fields)
        return self._pool.request(
            method, url, body=encoded, headers=headers, timeout=timeout or TIMEOUT, preload_content=not stream
        )

    def call(
        self,
        method: str,
        path: str,
        *,
        query: Iterable[tuple[str, Any]] = (),
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """The response's JSON object; `ApiError` for an error status."""
        response = self.request(method, path, query=query, body=body, content_type=content_type)
        data = response.data
        if response.status >= 400:
            raise ApiError.of(response, data)
        return dict(json.loads(data)) if data else {}

    def clear(self) -> None:
        """Close every kept-alive connection."""
        self._pool.clear()
