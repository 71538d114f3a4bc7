"""The one client of the registry /v2 API (CNCF distribution 2.8 and 3.x, any OCI registry).

Synchronous httpx, one long-lived client per registry: used from the operator's handler threads,
from the build pod's init container and from the CLI.

Addressing. `host` is the registry's login server (`hub.team.svc:5000`): the name in image
references, in the token service's `service`, and in the serving certificate. `connect_to` dials
another address (an IP: the Service's ClusterIP seen from a node host, or a loopback in tests)
while TLS is still verified against `host` (SNI and the certificate's names) and the Host header
still names `host`. The mapping covers every URL on `host`'s name whatever the port, so the token
realm (same name, another port) and absolute upload locations are reached the same way. An
`address:port` (a port-forward) replaces the login server's port only; the realm keeps its own.

Authentication. A `Bearer` credential (a token the operator minted) is sent as is; a 401 with it is
final. Otherwise a request goes out with the token cached for its scope, if any; a 401 carrying
`WWW-Authenticate: Bearer realm=…,service=…,scope=…` fetches a token from the realm (with the
`Basic` credentials, or anonymously), caches it by scope until shortly before it expires, and
retries once. A `Basic` challenge (htpasswd registries) retries once with the Basic credentials.

Integrity. Blobs and manifests fetched by digest are checked against it (`DigestMismatch`), and a
digest the registry announces on a push must be the digest of what was sent.

Errors (`dockyard.distribution.errors`):

    DistributionError
    ├── RegistryUnreachable          DNS, connect, TLS verification, timeout
    │   └── RegistryThrottled        429, with the `Retry-After` it asked for
    ├── RegistryUnauthorized         401/403 after authenticating; the realm refused the credentials
    ├── RegistryNotFound             404: repository, manifest or blob unknown
    └── RegistryProtocolError        unexpected status, unusable challenge, bad JSON
        └── DigestMismatch           content that is not what its digest says

Messages name the method, the path and the registry's error code; never a credential or token.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import hashlib
import re
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from dockyard.distribution.errors import (
    DigestMismatch,
    DistributionError,
    RegistryNotFound,
    RegistryProtocolError,
    RegistryThrottled,
    RegistryUnauthorized,
    RegistryUnreachable,
)

OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX: Final = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST: Final = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST: Final = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES: Final = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST)

TOKEN_REFRESH_MARGIN_S: Final = 10.0
"""A cached token this close to its expiry is fetched again rather than sent."""
DEFAULT_TOKEN_TTL_S: Final = 60
"""What the token spec says to assume when the realm gives no `expires_in`."""
BLOB_CHUNK_BYTES: Final = 1024 * 1024
"""Streamed blobs move in chunks of this size: memory stays flat whatever the layer's size."""


@dataclass(frozen=True)
class Basic:
    """A user name and password (or an admin/token password) for the token realm or Basic auth."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Bearer:
    """A registry token, sent as is (one the operator minted for exactly the repositories needed)."""

    token: str = field(repr=False)


Credentials = Basic | Bearer


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def verify_digest(data: bytes, digest: str, what: str) -> None:
    """Raise `DigestMismatch` unless `data` is what `digest` (sha256 only) names."""
    algorithm, _, _ = digest.partition(":")
    if algorithm != "sha256":
        raise RegistryProtocolError(f"{what}: unsupported digest algorithm {algorithm!r}")
    actual = sha256_digest(data)
    if actual != digest:
        raise DigestMismatch(f"{what}: content has digest {actual}, expected {digest}")


_CHALLENGE_PARAM = re.compile(r'\s*([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*(?:,|$)')


@dataclass(frozen=True)
class Challenge:
    """One `WWW-Authenticate` challenge: its scheme (lower case) and parameters."""

    scheme: str
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge | None:
    """The first challenge of a `WWW-Authenticate` header (registries send one), or None if the
    header is empty or unreadable. Quoted values may contain commas (`scope="repository:a:pull,push"`)."""
    header = header.strip()
    match = re.match(r"([A-Za-z][\w-]*)(?:\s+|$)", header)
    if not match:
        return None
    scheme, rest = match.group(1).lower(), header[match.end() :]
    params: dict[str, str] = {}
    position = 0
    while position < len(rest):
        param = _CHALLENGE_PARAM.match(rest, position)
        if not param or param.end() == position:
            break
        value = param.group(2) if param.group(2) is not None else param.group(3)
        params[param.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
        position = param.end()
    return Challenge(scheme, params)


def repository_scope(repository: str, *actions: str) -> str:
    """A token scope as distribution writes it in its challenges: `repository:team/app:pull,push`."""
    return f"repository:{repository}:{','.join(actions)}"


def _scope_for(method: str, repository: str | None) -> str | None:
    """The scope distribution will ask for: pull for reads, pull+push for writes, delete for
    deletes. Used to pick a cached token before the first request; a challenge that asks for
    something else still wins."""
    if repository is None:
        return None
    if method in ("GET", "HEAD"):
        return repository_scope(repository, "pull")
    if method == "DELETE":
        return repository_scope(repository, "delete")
    return repository_scope(repository, "pull", "push")


def split_address(address: str) -> tuple[str, int | None]:
    """`10.0.0.1` → (`10.0.0.1`, None); `127.0.0.1:15000` → (…, 15000); `[::1]:5000` and `::1` too."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = rest.removeprefix(":")
        return host, int(port) if port.isdigit() else None
    if address.count(":") == 1:
        host, _, port = address.partition(":")
        if port.isdigit():
            return host, int(port)
    return address, None


