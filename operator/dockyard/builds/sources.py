"""What a build pod's fetch container puts into the workspace for a run's source. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockyard.builds.manifests.job import ArchiveContext, GitContext, OciContext, SourceFetch
from dockyard.models.builds import BuildDefinition


def source_fetch(definition: BuildDefinition, status: Mapping[str, Any]) -> SourceFetch | None:
    """What the fetch init container puts into the workspace (None: no source): a git source at the
    commit resolved into `status.commit`, found through `status.ref` where the server will not give
    a commit by id."""
    source = definition.source
    if source.oci is not None:
        return OciContext(source.oci.repository, source.oci.digest)
    if source.archive is not None:
        return ArchiveContext(source.archive.url)
    git = source.git
    if git is None:
        return None
    secret = git.auth_secret_ref.name if git.auth_secret_ref else None
    return GitContext(git.url, status["commit"], status.get("ref"), git.context_sub_path, secret)
