"""The copy engine's decisions (`replication/engine.py`) on in-memory registries: a job makes its
replica equal to the ledger, whatever that replica went through meanwhile; a full comparison fills
a new replica and never brings a deleted tag back."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from test_replication_copier import Memory, _image

from dockyard.distribution.client import DistributionClient
from dockyard.replication.engine import ReplicationEngine
from dockyard.replication.ledger import HOME, Version, digest_key
from dockyard.replication.metrics import register_replication_metrics
from dockyard.replication.store import LedgerStore

NS, REG, WEST = "team", "hub", "west"


class Registries:
    def __init__(self) -> None:
        self.memory = {HOME: Memory(), WEST: Memory()}
        self.clients = {name: memory.client() for name, memory in self.memory.items()}

    def replicas(self, namespace: str, registry: str) -> list[str]:
        return [HOME, WEST]

    def client(self, namespace: str, registry: str, replica: str) -> DistributionClient | None:
        return self.clients.get(replica)

    def registries(self) -> list[tuple[str, str, float]]:
        return [(NS, REG, 600.0)]


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Registries, LedgerStore, ReplicationEngine]:
    registries = Registries()
    store = LedgerStore(tmp_path / "r.sqlite")
    engine = ReplicationEngine(store, registries, register_replication_metrics(CollectorRegistry()), workers=1)
    return registries, store, engine


def _put(store: LedgerStore, key: tuple[str, str], version: Version, *replicas: str) -> None:
    now = time.time()
    with store.transaction() as tx:
        tx.put_version(NS, REG, key, version, now)
        for replica in replicas:
            tx.enqueue(NS, REG, replica, key, now)


def test_a_replica_whose_tag_was_moved_off_the_winner_gets_it_back(
    setup: tuple[Registries, LedgerStore, ReplicationEngine],
) -> None:
    registries, store, engine = setup
    home, west = registries.memory[HOME], registries.memory[WEST]
    loser = _image(home, "app", b"home", "race")
    winner = _image(west, "app", b"west")
    # the loser's copy landed on west after west's own push: west's tag names the loser now
    west.blobs.update(home.blobs)
    west.manifests[("app", loser)] = home.manifests[("app", loser)]
    west.tags[("app", "race")] = loser
    _put(store, ("app", "race"), Version(2, WEST, winner), WEST)
    engine.drain()
    assert west.tags[("app", "race")] == winner, "no other replica holds the winner: west itself does"
    assert store.due_jobs(10, now=1e12) == []


def test_the_first_full_comparison_fills_a_new_replica(
    setup: tuple[Registries, LedgerStore, ReplicationEngine],
) -> None:
    registries, store, engine = setup
    home, west = registries.memory[HOME], registries.memory[WEST]
    digests = {tag: _image(home, "app", tag.encode(), tag) for tag in ("v1", "v2", "v3")}
    home.catalog = ["app"]
    engine.drain()
    assert {tag: west.tags.get(("app", tag)) for tag in digests} == digests
    figures = store.figures(NS, REG, WEST)
    assert (figures.fill_total, figures.fill_copied) == (3, 3) and figures.fill_completed is not None


def test_a_full_comparison_deletes_what_a_tombstone_says_and_never_copies_it_back(
    setup: tuple[Registries, LedgerStore, ReplicationEngine],
) -> None:
    registries, store, engine = setup
    home, west = registries.memory[HOME], registries.memory[WEST]
    gone = _image(west, "app", b"old", "v1")  # west missed the delete
    _put(store, ("app", "v1"), Version(5, HOME, gone, deleted=True))
    west.catalog = ["app"]
    engine.full_sync(NS, REG)
    engine.drain()
    assert ("app", "v1") not in west.tags and ("app", "v1") not in home.tags


def test_a_manifest_known_by_digest_only_is_copied_untagged_children_first(
    setup: tuple[Registries, LedgerStore, ReplicationEngine],
) -> None:
    registries, store, engine = setup
    home, west = registries.memory[HOME], registries.memory[WEST]
    children = [_image(home, "app", b"amd64"), _image(home, "app", b"arm64")]
    index = home.manifest(
        "app",
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d} for d in children],
        },
    )
    _put(store, digest_key("app", index), Version(1, HOME, index), HOME, WEST)
    engine.drain()
    assert west.manifests[("app", index)] == home.manifests[("app", index)]
    assert all(("app", child) in west.manifests for child in children)
    assert west.tags == {} and store.due_jobs(10, now=1e12) == []
    puts = [w for w in west.writes if w.startswith("manifest")]
    assert puts[-1] == f"manifest app:{index[:19]}", "the index after its children"


def test_a_deleted_digest_goes_everywhere_unless_a_newer_tag_names_it(
    setup: tuple[Registries, LedgerStore, ReplicationEngine],
) -> None:
    registries, store, engine = setup
    home, west = registries.memory[HOME], registries.memory[WEST]
    gone = _image(home, "app", b"gone")
    kept = _image(home, "app", b"kept", "v2")
    west.blobs.update(home.blobs)
    west.manifests.update(home.manifests)
    west.tags[("app", "v2")] = kept
    _put(store, digest_key("app", gone), Version(5, WEST, gone, deleted=True), HOME, WEST)
    _put(store, digest_key("app", kept), Version(5, WEST, kept, deleted=True), HOME, WEST)
    _put(store, ("app", "v2"), Version(9, HOME, kept))  # pushed again after the delete
    engine.drain()
    assert ("app", gone) not in home.manifests and ("app", gone) not in west.manifests
    assert home.tags[("app", "v2")] == kept and west.tags[("app", "v2")] == kept


def test_a_full_comparison_rechecks_the_digests_the_ledger_knows(
    setup: tuple[Registries, LedgerStore, ReplicationEngine],
) -> None:
    registries, store, engine = setup
    home, west = registries.memory[HOME], registries.memory[WEST]
    lost = _image(home, "app", b"lost on west")  # west lost it (its copy never happened)
    deleted = _image(west, "app", b"deleted")  # west missed the delete
    home.catalog = west.catalog = ["app"]
    _put(store, digest_key("app", lost), Version(1, HOME, lost))
    _put(store, digest_key("app", deleted), Version(5, HOME, deleted, deleted=True))
    engine.full_sync(NS, REG)
    engine.drain()
    assert ("app", lost) in west.manifests
    assert ("app", deleted) not in west.manifests and ("app", deleted) not in home.manifests
    assert store.figures(NS, REG, WEST).fill_total == 0, "the fill counts tags"


def test_an_untagged_digest_no_replica_holds_any_more_is_given_up_not_retried(
    setup: tuple[Registries, LedgerStore, ReplicationEngine],
) -> None:
    registries, store, engine = setup
    collected = _image(Memory(), "app", b"removed by a garbage collection")
    _put(store, digest_key("app", collected), Version(1, HOME, collected), HOME, WEST)
    engine.drain()
    assert store.due_jobs(10, now=1e12) == []
    assert store.version(NS, REG, digest_key("app", collected)) == Version(1, HOME, collected, deleted=True)
    registries.clients.pop(WEST)  # a replica that cannot answer might hold it: keep asking
    _put(store, digest_key("app", collected), Version(2, HOME, collected), HOME)
    engine.run(store.due_jobs(10, now=1e12)[0])
    assert store.version(NS, REG, digest_key("app", collected)) == Version(2, HOME, collected)
    assert store.due_jobs(10, now=1e12) != []
