"""What builds keep in a Registry, in one place for the operator, the build pod and the CLI:
uploaded contexts (`dockyard/sources`, by digest, never tagged) and run logs (`dockyard/logs`,
tagged with the run ID), both single-layer OCI artifacts."""

from __future__ import annotations

from typing import Final

from dockyard.builds.context import MAX_CONTEXT_BYTES
from dockyard.distribution.artifacts import pull_artifact_layer, push_artifact
from dockyard.distribution.client import DistributionClient

SOURCES_REPOSITORY: Final = "dockyard/sources"
CONTEXT_ARTIFACT_TYPE: Final = "application/vnd.dockyard.build.context.v1"
CONTEXT_LAYER_MEDIA_TYPE: Final = "application/vnd.dockyard.build.context.v1.tar+gzip"

LOGS_REPOSITORY: Final = "dockyard/logs"
LOG_ARTIFACT_TYPE: Final = "application/vnd.dockyard.build.log.v1"
LOG_LAYER_MEDIA_TYPE: Final = "application/vnd.dockyard.build.log.v1+gzip"

RUN_ID_ANNOTATION: Final = "dev.dockyard.run.id"
RUN_UID_ANNOTATION: Final = "dev.dockyard.run.uid"
CREATED_ANNOTATION: Final = "org.opencontainers.image.created"


def push_context(client: DistributionClient, packed: bytes, repository: str = SOURCES_REPOSITORY) -> str:
    """Upload a packed context (`builds.context.pack_context`) by digest; returns the manifest
    digest a BuildRun's `source.oci.digest` names. The same context gives the same digest, and
    its upload is skipped when the registry has it."""
    return push_artifact(client, repository, None, CONTEXT_ARTIFACT_TYPE, CONTEXT_LAYER_MEDIA_TYPE, packed)


def pull_context(client: DistributionClient, repository: str, digest: str) -> bytes:
    """The packed context an OCI source names, checked to be one (and no larger than a context
    may be)."""
    return pull_artifact_layer(client, repository, digest, CONTEXT_ARTIFACT_TYPE, max_size=MAX_CONTEXT_BYTES)
