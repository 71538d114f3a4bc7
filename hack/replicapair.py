"""Real registries replicating each other, for tests and `make bench`: a home registry and its
replicas as real registry processes (distribution 3.x or Debian's 2.8) running the configs the
operator renders for a Premium Registry and its Replications (`registries/manifests`,
`replication/manifests`), each with its own Dockyard token service on the shared policy and
signer, posting notifications into the real event intake; the replication subscriber and copy
engine in this process, authenticating as the replicator.

Only the Kubernetes lookups are left out: the events token and the replicas' addresses are given
to the intake and the engine directly."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

from dockyard.auth.policy import generate_password
from dockyard.auth.tokens import SigningKey
from dockyard.core.meta import Owner
from dockyard.core.names import RegistryNames
from dockyard.core.pki import KeyPair, issue_ca, issue_serving_cert, issue_signing_key
from dockyard.distribution.client import DistributionClient
from dockyard.distribution.errors import RegistryProtocolError
from dockyard.events.bus import EventBatch
from dockyard.events.intake import Intake, RegistryTokens
from dockyard.events.metrics import register_intake_metrics
from dockyard.models import API_VERSION
from dockyard.models.registry import RegistrySpec
from dockyard.models.replication import ReplicationSpec
from dockyard.registries.manifests.config import (
    RegistryContext,
    build_notification_endpoints,
    build_registry_config,
    tls_secret_name,
)
from dockyard.registries.manifests.secrets import build_auth_policy
from dockyard.replication.access import Endpoint, ReplicatorClients
from dockyard.replication.engine import ReplicationEngine
from dockyard.replication.ledger import HOME
from dockyard.replication.manifests import ReplicaContext, replica_context, replica_notification_endpoints
from dockyard.replication.metrics import register_replication_metrics
from dockyard.replication.placement import Placement, plan_replica
from dockyard.replication.store import LedgerStore
from dockyard.replication.subscriber import ReplicationSubscriber
from realregistry import ROOT, connects, free_port, until

NS, REG, WEST = "team", "hub", "west"
EVENTS_TOKEN = "events-token-for-tests"


def oci_layout(path: Path, platforms: dict[str, bytes], index: bool = False) -> None:
    """An OCI layout tagged `v1`: one image per platform (a one-file layer of the given content);
    with `index`, an image index of them all, else the first image."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    manifests = []
    for platform, content in platforms.items():
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo("content.txt")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar", **blob(buffer.getvalue())}
        config = {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            **blob(
                json.dumps(
                    {
                        "architecture": platform,
                        "os": "linux",
                        "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
                    }
                ).encode()
            ),
        }
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config,
            "layers": [layer],
        }
        manifests.append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **blob(json.dumps(manifest).encode()),
                "platform": {"architecture": platform, "os": "linux"},
            }
        )
    top = manifests[0]
    if index:
        document = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}
        top = {"mediaType": "application/vnd.oci.image.index.v1+json", **blob(json.dumps(document).encode())}
    top = {**top, "annotations": {"org.opencontainers.image.ref.name": "v1"}}
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')


class StaticTopology:
    """Replicas at fixed loopback ports (what the cluster topology reads from Replications)."""

    def __init__(self, ports: dict[str, int], service: str, signer: SigningKey, ca_pem: str) -> None:
        self.ports, self.service, self.signer, self.ca_pem = ports, service, signer, ca_pem
        self.clients = ReplicatorClients()

    def replicas(self, namespace: str, registry: str) -> list[str]:
        return sorted(self.ports)

    def client(self, namespace: str, registry: str, replica: str) -> DistributionClient | None:
        port = self.ports.get(replica)
        if port is None:
            return None
        endpoint = Endpoint(f"127.0.0.1:{port}", self.service, self.signer, self.ca_pem)
        return self.clients.get((namespace, registry, replica), endpoint)

    def registries(self) -> list[tuple[str, str, float]]:
        return [(NS, REG, 3600.0)]


