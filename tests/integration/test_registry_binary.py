"""The operator's rendered config run by the real registry binary (Debian's docker-registry,
CNCF distribution 2.8) beside the real token service, driven by skopeo. Only paths and listen
addresses are changed for local processes; everything else is what the operator rendered."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from test_registry import _apply, _until, crds, operator  # noqa: F401  (fixtures)

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _secret(cluster: Any, namespace: str, name: str) -> dict[str, str] | None:
    result = cluster.kubectl("get", "secret", name, "-n", namespace, "-o", "json", check=False)
    if result.returncode != 0:
        return None
    return {k: base64.b64decode(v).decode() for k, v in json.loads(result.stdout)["data"].items()}


def _configmap(cluster: Any, namespace: str, name: str) -> dict[str, str] | None:
    result = cluster.kubectl("get", "configmap", name, "-n", namespace, "-o", "json", check=False)
    return json.loads(result.stdout)["data"] if result.returncode == 0 else None


def _oci_image(path: Path) -> None:
    """A one-layer OCI image layout for skopeo to push."""
    import hashlib
    import io
    import tarfile

    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes) -> tuple[str, int]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return f"sha256:{digest}", len(data)

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"hello\n"))
    layer, layer_size = blob(buffer.getvalue())
    config, config_size = blob(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer]}}).encode())
    manifest = {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_size}],
    }
    digest, size = blob(json.dumps(manifest).encode())
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": size,
        "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}))
    (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')


class LocalRegistry:
    """docker-registry + token service running what the operator rendered for one Registry."""

    def __init__(self, cluster: Any, namespace: str, name: str, workdir: Path) -> None:
        self.cluster, self.namespace, self.name, self.workdir = cluster, namespace, name, workdir
        self.port, self.token_port = _port(), _port()
        self.processes: list[subprocess.Popen[bytes]] = []

    def container_env(self) -> dict[str, str]:
        """The registry container's environment as the kubelet would build it: Secret references
        read, `$(NAME)` references to earlier variables expanded."""
        deployment = _until(
            lambda: (r := self.cluster.kubectl("get", "deployment", self.name, "-n", self.namespace, "-o", "json", check=False))
            .returncode == 0 and json.loads(r.stdout),
            "the registry Deployment",
        )
        container = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "registry")
        env: dict[str, str] = {}
        for var in container.get("env", []):
            if "valueFrom" in var:
                ref = var["valueFrom"]["secretKeyRef"]
                secret = _until(lambda r=ref: _secret(self.cluster, self.namespace, r["name"]), f"Secret {ref['name']}")
                env[var["name"]] = secret[ref["key"]]
            else:
                env[var["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), var.get("value", ""))
        return env

    def files(self) -> dict[str, Any]:
        return {
            "config": _configmap(self.cluster, self.namespace, f"{self.name}-config"),
            "auth": _secret(self.cluster, self.namespace, f"{self.name}-auth"),
            "signer": _secret(self.cluster, self.namespace, f"{self.name}-token-signer"),
            "http": _secret(self.cluster, self.namespace, f"{self.name}-http-secret"),
            "tls": _secret(self.cluster, self.namespace, f"{self.name}-tls"),
        }

    def start(self) -> None:
        files = _until(lambda: (f := self.files()) and all(f.values()) and f, "the registry's rendered config and secrets")
        work = self.workdir
        for name, text in {
            "policy.json": files["auth"]["policy.json"], "signer.crt": files["signer"]["tls.crt"],
            "signer.key": files["signer"]["tls.key"], "tls.crt": files["tls"]["tls.crt"], "tls.key": files["tls"]["tls.key"],
            "ca.crt": files["tls"]["ca.crt"],
        }.items():
            (work / name).write_text(text)
        config = yaml.safe_load(files["config"]["config.yml"])
        config["storage"]["filesystem"]["rootdirectory"] = str(work / "data")
        config["http"]["addr"] = f"127.0.0.1:{self.port}"
        config["http"]["debug"]["addr"] = f"127.0.0.1:{_port()}"
        config["http"]["tls"]["certificate"] = str(work / "tls.crt")
        config["http"]["tls"]["key"] = str(work / "tls.key")
        config["auth"]["token"]["rootcertbundle"] = str(work / "signer.crt")
        config["auth"]["token"]["realm"] = f"https://127.0.0.1:{self.token_port}/token"
        (work / "config.yml").write_text(yaml.safe_dump(config))
        env = os.environ | self.container_env() | {"PYTHONPATH": str(ROOT / "operator")}
        log = open(work / "processes.log", "ab")
        self.processes.append(subprocess.Popen(["docker-registry", "serve", str(work / "config.yml")], env=env, stdout=log, stderr=log))
        self.processes.append(subprocess.Popen(
            [sys.executable, "-m", "dockyard.auth", "--policy", str(work / "policy.json"),
             "--signing-key", str(work / "signer.key"), "--signing-cert", str(work / "signer.crt"),
             "--host", "127.0.0.1", "--port", str(self.token_port),
             "--tls-cert", str(work / "tls.crt"), "--tls-key", str(work / "tls.key"),
             "--tls-min-version", "tls1.2"],
            env=env, stdout=log, stderr=log,
        ))
        for port in (self.port, self.token_port):
            _until(lambda p=port: _connects(p), f"port {port} to listen", 20)

    def refresh_policy(self) -> None:
        policy = _until(lambda: _secret(self.cluster, self.namespace, f"{self.name}-auth"), "auth secret")
        (self.workdir / "policy.json").write_text(policy["policy.json"])

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
            process.wait(timeout=10)

    def skopeo(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=60)

    def push(self, creds: str | None, tag: str, repository: str = "team/app") -> subprocess.CompletedProcess[str]:
        auth = ["--dest-creds", creds] if creds else ["--dest-no-creds"]
        return self.skopeo("copy", "--dest-tls-verify=false", *auth, f"oci:{self.workdir / 'image'}:v1",
                           f"docker://127.0.0.1:{self.port}/{repository}:{tag}")

    def delete(self, creds: str, tag: str, repository: str = "team/app") -> subprocess.CompletedProcess[str]:
        return self.skopeo("delete", "--tls-verify=false", "--creds", creds, f"docker://127.0.0.1:{self.port}/{repository}:{tag}")

    def pull(self, creds: str | None, tag: str) -> subprocess.CompletedProcess[str]:
        auth = ["--creds", creds] if creds else ["--no-creds"]
        return self.skopeo("inspect", "--tls-verify=false", *auth, f"docker://127.0.0.1:{self.port}/team/app:{tag}")


def _connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture
def local_registry(cluster: Any, crds: None, operator: str, namespace: str, tmp_path: Path) -> Iterator[LocalRegistry]:
    _oci_image(tmp_path / "image")
    registry = LocalRegistry(cluster, namespace, "real", tmp_path)
    _apply(cluster, namespace, "real", {"sku": "Standard", "adminUser": {"enabled": True}})
    registry.start()
    try:
        yield registry
    finally:
        registry.stop()


def test_admin_pushes_and_pulls_others_are_refused(local_registry: LocalRegistry, cluster: Any, namespace: str) -> None:
    admin = _secret(cluster, namespace, "real-admin")
    assert admin is not None and admin["username"] == "real"
    pushed = local_registry.push(f"real:{admin['password']}", "v1")
    assert pushed.returncode == 0, pushed.stderr
    pulled = local_registry.pull(f"real:{admin['password2']}", "v1")
    assert pulled.returncode == 0, pulled.stderr
    assert json.loads(pulled.stdout)["Name"].endswith("/team/app")
    assert local_registry.pull(None, "v1").returncode != 0
    wrong = local_registry.pull("real:not-the-password", "v1")
    assert wrong.returncode != 0 and "unauthorized" in wrong.stderr.lower()
    assert local_registry.push(None, "v2").returncode != 0


def test_anonymous_pull_allows_pull_but_not_push(local_registry: LocalRegistry, cluster: Any, namespace: str) -> None:
    admin = _secret(cluster, namespace, "real-admin")
    assert admin is not None
    assert local_registry.push(f"real:{admin['password']}", "v1").returncode == 0
    _apply(cluster, namespace, "real", {"sku": "Standard", "adminUser": {"enabled": True}, "anonymousPull": True})
    _until(lambda: '"anonymous":[{' in (_secret(cluster, namespace, "real-auth") or {}).get("policy.json", ""), "anonymous grants")
    local_registry.refresh_policy()
    pulled = local_registry.pull(None, "v1")
    assert pulled.returncode == 0, pulled.stderr
    assert local_registry.push(None, "anon").returncode != 0


def test_regenerating_password2_replaces_only_that_one(local_registry: LocalRegistry, cluster: Any, namespace: str) -> None:
    before = _secret(cluster, namespace, "real-admin")
    assert before is not None
    cluster.kubectl("annotate", "registry", "real", "-n", namespace, "dockyard.dev/regenerate-password=password2")
    after = _until(
        lambda: (s := _secret(cluster, namespace, "real-admin")) and s["password2"] != before["password2"] and s,
        "password2 to be regenerated",
    )
    assert after["password"] == before["password"]
    _until(
        lambda: before["password2"] not in json.dumps(_secret(cluster, namespace, "real-auth")),
        "the policy to be re-rendered",
    )
    local_registry.refresh_policy()
    assert local_registry.pull(f"real:{before['password2']}", "v1").returncode != 0
    assert local_registry.push(f"real:{after['password2']}", "v1").returncode == 0
    assert local_registry.pull(f"real:{before['password']}", "v1").returncode == 0


def _handshake(port: int, ca: Path, hostname: str, version: ssl.TLSVersion) -> str:
    """A client able to speak exactly `version` (security level 0 lets OpenSSL offer TLS 1.1), so a
    refusal is the server's."""
    context = ssl.create_default_context(cafile=str(ca))
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = version
        context.maximum_version = version
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=hostname) as tls:
            return str(tls.version())


