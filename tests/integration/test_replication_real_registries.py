"""Replication with real parts: two real registry processes (distribution 3.x as the home, Debian's
2.8 as the replica) running the configs the operator renders for a Premium Registry and its
Replication (`registries/manifests`, `replication/manifests`), each with its own Dockyard token
service on the shared policy and signer, posting notifications into the real event intake; the
replication subscriber and copy engine in this process, authenticating as the replicator; images
pushed and deleted with skopeo.

Only the Kubernetes lookups are left out: the events token and the replicas' addresses are given
to the intake and the engine directly (the kwok control plane runs no registry pods to reach)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from dockyard.auth.policy import generate_password
from dockyard.auth.tokens import SigningKey
from dockyard.core.meta import Owner
from dockyard.core.pki import KeyPair, issue_ca, issue_serving_cert, issue_signing_key
from dockyard.distribution.client import DistributionClient
from dockyard.distribution.errors import RegistryProtocolError
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

pytestmark = pytest.mark.integration

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


def run_engine(config_path: str) -> None:
    """The copy engine alone, in a process of its own, until killed (for the SIGKILL test)."""
    config = json.loads(Path(config_path).read_text())
    topology = StaticTopology(
        config["ports"],
        config["service"],
        SigningKey(config["signer_key"].encode(), config["signer_cert"].encode()),
        config["ca_pem"],
    )
    store = LedgerStore(Path(config["store"]))
    engine = ReplicationEngine(store, topology, register_replication_metrics(None), workers=2, idle_seconds=0.05)
    engine.start()
    threading.Event().wait()


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
    """Home (3.x) and replica `west` (2.8), the intake, the subscriber and the engine."""

    def __init__(self, tmp: Path, distribution_v3: Path) -> None:
        password = generate_password()
        self.creds = f"{REG}:{password}"
        spec = RegistrySpec.model_validate({"sku": "Premium", "adminUser": {"enabled": True}})
        owner = Owner(API_VERSION, "Registry", REG, NS, "uid-home")
        home = RegistryContext(
            owner, spec, "registry:3", "dockyard", tls_secret_name(spec, _names()), "http://dockyard-events:8090"
        )
        replication = ReplicationSpec.model_validate({"registryRef": {"name": REG}, "location": WEST})
        placement = plan_replica(
            NS, REG, spec, "hub-west", "t", replication, [], [{"topology.kubernetes.io/zone": WEST}]
        )
        assert isinstance(placement, Placement)
        west: ReplicaContext = replica_context(
            home, Owner(API_VERSION, "Replication", "hub-west", NS, "uid-west"), WEST, placement
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
        self.members = [HOME]  # West joins later: its initial fill is part of the story
        self.clients = ReplicatorClients()
        self.engine = ReplicationEngine(self.store, self, self.metrics, workers=2, idle_seconds=0.2)
        self.subscriber = ReplicationSubscriber(self.store, self, self.metrics, on_enqueued=self.engine.wake)
        self.intake = Intake(FixedTokens(), [self.subscriber], register_intake_metrics(CollectorRegistry()))
        asyncio.run(self.intake.start("127.0.0.1", 0))
        self.home = Process(
            home, build_notification_endpoints(home), str(distribution_v3), tmp / "home", shared, self.intake.port
        )
        self.west = Process(
            west, replica_notification_endpoints(west), "docker-registry", tmp / "west", shared, self.intake.port
        )
        self.by_name = {HOME: self.home, WEST: self.west}
        self.engine.start()

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
        for process in (self.home, self.west):
            process.stop()
        asyncio.run(self.intake.stop())
        self.clients.close()
        self.store.close()


def _names() -> Any:
    from dockyard.core.names import RegistryNames

    return RegistryNames(REG)


def _tls(pair: KeyPair) -> dict[str, str]:
    return {"tls.crt": pair.cert_pem.decode(), "tls.key": pair.key_pem.decode()}


class FixedTokens(RegistryTokens):
    """The intake's token check against the events token the test gave the registries (the
    operator reads it from the Registry's `-events` Secret)."""

    def __init__(self) -> None:
        super().__init__(kube=None, known=lambda namespace, registry: True)  # type: ignore[arg-type]

    def _read(self, namespace: str, registry: str) -> str | None:
        return EVENTS_TOKEN if (namespace, registry) == (NS, REG) else None


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, distribution_v3: Path) -> Iterator[Pair]:
    running = Pair(tmp_path_factory.mktemp("replication"), distribution_v3)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("images")
    layouts = {
        "seed": ({"amd64": b"seed\n"}, False),
        "one": ({"amd64": b"one\n"}, False),
        "home-race": ({"amd64": b"pushed on home\n"}, False),
        "west-race": ({"amd64": b"pushed on west\n"}, False),
        "multi": ({"amd64": b"multi amd64\n", "arm64": b"multi arm64\n"}, True),
    }
    for name, (platforms, index) in layouts.items():
        oci_layout(root / name, platforms, index)
    return {name: root / name for name in layouts}


