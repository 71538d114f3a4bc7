"""The copy engine: workers that make each replica equal to the ledger, and the periodic full
comparison that finds what events missed.

- A job names (registry, replica, repository, tag), never an event: the worker reads the ledger's
  winner now and makes the replica hold it (copy from the origin, or from any replica that has
  it) or lack it (tombstone). A job for a manifest known by digest only (`@<digest>`) copies that
  manifest (children first) without a tag, or deletes it, unless a tag the ledger holds names it
  by a newer push (the tag's copy needs it). One that every replica answers it lacks (a garbage
  collection removed it: no event) becomes a tombstone instead of a job retried for ever. Replaying a job is harmless, so a crash mid-copy (SIGKILL) only
  means the job runs again: a half-uploaded blob is an upload session the registry purges, and no
  manifest is ever put before what it references.
- A job completes only at the `seq` it was taken at; one re-enqueued meanwhile runs again.
- Failures are retried with backoff (2 s doubling to 5 min); a replica not reachable keeps its
  jobs until it is.
- Each registry is compared in full every `fullSyncIntervalSeconds` (the smallest of its
  Replications'), at once when a replica appears, and again after `UNREACHABLE_RETRY_SECONDS` while
  a replica cannot be reached: a replica's first comparison is its initial fill, its count of
  missing tags the fill's total. Registries cannot list untagged manifests, so the comparison
  HEADs each digest entry the ledger holds (present or tombstoned) on each replica: its cost is
  one request per tag and one per untagged manifest the ledger knows, per replica.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Final

from dockyard.distribution.client import DistributionClient
from dockyard.distribution.errors import DistributionError
from dockyard.replication.copier import BlobIndex, CopyReport, copy_digest, copy_tag, remove_tag
from dockyard.replication.ledger import Key, Version, key_digest, plan_full_sync, superseded
from dockyard.replication.metrics import ReplicationMetrics
from dockyard.replication.store import Job, LedgerStore
from dockyard.replication.topology import Topology

logger = logging.getLogger(__name__)

RETRY_FIRST_SECONDS: Final = 2.0
RETRY_MAX_SECONDS: Final = 300.0
BATCH: Final = 64
UNREACHABLE_RETRY_SECONDS: Final = 15.0
"""A full comparison that could not reach every replica (one still starting) is tried again this soon."""
PRUNE_SECONDS: Final = 3600.0
"""How often tombstones and event ids older than `store.TOMBSTONE_KEEP_SECONDS` are dropped."""


def retry_delay(attempts: int) -> float:
    return float(min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** min(attempts, 16)))


class ReplicationEngine:
    def __init__(
        self,
        store: LedgerStore,
        topology: Topology,
        metrics: ReplicationMetrics,
        *,
        workers: int = 4,
        idle_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.topology, self.metrics = store, topology, metrics
        self.idle_seconds, self.clock = idle_seconds, clock
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dockyard-replication")
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._running: set[tuple[str, str, str, str, str]] = set()
        self._syncing: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._next_full: dict[tuple[str, str], float] = {}
        self._known_replicas: dict[tuple[str, str], frozenset[str]] = {}
        self._blobs: dict[tuple[str, str, str], BlobIndex] = {}
        self._pruned = 0.0

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="dockyard-replication-loop", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def wake(self) -> None:
        """Jobs were enqueued: look now rather than at the next idle tick."""
        self._wake.set()

    # -- the loop --------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopped.is_set():
            try:
                started = self.tick()
            except Exception:  # the store or the topology failed: log, wait, go on
                logger.exception("replication tick failed")
                started = []
            if not started:
                self._wake.wait(self.idle_seconds)
                self._wake.clear()

    def tick(self) -> list[Future[None]]:
        """Start the due full comparisons and the due jobs not already running; their futures."""
        started: list[Future[None]] = []
        now = self.clock()
        if now - self._pruned >= PRUNE_SECONDS:
            self._pruned = now
            self.store.prune(now)
        for namespace, registry, _ in self.topology.registries():
            key = (namespace, registry)
            replicas = frozenset(self.topology.replicas(namespace, registry))
            new_replica = replicas != self._known_replicas.get(key)
            if new_replica or now >= self._next_full.get(key, 0.0):
                with self._lock:
                    if key in self._syncing:
                        continue
                    self._syncing.add(key)
                self._known_replicas[key] = replicas
                started.append(self._pool.submit(self._full_sync_guarded, namespace, registry))
        for job in self.store.due_jobs(BATCH, now):
            identity = (job.namespace, job.registry, job.replica, job.repository, job.tag)
            with self._lock:
                if identity in self._running:
                    continue
                self._running.add(identity)
            started.append(self._pool.submit(self._run_guarded, job, identity))
        return started

    def drain(self, deadline_seconds: float = 60.0) -> None:
        """Run ticks until nothing is due or running (tests and benchmarks; not used by the loop)."""
        deadline = time.monotonic() + deadline_seconds
        while time.monotonic() < deadline:
            futures = self.tick()
            for future in futures:
                future.result()
            if not futures:
                return
        raise TimeoutError("replication did not drain")

    # -- jobs ------------------------------------------------------------------------------------

    def _run_guarded(self, job: Job, identity: tuple[str, str, str, str, str]) -> None:
        try:
            self.run(job)
        except DistributionError as error:
            self.metrics.copies.labels(kind="manifest", result="failed").inc()
            self.store.retry(job, str(error), retry_delay(job.attempts), self.clock())
            logger.info("replication of %s:%s to %r failed, retried: %s", job.repository, job.tag, job.replica, error)
        except Exception as error:
            self.store.retry(job, repr(error), retry_delay(job.attempts), self.clock())
            logger.exception("replication of %s:%s to %r failed", job.repository, job.tag, job.replica)
        finally:
            with self._lock:
                self._running.discard(identity)
            self._publish_figures(job.namespace, job.registry, job.replica)

    def run(self, job: Job) -> None:
        """Make the job's replica hold what the ledger says for its tag."""
        ns, registry, key = job.namespace, job.registry, (job.repository, job.tag)
        version = self.store.version(ns, registry, key)
        replicas = self.topology.replicas(ns, registry)
        if version is None or job.replica not in replicas:
            self.store.complete(job, now=self.clock())
            return
        target = self.topology.client(ns, registry, job.replica)
        if target is None:
            self.store.retry(job, "replica not reachable yet", retry_delay(job.attempts), self.clock())
            return
        if key_digest(key) is not None:
            self._run_digest(job, version, replicas, target)
            return
        if version.deleted:
            if remove_tag(target, job.repository, job.tag, version.digest, version.untag):
                self.metrics.deletes.inc()
            self.store.complete(job, now=self.clock())
            return
        if target.head_manifest(job.repository, job.tag) == version.digest:
            self.metrics.copies.labels(kind="manifest", result="skipped").inc()
            self.store.complete(job, now=self.clock())
            return
        if target.head_manifest(job.repository, version.digest) == version.digest:
            # The replica holds the winner but its tag was moved off it (a copy of the loser of a
            # concurrent push landed there first): point the tag back, nothing to copy.
            body, media_type, _ = target.get_manifest(job.repository, version.digest)
            target.put_manifest(job.repository, job.tag, body, media_type)
            self.metrics.copies.labels(kind="manifest", result="skipped").inc()
            self.store.complete(job, now=self.clock())
            return
        source = self._source(ns, registry, replicas, version.origin, job.replica, key, version.digest)
        if source is None:
            self.store.retry(job, f"no replica holds {version.digest} yet", retry_delay(job.attempts), self.clock())
            return
        blobs = self._blobs.setdefault((ns, registry, job.replica), BlobIndex())
        report = copy_tag(source, target, job.repository, job.tag, version.digest, blobs)
        self._count(report)
        if version.stamp:
            self.metrics.push_to_available.observe(max(0.0, self.clock() - version.stamp / 1e9))
        self.store.complete(job, report.bytes, now=self.clock())

    def _run_digest(self, job: Job, version: Version, replicas: list[str], target: DistributionClient) -> None:
        """Make the job's replica hold, or lack, a manifest known by digest only."""
        ns, registry, repository, digest = job.namespace, job.registry, job.repository, version.digest
        if version.deleted:
            entries = self.store.versions(ns, registry, repository)
            if not superseded(entries, repository, version) and target.delete_manifest(repository, digest):
                self.metrics.deletes.inc()
            self.store.complete(job, now=self.clock())
            return
        if target.head_manifest(repository, digest) == digest:
            self.metrics.copies.labels(kind="manifest", result="skipped").inc()
            self.store.complete(job, now=self.clock())
            return
        key = (repository, job.tag)
        source = self._source(ns, registry, replicas, version.origin, job.replica, key, digest)
        if source is None and self._absent_everywhere(ns, registry, replicas, repository, digest):
            # Every replica answered and none holds it (a garbage collection removed it, which
            # sends no event): the ledger stops asking for it rather than retrying for ever.
            with self.store.transaction() as tx:
                if self.store.version(ns, registry, key) == version:
                    gone = Version(version.stamp, version.origin, digest, deleted=True)
                    tx.put_version(ns, registry, key, gone, self.clock())
            self.store.complete(job, now=self.clock())
            return
        if source is None:
            self.store.retry(job, f"no replica holds {digest} yet", retry_delay(job.attempts), self.clock())
            return
        report = copy_digest(
            source, target, repository, digest, self._blobs.setdefault((ns, registry, job.replica), BlobIndex())
        )
        self._count(report)
        if version.stamp:
            self.metrics.push_to_available.observe(max(0.0, self.clock() - version.stamp / 1e9))
        self.store.complete(job, report.bytes, now=self.clock())

    def _source(
        self, ns: str, registry: str, replicas: list[str], origin: str, target: str, key: Key, digest: str
    ) -> DistributionClient | None:
        """A replica holding `digest` at the tag: the origin first, then the others by name."""
        for replica in [origin, *sorted(r for r in replicas if r != origin)]:
            if replica == target or replica not in replicas:
                continue
            client = self.topology.client(ns, registry, replica)
            if client is None:
                continue
            try:
                if client.head_manifest(key[0], digest) == digest:
                    return client
            except DistributionError:
                continue
        return None

    def _absent_everywhere(self, ns: str, registry: str, replicas: list[str], repository: str, digest: str) -> bool:
        """Whether every replica is reachable and answers that it lacks the manifest."""
        for replica in replicas:
            client = self.topology.client(ns, registry, replica)
            if client is None:
                return False
            try:
                if client.head_manifest(repository, digest) is not None:
                    return False
            except DistributionError:
                return False
        return True

    def _count(self, report: CopyReport) -> None:
        copies = self.metrics.copies
        copies.labels(kind="manifest", result="copied").inc(report.manifests)
        copies.labels(kind="manifest", result="skipped").inc(report.manifests_skipped)
        copies.labels(kind="blob", result="copied").inc(report.blobs_copied)
        copies.labels(kind="blob", result="mounted").inc(report.blobs_mounted)
        copies.labels(kind="blob", result="skipped").inc(report.blobs_skipped)
        self.metrics.bytes.inc(report.bytes)

    def _publish_figures(self, ns: str, registry: str, replica: str) -> None:
        figures = self.store.figures(ns, registry, replica)
        labels = {"namespace": ns, "registry": registry, "replica": replica}
        self.metrics.pending.labels(**labels).set(figures.pending)
        lag = 0.0 if figures.oldest_pending is None else max(0.0, self.clock() - figures.oldest_pending)
        self.metrics.lag.labels(**labels).set(lag)

    # -- full comparison -------------------------------------------------------------------------

    def _full_sync_guarded(self, namespace: str, registry: str) -> None:
        try:
            self.full_sync(namespace, registry)
        except DistributionError as error:
            logger.info("full comparison of %s/%s incomplete, retried later: %s", namespace, registry, error)
        except Exception:
            logger.exception("full comparison of %s/%s failed", namespace, registry)
        finally:
            with self._lock:
                self._syncing.discard((namespace, registry))

    def observe(
        self, namespace: str, registry: str, replica: str, digest_keys: Iterable[Key] = ()
    ) -> dict[Key, str] | None:
        """Every tag of one replica and its digest (catalog, tag lists, one HEAD per tag), and
        which of `digest_keys` it holds (one HEAD each); None when the replica is not reachable."""
        client = self.topology.client(namespace, registry, replica)
        if client is None:
            return None
        held: dict[Key, str] = {}
        repositories = client.list_repositories()
        for repository in repositories:
            for tag in client.list_tags(repository):
                digest = client.head_manifest(repository, tag)
                if digest is not None:
                    held[(repository, tag)] = digest
        known = set(repositories)
        for key in digest_keys:
            digest = key_digest(key)
            if digest is not None and key[0] in known and client.head_manifest(key[0], digest) == digest:
                held[key] = digest
        return held

    def full_sync(self, namespace: str, registry: str) -> None:
        """Compare every reachable replica with the ledger; adopt what the ledger lacks, enqueue
        repairs. Only reachable replicas take part (an unreachable one is compared next time)."""
        started = self.clock()
        replicas = self.topology.replicas(namespace, registry)
        interval = next((i for n, r, i in self.topology.registries() if (n, r) == (namespace, registry)), 600.0)
        self._next_full[(namespace, registry)] = started + interval
        digest_keys = [key for key in self.store.versions(namespace, registry) if key_digest(key) is not None]
        observed = {}
        for replica in replicas:
            try:
                held = self.observe(namespace, registry, replica, digest_keys)
            except DistributionError as error:
                logger.info("full comparison of %s/%s skips replica %r: %s", namespace, registry, replica, error)
                continue
            if held is not None:
                observed[replica] = held
        if set(replicas) - set(observed):
            # A replica still starting (or down): its initial fill must not wait a whole interval.
            self._next_full[(namespace, registry)] = started + min(interval, UNREACHABLE_RETRY_SECONDS)
        if len(observed) < 2:
            return
        plan = plan_full_sync(self.store.versions(namespace, registry), observed, list(observed))
        now = self.clock()
        with self.store.transaction() as tx:
            for key, version in plan.adopt.items():
                if self.store.version(namespace, registry, key) is None:  # an event may have come in
                    tx.put_version(namespace, registry, key, version, now)
            for replica, key in plan.repairs:
                tx.enqueue(namespace, registry, replica, key, now)
            for replica in observed:
                tx.record_full_sync(namespace, registry, replica, plan.in_sync[replica], plan.out_of_sync[replica], now)
        if plan.disagreements:
            self.metrics.conflicts.inc(len(plan.disagreements))
        self.metrics.last_full_sync.labels(namespace=namespace, registry=registry).set(now)
        for replica in observed:
            self._publish_figures(namespace, registry, replica)
