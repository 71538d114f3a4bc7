"""Replication with real parts (hack/replicapair.py): two real registry processes, distribution
3.x as the home and Debian's 2.8 as the replica, on the configs the operator renders, with token
auth and notifications into the real intake; the subscriber and the copy engine in this process;
images pushed and deleted with skopeo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.auth.tokens import SigningKey
from dockyard.replication.engine import ReplicationEngine
from dockyard.replication.ledger import HOME
from dockyard.replication.metrics import register_replication_metrics
from dockyard.replication.store import LedgerStore
from dockyard.webhooks.scope import EventFilter
from realregistry import ROOT, until
from replicapair import NS, REG, WEST, Pair, StaticTopology, oci_layout

EAST = "east"

pytestmark = pytest.mark.integration


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


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, distribution_v3: Path) -> Iterator[Pair]:
    # A third replica, `east` (3.x), joins for the last test only.
    replicas = {WEST: "docker-registry", EAST: str(distribution_v3)}
    running = Pair(tmp_path_factory.mktemp("replication"), distribution_v3, replicas)
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
        "loose": ({"amd64": b"pushed by digest only\n"}, False),
        "loose-multi": ({"amd64": b"loose amd64\n", "arm64": b"loose arm64\n"}, True),
    }
    for name, (platforms, index) in layouts.items():
        oci_layout(root / name, platforms, index)
    return {name: root / name for name in layouts}


def offered(pair: Pair, action: str, scope: str, location: str | None = None) -> list[str | None]:
    """Where the events a Webhook (`location` or none) would receive for `scope` happened."""
    webhook = EventFilter(frozenset({action}), scope, enabled=True, location=location)
    return [
        batch.location
        for batch in list(pair.recorded.batches)
        for event in batch.events
        if webhook.selects(event, batch.location)
    ]


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

    # Webhooks: one without location is offered the original push once (not the copy landing in
    # west, whose actor is the replicator); one with location west is offered the copy.
    until(lambda: offered(pair, "push", "team/app:v1", WEST) == [WEST], "the copy's event from west", 30)
    assert offered(pair, "push", "team/app:v1") == [None]

    # A delete on the replica disappears from the home, and a full comparison does not bring it back.
    pair.delete(WEST, "team/app:v1")
    until(lambda: pair.digest(HOME, "team/app", "v1") is None, "the delete to reach home", 60)
    # ... and a webhook without location is offered the delete made on west, not its copy at home.
    until(lambda: offered(pair, "delete", "team/app:*") == [WEST], "the delete's event from west", 30)
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


def test_manifests_pushed_and_deleted_by_digest_only(pair: Pair, images: dict[str, Path]) -> None:
    """What is pushed by digest alone, untagged, replicates as in ACR: an image pushed by digest on
    the replica reaches the home, an index pushed by digest on the home reaches the replica with
    its children; each deleted by digest on the other side goes everywhere, and a full comparison
    (which cannot list untagged manifests, only re-check those the ledger knows) keeps it gone."""
    pair.members[:] = [HOME, WEST]

    def top(layout: Path) -> str:
        return str(json.loads((layout / "index.json").read_text())["manifests"][0]["digest"])

    image, index = top(images["loose"]), top(images["loose-multi"])
    pair.push(WEST, images["loose"], f"team/loose@{image}")
    pair.push(HOME, images["loose-multi"], f"team/loose@{index}", "--all")
    until(lambda: pair.digest(HOME, "team/loose", image) == image, "the image pushed by digest to reach home", 60)
    until(lambda: pair.digest(WEST, "team/loose", index) == index, "the index pushed by digest to reach west", 60)
    west = pair.client(NS, REG, WEST)
    assert west is not None
    body, _, _ = west.get_manifest("team/loose", index)
    children = [child["digest"] for child in json.loads(body)["manifests"]]
    assert all(pair.digest(WEST, "team/loose", child) == child for child in children)
    until(pair.settled, "the copies to settle", 30)

    pair.delete(HOME, f"team/loose@{image}")
    pair.delete(WEST, f"team/loose@{index}")
    until(lambda: pair.digest(WEST, "team/loose", image) is None, "the image's delete to reach west", 60)
    until(lambda: pair.digest(HOME, "team/loose", index) is None, "the index's delete to reach home", 60)
    pair.engine.full_sync(NS, REG)
    until(pair.settled, "the full comparison's repairs", 30)
    for where in (HOME, WEST):
        assert pair.digest(where, "team/loose", image) is None and pair.digest(where, "team/loose", index) is None
        assert all(pair.digest(where, "team/loose", child) == child for child in children), "pushed, not deleted"


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


def test_third_replica_and_an_artifact_with_a_referrer(
    pair: Pair, images: dict[str, Path], oras: Path, tmp_path: Path
) -> None:
    """A third replica joins (its initial fill takes everything the others hold); an artifact
    attached with oras to an image on the home, through the referrers tag schema (distribution
    has no referrers API), reaches both replicas with its referrer tag: `oras discover` on each
    lists it, the same digest."""
    pair.members[:] = [HOME, WEST, EAST]
    pair.engine.wake()
    big = pair.digest(HOME, "team/big", "v1")
    until(lambda: pair.digest(EAST, "team/big", "v1") == big, "the third replica's initial fill", 120)

    pair.push(HOME, images["seed"], "team/signed:v1")
    subject = pair.digest(HOME, "team/signed", "v1")
    until(lambda: all(pair.digest(r, "team/signed", "v1") == subject for r in (WEST, EAST)), "the image", 60)
    (tmp_path / "sbom.json").write_text('{"packages": []}')
    user, password = pair.creds.split(":", 1)

    def run_oras(command: str, *files: str, where: str = HOME) -> dict[str, Any]:
        port = pair.by_name[where].port
        extra = ["--artifact-type", "application/vnd.dockyard.sbom"] if files else []
        done = subprocess.run(
            [str(oras), command, "--insecure", "-u", user, "-p", password, "--distribution-spec", "v1.1-referrers-tag",
             "--format", "json", *extra, f"127.0.0.1:{port}/team/signed:v1", *files],
            capture_output=True, text=True, timeout=120, cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    attached = run_oras("attach", "sbom.json")
    referrer = attached["digest"]
    tag = str(subject).replace(":", "-")
    home_index = pair.digest(HOME, "team/signed", tag)
    assert home_index is not None, "oras wrote the referrers tag"
    for replica in (WEST, EAST):
        until(lambda r=replica: pair.digest(r, "team/signed", tag) == home_index, f"the referrer tag on {replica}", 60)
        client = pair.client(NS, REG, replica)
        assert client is not None and client.head_manifest("team/signed", referrer) == referrer
        found = run_oras("discover", where=replica)
        assert referrer in json.dumps(found), found


if __name__ == "__main__":
    run_engine(sys.argv[1])