def test_initial_fill_then_push_delete_race_and_index(pair: Pair, images: dict[str, Path]) -> None:
    # Content that predates the Replication: the initial fill copies it, with progress.
    pair.push(HOME, images["seed"], "team/seed:v1")
    seed = pair.digest(HOME, "team/seed", "v1")
    assert seed is not None
    pair.members.append(WEST)
    pair.engine.wake()
    until(lambda: pair.digest(WEST, "team/seed", "v1") == seed, "the initial fill", 60)
    figures = until(lambda: (f := pair.store.figures(NS, REG, WEST)).fill_completed and f, "the fill to complete", 30)
    assert figures.fill_total == 1 and figures.fill_copied == 1 and figures.fill_bytes > 0

    # A push on the home appears on the replica, same digest; the replica serves it to the same login.
    pair.push(HOME, images["one"], "team/app:v1")
    one = pair.digest(HOME, "team/app", "v1")
    until(lambda: pair.digest(WEST, "team/app", "v1") == one, "the push to reach west", 60)
    pair.west.skopeo(
        "inspect", "--tls-verify=false", "--creds", pair.creds, f"docker://127.0.0.1:{pair.west.port}/team/app:v1"
    )
    until(pair.settled, "the copies to settle", 30)
    version = pair.store.version(NS, REG, ("team/app", "v1"))
    assert version is not None and version.origin == HOME, "the replicator's own push on west was not echoed"

    # A delete on the replica disappears from the home, and a full comparison does not bring it back.
    pair.delete(WEST, "team/app:v1")
    until(lambda: pair.digest(HOME, "team/app", "v1") is None, "the delete to reach home", 60)
    pair.engine.full_sync(NS, REG)
    until(pair.settled, "the full comparison's repairs", 30)
    assert pair.digest(HOME, "team/app", "v1") is None and pair.digest(WEST, "team/app", "v1") is None

    # The replica down during pushes: it catches up when it is back (the jobs wait, retried).
    pair.west.stop_registry()
    pair.push(HOME, images["seed"], "team/while-down:v1")
    until(lambda: pair.store.figures(NS, REG, WEST).pending, "the change to wait for west", 30)
    pair.west.start_registry()
    until(lambda: pair.digest(WEST, "team/while-down", "v1") == seed, "west to catch up", 90)

    # The same image in another repository: its blobs are mounted from team/app on the replica,
    # where the copier put them, instead of being copied again.
    def mounted() -> float:
        sample = {"kind": "blob", "result": "mounted"}
        return pair.metrics_registry.get_sample_value("dockyard_replication_copies_total", sample) or 0.0

    before = mounted()
    pair.push(HOME, images["one"], "team/other:v1")
    until(lambda: pair.digest(WEST, "team/other", "v1") == one, "team/other to reach west", 60)
    assert mounted() - before == 2  # the config and the layer

    # The same tag pushed on both at once: one winner everywhere, the ledger's.
    pushes = [
        threading.Thread(target=pair.push, args=(HOME, images["home-race"], "team/app:race")),
        threading.Thread(target=pair.push, args=(WEST, images["west-race"], "team/app:race")),
    ]
    for push in pushes:
        push.start()
    for push in pushes:
        push.join()

    def converged() -> str | None:
        version = pair.store.version(NS, REG, ("team/app", "race"))
        digests = {pair.digest(HOME, "team/app", "race"), pair.digest(WEST, "team/app", "race")}
        if version is None or len(digests) != 1 or not pair.settled():
            return None
        return digests.pop() if digests == {version.digest} else None

    winner = until(converged, "both replicas to agree on the race's winner", 60)
    assert winner is not None
    pair.engine.full_sync(NS, REG)
    until(pair.settled, "the full comparison", 30)
    assert {pair.digest(HOME, "team/app", "race"), pair.digest(WEST, "team/app", "race")} == {winner}

    # A multi-arch index: children first, exact bytes, the same digest.
    pair.push(HOME, images["multi"], "team/multi:v1", "--all")
    index = pair.digest(HOME, "team/multi", "v1")
    until(lambda: pair.digest(WEST, "team/multi", "v1") == index, "the index to reach west", 60)
    west = pair.client(NS, REG, WEST)
    assert west is not None and index is not None
    body, _, digest = west.get_manifest("team/multi", index)
    assert digest == index
    for child in json.loads(body)["manifests"]:
        assert west.head_manifest("team/multi", child["digest"]) == child["digest"]
    copied = pair.metrics_registry.get_sample_value(
        "dockyard_replication_copies_total", {"kind": "blob", "result": "copied"}
    )
    assert copied and copied >= 6