class DialTransport(httpx.BaseTransport):
    """Sends requests for `hostname` (any port) to `address` instead, keeping the Host header and
    verifying TLS against `hostname` (httpcore's `sni_hostname` sets both SNI and the name checked).
    `address` may carry a port (`127.0.0.1:15000`, a port-forward): it replaces `port` only, the
    login server's; other ports on the name (the token realm) keep theirs."""

    def __init__(self, inner: httpx.BaseTransport, hostname: str, address: str, port: int | None = None) -> None:
        self.inner, self.hostname = inner, hostname.lower()
        self.address, self.dial_port = split_address(address)
        self.port = port

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host.lower() != self.hostname:
            return self.inner.handle_request(request)
        headers = httpx.Headers(request.headers)
        headers.setdefault("Host", request.url.netloc.decode("ascii"))
        url = request.url.copy_with(host=self.address)
        if self.dial_port is not None and request.url.port == self.port:
            url = url.copy_with(port=self.dial_port)
        dialled = httpx.Request(
            request.method,
            url,
            headers=headers,
            stream=request.stream,
            extensions={**request.extensions, "sni_hostname": self.hostname},
        )
        return self.inner.handle_request(dialled)

    def close(self) -> None:
        self.inner.close()


@dataclass
class _Token:
    value: str
    expires_at: float


