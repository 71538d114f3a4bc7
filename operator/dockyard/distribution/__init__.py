"""The one client of the registry /v2 API (CNCF distribution and any OCI registry): `client`
(requests, token auth, addressing, digests), `artifacts` (single-layer OCI artifacts) and `errors`."""

from dockyard.distribution.client import Basic, Bearer, Credentials, DistributionClient
from dockyard.distribution.errors import (
    DigestMismatch,
    DistributionError,
    RegistryNotFound,
    RegistryProtocolError,
    RegistryUnauthorized,
    RegistryUnreachable,
)

__all__ = [
    "Basic",
    "Bearer",
    "Credentials",
    "DigestMismatch",
    "DistributionClient",
    "DistributionError",
    "RegistryNotFound",
    "RegistryProtocolError",
    "RegistryUnauthorized",
    "RegistryUnreachable",
]
