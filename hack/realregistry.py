"""The real registry binary (Debian's docker-registry, CNCF distribution 2.8, or distribution 3.x built
by hack/build-tools.sh: the version of the default `registry:3` image) and the real token
service, run as local processes with exactly what the operator rendered for one Registry: its
ConfigMap, its Secrets and its container environment (Secret references read, `$(NAME)` expanded).
Only paths, listen addresses and the token realm change. Used by integration tests and benchmarks.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from dockyard.core.names import RegistryNames
from localcluster.ports import free_port

ROOT = Path(__file__).resolve().parents[1]


def until(check: Callable[[], Any], what: str, deadline_s: float = 60) -> Any:
    """The first truthy value of `check()`, polled; TimeoutError after `deadline_s`."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise TimeoutError(f"timed out waiting for {what}")


def read_secret(cluster: Any, namespace: str, name: str) -> dict[str, str] | None:
    result = cluster.kubectl("get", "secret", name, "-n", namespace, "-o", "json", check=False)
    if result.returncode != 0:
        return None
    return {k: base64.b64decode(v).decode() for k, v in json.loads(result.stdout)["data"].items()}


def read_configmap(cluster: Any, namespace: str, name: str) -> dict[str, str] | None:
    result = cluster.kubectl("get", "configmap", name, "-n", namespace, "-o", "json", check=False)
    return json.loads(result.stdout)["data"] if result.returncode == 0 else None


