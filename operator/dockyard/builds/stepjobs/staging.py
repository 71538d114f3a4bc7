"""The staging repository of a run's built images, removed once the run ended (also after a
failure, a cancel or a timeout). Idempotent: a tag already gone is not an error, so a restart that
cleans up again changes nothing. The operator dials the registry's Service address with a delegated
credential for exactly the run's staging repositories."""

from __future__ import annotations

from typing import Final

from dockyard.auth.grants import Grant
from dockyard.builds.access import RegistryAccess
from dockyard.builds.definition import split_reference
from dockyard.distribution.client import Basic, DistributionClient

CREDENTIAL_TTL_SECONDS: Final = 300


def remove_staged(access: RegistryAccess, grant: str, references: tuple[str, ...]) -> int:
    """Delete each staged `host/repository:tag` of this registry; returns how many were there."""
    mine = [split_reference(r) for r in references if split_reference(r)[0] == access.host]
    if not mine:
        return 0
    grants = (Grant(repositories=grant, actions=("pull", "delete")),)
    username, password = access.delegation("dockyard-operator", grants, CREDENTIAL_TTL_SECONDS)
    removed = 0
    with DistributionClient(
        access.host,
        connect_to=access.cluster_ip,
        ca_pem=access.ca_pem,
        credentials=Basic(username, password),
        plain_http=access.plain_http,
    ) as client:
        for _, repository, tag in mine:
            digest = client.head_manifest(repository, tag or "latest")
            if digest is not None and client.delete_manifest(repository, digest):
                removed += 1
    return removed
