"""The operator's connection to the API server (`core/apiserver.py`): which credentials it reads,
and what a request puts on the wire (against a local HTTP server that records it)."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import urllib3
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dockyard.core.apiserver import (
    ApiError,
    ApiServer,
    Credentials,
    CredentialsError,
    in_cluster_credentials,
    kubeconfig_credentials,
    load_credentials,
)
from dockyard.core.pki import KeyPair, issue_ca, issue_serving_cert


def kubeconfig(path: Path, *, current: str = "dev", user: dict[str, Any] | None = None, **extra: Any) -> Path:
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": current,
        "contexts": [
            {"name": "dev", "context": {"cluster": "local", "user": "me", "namespace": "team"}},
            {"name": "other", "context": {"cluster": "far", "user": "them"}},
        ],
        "clusters": [
            {"name": "local", "cluster": {"server": "https://127.0.0.1:6443", "certificate-authority": "ca.crt"}},
            {"name": "far", "cluster": {"server": "https://far:443", "insecure-skip-tls-verify": True}},
        ],
        "users": [
            {"name": "me", "user": user or {"client-certificate": "me.crt", "client-key": "me.key"}},
            {"name": "them", "user": {"token": "t0k"}},
        ],
        **extra,
    }
    path.write_text(yaml.safe_dump(document))
    return path


def test_a_kubeconfig_context_gives_server_ca_and_client_certificate_relative_to_the_file(tmp_path: Path) -> None:
    found = kubeconfig_credentials([kubeconfig(tmp_path / "config")])
    assert found.server == "https://127.0.0.1:6443"
    assert found.ca_file == str(tmp_path / "ca.crt")
    assert (found.cert_file, found.key_file) == (str(tmp_path / "me.crt"), str(tmp_path / "me.key"))
    assert found.namespace == "team" and found.token is None and not found.insecure


def test_embedded_data_tokens_and_insecure_clusters_are_read(tmp_path: Path) -> None:
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    data = kubeconfig(
        tmp_path / "config",
        user={
            "client-certificate-data": base64.b64encode(b"CERT").decode(),
            "client-key-data": base64.b64encode(b"KEY").decode(),
        },
    )
    document = yaml.safe_load(data.read_text())
    document["clusters"][0]["cluster"] = {
        "server": "https://127.0.0.1:6443",
        "certificate-authority-data": base64.b64encode(pem.encode()).decode(),
    }
    data.write_text(yaml.safe_dump(document))
    found = kubeconfig_credentials([data])
    assert (found.ca_data, found.ca_file) == (pem, None)
    assert (found.cert_data, found.key_data) == (b"CERT", b"KEY")
    other = kubeconfig_credentials([kubeconfig(tmp_path / "other", current="other")])
    assert (other.server, other.token, other.insecure, other.namespace) == ("https://far:443", "t0k", True, None)


def test_files_merge_as_kubectl_merges_them_the_first_value_wins(tmp_path: Path) -> None:
    first = tmp_path / "first"
    first.write_text(yaml.safe_dump({"current-context": "other", "users": [{"name": "them", "user": {"token": "a"}}]}))
    second = kubeconfig(tmp_path / "second")
    found = kubeconfig_credentials([first, second])
    assert (found.server, found.token) == ("https://far:443", "a")


@pytest.mark.parametrize(
    "user",
    [
        {"exec": {"command": "aws", "args": ["eks", "get-token"]}},
        {"auth-provider": {"name": "oidc"}},
        {"username": "admin", "password": "secret"},
    ],
)
def test_a_user_entry_the_operator_cannot_use_is_refused_by_name(tmp_path: Path, user: dict[str, Any]) -> None:
    with pytest.raises(CredentialsError) as refused:
        kubeconfig_credentials([kubeconfig(tmp_path / "config", user=user)])
    assert "kubeconfig user me" in str(refused.value) and next(iter(user)) in str(refused.value)
    assert "secret" not in str(refused.value)


def test_no_current_context_or_no_kubeconfig_at_all_is_a_credentials_error(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="no current context"):
        kubeconfig_credentials([kubeconfig(tmp_path / "config", current="gone")])
    with pytest.raises(CredentialsError, match="no service account and no kubeconfig"):
        load_credentials({"HOME": str(tmp_path)}, service_account_dir=tmp_path / "none")


def test_in_a_pod_the_service_account_is_used_first_and_its_token_file_kept(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("sa-token\n")
    (tmp_path / "ca.crt").write_text("PEM")
    (tmp_path / "namespace").write_text("dockyard-system")
    environ = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    config = kubeconfig(tmp_path / "config")
    found = load_credentials({**environ, "KUBECONFIG": str(config)}, service_account_dir=tmp_path)
    assert found == Credentials(
        server="https://10.96.0.1:443",
        ca_file=str(tmp_path / "ca.crt"),
        token_file=str(tmp_path / "token"),
        namespace="dockyard-system",
    )
    assert found.current_token() == "sa-token"
    ipv6 = in_cluster_credentials({**environ, "KUBERNETES_SERVICE_HOST": "fd00::1"}, tmp_path)
    assert ipv6 is not None and ipv6.server == "https://[fd00::1]:443"
    # Outside a pod (no service host), the kubeconfig.
    assert load_credentials({"KUBECONFIG": str(config)}, service_account_dir=tmp_path).server.endswith(":6443")


class Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]]
    answers: dict[str, tuple[int, dict[str, Any]]]

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.seen.append(
            {
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers),
                "body": json.loads(self.rfile.read(length)) if length else None,
            }
        )
        status, body = self.answers.get(self.path.split("?")[0], (200, {"kind": "Status", "ok": True}))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = _answer

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[Recorder]]]:
    handler = type("Handler", (Recorder,), {"seen": [], "answers": {}})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()


def test_a_request_carries_the_token_the_query_and_the_json_body(server: tuple[str, type[Recorder]]) -> None:
    url, handler = server
    api = ApiServer(Credentials(server=url + "/", token="t0k"), user_agent="dockyard-test")
    answer = api.call(
        "PATCH",
        "/apis/apps/v1/namespaces/team/deployments/hub",
        query=[("fieldManager", "dockyard"), ("force", True), ("labelSelector", ""), ("limit", None)],
        body={"spec": {"replicas": 1}},
        content_type="application/apply-patch+yaml",
    )
    assert answer == {"kind": "Status", "ok": True}
    (seen,) = handler.seen
    assert seen["path"] == "/apis/apps/v1/namespaces/team/deployments/hub?fieldManager=dockyard&force=true"
    assert seen["headers"]["Authorization"] == "Bearer t0k"
    assert seen["headers"]["Content-Type"] == "application/apply-patch+yaml"
    assert seen["headers"]["User-Agent"] == "dockyard-test"
    assert seen["body"] == {"spec": {"replicas": 1}}


def test_an_error_status_raises_with_the_api_servers_message(server: tuple[str, type[Recorder]]) -> None:
    url, handler = server
    handler.answers["/api/v1/namespaces/team/secrets/gone"] = (
        422,
        {"kind": "Status", "message": "Secret is invalid: data.x", "code": 422},
    )
    api = ApiServer(Credentials(server=url))
    with pytest.raises(ApiError) as failed:
        api.call("GET", "/api/v1/namespaces/team/secrets/gone")
    assert failed.value.status == 422 and failed.value.message == "Secret is invalid: data.x"
    assert "Authorization" not in handler.seen[0]["headers"]  # no credentials, none sent
    assert ApiError(503, "Service Unavailable", "not json").message == "503 Service Unavailable"


def test_a_token_file_is_read_again_after_a_minute(
    server: tuple[str, type[Recorder]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dockyard.core.apiserver as apiserver

    url, handler = server
    token = tmp_path / "token"
    token.write_text("first\n")
    now = [1000.0]
    monkeypatch.setattr(apiserver.time, "monotonic", lambda: now[0])
    api = ApiServer(Credentials(server=url, token_file=str(token)))
    api.call("GET", "/version")
    token.write_text("rotated\n")
    now[0] += 30
    api.call("GET", "/version")
    now[0] += apiserver.TOKEN_RELOAD_SECONDS
    api.call("GET", "/version")
    assert [s["headers"]["Authorization"] for s in handler.seen] == ["Bearer first", "Bearer first", "Bearer rotated"]


def test_the_operator_process_loads_neither_the_kubernetes_package_nor_dulwich() -> None:
    """Memory the operator never uses: the kubernetes package's generated models (its own client
    is `core/apiserver.py`) and dulwich (only the build pod's fetch container fetches git)."""
    probe = (
        "import sys, dockyard.__main__; "
        "print(sorted({m.split('.')[0] for m, v in sys.modules.items() if v is not None} & {'kubernetes', 'dulwich'}))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def _client_certificate(ca: KeyPair, common_name: str) -> KeyPair:
    """A client certificate signed by `ca` (no extended key usage: good for client auth)."""
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(x509.load_pem_x509_certificate(ca.cert_pem).subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return KeyPair(key_pem, cert.public_bytes(serialization.Encoding.PEM))


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, KeyPair, type[Recorder]]]:
    """An HTTPS server on 127.0.0.1 whose certificate a fresh CA signed, which requires a client
    certificate from that CA and records its common name."""
    ca = issue_ca("apiserver-test-ca")
    serving = issue_serving_cert(ca, ["127.0.0.1"])
    (tmp_path / "tls.crt").write_bytes(serving.cert_pem)
    (tmp_path / "tls.key").write_bytes(serving.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(tmp_path / "tls.crt"), str(tmp_path / "tls.key"))
    context.load_verify_locations(cadata=ca.cert_pem.decode())
    context.verify_mode = ssl.CERT_REQUIRED

    class Peer(Recorder):
        def _answer(self) -> None:
            subject = dict(field for rdn in self.connection.getpeercert()["subject"] for field in rdn)  # type: ignore[union-attr]
            self.seen.append({"client": subject["commonName"]})
            data = b"{}"
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = _answer

    handler = type("Handler", (Peer,), {"seen": [], "answers": {}})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}", ca, handler
    httpd.shutdown()


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")  # the insecure case, on purpose
def test_tls_checks_the_server_against_the_ca_and_presents_the_client_certificate(
    tls_server: tuple[str, KeyPair, type[Recorder]], tmp_path: Path
) -> None:
    url, ca, handler = tls_server
    me = _client_certificate(ca, "me")
    ApiServer(Credentials(server=url, ca_data=ca.cert_pem.decode(), cert_data=me.cert_pem, key_data=me.key_pem)).call(
        "GET", "/version"
    )
    (tmp_path / "me.crt").write_bytes(me.cert_pem)
    (tmp_path / "me.key").write_bytes(me.key_pem)
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
    from_files = Credentials(
        server=url,
        ca_file=str(tmp_path / "ca.crt"),
        cert_file=str(tmp_path / "me.crt"),
        key_file=str(tmp_path / "me.key"),
    )
    ApiServer(from_files).call("GET", "/version")
    assert [seen["client"] for seen in handler.seen] == ["me", "me"]
    # Another CA's server is refused, unless the kubeconfig says insecure-skip-tls-verify.
    other = issue_ca("someone-else")
    with pytest.raises(urllib3.exceptions.HTTPError):
        ApiServer(
            Credentials(server=url, ca_data=other.cert_pem.decode(), cert_data=me.cert_pem, key_data=me.key_pem)
        ).call("GET", "/version")
    ApiServer(Credentials(server=url, insecure=True, cert_data=me.cert_pem, key_data=me.key_pem)).call(
        "GET", "/version"
    )
    assert len(handler.seen) == 3


def test_credentials_never_show_their_secrets() -> None:
    shown = repr(Credentials(server="https://h", token="t0k-secret", key_data=b"PRIVATE-KEY"))
    assert "t0k-secret" not in shown and "PRIVATE-KEY" not in shown and "https://h" in shown