def write_oci_image(path: Path) -> None:
    """A one-layer OCI image layout for skopeo to push."""
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
    config, config_size = blob(
        json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer]}}).encode()
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_size}],
    }
    digest, size = blob(json.dumps(manifest).encode())
    (path / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": digest,
                        "size": size,
                        "annotations": {"org.opencontainers.image.ref.name": "v1"},
                    }
                ],
            }
        )
    )
    (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')


class LocalRegistry:
    """A registry binary + token service running what the operator rendered for one Registry."""

    def __init__(
        self,
        cluster: Any,
        namespace: str,
        name: str,
        workdir: Path,
        binary: str = "docker-registry",
        realm_host: str = "127.0.0.1",
        token_args: tuple[str, ...] = (),
    ) -> None:
        """`realm_host` names the token service in the realm; a client that checks the serving
        certificate needs one of its names there (and a way to reach it on the loopback).
        `token_args` are added to the token service's command line (e.g. `--registry`,
        `--namespace`, `--kubeconfig`, `--snapshot` for Tokens and ScopeMaps)."""
        self.binary, self.realm_host, self.token_args = binary, realm_host, token_args
        self.cluster, self.namespace, self.name, self.workdir = cluster, namespace, name, workdir
        self.port, self.token_port = free_port(), free_port()
        self.processes: list[subprocess.Popen[bytes]] = []
        self.env: dict[str, str] = {}

    def container_env(self) -> dict[str, str]:
        """The registry container's environment as the kubelet would build it: Secret references
        read, `$(NAME)` references to earlier variables expanded."""
        deployment = until(
            lambda: (
                (
                    r := self.cluster.kubectl(
                        "get", "deployment", self.name, "-n", self.namespace, "-o", "json", check=False
                    )
                ).returncode
                == 0
                and json.loads(r.stdout)
            ),
            "the registry Deployment",
        )
        container = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "registry")
        env: dict[str, str] = {}
        for var in container.get("env", []):
            if "valueFrom" in var:
                ref = var["valueFrom"]["secretKeyRef"]
                secret = until(
                    lambda r=ref: read_secret(self.cluster, self.namespace, r["name"]), f"Secret {ref['name']}"
                )
                env[var["name"]] = secret[ref["key"]]
            else:
                env[var["name"]] = re.sub(
                    r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), var.get("value", "")
                )
        return env

    def files(self) -> dict[str, Any]:
        return {
            "config": read_configmap(self.cluster, self.namespace, RegistryNames(self.name).config),
            "auth": read_secret(self.cluster, self.namespace, RegistryNames(self.name).auth),
            "signer": read_secret(self.cluster, self.namespace, RegistryNames(self.name).token_signer),
            "http": read_secret(self.cluster, self.namespace, RegistryNames(self.name).http_secret),
            "tls": read_secret(self.cluster, self.namespace, RegistryNames(self.name).tls),
        }

    def start(self) -> None:
        files = until(
            lambda: (f := self.files()) and all(f.values()) and f, "the registry's rendered config and secrets"
        )
        work = self.workdir
        for name, text in {
            "policy.json": files["auth"]["policy.json"],
            "signer.crt": files["signer"]["tls.crt"],
            "signer.key": files["signer"]["tls.key"],
            "tls.crt": files["tls"]["tls.crt"],
            "tls.key": files["tls"]["tls.key"],
            "ca.crt": files["tls"]["ca.crt"],
        }.items():
            (work / name).write_text(text)
        config = yaml.safe_load(files["config"]["config.yml"])
        config["storage"]["filesystem"]["rootdirectory"] = str(work / "data")
        config["http"]["addr"] = f"127.0.0.1:{self.port}"
        config["http"]["debug"]["addr"] = f"127.0.0.1:{free_port()}"
        config["http"]["tls"]["certificate"] = str(work / "tls.crt")
        config["http"]["tls"]["key"] = str(work / "tls.key")
        config["auth"]["token"]["rootcertbundle"] = str(work / "signer.crt")
        config["auth"]["token"]["realm"] = f"https://{self.realm_host}:{self.token_port}/token"
        (work / "config.yml").write_text(yaml.safe_dump(config))
        env = os.environ | self.container_env() | {"PYTHONPATH": str(ROOT / "operator")}
        log = open(work / "processes.log", "ab")
        self.processes.append(
            subprocess.Popen([self.binary, "serve", str(work / "config.yml")], env=env, stdout=log, stderr=log)
        )
        self.env = env
        self.start_token_service()
        for port in (self.port, self.token_port):
            until(lambda p=port: connects(p), f"port {port} to listen", 20)

    def start_token_service(self, *extra: str) -> None:
        """Start the token service (again, after `stop_token_service`), with `extra` arguments."""
        work = self.workdir
        log = open(work / "processes.log", "ab")
        self.token_process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dockyard.auth",
                "--policy",
                str(work / "policy.json"),
                "--signing-key",
                str(work / "signer.key"),
                "--signing-cert",
                str(work / "signer.crt"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.token_port),
                "--tls-cert",
                str(work / "tls.crt"),
                "--tls-key",
                str(work / "tls.key"),
                "--tls-min-version",
                "tls1.2",
                *self.token_args,
                *extra,
            ],
            env=self.env,
            stdout=log,
            stderr=log,
        )
        self.processes.append(self.token_process)
        until(lambda: connects(self.token_port), f"port {self.token_port} to listen", 20)

    def stop_token_service(self) -> None:
        self.token_process.terminate()
        self.token_process.wait(timeout=10)
        self.processes.remove(self.token_process)

    def refresh_policy(self) -> None:
        policy = until(lambda: read_secret(self.cluster, self.namespace, RegistryNames(self.name).auth), "auth secret")
        (self.workdir / "policy.json").write_text(policy["policy.json"])

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
            process.wait(timeout=10)

    def skopeo(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=60)

    def push(self, creds: str | None, tag: str, repository: str = "team/app") -> subprocess.CompletedProcess[str]:
        auth = ["--dest-creds", creds] if creds else ["--dest-no-creds"]
        return self.skopeo(
            "copy",
            "--dest-tls-verify=false",
            *auth,
            f"oci:{self.workdir / 'image'}:v1",
            f"docker://127.0.0.1:{self.port}/{repository}:{tag}",
        )

    def delete(self, creds: str, tag: str, repository: str = "team/app") -> subprocess.CompletedProcess[str]:
        return self.skopeo(
            "delete", "--tls-verify=false", "--creds", creds, f"docker://127.0.0.1:{self.port}/{repository}:{tag}"
        )

    def pull(self, creds: str | None, tag: str) -> subprocess.CompletedProcess[str]:
        auth = ["--creds", creds] if creds else ["--no-creds"]
        return self.skopeo("inspect", "--tls-verify=false", *auth, f"docker://127.0.0.1:{self.port}/team/app:{tag}")


def connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False