def test_copier_killed_mid_blob_converges(pair: Pair, tmp_path: Path) -> None:
    """The copier is SIGKILLed while it streams a large layer into the replica; the next one
    redoes the copy from the durable job: the replica converges, one tag, the same digest."""
    pair.members[:] = [HOME, WEST]
    pair.engine.stop()  # copies now happen in a process of their own
    oci_layout(tmp_path / "big", {"amd64": os.urandom(160 * 1024 * 1024)})
    config = {
        "ports": {HOME: pair.home.port, WEST: pair.west.port},
        "service": pair.service,
        "signer_key": pair.signer.private_key_pem.decode(),
        "signer_cert": pair.signer.certificate_pem.decode(),
        "ca_pem": pair.ca_pem,
        "store": str(pair.store_path),
    }
    (tmp_path / "engine.json").write_text(json.dumps(config))
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT / "operator"), str(ROOT / "hack")])}
    log = open(tmp_path / "engine.log", "wb")
    copier = subprocess.Popen(
        [sys.executable, __file__, str(tmp_path / "engine.json")], env=env, stdout=log, stderr=log
    )
    try:
        pair.push(HOME, tmp_path / "big", "team/big:v1")
        big = pair.digest(HOME, "team/big", "v1")
        uploads = pair.west.work / "data" / "docker" / "registry" / "v2" / "repositories" / "team" / "big" / "_uploads"

        def uploading() -> bool:
            return uploads.exists() and any(upload.joinpath("data").exists() for upload in uploads.glob("*"))

        deadline = time.monotonic() + 60
        while not uploading():  # polled tightly: the layer takes about a second to stream
            assert time.monotonic() < deadline, "the copier never streamed the layer into west"
            time.sleep(0.01)
    finally:
        copier.kill()
        copier.wait(timeout=10)
    assert pair.digest(WEST, "team/big", "v1") is None, "killed before the manifest was put"

    engine = ReplicationEngine(pair.store, pair, pair.metrics, workers=2, idle_seconds=0.2)
    pair.engine, pair.subscriber.on_enqueued = engine, engine.wake
    engine.start()
    until(lambda: pair.digest(WEST, "team/big", "v1") == big, "the copy to be redone", 120)
    until(pair.settled, "the job to complete", 30)
    west = pair.client(NS, REG, WEST)
    assert west is not None and west.list_tags("team/big") == ["v1"]


if __name__ == "__main__":
    run_engine(sys.argv[1])