class Process:
    """One registry binary and its token service, on what the operator renders for it."""

    def __init__(
        self,
        ctx: RegistryContext,
        endpoints: list[dict[str, Any]],
        binary: str,
        work: Path,
        shared: dict[str, str],
        intake_port: int,
    ) -> None:
        self.work, self.port, self.token_port = work, free_port(), free_port()
        work.mkdir(parents=True)
        for name, text in shared.items():
            (work / name).write_text(text)
        config = build_registry_config(ctx)
        config["storage"]["filesystem"]["rootdirectory"] = str(work / "data")
        config["http"]["addr"] = f"127.0.0.1:{self.port}"
        config["http"]["debug"]["addr"] = f"127.0.0.1:{free_port()}"
        config["http"]["tls"]["certificate"] = str(work / "tls.crt")
        config["http"]["tls"]["key"] = str(work / "tls.key")
        config["http"]["secret"] = generate_password()
        config["auth"]["token"]["rootcertbundle"] = str(work / "signer.crt")
        config["auth"]["token"]["realm"] = f"https://127.0.0.1:{self.token_port}/token"
        for endpoint in endpoints:  # what the kubelet and the Service would resolve
            endpoint["url"] = endpoint["url"].replace(ctx.events_url.rstrip("/"), f"http://127.0.0.1:{intake_port}")
            endpoint["headers"] = {"Authorization": [f"Bearer {EVENTS_TOKEN}"]}
            endpoint["backoff"] = "500ms"
        config["notifications"] = {"endpoints": endpoints}
        (work / "config.yml").write_text(yaml.safe_dump(config))
        log = open(work / "processes.log", "ab")
        env = os.environ | {"PYTHONPATH": str(ROOT / "operator"), "OTEL_TRACES_EXPORTER": "none"}
        self.serve = lambda: subprocess.Popen(
            [binary, "serve", str(work / "config.yml")], stdout=log, stderr=log, env=env
        )
        self.processes = [
            self.serve(),
            subprocess.Popen(
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
                ],
                stdout=log,
                stderr=log,
                env=env,
            ),
        ]
        for port in (self.port, self.token_port):
            until(lambda p=port: connects(p), f"port {port}", 20)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
            process.wait(timeout=10)

    def stop_registry(self) -> None:
        self.processes[0].kill()
        self.processes[0].wait(timeout=10)

    def start_registry(self) -> None:
        self.processes[0] = self.serve()
        until(lambda: connects(self.port), f"port {self.port}", 20)

    def skopeo(self, *args: str) -> str:
        done = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout


