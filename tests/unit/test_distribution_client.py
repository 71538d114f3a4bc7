"""The registry client's protocol logic against an in-memory registry speaking the token protocol
(httpx.MockTransport): challenges, token caching by scope, digests, and dialling another address."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import httpx
import pytest

from dockyard.distribution import (
    Basic,
    Bearer,
    DigestMismatch,
    DistributionClient,
    RegistryNotFound,
    RegistryProtocolError,
    RegistryUnauthorized,
    RegistryUnreachable,
)
from dockyard.distribution.artifacts import (
    EMPTY_MEDIA_TYPE,
    build_artifact_manifest,
    pull_artifact_layer,
    push_artifact,
)
from dockyard.distribution.client import parse_challenge, split_address

HOST = "hub.team.svc:5000"
REALM = "https://hub.team.svc:5001/token"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class FakeRegistry:
    """Enough of distribution + a token service: a token grants exactly the scope it was issued for."""

    users: dict[str, str] = field(default_factory=lambda: {"admin": "s3cret"})
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    token_requests: list[httpx.Request] = field(default_factory=list)
    corrupt_blobs: bool = False

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/token":
            return self.token(request)
        path = request.url.path
        repo, scope = self.scope(request)
        auth = request.headers.get("Authorization", "")
        granted = self.tokens.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None
        if granted is None or (scope and granted != scope):
            challenge = f'Bearer realm="{REALM}",service="{HOST}"' + (f',scope="{scope}"' if scope else "")
            return httpx.Response(
                401, headers={"WWW-Authenticate": challenge}, json={"errors": [{"code": "UNAUTHORIZED"}]}
            )
        if path == "/v2/":
            return httpx.Response(200, json={})
        kind, _, ref = path.removeprefix(f"/v2/{repo}/").partition("/")
        if kind == "blobs" and ref == "uploads/" and request.method == "POST":
            return httpx.Response(202, headers={"Location": f"https://{HOST}/v2/{repo}/blobs/uploads/u1?_state=x"})
        if kind == "blobs" and ref.startswith("uploads/") and request.method == "PUT":
            digest = parse_qs(request.url.query.decode())["digest"][0]
            data = request.read()
            if _digest(data) != digest:
                return httpx.Response(400, json={"errors": [{"code": "DIGEST_INVALID"}]})
            self.blobs[digest] = data
            return httpx.Response(201, headers={"Docker-Content-Digest": digest})
        if kind == "blobs":
            if ref not in self.blobs:
                return httpx.Response(404, json={"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown"}]})
            data = b"tampered" if self.corrupt_blobs else self.blobs[ref]
            return httpx.Response(200, content=b"" if request.method == "HEAD" else data)
        if kind == "manifests":
            digest = self.tags.get(f"{repo}:{ref}", ref)
            if request.method == "PUT":
                body = request.read()
                digest = _digest(body)
                self.manifests[digest] = (body, request.headers["Content-Type"])
                if not ref.startswith("sha256:"):
                    self.tags[f"{repo}:{ref}"] = digest
                return httpx.Response(201, headers={"Docker-Content-Digest": digest})
            if digest not in self.manifests:
                return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN"}]})
            if request.method == "DELETE":
                del self.manifests[digest]
                self.tags = {k: v for k, v in self.tags.items() if v != digest}
                return httpx.Response(202)
            body, media_type = self.manifests[digest]
            headers = {"Docker-Content-Digest": digest, "Content-Type": media_type}
            return httpx.Response(200, headers=headers, content=b"" if request.method == "HEAD" else body)
        if kind == "tags":
            tags = sorted(t.split(":", 1)[1] for t in self.tags if t.startswith(f"{repo}:"))
            if not tags:
                return httpx.Response(404, json={"errors": [{"code": "NAME_UNKNOWN"}]})
            last = parse_qs(request.url.query.decode()).get("last", [""])[0]
            page = [t for t in tags if t > last][:2]
            headers = (
                {"Link": f'</v2/{repo}/tags/list?n=2&last={page[-1]}>; rel="next"'} if page[-1] != tags[-1] else {}
            )
            return httpx.Response(200, headers=headers, json={"name": repo, "tags": page})
        return httpx.Response(400)

    @staticmethod
    def scope(request: httpx.Request) -> tuple[str, str]:
        path = request.url.path
        if path == "/v2/":
            return "", ""
        repo = path.removeprefix("/v2/").split("/blobs/")[0].split("/manifests/")[0].split("/tags/")[0]
        actions = {"GET": "pull", "HEAD": "pull", "DELETE": "delete"}.get(request.method, "pull,push")
        return repo, f"repository:{repo}:{actions}"

    def token(self, request: httpx.Request) -> httpx.Response:
        self.token_requests.append(request)
        auth = request.headers.get("Authorization", "")
        if auth:
            user, _, password = base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
            if self.users.get(user) != password:
                return httpx.Response(401, json={"errors": [{"code": "UNAUTHORIZED"}]})
        elif "push" in request.url.params.get("scope", ""):
            return httpx.Response(200, json={"token": "anonymous-nothing", "expires_in": 300})
        token = f"t{len(self.tokens)}"
        self.tokens[token] = request.url.params.get("scope", "")
        return httpx.Response(200, json={"token": token, "expires_in": 300})


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry()


def _client(registry: FakeRegistry, **kwargs: object) -> DistributionClient:
    return DistributionClient(
        HOST,
        credentials=kwargs.pop("credentials", Basic("admin", "s3cret")),  # type: ignore[arg-type]
        transport=httpx.MockTransport(registry.handle),
        **kwargs,  # type: ignore[arg-type]
    )


def test_challenge_parsing_keeps_commas_inside_quotes() -> None:
    challenge = parse_challenge(
        'Bearer realm="https://hub:5001/token",service="hub:5000",scope="repository:a/b:pull,push",error="insufficient_scope"'
    )
    assert challenge is not None
    assert challenge.scheme == "bearer"
    assert challenge.params == {
        "realm": "https://hub:5001/token",
        "service": "hub:5000",
        "scope": "repository:a/b:pull,push",
        "error": "insufficient_scope",
    }
    basic = parse_challenge('Basic realm="Registry Realm"')
    assert basic is not None and basic.scheme == "basic" and basic.params == {"realm": "Registry Realm"}
    assert parse_challenge("") is None


def test_blob_round_trip_fetches_one_token_per_scope_and_reuses_it(registry: FakeRegistry) -> None:
    with _client(registry) as client:
        digest = client.push_blob("team/app", b"hello")
        assert digest == _digest(b"hello")
        assert client.push_blob("team/app", b"hello") == digest  # present: HEAD only, no upload
        assert client.get_blob("team/app", digest) == b"hello"
        assert client.get_blob("team/app", digest) == b"hello"
    scopes = [r.url.params["scope"] for r in registry.token_requests]
    assert scopes == ["repository:team/app:pull", "repository:team/app:pull,push"]
    assert [r.method for r in registry.requests if r.url.path.endswith("/uploads/")] == ["POST", "POST"]
    assert all(r.url.params["service"] == HOST for r in registry.token_requests)
    assert all(r.headers["Authorization"].startswith("Basic ") for r in registry.token_requests)


def test_a_bearer_credential_is_sent_as_is_and_never_exchanged(registry: FakeRegistry) -> None:
    registry.tokens["minted"] = "repository:team/app:pull"
    registry.blobs[_digest(b"x")] = b"x"
    with _client(registry, credentials=Bearer("minted")) as client:
        assert client.get_blob("team/app", _digest(b"x")) == b"x"
        with pytest.raises(RegistryUnauthorized):
            client.push_blob("team/app", b"y")
    assert registry.token_requests == []


def test_wrong_password_is_unauthorized_and_the_message_has_no_secret(registry: FakeRegistry) -> None:
    with _client(registry, credentials=Basic("admin", "wrong-password")) as client:
        with pytest.raises(RegistryUnauthorized) as raised:
            client.ping()
    assert "wrong-password" not in str(raised.value)
    assert "refused" in str(raised.value)


def test_anonymous_push_is_refused(registry: FakeRegistry) -> None:
    with _client(registry, credentials=None) as client:
        with pytest.raises(RegistryUnauthorized):
            client.push_blob("team/app", b"data")


def test_a_corrupt_blob_is_refused(registry: FakeRegistry) -> None:
    with _client(registry) as client:
        digest = client.push_blob("team/app", b"good")
        registry.corrupt_blobs = True
        with pytest.raises(DigestMismatch):
            client.get_blob("team/app", digest)


def test_manifests_put_get_head_delete_and_tags_paginate(registry: FakeRegistry) -> None:
    body = b'{"schemaVersion":2}'
    with _client(registry) as client:
        for tag in ("a", "b", "c"):
            digest = client.put_manifest("team/app", tag, body, "application/vnd.oci.image.manifest.v1+json")
        assert digest == _digest(body)
        assert client.get_manifest("team/app", "a") == (body, "application/vnd.oci.image.manifest.v1+json", digest)
        assert client.head_manifest("team/app", "b") == digest
        assert client.list_tags("team/app") == ["a", "b", "c"]
        assert client.delete_manifest("team/app", digest) is True
        assert client.delete_manifest("team/app", digest) is False
        assert client.head_manifest("team/app", "a") is None
        assert client.list_tags("team/app") == []
        with pytest.raises(RegistryNotFound, match="MANIFEST_UNKNOWN"):
            client.get_manifest("team/app", "a")
        with pytest.raises(DigestMismatch):
            client.put_manifest("team/app", _digest(b"other"), body, "application/json")


def test_connect_to_dials_the_address_but_names_the_host(registry: FakeRegistry) -> None:
    with _client(registry, connect_to="10.96.0.7") as client:
        client.push_blob("team/app", b"via cluster ip")
    assert registry.requests
    for request in registry.requests:
        assert request.url.host == "10.96.0.7"
        assert request.extensions["sni_hostname"] == "hub.team.svc"
        assert request.headers["Host"] == f"hub.team.svc:{request.url.port}"
    assert {r.url.port for r in registry.requests} == {5000, 5001}  # registry, token realm, upload location


def test_connect_to_with_a_port_replaces_the_login_servers_port_only(registry: FakeRegistry) -> None:
    with _client(registry, connect_to="127.0.0.1:15000") as client:
        client.push_blob("team/app", b"via a port-forward")
    dialled = {(r.url.host, r.url.port, r.headers["Host"]) for r in registry.requests}
    assert dialled == {("127.0.0.1", 15000, HOST), ("127.0.0.1", 5001, "hub.team.svc:5001")}


@pytest.mark.parametrize(
    ("address", "parts"),
    [
        ("10.0.0.1", ("10.0.0.1", None)),
        ("10.0.0.1:80", ("10.0.0.1", 80)),
        ("[::1]:5000", ("::1", 5000)),
        ("::1", ("::1", None)),
    ],
)
def test_addresses_split_into_host_and_port(address: str, parts: tuple[str, int | None]) -> None:
    assert split_address(address) == parts


def test_unreachable_registry_is_one_error(registry: FakeRegistry) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    client = DistributionClient(HOST, transport=httpx.MockTransport(refuse))
    with pytest.raises(RegistryUnreachable, match="Connection refused"):
        client.ping()


def test_artifact_round_trip_and_type_check(registry: FakeRegistry) -> None:
    with _client(registry) as client:
        digest = push_artifact(
            client, "dockyard/sources", None, "application/vnd.x", "application/vnd.x.layer", b"payload", {"k": "v"}
        )
        assert "dockyard/sources:" not in " ".join(registry.tags)  # pushed by digest, no tag
        assert pull_artifact_layer(client, "dockyard/sources", digest, "application/vnd.x") == b"payload"
        with pytest.raises(RegistryProtocolError, match="artifact type"):
            pull_artifact_layer(client, "dockyard/sources", digest, "application/vnd.other")
        downloads = len([r for r in registry.requests if r.method == "GET" and "/blobs/" in r.url.path])
        with pytest.raises(RegistryProtocolError, match="larger than 3 bytes"):
            pull_artifact_layer(client, "dockyard/sources", digest, "application/vnd.x", max_size=3)
        assert len([r for r in registry.requests if r.method == "GET" and "/blobs/" in r.url.path]) == downloads
    manifest = json.loads(registry.manifests[digest][0])
    assert manifest["config"] == {"mediaType": EMPTY_MEDIA_TYPE, "digest": _digest(b"{}"), "size": 2}
    assert registry.blobs[_digest(b"{}")] == b"{}"


def test_artifact_manifest_is_deterministic() -> None:
    first = build_artifact_manifest("t", "l", b"data", {"b": "2", "a": "1"})
    assert first == build_artifact_manifest("t", "l", b"data", {"a": "1", "b": "2"})
    assert json.loads(first)["layers"] == [{"mediaType": "l", "digest": _digest(b"data"), "size": 4}]
    assert json.loads(first)["artifactType"] == "t"


def test_a_blob_redirect_to_storage_is_followed_without_our_credentials(registry: FakeRegistry) -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host == "storage.example":
            seen.append(request)
            return httpx.Response(200, content=b"from storage")
        if request.method == "GET" and "/blobs/sha256:" in request.url.path and "Authorization" in request.headers:
            return httpx.Response(307, headers={"Location": "https://storage.example/bucket/blob?sig=1"})
        return registry.handle(request)

    client = DistributionClient(HOST, credentials=Basic("admin", "s3cret"), transport=httpx.MockTransport(handle))
    assert client.get_blob("team/app", _digest(b"from storage")) == b"from storage"
    assert len(seen) == 1 and "Authorization" not in seen[0].headers


def test_a_token_about_to_expire_is_fetched_again(registry: FakeRegistry) -> None:
    original = registry.token

    def short_lived(request: httpx.Request) -> httpx.Response:
        answer = original(request)
        return httpx.Response(200, json={**answer.json(), "expires_in": 5})

    registry.token = short_lived  # type: ignore[method-assign]
    registry.blobs[_digest(b"x")] = b"x"
    with _client(registry) as client:
        client.get_blob("team/app", _digest(b"x"))
        client.get_blob("team/app", _digest(b"x"))
    assert len(registry.token_requests) == 2


def test_a_basic_challenge_is_answered_and_then_sent_up_front() -> None:
    seen: list[str] = []

    def htpasswd(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") != "Basic " + base64.b64encode(b"admin:s3cret").decode():
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="Registry Realm"'})
        return httpx.Response(200, json={})

    with DistributionClient(
        HOST, credentials=Basic("admin", "s3cret"), transport=httpx.MockTransport(htpasswd)
    ) as client:
        client.ping()
        client.ping()
    assert [bool(a) for a in seen] == [False, True, True]
    with DistributionClient(HOST, transport=httpx.MockTransport(htpasswd)) as anonymous:
        with pytest.raises(RegistryUnauthorized, match="user name and password"):
            anonymous.ping()
