"""The OCI distribution-spec conformance suite (hack/build-tools.sh conformance) against a Registry
as Dockyard renders it, run by distribution 2.8 (Debian) and 3.x (the default image's version) with
the real token service: token auth as the admin user, TLS checked against the operator-issued CA.

The suite is a Go program, so it trusts the CA through SSL_CERT_FILE and checks the serving
certificate's names: it reaches `real.<namespace>.svc` through a CONNECT proxy in this process that
sends that one name, and nothing else, to the loopback.

Dockyard must add no failure of its own over plain distribution. What plain distribution fails is
listed exactly per version below (found by running the suite against it with a bare config): an
unexpected failure fails the test, and so does an expected one that passes (update the list)."""

from __future__ import annotations

import base64
import collections
import contextlib
import hashlib
import json
import os
import re
import socket
import socketserver
import ssl
import subprocess
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import build_tool
from test_registry import _apply, _until, crds, operator  # noqa: F401  (fixtures)

from realregistry import LocalRegistry
from realregistry import read_configmap as _configmap
from realregistry import read_secret as _secret

pytestmark = pytest.mark.integration

# Failures inherent to plain distribution, by junit test name (less the "OCI Conformance Test/"
# prefix) and count, found with a bare config over plain HTTP. Neither version fails
# "non-distributable-layers/*" here: plain distribution does (500) until
# validation.manifests.urls.allow matches the layers' URLs, which Dockyard renders.
_REFERRERS = {  # the OCI 1.1 referrers API and OCI-Subject header: implemented by neither 2.8 nor 3.0
    "empty/referrers": 1,
    "artifacts-with-subject/push/manifest-by-digest": 3,
    "artifacts-with-subject/push/manifest-by-tag": 2,
    "artifacts-with-subject/referrers": 1,
    "index-with-subject/push/manifest-by-digest": 3,
    "index-with-subject/push/manifest-by-tag": 1,
    "index-with-subject/referrers": 1,
    "missing-subject/push/manifest-by-digest": 1,
    "missing-subject/push/manifest-by-tag": 1,
    "missing-subject/referrers": 1,
}
_SHA512 = {  # sha512 digests: both store and answer with sha256
    **{
        f"sha512 blobs/{case}": 1
        for case in (
            "chunked multi and put chunk/blob-patch-chunked",
            "chunked multi/blob-patch-chunked",
            "chunked out-of-order and put chunk/blob-patch-chunked",
            "chunked out-of-order/blob-patch-chunked",
            "chunked single/blob-patch-chunked",
            "empty/blob-get",
            "empty/blob-head",
            "empty/blob-patch-chunked",
            "empty/blob-patch-stream",
            "empty/blob-post-put",
            "emptyJSON/blob-get",
            "emptyJSON/blob-head",
            "emptyJSON/blob-patch-chunked",
            "emptyJSON/blob-patch-stream",
            "emptyJSON/blob-post-put",
            "mount anonymous/blob-mount-anonymous",
            "mount anonymous/blob-patch-chunked",
            "mount anonymous/blob-patch-stream",
            "mount anonymous/blob-post-put",
            "mount missing/blob-mount",
            "mount/blob-mount",
            "mount/blob-patch-chunked",
            "mount/blob-patch-stream",
            "mount/blob-post-put",
            "post+put/blob-post-put",
            "range requests/blob-patch-chunked",
            "range requests/blob-patch-stream",
            "range requests/blob-post-put",
            "stream/blob-patch-stream",
        )
    },
    "sha512/head/blob-head": 6,
    "sha512/head/manifest-head-by-digest": 3,
    "sha512/pull/blob-get": 6,
    "sha512/pull/manifest-by-digest": 3,
    "sha512/push/blob-patch-chunked": 6,
    "sha512/push/blob-patch-stream": 6,
    "sha512/push/blob-post-put": 6,
    "sha512/push/manifest-by-digest": 3,
}
_BOTH = {
    **_REFERRERS,
    **_SHA512,
    # an out-of-order chunk after a PUT is answered 202 (2.8) or 400 (3.0), not 416
    "sha256 blobs/chunked out-of-order and put chunk/blob-patch-chunked": 1,
    # a malformed digest is a 500, not a 400/404
    "invalid-digest-format/manifest-put": 1,
    "invalid-digest-format/manifest-get": 1,
}
EXPECTED_FAILURES: dict[str, dict[str, int]] = {
    "2.8": {
        **_BOTH,
        # an out-of-order chunk is accepted (202), not refused with 416
        "sha256 blobs/chunked out-of-order/blob-patch-chunked": 1,
        # an unsatisfiable range gets a 416 whose Content-Length promises the whole blob
        "sha256 blobs/range requests/range 500-0": 1,
        "sha256 blobs/range requests/range 5000-10000": 1,
        # the tag listing's `last` is inclusive
        "artifacts-with-subject/tag-list": 1,
        "index-with-subject/tag-list": 1,
    },
    "3.x": _BOTH,
}
PREFIX = "OCI Conformance Test/"