def test_tls_refuses_1_1_and_serves_1_2_with_the_published_ca(local_registry: LocalRegistry, cluster: Any, namespace: str) -> None:
    ca = _configmap(cluster, namespace, "real-ca")
    assert ca is not None
    (local_registry.workdir / "published-ca.crt").write_text(ca["ca.crt"])
    host = f"real.{namespace}.svc"
    for port in (local_registry.port, local_registry.token_port):
        assert _handshake(port, local_registry.workdir / "published-ca.crt", host, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
        with pytest.raises(ssl.SSLError, match="(?i)version|alert|EOF"):
            _handshake(port, local_registry.workdir / "published-ca.crt", host, ssl.TLSVersion.TLSv1_1)


def test_disabling_the_admin_user_removes_its_access(local_registry: LocalRegistry, cluster: Any, namespace: str) -> None:
    admin = _secret(cluster, namespace, "real-admin")
    assert admin is not None
    assert local_registry.push(f"real:{admin['password']}", "v1").returncode == 0
    _apply(cluster, namespace, "real", {"sku": "Standard", "adminUser": {"enabled": False}})
    _until(lambda: _secret(cluster, namespace, "real-admin") is None, "the admin Secret to be deleted")
    _until(lambda: _secret(cluster, namespace, "real-pull") is None, "the pull Secret to be deleted")
    _until(lambda: '"users":[]' in (_secret(cluster, namespace, "real-auth") or {}).get("policy.json", ""), "a policy without users")
    local_registry.refresh_policy()
    refused = local_registry.pull(f"real:{admin['password']}", "v1")
    assert refused.returncode != 0 and "unauthorized" in refused.stderr.lower()