class DistributionClient:
    """A client of one registry; thread-safe, close it (or use it as a context manager) when done."""

    def __init__(
        self,
        host: str,
        *,
        connect_to: str | None = None,
        ca_pem: str | None = None,
        credentials: Credentials | None = None,
        timeout: float = 30,
        plain_http: bool = False,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """`transport` replaces the network (tests pass `httpx.MockTransport`); `connect_to`
        (an address, or address:port replacing the login server's port) applies on top of it. `ca_pem` is the only CA trusted when given, else the system's."""
        self.host = host
        self.credentials = credentials
        self.base_url = httpx.URL(f"{'http' if plain_http else 'https'}://{host}")
        verify: ssl.SSLContext | bool = ssl.create_default_context(cadata=ca_pem) if ca_pem else True
        inner = transport or httpx.HTTPTransport(verify=verify)
        if connect_to:
            inner = DialTransport(inner, self.base_url.host, connect_to, self.base_url.port)
        self._http = httpx.Client(transport=inner, timeout=timeout, follow_redirects=False)
        self._tokens: dict[str, _Token] = {}
        self._basic_auth = False
        """Whether the registry asked for Basic auth (htpasswd) rather than tokens."""
        self._lock = threading.Lock()

    def __enter__(self) -> DistributionClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- the API ---------------------------------------------------------------------------------

    def ping(self) -> None:
        """`GET /v2/` with authentication: returns when the registry answers and accepts us."""
        self._request("GET", "/v2/", repository=None, ok=(200,))

    def blob_exists(self, repository: str, digest: str) -> bool:
        response = self._request("HEAD", f"/v2/{repository}/blobs/{digest}", repository=repository, ok=(200, 404))
        return response.status_code == 200

    def push_blob(self, repository: str, data: bytes) -> str:
        """Upload a blob in one request (POST then PUT with the digest) unless the repository has
        it already; returns its digest."""
        digest = sha256_digest(data)
        if self.blob_exists(repository, digest):
            return digest
        started = self._request("POST", f"/v2/{repository}/blobs/uploads/", repository=repository, ok=(202,))
        location = started.headers.get("Location")
        if not location:
            raise RegistryProtocolError(f"POST /v2/{repository}/blobs/uploads/: 202 without a Location")
        url = self.base_url.join(location).copy_merge_params({"digest": digest})
        done = self._request(
            "PUT",
            url,
            repository=repository,
            ok=(201,),
            headers={"Content-Type": "application/octet-stream"},
            content=data,
        )
        announced = done.headers.get("Docker-Content-Digest")
        if announced and announced != digest:
            raise DigestMismatch(f"PUT blob in {repository}: registry stored {announced}, sent {digest}")
        return digest

    def get_blob(self, repository: str, digest: str) -> bytes:
        """A blob's content, verified against its digest (redirects to object storage followed)."""
        response = self._request("GET", f"/v2/{repository}/blobs/{digest}", repository=repository, ok=(200,))
        verify_digest(response.content, digest, f"blob {digest} in {repository}")
        return response.content

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        """Store a manifest under a tag or its digest; returns its digest."""
        digest = sha256_digest(body)
        if reference.startswith("sha256:") and reference != digest:
            raise DigestMismatch(f"manifest for {repository}@{reference} has digest {digest}")
        response = self._request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            repository=repository,
            ok=(201,),
            headers={"Content-Type": media_type},
            content=body,
        )
        announced = response.headers.get("Docker-Content-Digest")
        if announced and announced != digest:
            raise DigestMismatch(f"PUT manifest {repository}:{reference}: registry stored {announced}, sent {digest}")
        return digest

    def get_manifest(self, repository: str, reference: str) -> tuple[bytes, str, str]:
        """(body, media type, digest) of a manifest by tag or digest; by digest it is verified."""
        response = self._request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            repository=repository,
            ok=(200,),
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
        )
        body = response.content
        digest = sha256_digest(body)
        expected = reference if reference.startswith("sha256:") else response.headers.get("Docker-Content-Digest")
        if expected:
            verify_digest(body, expected, f"manifest {repository}:{reference}")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return body, media_type, digest

    def head_manifest(self, repository: str, reference: str) -> str | None:
        """The digest a tag or digest resolves to, or None if there is no such manifest."""
        response = self._request(
            "HEAD",
            f"/v2/{repository}/manifests/{reference}",
            repository=repository,
            ok=(200, 404),
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
        )
        if response.status_code == 404:
            return None
        digest = str(response.headers.get("Docker-Content-Digest", ""))
        if not digest:
            raise RegistryProtocolError(f"HEAD manifest {repository}:{reference}: no Docker-Content-Digest")
        return digest

    def delete_manifest(self, repository: str, digest: str) -> bool:
        """Delete a manifest (and so every tag on it); False when it was not there."""
        response = self._request("DELETE", f"/v2/{repository}/manifests/{digest}", repository=repository, ok=(202, 404))
        return response.status_code == 202

    def delete_tag(self, repository: str, tag: str) -> bool:
        """Remove one tag, keeping the manifest (distribution 3.x; 2.8 refuses it with
        `RegistryProtocolError`); False when the tag was not there."""
        response = self._request("DELETE", f"/v2/{repository}/manifests/{tag}", repository=repository, ok=(202, 404))
        return response.status_code == 202

    def list_repositories(self, page_size: int = 1000) -> list[str]:
        """Every repository of the registry (`_catalog`, following pagination); needs the
        `registry:catalog:*` scope."""
        repositories: list[str] = []
        url: httpx.URL | str = f"/v2/_catalog?n={page_size}"
        while True:
            response = self._request("GET", url, repository=None, ok=(200,))
            repositories.extend(_json(response).get("repositories") or [])
            link = _next_link(response.headers.get("Link", ""))
            if link is None:
                return repositories
            url = self.base_url.join(link)

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Link a blob the registry holds in `from_repository` into `repository` without moving
        its bytes; False when the registry did not mount it (it then opened an upload, which is
        left to expire)."""
        response = self._request(
            "POST",
            f"/v2/{repository}/blobs/uploads/?mount={digest}&from={from_repository}",
            repository=repository,
            ok=(201, 202),
        )
        return response.status_code == 201

    @contextlib.contextmanager
    def open_blob(self, repository: str, digest: str) -> Iterator[tuple[int | None, Iterator[bytes]]]:
        """(size, chunks) of a blob, streamed: the chunks raise `DigestMismatch` at the end when
        the content is not `digest`, so whoever forwards them fails before committing anything."""
        self.blob_exists(repository, digest)  # authenticates for the pull scope
        url = self.base_url.join(f"/v2/{repository}/blobs/{digest}")
        what = f"GET {url.path}"
        authorization = self._authorization(_scope_for("GET", repository))
        headers = {"Authorization": authorization} if authorization else {}
        try:
            response = self._http.send(self._http.build_request("GET", url, headers=headers), stream=True)
            hops = 0
            while response.is_redirect and hops < 5 and response.next_request is not None:
                hops += 1
                target = response.next_request
                response.close()
                if target.url.host != url.host or target.url.port != url.port:
                    target.headers.pop("Authorization", None)
                response = self._http.send(target, stream=True)
        except httpx.TimeoutException as error:
            raise RegistryUnreachable(f"{what} on {self.host}: timed out") from error
        except httpx.TransportError as error:
            raise RegistryUnreachable(f"{what} on {self.host}: {_reason(error)}") from error
        try:
            if response.status_code != 200:
                response.read()
                raise _error_for(response, what)
            length = response.headers.get("Content-Length")

            def chunks() -> Iterator[bytes]:
                hasher = hashlib.sha256()
                try:
                    for chunk in response.iter_bytes(BLOB_CHUNK_BYTES):
                        hasher.update(chunk)
                        yield chunk
                except httpx.TransportError as error:
                    raise RegistryUnreachable(f"{what} on {self.host}: {_reason(error)}") from error
                actual = "sha256:" + hasher.hexdigest()
                if actual != digest:
                    raise DigestMismatch(f"blob {digest} in {repository}: content has digest {actual}")

            yield (int(length) if length and length.isdigit() else None), chunks()
        finally:
            response.close()

    def push_blob_stream(self, repository: str, digest: str, chunks: Iterable[bytes], size: int | None) -> None:
        """Upload a blob whose digest is known from a stream (a monolithic PUT, no temp file);
        the registry verifies the digest before it links the blob."""
        started = self._request("POST", f"/v2/{repository}/blobs/uploads/", repository=repository, ok=(202,))
        location = started.headers.get("Location")
        if not location:
            raise RegistryProtocolError(f"POST /v2/{repository}/blobs/uploads/: 202 without a Location")
        url = self.base_url.join(location).copy_merge_params({"digest": digest})
        headers = {"Content-Type": "application/octet-stream"}
        if size is not None:
            headers["Content-Length"] = str(size)
        what = f"PUT {url.path}"
        done = self._send("PUT", url, headers, chunks, self._authorization(_scope_for("PUT", repository)), what)
        if done.status_code != 201:
            raise _error_for(done, what)
        announced = done.headers.get("Docker-Content-Digest")
        if announced and announced != digest:
            raise DigestMismatch(f"PUT blob in {repository}: registry stored {announced}, sent {digest}")

    def list_tags(self, repository: str) -> list[str]:
        """Every tag of a repository, following pagination; empty when the repository is unknown."""
        tags: list[str] = []
        url: httpx.URL | str = f"/v2/{repository}/tags/list"
        while True:
            response = self._request("GET", url, repository=repository, ok=(200, 404))
            if response.status_code == 404:
                return tags
            tags.extend(_json(response).get("tags") or [])
            link = _next_link(response.headers.get("Link", ""))
            if link is None:
                return tags
            url = self.base_url.join(link)

    # -- requests and authentication ------------------------------------------------------------

    def _request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        repository: str | None,
        ok: Iterable[int],
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        full = self.base_url.join(url)
        what = f"{method} {full.path}"
        scope = _scope_for(method, repository)
        authorization = self._authorization(scope)
        response = self._send(method, full, headers, content, authorization, what)
        if response.status_code == 401 and not isinstance(self.credentials, Bearer):
            retry = self._answer_challenge(response, scope, what)
            if retry is not None:
                response = self._send(method, full, headers, content, retry, what)
        if response.status_code in ok:
            return response
        raise _error_for(response, what)

    def _send(
        self,
        method: str,
        url: httpx.URL,
        headers: dict[str, str] | None,
        content: bytes | Iterable[bytes] | None,
        authorization: str | None,
        what: str,
    ) -> httpx.Response:
        request_headers = dict(headers or {})
        if authorization:
            request_headers["Authorization"] = authorization
        try:
            response = self._http.request(method, url, headers=request_headers, content=content)
            # Blob downloads may be redirected to object storage: follow without our Authorization.
            hops = 0
            while response.is_redirect and method in ("GET", "HEAD") and hops < 5:
                hops += 1
                target = response.next_request
                if target is None:
                    break
                if target.url.host != url.host or target.url.port != url.port:
                    target.headers.pop("Authorization", None)
                response = self._http.send(target)
            return response
        except httpx.TimeoutException as error:
            raise RegistryUnreachable(f"{what} on {self.host}: timed out") from error
        except httpx.TransportError as error:
            raise RegistryUnreachable(f"{what} on {self.host}: {_reason(error)}") from error

    def _authorization(self, scope: str | None) -> str | None:
        if isinstance(self.credentials, Bearer):
            return f"Bearer {self.credentials.token}"
        if self._basic_auth and isinstance(self.credentials, Basic):
            return _basic_header(self.credentials)
        with self._lock:
            token = self._tokens.get(scope or "")
        if token is not None and token.expires_at - TOKEN_REFRESH_MARGIN_S > time.monotonic():
            return f"Bearer {token.value}"
        return None

    def _answer_challenge(self, response: httpx.Response, scope: str | None, what: str) -> str | None:
        """The Authorization header that answers the 401's challenge, or None when there is none."""
        challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            if isinstance(self.credentials, Basic):
                self._basic_auth = True  # from now on sent up front, as docker does after a Basic challenge
                return _basic_header(self.credentials)
            raise RegistryUnauthorized(f"{what} on {self.host}: the registry wants a user name and password")
        if challenge.scheme != "bearer" or "realm" not in challenge.params:
            raise RegistryProtocolError(f"{what} on {self.host}: unusable challenge {challenge.scheme!r}")
        token = self._fetch_token(challenge.params, what)
        with self._lock:
            self._tokens[scope or challenge.params.get("scope", "")] = token
        return f"Bearer {token.value}"

    def _fetch_token(self, params: dict[str, str], what: str) -> _Token:
        query = {key: params[key] for key in ("service", "scope") if params.get(key)}
        headers = {"Authorization": _basic_header(self.credentials)} if isinstance(self.credentials, Basic) else {}
        realm = httpx.URL(params["realm"])
        try:
            response = self._http.get(realm, params=query, headers=headers)
        except httpx.TimeoutException as error:
            raise RegistryUnreachable(f"token realm {realm.host}:{realm.port}: timed out") from error
        except httpx.TransportError as error:
            raise RegistryUnreachable(f"token realm {realm.host}:{realm.port}: {_reason(error)}") from error
        if response.status_code in (401, 403):
            who = "the credentials were refused" if headers else "anonymous access was refused"
            raise RegistryUnauthorized(f"{what} on {self.host}: {who} by the token service")
        if response.status_code != 200:
            raise RegistryProtocolError(f"token realm answered {response.status_code}{_codes(response)}")
        body = _json(response)
        value = body.get("token") or body.get("access_token")
        if not isinstance(value, str) or not value:
            raise RegistryProtocolError("token realm answered without a token")
        ttl = body.get("expires_in")
        ttl = ttl if isinstance(ttl, int | float) and ttl > 0 else DEFAULT_TOKEN_TTL_S
        return _Token(value, time.monotonic() + float(ttl))