class LoopbackProxy(socketserver.ThreadingTCPServer):
    """An HTTP CONNECT proxy on 127.0.0.1 that tunnels `host:<port>` to 127.0.0.1:<port> and
    refuses every other target, so TLS clients can name the registry as its certificate does."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str) -> None:
        self.host = host
        super().__init__(("127.0.0.1", 0), _Tunnel)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Tunnel(socketserver.BaseRequestHandler):
    server: LoopbackProxy

    def handle(self) -> None:
        client: socket.socket = self.request
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            chunk = client.recv(4096)
            if not chunk:
                return
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        method, target, *_ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
        host, _, port = target.rpartition(":")
        if method != "CONNECT" or host != self.server.host or not port.isdigit():
            client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        with socket.create_connection(("127.0.0.1", int(port)), timeout=10) as upstream:
            upstream.settimeout(None)
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            upstream.sendall(rest)
            back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
            back.start()
            _pipe(client, upstream)
            back.join(timeout=30)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def loopback_proxy(host: str) -> Iterator[LoopbackProxy]:
    proxy = LoopbackProxy(host)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()


@pytest.fixture(scope="session")
def conformance() -> Path:
    return build_tool("conformance")


@pytest.fixture(params=["2.8", "3.x"])
def local_registry(
    cluster: Any, crds: None, operator: str, namespace: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[LocalRegistry]:
    """The Registry `real` (Standard, admin user), its token realm named as in the cluster."""
    binary = "docker-registry" if request.param == "2.8" else str(request.getfixturevalue("distribution_v3"))
    registry = LocalRegistry(cluster, namespace, "real", tmp_path, binary, realm_host=f"real.{namespace}.svc")
    _apply(cluster, namespace, "real", {"sku": "Standard", "adminUser": {"enabled": True}})
    registry.start()
    try:
        yield registry
    finally:
        registry.stop()


@pytest.fixture
def published_ca(local_registry: LocalRegistry, cluster: Any, namespace: str) -> Path:
    """The CA certificate the operator publishes for clients (ConfigMap `real-ca`)."""
    ca = _configmap(cluster, namespace, "real-ca")
    assert ca is not None
    path = local_registry.workdir / "published-ca.crt"
    path.write_text(ca["ca.crt"])
    return path


def _junit_failures(path: Path) -> tuple[collections.Counter[str], collections.Counter[str], dict[str, str]]:
    """Failed test names with their counts, all statuses with counts, and one message per failure."""
    failures: collections.Counter[str] = collections.Counter()
    statuses: collections.Counter[str] = collections.Counter()
    messages: dict[str, str] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        status, name = case.get("status", ""), case.get("name", "").removeprefix(PREFIX)
        statuses[status] += 1
        if status in ("failure", "error"):
            failures[name] += 1
            messages.setdefault(name, (case.findtext("system-out") or "").strip()[:300])
    return failures, statuses, messages


def test_conformance_suite_adds_no_failure_over_plain_distribution(
    local_registry: LocalRegistry,
    conformance: Path,
    published_ca: Path,
    cluster: Any,
    namespace: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    version = request.node.callspec.params["local_registry"]
    admin = _secret(cluster, namespace, "real-admin")
    assert admin is not None
    work = tmp_path / "conformance"
    work.mkdir()
    host = f"real.{namespace}.svc"
    with loopback_proxy(host) as proxy:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OCI_") and not k.lower().endswith("_proxy")}
        env |= {
            "OCI_REGISTRY": f"{host}:{local_registry.port}",
            "OCI_TLS": "enabled",
            "OCI_USERNAME": admin["username"],
            "OCI_PASSWORD": admin["password"],
            "OCI_REPO1": "conformance/repo1",
            "OCI_REPO2": "conformance/repo2",
            "OCI_RESULTS_DIR": str(work / "results"),
            "OCI_LOG": "warn",
            "SSL_CERT_FILE": str(published_ca),
            "HTTPS_PROXY": proxy.url,
            "NO_PROXY": "",
        }
        run = subprocess.run([str(conformance)], cwd=work, env=env, capture_output=True, text=True, timeout=900)
    junit = work / "results" / "junit.xml"
    # the suite exits 0 without results when its configuration is refused
    assert junit.exists(), f"no results (exit {run.returncode}): {run.stderr[-2000:]}"
    failures, statuses, messages = _junit_failures(junit)
    expected = collections.Counter(EXPECTED_FAILURES[version])
    unexpected = {name: messages[name] for name in failures - expected}
    fixed = sorted((expected - failures).elements())
    summary = run.stdout[run.stdout.find("API conformance") :]
    assert not unexpected, f"failures plain distribution {version} does not have: {json.dumps(unexpected, indent=1)}"
    assert not fixed, f"expected failures that no longer fail (update EXPECTED_FAILURES): {fixed}"
    assert statuses["passed"] >= 500, f"too few tests ran: {dict(statuses)}\n{summary}"
    assert run.returncode == (1 if expected else 0), run.stderr[-2000:]
    # 3.x exports traces every 5 s; to localhost:4318, where nothing listens, unless told not to
    assert "traces export" not in (local_registry.workdir / "processes.log").read_text()


# --- foreign (non-distributable) layers -----------------------------------------------------------

ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


class _Session:
    """A registry client speaking the token protocol by hand: on a 401 it asks the realm named in
    the challenge for a token with `authorization` (a Basic header) and retries with it."""

    def __init__(self, client: httpx.Client, base: str, authorization: str) -> None:
        self.client, self.base, self.authorization = client, base, authorization

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        url = url if url.startswith("https://") else self.base + url
        response = self.client.request(method, url, **kwargs)
        if response.status_code != 401:
            return response
        challenge = dict(re.findall(r'(\w+)="([^"]*)"', response.headers["WWW-Authenticate"]))
        realm = challenge.pop("realm")
        token = self.client.get(realm, params=challenge, headers={"Authorization": self.authorization})
        assert token.status_code == 200, f"token refused for {challenge}: {token.status_code} {token.text}"
        headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {token.json()['token']}"}
        return self.client.request(method, url, headers=headers, **kwargs)

    def push_blob(self, repository: str, data: bytes) -> str:
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        started = self.request("POST", f"/v2/{repository}/blobs/uploads/")
        assert started.status_code == 202, started.text
        location = started.headers["Location"]
        location = location if location.startswith("https://") else self.base + location
        # keep the upload's own query (`_state`): httpx's `params` would replace it
        separator = "&" if "?" in location else "?"
        done = self.request(
            "PUT",
            f"{location}{separator}digest={digest}",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert done.status_code == 201, done.text
        return digest


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _foreign_manifests(config_digest: str, config_size: int) -> dict[str, dict[str, Any]]:
    """An OCI image with a non-distributable layer and a Docker image with a foreign layer, as
    Windows base images are: the layers are not pushed, only their URLs are named."""
    layer = b"windows servercore layer"
    layer_digest = f"sha256:{hashlib.sha256(layer).hexdigest()}"
    url = f"https://mcr.microsoft.com/v2/windows/servercore/blobs/{layer_digest}"
    return {
        "oci": {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config_size,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                    "digest": layer_digest,
                    "size": len(layer),
                    "urls": [url],
                }
            ],
        },
        "docker": {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "digest": config_digest,
                "size": config_size,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                    "digest": layer_digest,
                    "size": len(layer),
                    "urls": [url],
                }
            ],
        },
    }


def test_foreign_layers_are_accepted_and_pulled_anonymously(
    local_registry: LocalRegistry, published_ca: Path, cluster: Any, namespace: str
) -> None:
    """A manifest whose layers are non-distributable (Windows images) is accepted (distribution
    answered 500 without a URL allow list); with anonymousPull, a client sending empty Basic
    credentials pulls it (the token service answered 401)."""
    admin = _secret(cluster, namespace, "real-admin")
    assert admin is not None
    host = f"real.{namespace}.svc"
    base = f"https://{host}:{local_registry.port}"
    repository = "windows/servercore"
    with loopback_proxy(host) as proxy:
        tls = ssl.create_default_context(cafile=str(published_ca))
        with httpx.Client(proxy=proxy.url, verify=tls, timeout=30) as client:
            pusher = _Session(client, base, _basic(admin["username"], admin["password"]))
            config = json.dumps({"architecture": "amd64", "os": "windows", "rootfs": {"type": "layers"}}).encode()
            config_digest = pusher.push_blob(repository, config)
            manifests = _foreign_manifests(config_digest, len(config))
            for tag, manifest in manifests.items():
                body = json.dumps(manifest).encode()
                pushed = pusher.request(
                    "PUT",
                    f"/v2/{repository}/manifests/{tag}",
                    content=body,
                    headers={"Content-Type": manifest["mediaType"]},
                )
                assert pushed.status_code == 201, f"{tag}: {pushed.status_code} {pushed.text}"
                assert pushed.headers["Docker-Content-Digest"] == f"sha256:{hashlib.sha256(body).hexdigest()}"

            _apply(
                cluster, namespace, "real", {"sku": "Standard", "adminUser": {"enabled": True}, "anonymousPull": True}
            )
            _until(
                lambda: '"anonymous":[{' in (_secret(cluster, namespace, "real-auth") or {}).get("policy.json", ""),
                "anonymous grants",
            )
            local_registry.refresh_policy()
            anonymous = _Session(client, base, _basic("", ""))
            for tag, manifest in manifests.items():
                pulled = anonymous.request("GET", f"/v2/{repository}/manifests/{tag}", headers={"Accept": ACCEPT})
                assert pulled.status_code == 200, f"{tag}: {pulled.status_code} {pulled.text}"
                assert pulled.json() == manifest
            refused = anonymous.request(
                "PUT",
                f"/v2/{repository}/manifests/anonymous",
                content=json.dumps(manifests["oci"]).encode(),
                headers={"Content-Type": manifests["oci"]["mediaType"]},
            )
            assert refused.status_code == 401
