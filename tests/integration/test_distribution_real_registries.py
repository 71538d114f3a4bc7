"""The registry client against the real registry binaries (distribution 2.8 from Debian and 3.x,
the default image's version) running the operator's rendered config, TLS and Dockyard's token
service: artifacts and logs pushed, pulled and deleted; TLS checked against the login server's
name while dialling the loopback; and the build pod's fetch entry point run as a subprocess."""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_registry import _apply, crds, operator  # noqa: F401  (fixtures)

from dockyard.builds.artifacts import SOURCES_REPOSITORY, pull_context, push_context
from dockyard.builds.context import pack_context
from dockyard.builds.logstore import ArtifactReference, delete_log, read_log, store_log
from dockyard.core.names import RegistryNames
from dockyard.distribution import (
    Basic,
    Bearer,
    DistributionClient,
    RegistryNotFound,
    RegistryUnauthorized,
    RegistryUnreachable,
)
from dockyard.distribution.client import DialTransport
from realregistry import LocalRegistry, until, write_oci_image
from realregistry import read_configmap as _configmap
from realregistry import read_secret as _secret

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
REAL = RegistryNames("real")


class Served:
    """A real registry for Registry `real`, and what a client needs to reach it by its name."""

    def __init__(self, local: LocalRegistry, namespace: str, ca_pem: str, password: str) -> None:
        self.local, self.ca_pem, self.password = local, ca_pem, password
        self.hostname = f"real.{namespace}.svc"
        self.host = f"{self.hostname}:{local.port}"

    def client(self, credentials: Basic | Bearer | str | None = "admin", host: str | None = None) -> DistributionClient:
        """A client dialling the loopback for the login server's name (the admin's by default)."""
        return DistributionClient(
            host or self.host,
            connect_to="127.0.0.1",
            ca_pem=self.ca_pem,
            credentials=Basic("real", self.password) if credentials == "admin" else credentials,  # type: ignore[arg-type]
        )


@pytest.fixture(params=["2.8", "3.x"])
def served(
    cluster: Any, crds: None, operator: str, namespace: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Served]:
    binary = "docker-registry" if request.param == "2.8" else str(request.getfixturevalue("distribution_v3"))
    # The realm names the login server's host (another port), as the operator renders it: the
    # client must map it to the loopback too and verify TLS against that name.
    local = LocalRegistry(cluster, namespace, "real", tmp_path, binary, realm_host=f"real.{namespace}.svc")
    _apply(cluster, namespace, "real", {"sku": "Standard", "adminUser": {"enabled": True}})
    local.start()
    try:
        ca = until(lambda: _configmap(cluster, namespace, REAL.ca_config_map), "the CA ConfigMap")
        admin = until(lambda: _secret(cluster, namespace, REAL.admin), "the admin Secret")
        yield Served(local, namespace, ca["ca.crt"], admin["password"])
    finally:
        local.stop()


def _context(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM scratch\nCOPY src /src\n")
    (root / "src" / "app.txt").write_text("hello from the context\n")
    (root / "secret.env").write_text("TOKEN=do-not-ship\n")
    (root / ".dockerignore").write_text("*.env\n")
    return root


def test_a_context_round_trips_through_token_auth_and_tls(served: Served, tmp_path: Path) -> None:
    packed = pack_context(_context(tmp_path / "ctx"))
    with served.client() as client:
        client.ping()
        digest = push_context(client, packed)
        assert push_context(client, packed) == digest  # same context, same artifact
        assert pull_context(client, SOURCES_REPOSITORY, digest) == packed
        assert client.head_manifest(SOURCES_REPOSITORY, digest) == digest
        assert client.list_tags(SOURCES_REPOSITORY) == []  # uploaded by digest only
    with served.client(credentials=None) as anonymous:
        with pytest.raises(RegistryUnauthorized):
            pull_context(anonymous, SOURCES_REPOSITORY, digest)
    with served.client(credentials=Basic("real", "not-the-password")) as wrong:
        with pytest.raises(RegistryUnauthorized) as refused:
            wrong.ping()
        assert "not-the-password" not in str(refused.value)
    with served.client() as client:
        assert client.delete_manifest(SOURCES_REPOSITORY, digest) is True
        assert client.delete_manifest(SOURCES_REPOSITORY, digest) is False
        with pytest.raises(RegistryNotFound):
            pull_context(client, SOURCES_REPOSITORY, digest)


def test_a_token_minted_elsewhere_is_sent_as_is(served: Served, tmp_path: Path) -> None:
    packed = pack_context(_context(tmp_path / "ctx"))
    with served.client() as client:
        digest = push_context(client, packed)
    # A token from the realm, fetched the way the operator would mint one for a build pod.
    realm = DialTransport(
        httpx.HTTPTransport(verify=ssl.create_default_context(cadata=served.ca_pem)), served.hostname, "127.0.0.1"
    )
    with httpx.Client(transport=realm) as http:
        answer = http.get(
            f"https://{served.hostname}:{served.local.token_port}/token",
            params={"scope": f"repository:{SOURCES_REPOSITORY}:pull"},
            auth=("real", served.password),
        )
    assert answer.status_code == 200, answer.text
    with served.client(credentials=Bearer(answer.json()["token"])) as minted:
        assert pull_context(minted, SOURCES_REPOSITORY, digest) == packed
        with pytest.raises(RegistryUnauthorized):  # a pull token does not push
            push_context(minted, packed + b"more")


def test_logs_are_stored_read_and_deleted_one_run_at_a_time(served: Served) -> None:
    with served.client() as client:
        first = store_log(client, "ca1", "uid-1", "Step 1/1 : FROM scratch\nok\n")
        second = store_log(client, "ca2", "uid-2", "Step 1/1 : FROM scratch\nok\n")
        assert first.startswith(f"{served.host}/dockyard/logs:ca1@sha256:")
        assert sorted(client.list_tags("dockyard/logs")) == ["ca1", "ca2"]
        assert read_log(client, first) == "Step 1/1 : FROM scratch\nok\n"
        assert delete_log(client, first) is True
        assert client.list_tags("dockyard/logs") == ["ca2"]
        assert read_log(client, second) == "Step 1/1 : FROM scratch\nok\n"
        with pytest.raises(RegistryNotFound):
            read_log(client, first)
        assert ArtifactReference.parse(second).tag == "ca2"


def test_tls_is_verified_against_the_login_server_not_the_address(served: Served) -> None:
    with served.client(host=f"impostor.example:{served.local.port}") as wrong_name:
        with pytest.raises(RegistryUnreachable, match="(?i)certificate"):
            wrong_name.ping()
    with DistributionClient(served.host, connect_to="127.0.0.1") as system_cas_only:
        with pytest.raises(RegistryUnreachable, match="(?i)certificate"):
            system_cas_only.ping()


def _fetch(served: Served, tmp_path: Path, digest: str, config: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "ca.crt").write_text(served.ca_pem)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "dockyard.builds.fetch",
            "--registry",
            served.host,
            "--repository",
            SOURCES_REPOSITORY,
            "--digest",
            digest,
            "--into",
            str(tmp_path / "workspace"),
            "--docker-config",
            str(tmp_path / "config.json"),
            "--ca-file",
            str(tmp_path / "ca.crt"),
            "--connect-to",
            "127.0.0.1",
            "--termination-log",
            str(tmp_path / "termination-log"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT / "operator")},
    )


