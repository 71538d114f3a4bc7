"""How the copier reaches a replica: as the replicator, with short-lived credentials.

The operator signs a delegation (`auth/delegation.py`) with the registry's token signer for the
subject `REPLICATOR_SUBJECT` and every repository (push, pull, delete, catalog), valid for
`CREDENTIAL_TTL_SECONDS`; the replica's token service turns it into ordinary registry tokens (5
minutes) whose subject distribution reports as the actor of every write, so the subscriber knows
its own writes. Nothing is stored: a client is rebuilt with a fresh delegation before the old one
expires.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Final

from dockyard.auth.delegation import DELEGATED_USER, REPLICATOR_SUBJECT, issue_delegation
from dockyard.auth.grants import ALL_ACTIONS, Grant
from dockyard.auth.tokens import SigningKey
from dockyard.distribution.client import Basic, DistributionClient

REPLICATOR_GRANTS: Final = (Grant(repositories="*", actions=ALL_ACTIONS, catalog=True),)
CREDENTIAL_TTL_SECONDS: Final = 900
RENEW_BEFORE_SECONDS: Final = 300


@dataclass(frozen=True)
class Endpoint:
    """One replica as the copier reaches it."""

    login_server: str
    service: str
    """The token `service` (the home registry's: one token is valid on every replica)."""
    signer: SigningKey = field(repr=False)
    ca_pem: str | None = None
    plain_http: bool = False
    connect_to: str | None = None


def replicator_client(endpoint: Endpoint, now: float | None = None) -> DistributionClient:
    delegation = issue_delegation(
        endpoint.signer,
        service=endpoint.service,
        subject=REPLICATOR_SUBJECT,
        grants=REPLICATOR_GRANTS,
        ttl_seconds=CREDENTIAL_TTL_SECONDS,
        now=now,
    )
    return DistributionClient(
        endpoint.login_server,
        connect_to=endpoint.connect_to,
        ca_pem=endpoint.ca_pem,
        credentials=Basic(DELEGATED_USER, delegation),
        plain_http=endpoint.plain_http,
    )


class ReplicatorClients:
    """One long-lived client per replica, replaced (and the old one closed) when the endpoint
    changes or its credential nears expiry."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str, str], tuple[Endpoint, float, DistributionClient]] = {}

    def get(self, key: tuple[str, str, str], endpoint: Endpoint) -> DistributionClient:
        now = time.time()
        with self._lock:
            held = self._clients.get(key)
            if held is not None and held[0] == endpoint and held[1] - RENEW_BEFORE_SECONDS > now:
                return held[2]
            client = replicator_client(endpoint, now)
            self._clients[key] = (endpoint, now + CREDENTIAL_TTL_SECONDS, client)
        # The old client may still serve a copy in flight: it is left to the garbage collector.
        return client

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, {}
        for _, _, client in clients.values():
            client.close()
