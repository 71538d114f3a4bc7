"""The operator's rendered config run by the real registry binary (Debian's docker-registry,
CNCF distribution 2.8, and distribution 3.x built from the module proxy) beside the real token
service, driven by skopeo. Only paths and listen addresses are changed for local processes;
everything else is what the operator rendered."""

from __future__ import annotations

import json
import socket
import ssl
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_registry import _apply, _until, crds, operator  # noqa: F401  (fixtures)

from dockyard.core.names import RegistryNames
from realregistry import LocalRegistry
from realregistry import read_configmap as _configmap
from realregistry import read_secret as _secret
from realregistry import write_oci_image as _oci_image

REAL = RegistryNames("real")

pytestmark = pytest.mark.integration


@pytest.fixture(params=["2.8", "3.x"])
def local_registry(
    cluster: Any, crds: None, operator: str, namespace: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[LocalRegistry]:
    """The Registry `real` run by distribution 2.8 (Debian) and by 3.x (the default image's version)."""
    _oci_image(tmp_path / "image")
    binary = "docker-registry" if request.param == "2.8" else str(request.getfixturevalue("distribution_v3"))
    registry = LocalRegistry(cluster, namespace, "real", tmp_path, binary)
    _apply(cluster, namespace, "real", {"sku": "Standard", "adminUser": {"enabled": True}})
    registry.start()
    try:
        yield registry
    finally:
        registry.stop()


def test_admin_pushes_and_pulls_others_are_refused(local_registry: LocalRegistry, cluster: Any, namespace: str) -> None:
    admin = _secret(cluster, namespace, REAL.admin)
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
    admin = _secret(cluster, namespace, REAL.admin)
    assert admin is not None
    assert local_registry.push(f"real:{admin['password']}", "v1").returncode == 0
    _apply(cluster, namespace, "real", {"sku": "Standard", "adminUser": {"enabled": True}, "anonymousPull": True})
    _until(
        lambda: '"anonymous":[{' in (_secret(cluster, namespace, REAL.auth) or {}).get("policy.json", ""),
        "anonymous grants",
    )
    local_registry.refresh_policy()
    pulled = local_registry.pull(None, "v1")
    assert pulled.returncode == 0, pulled.stderr
    assert local_registry.push(None, "anon").returncode != 0


def test_regenerating_password2_replaces_only_that_one(
    local_registry: LocalRegistry, cluster: Any, namespace: str
) -> None:
    before = _secret(cluster, namespace, REAL.admin)
    assert before is not None
    cluster.kubectl("annotate", "registry", "real", "-n", namespace, "dockyard.dev/regenerate-password=password2")
    after = _until(
        lambda: (s := _secret(cluster, namespace, REAL.admin)) and s["password2"] != before["password2"] and s,
        "password2 to be regenerated",
    )
    assert after["password"] == before["password"]
    _until(
        lambda: before["password2"] not in json.dumps(_secret(cluster, namespace, REAL.auth)),
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


def test_tls_refuses_1_1_and_serves_1_2_with_the_published_ca(
    local_registry: LocalRegistry, cluster: Any, namespace: str
) -> None:
    ca = _configmap(cluster, namespace, REAL.ca_config_map)
    assert ca is not None
    (local_registry.workdir / "published-ca.crt").write_text(ca["ca.crt"])
    host = f"real.{namespace}.svc"
    for port in (local_registry.port, local_registry.token_port):
        assert _handshake(port, local_registry.workdir / "published-ca.crt", host, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
        with pytest.raises(ssl.SSLError, match="(?i)version|alert|EOF"):
            _handshake(port, local_registry.workdir / "published-ca.crt", host, ssl.TLSVersion.TLSv1_1)


def test_disabling_the_admin_user_removes_its_access(
    local_registry: LocalRegistry, cluster: Any, namespace: str
) -> None:
    admin = _secret(cluster, namespace, REAL.admin)
    assert admin is not None
    assert local_registry.push(f"real:{admin['password']}", "v1").returncode == 0
    _apply(cluster, namespace, "real", {"sku": "Standard", "adminUser": {"enabled": False}})
    _until(lambda: _secret(cluster, namespace, REAL.admin) is None, "the admin Secret to be deleted")
    _until(lambda: _secret(cluster, namespace, REAL.pull) is None, "the pull Secret to be deleted")
    _until(
        lambda: '"users":[]' in (_secret(cluster, namespace, REAL.auth) or {}).get("policy.json", ""),
        "a policy without users",
    )
    local_registry.refresh_policy()
    refused = local_registry.pull(f"real:{admin['password']}", "v1")
    assert refused.returncode != 0 and "unauthorized" in refused.stderr.lower()