def _basic_header(credentials: Basic) -> str:
    pair = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as error:
        raise RegistryProtocolError(f"{response.request.method} {response.request.url.path}: not JSON") from error
    if not isinstance(body, dict):
        raise RegistryProtocolError(f"{response.request.method} {response.request.url.path}: not a JSON object")
    return body


def _codes(response: httpx.Response) -> str:
    """`: CODE message` from a distribution error body, if it has one."""
    try:
        errors = response.json().get("errors") or []
        first = errors[0]
        return f": {first.get('code', '')} {first.get('message', '')}".rstrip()
    except (ValueError, AttributeError, IndexError, TypeError):
        return ""


def _error_for(response: httpx.Response, what: str) -> DistributionError:
    detail = f"{what}: {response.status_code}{_codes(response)}"
    if response.status_code in (401, 403):
        return RegistryUnauthorized(detail)
    if response.status_code == 404:
        return RegistryNotFound(detail)
    if response.status_code == 429:
        return RegistryThrottled(detail, retry_after_seconds(response.headers.get("Retry-After")))
    return RegistryProtocolError(detail)


def retry_after_seconds(header: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not header:
        return None
    text = header.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def _reason(error: httpx.TransportError) -> str:
    """What went wrong in one line, e.g. `[SSL: CERTIFICATE_VERIFY_FAILED] … hostname mismatch`."""
    return " ".join(str(error).split()) or type(error).__name__


def _next_link(header: str) -> str | None:
    """The target of `Link: </v2/…?n=100&last=x>; rel="next"`, if any."""
    match = re.search(r'<([^>]+)>\s*;\s*rel="?next"?', header)
    return match.group(1) if match else None
