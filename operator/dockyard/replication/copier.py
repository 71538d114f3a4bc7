"""Copying one image between two registries, exactly: the same manifest bytes (so the same digest),
children before their parents, blobs verified by digest and never held whole in memory.

Order, so that no registry ever holds a manifest whose references it lacks:
1. an index's child manifests (recursively), then a manifest's config and layers;
2. the manifest by digest, then the tag.
A blob already in the target repository is skipped (HEAD); one the target holds in another
repository we copied it to is mounted (`POST ?mount=&from=`); any other is streamed GET → PUT.
Foreign (non-distributable) layers that the source does not serve are left out, as registries do.
An artifact's `subject` is copied first when the source has it (so a referrer never dangles);
referrers themselves travel as the `sha256-<hex>` tags distribution 3 clients write.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from dockyard.distribution.client import DistributionClient
from dockyard.distribution.errors import RegistryNotFound, RegistryProtocolError

INDEX_TYPES = frozenset(
    {"application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"}
)
FOREIGN_LAYER_TYPES = frozenset(
    {
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
)


@dataclass
class CopyReport:
    """What one copy moved, for metrics and the initial-fill progress."""

    manifests: int = 0
    manifests_skipped: int = 0
    blobs_copied: int = 0
    blobs_mounted: int = 0
    blobs_skipped: int = 0
    bytes: int = 0


@dataclass
class BlobIndex:
    """Where the target is known to hold a blob (digest → repository): a later copy into another
    repository mounts it instead of moving its bytes again. Bounded; a wrong entry only costs a
    mount that falls back to a copy."""

    limit: int = 100_000
    _where: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def find(self, digest: str, not_in: str) -> str | None:
        with self._lock:
            where = self._where.get(digest)
        return where if where != not_in else None

    def note(self, digest: str, repository: str) -> None:
        with self._lock:
            if len(self._where) >= self.limit:
                self._where.clear()
            self._where[digest] = repository


def _descriptors(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    config = document.get("config")
    if isinstance(config, dict):
        yield config
    for layer in document.get("layers") or []:
        if isinstance(layer, dict):
            yield layer
    for blob in document.get("blobs") or []:  # the short-lived OCI artifact manifest
        if isinstance(blob, dict):
            yield blob


def copy_blob(
    source: DistributionClient,
    target: DistributionClient,
    repository: str,
    descriptor: dict[str, Any],
    report: CopyReport,
    blobs: BlobIndex,
) -> None:
    digest = str(descriptor["digest"])
    if target.blob_exists(repository, digest):
        report.blobs_skipped += 1
        blobs.note(digest, repository)
        return
    elsewhere = blobs.find(digest, repository)
    if elsewhere is not None and target.mount_blob(repository, digest, elsewhere):
        report.blobs_mounted += 1
        blobs.note(digest, repository)
        return
    try:
        with source.open_blob(repository, digest) as (size, chunks):
            target.push_blob_stream(repository, digest, chunks, size)
            report.bytes += size or int(descriptor.get("size") or 0)
    except RegistryNotFound:
        if descriptor.get("mediaType") in FOREIGN_LAYER_TYPES or descriptor.get("urls"):
            return  # a foreign layer: pulled from its URLs, never pushed
        raise
    report.blobs_copied += 1
    blobs.note(digest, repository)


def copy_manifest(
    source: DistributionClient,
    target: DistributionClient,
    repository: str,
    digest: str,
    report: CopyReport,
    blobs: BlobIndex,
    _depth: int = 0,
) -> tuple[bytes, str]:
    """Make the target hold the manifest `digest` (and all it references); its (bytes, media type)."""
    body, media_type, actual = source.get_manifest(repository, digest)
    if target.head_manifest(repository, digest) == digest:
        report.manifests_skipped += 1
        return body, media_type
    document = json.loads(body)
    if _depth < 8:
        subject = document.get("subject")
        if isinstance(subject, dict) and subject.get("digest"):
            # A referrer may name a subject that is not (yet) in the registry.
            with contextlib.suppress(RegistryNotFound):
                copy_manifest(source, target, repository, str(subject["digest"]), report, blobs, _depth + 1)
        for child in document.get("manifests") or []:
            if isinstance(child, dict) and child.get("digest"):
                copy_manifest(source, target, repository, str(child["digest"]), report, blobs, _depth + 1)
    for descriptor in _descriptors(document):
        copy_blob(source, target, repository, descriptor, report, blobs)
    target.put_manifest(repository, actual, body, media_type)
    report.manifests += 1
    return body, media_type


def copy_tag(
    source: DistributionClient,
    target: DistributionClient,
    repository: str,
    tag: str,
    digest: str,
    blobs: BlobIndex,
) -> CopyReport:
    """Make `repository:tag` on the target point at `digest` as on the source."""
    report = CopyReport()
    body, media_type = copy_manifest(source, target, repository, digest, report, blobs)
    target.put_manifest(repository, tag, body, media_type)
    return report


def copy_digest(
    source: DistributionClient, target: DistributionClient, repository: str, digest: str, blobs: BlobIndex
) -> CopyReport:
    """Make the target hold the manifest `digest` as on the source, with no tag (a manifest pushed
    by digest only)."""
    report = CopyReport()
    copy_manifest(source, target, repository, digest, report, blobs)
    return report


def remove_tag(target: DistributionClient, repository: str, tag: str, deleted_digest: str, untag: bool) -> bool:
    """Make `repository:tag` absent on the target, as a tombstone says; True when something was
    removed. A manifest delete removes that manifest (and so every tag on it, as it did where it
    happened); an untag removes the tag only, or, on a registry that cannot untag (distribution
    2.8), the manifest the tag names. Nothing is removed when the tag names other content now."""
    current = target.head_manifest(repository, tag)
    if current is None:
        return False
    if deleted_digest and current != deleted_digest:
        return False
    if untag:
        try:
            return target.delete_tag(repository, tag)
        except RegistryProtocolError:
            pass  # 2.8: "The operation is unsupported"
    return target.delete_manifest(repository, current)
