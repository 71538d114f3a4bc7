"""Finished runs' logs, kept as OCI artifacts in the run's own registry (`builds/logstore.py`),
reached through the registry client with a delegated credential for exactly the logs repository.

Why the registry and not the operator's state volume: the logs sit next to the images they
describe, any OCI client reads them (`oras pull <registry>/dockyard/logs:ca7`), the CLI already
talks to the registry, they survive the operator's volume, and they go when the registry goes —
the same idea as ACR's `acr/logs`. The operator dials the registry's Service address, so this also
works from a process where `*.svc` names do not resolve.
"""

from __future__ import annotations

from typing import Final

from dockyard.auth.grants import Grant
from dockyard.builds.access import RegistryAccess
from dockyard.builds.artifacts import LOGS_REPOSITORY
from dockyard.builds.logstore import delete_log, store_log
from dockyard.distribution.client import Basic, DistributionClient

CREDENTIAL_TTL_SECONDS: Final = 300


class RegistryLogs:
    def _client(self, access: RegistryAccess) -> DistributionClient:
        grants = (Grant(repositories=LOGS_REPOSITORY, actions=("pull", "push", "delete")),)
        username, password = access.delegation("dockyard-operator", grants, CREDENTIAL_TTL_SECONDS)
        return DistributionClient(
            access.host,
            connect_to=access.cluster_ip,
            ca_pem=access.ca_pem,
            credentials=Basic(username, password),
            plain_http=access.plain_http,
        )

    def store(self, access: RegistryAccess, run_id: str, run_uid: str, text: str) -> str:
        with self._client(access) as client:
            return store_log(client, run_id, run_uid, text)

    def delete(self, access: RegistryAccess, reference: str) -> bool:
        with self._client(access) as client:
            return delete_log(client, reference)