class Pair:
    """The home registry and its replicas (by default `west` on Debian's 2.8), the intake, the
    subscriber and the engine. Replicas start outside the topology (`members`): a test adds them,
    so that their initial fill is part of the story."""

    def __init__(
        self, tmp: Path, home_binary: Path, replicas: dict[str, str] | None = None, *, workers: int = 2
    ) -> None:
        replicas = {WEST: "docker-registry"} if replicas is None else replicas
        password = generate_password()
        self.creds = f"{REG}:{password}"
        spec = RegistrySpec.model_validate({"sku": "Premium", "adminUser": {"enabled": True}})
        owner = Owner(API_VERSION, "Registry", REG, NS, "uid-home")
        home = RegistryContext(
            owner,
            spec,
            "registry:3",
            "dockyard",
            tls_secret_name(spec, RegistryNames(REG)),
            "http://dockyard-events:8090",
        )
        ca, signer = issue_ca("test CA"), issue_signing_key("test signer")
        serving = issue_serving_cert(ca, ["127.0.0.1", home.service_host])
        policy = build_auth_policy(home, (password,))
        self.ca_pem = ca.cert_pem.decode()
        self.signer = SigningKey(signer.key_pem, signer.cert_pem)
        self.service = home.token_service
        shared = {
            "policy.json": policy.model_dump_json(),
            "signer.crt": signer.cert_pem.decode(),
            "signer.key": signer.key_pem.decode(),
            **_tls(serving),
        }
        # the intake, the ledger, the subscriber and the engine
        self.store_path = tmp / "state" / "replication.sqlite"
        self.store = LedgerStore(self.store_path)
        self.metrics_registry = CollectorRegistry()
        self.metrics = register_replication_metrics(self.metrics_registry)
        self.members = [HOME]
        self.clients = ReplicatorClients()
        self.engine = ReplicationEngine(self.store, self, self.metrics, workers=workers, idle_seconds=0.2)
        self.subscriber = ReplicationSubscriber(self.store, self, self.metrics, on_enqueued=self.engine.wake)
        self.recorded = EventRecorder()
        self.intake = Intake(
            FixedTokens(), [self.subscriber, self.recorded], register_intake_metrics(CollectorRegistry())
        )
        asyncio.run(self.intake.start("127.0.0.1", 0))
        self.home = Process(
            home, build_notification_endpoints(home), str(home_binary), tmp / "home", shared, self.intake.port
        )
        self.by_name = {HOME: self.home}
        for location, binary in replicas.items():
            ctx = _replica(home, spec, location)
            self.by_name[location] = Process(
                ctx, replica_notification_endpoints(ctx), binary, tmp / location, shared, self.intake.port
            )
        self.engine.start()

    @property
    def west(self) -> Process:
        return self.by_name[WEST]

    # -- the topology the engine and the subscriber read ------------------------------------------

    def replicas(self, namespace: str, registry: str) -> list[str]:
        return list(self.members)

    def client(self, namespace: str, registry: str, replica: str) -> DistributionClient | None:
        process = self.by_name.get(replica)
        if process is None:
            return None
        endpoint = Endpoint(f"127.0.0.1:{process.port}", self.service, self.signer, self.ca_pem)
        return self.clients.get((namespace, registry, replica), endpoint)

    def registries(self) -> list[tuple[str, str, float]]:
        return [(NS, REG, 3600.0)]

    # -- what tests do ----------------------------------------------------------------------------

    def push(self, where: str, layout: Path, reference: str, *extra: str) -> None:
        self.by_name[where].skopeo(
            "copy",
            *extra,
            "--dest-tls-verify=false",
            "--dest-creds",
            self.creds,
            f"oci:{layout}:v1",
            f"docker://127.0.0.1:{self.by_name[where].port}/{reference}",
        )

    def delete(self, where: str, reference: str) -> None:
        self.by_name[where].skopeo(
            "delete",
            "--tls-verify=false",
            "--creds",
            self.creds,
            f"docker://127.0.0.1:{self.by_name[where].port}/{reference}",
        )

    def digest(self, where: str, repository: str, tag: str) -> str | None:
        """What the tag names on one replica. Distribution deletes a manifest before its tags, so a
        tag read in between answers 500 for a moment: read again (the copier retries the same way)."""
        client = self.client(NS, REG, where)
        assert client is not None
        for _ in range(50):
            try:
                return client.head_manifest(repository, tag)
            except RegistryProtocolError as error:
                if ": 500" not in str(error):
                    raise
                time.sleep(0.1)
        return client.head_manifest(repository, tag)

    def settled(self) -> bool:
        """No job waits or runs."""
        return not self.store.due_jobs(1, now=1e12)

    def stop(self) -> None:
        self.engine.stop()
        for process in self.by_name.values():
            process.stop()
        asyncio.run(self.intake.stop())
        self.clients.close()
        self.store.close()


def _replica(home: RegistryContext, spec: RegistrySpec, location: str) -> ReplicaContext:
    """What the operator renders for the Replication `hub-<location>` (nodes labelled with the zone)."""
    replication = ReplicationSpec.model_validate({"registryRef": {"name": REG}, "location": location})
    name = f"{REG}-{location}"
    placement = plan_replica(NS, REG, spec, name, "t", replication, [], [{"topology.kubernetes.io/zone": location}])
    assert isinstance(placement, Placement)
    return replica_context(home, Owner(API_VERSION, "Replication", name, NS, f"uid-{location}"), location, placement)


def _tls(pair: KeyPair) -> dict[str, str]:
    return {"tls.crt": pair.cert_pem.decode(), "tls.key": pair.key_pem.decode()}


class EventRecorder:
    """A subscriber that keeps every batch the intake accepted (what webhooks would be offered)."""

    name = "recorder"

    def __init__(self) -> None:
        self.batches: list[EventBatch] = []

    async def prepare(self, namespace: str) -> None:
        return None

    def accept(self, batch: EventBatch) -> None:
        self.batches.append(batch)


class FixedTokens(RegistryTokens):
    """The intake's token check against the events token the test gave the registries (the
    operator reads it from the Registry's `-events` Secret)."""

    def __init__(self) -> None:
        super().__init__(kube=None, known=lambda namespace, registry: True)  # type: ignore[arg-type]

    def _read(self, namespace: str, registry: str) -> str | None:
        return EVENTS_TOKEN if (namespace, registry) == (NS, REG) else None