def test_the_fetch_entry_point_unpacks_an_uploaded_context(served: Served, tmp_path: Path) -> None:
    with served.client() as client:
        digest = push_context(client, pack_context(_context(tmp_path / "ctx")))
    auth = base64.b64encode(f"real:{served.password}".encode()).decode()
    fetched = _fetch(served, tmp_path, digest, {"auths": {served.host: {"auth": auth}}})
    assert fetched.returncode == 0, fetched.stderr
    workspace = tmp_path / "workspace"
    assert (workspace / "src" / "app.txt").read_text() == "hello from the context\n"
    assert (workspace / "Dockerfile").exists() and (workspace / ".dockerignore").exists()
    assert not (workspace / "secret.env").exists()
    assert served.password not in fetched.stdout + fetched.stderr


def test_the_fetch_entry_point_fails_in_one_line_without_secrets(served: Served, tmp_path: Path) -> None:
    with served.client() as client:
        digest = push_context(client, pack_context(_context(tmp_path / "ctx")))
    wrong = base64.b64encode(b"real:wrong-password").decode()
    refused = _fetch(served, tmp_path, digest, {"auths": {served.host: {"auth": wrong}}})
    assert refused.returncode == 1
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "refused" in refused.stderr and "wrong-password" not in refused.stderr + refused.stdout
    assert (tmp_path / "termination-log").read_text().strip() == refused.stderr.strip()
    missing = _fetch(
        served,
        tmp_path,
        "sha256:" + "0" * 64,
        {"auths": {served.host: {"username": "real", "password": served.password}}},
    )
    assert missing.returncode == 1 and "MANIFEST_UNKNOWN" in missing.stderr
    assert not (tmp_path / "workspace").exists()


def test_the_push_entry_point_pushes_a_layout_as_built(served: Served, tmp_path: Path) -> None:
    """A task run's push step: the image a build step left as an OCI layout, under two tags, with
    the `repo:tag@digest` lines Kaniko's digest file would hold in the termination log."""
    write_oci_image(tmp_path / "layout")
    index = json.loads((tmp_path / "layout" / "index.json").read_text())
    built = index["manifests"][0]["digest"]
    auth = base64.b64encode(f"real:{served.password}".encode()).decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {served.host: {"auth": auth}}}))
    (tmp_path / "ca.crt").write_text(served.ca_pem)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dockyard.builds.push",
            f"--docker-config={tmp_path / 'config.json'}",
            f"--registry-certificate={served.host}={tmp_path / 'ca.crt'}",
            f"--connect-to={served.host}=127.0.0.1",
            f"--termination-log={tmp_path / 'termination-log'}",
            f"--layout={tmp_path / 'layout'}",
            f"--destination={served.host}/team/web:ca1",
            f"--destination={served.host}/team/web:latest",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT / "operator")},
    )
    assert done.returncode == 0, done.stderr
    lines = [f"{served.host}/team/web:ca1@{built}", f"{served.host}/team/web:latest@{built}"]
    assert (tmp_path / "termination-log").read_text().splitlines() == lines
    assert served.password not in done.stdout + done.stderr
    with served.client() as client:
        assert client.head_manifest("team/web", "ca1") == built
        assert client.head_manifest("team/web", "latest") == built
