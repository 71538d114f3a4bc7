"""Run logs kept after the pods are gone, as OCI artifacts in the run's own Registry.

One artifact per run: repository `dockyard/logs`, tag = the run ID (`ca7`), artifact type
`application/vnd.dockyard.build.log.v1`, one layer of gzip'd UTF-8 text, annotated with the run's
ID, its UID and the time stored. The UID makes every run's manifest unique, so deleting one log
(by digest, which removes every tag on it) never deletes another run's, even when run IDs repeat
after a Registry is recreated. A log's reference, `HOST/dockyard/logs:ca7@sha256:…`, is what
`status.logReference` holds; `oras pull` reads it as well.

Secrets are removed before a log is stored or shown (`redact`); the store keeps what it is given.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from dockyard.builds.artifacts import (
    CREATED_ANNOTATION,
    LOG_ARTIFACT_TYPE,
    LOG_LAYER_MEDIA_TYPE,
    LOGS_REPOSITORY,
    RUN_ID_ANNOTATION,
    RUN_UID_ANNOTATION,
)
from dockyard.distribution.artifacts import pull_artifact_layer, push_artifact
from dockyard.distribution.client import DistributionClient
from dockyard.distribution.errors import RegistryProtocolError

MAX_LOG_BYTES = 256 * 1024**2
"""Largest log read back (decompressed)."""
REDACTED = "***"


MIN_DECODED = 4
"""Shorter decoded texts are left: they would hide ordinary words in the log."""


@dataclass(frozen=True)
class ArtifactReference:
    """`host/repository[:tag][@digest]`, parsed."""

    host: str
    repository: str
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, reference: str) -> ArtifactReference:
        host, slash, rest = reference.partition("/")
        if not slash or not rest:
            raise ValueError(f"{reference!r}: not a reference HOST/REPOSITORY[:TAG][@DIGEST]")
        name, _, digest = rest.partition("@")
        repository, colon, tag = name.rpartition(":")
        if not colon:
            repository, tag = name, ""
        if not repository or (not tag and not digest):
            raise ValueError(f"{reference!r}: names no tag or digest")
        return cls(host, repository, tag or None, digest or None)

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        digest = f"@{self.digest}" if self.digest else ""
        return f"{self.host}/{self.repository}{tag}{digest}"


def log_annotations(run_id: str, run_uid: str, created: datetime) -> dict[str, str]:
    return {
        RUN_ID_ANNOTATION: run_id,
        RUN_UID_ANNOTATION: run_uid,
        CREATED_ANNOTATION: created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def store_log(client: DistributionClient, run_id: str, run_uid: str, text: str, *, now: datetime | None = None) -> str:
    """Store a run's (already redacted) log; returns its reference `HOST/dockyard/logs:ID@sha256:…`."""
    data = gzip.compress(text.encode("utf-8"), mtime=0)
    annotations = log_annotations(run_id, run_uid, now or datetime.now(UTC))
    digest = push_artifact(client, LOGS_REPOSITORY, run_id, LOG_ARTIFACT_TYPE, LOG_LAYER_MEDIA_TYPE, data, annotations)
    return str(ArtifactReference(client.host, LOGS_REPOSITORY, run_id, digest))


def read_log(client: DistributionClient, reference: str) -> str:
    """The text of a stored log (by its digest when the reference has one, else by its tag). The
    reference's host is not dialled: `client` is the registry's client, however it is reached."""
    ref = ArtifactReference.parse(reference)
    data = pull_artifact_layer(client, ref.repository, ref.digest or str(ref.tag), LOG_ARTIFACT_TYPE)
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as unzipped:
            text = unzipped.read(MAX_LOG_BYTES + 1)
    except (OSError, EOFError) as error:
        raise RegistryProtocolError(f"{reference}: the log is not gzip'd text") from error
    if len(text) > MAX_LOG_BYTES:
        raise RegistryProtocolError(f"{reference}: the log is larger than {MAX_LOG_BYTES} bytes")
    return text.decode("utf-8", errors="replace")


def delete_log(client: DistributionClient, reference: str) -> bool:
    """Delete a stored log (its manifest; blobs go with the registry's garbage collection); False
    when it was gone already."""
    ref = ArtifactReference.parse(reference)
    digest = ref.digest or client.head_manifest(ref.repository, str(ref.tag))
    if digest is None:
        return False
    return client.delete_manifest(ref.repository, digest)


def _decoded(secret: str) -> str | None:
    """A secret's base64-decoded text, when it is base64 of printable text: a task-file volume
    file holds its secret decoded (`translate.volume_files`), and a step may print it."""
    try:
        text = base64.b64decode(secret.strip(), validate=True).decode()
    except (binascii.Error, ValueError):
        return None
    text = text.strip()
    return text if len(text) >= MIN_DECODED and text.isprintable() else None


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each non-empty secret, and of its base64-decoded text
    (`_decoded`), replaced by `***` (longest first, so a secret that contains another is hidden
    whole)."""
    given = {s for s in secrets if s}
    hidden = given | {d for s in given if (d := _decoded(s))}
    for secret in sorted(hidden, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text
