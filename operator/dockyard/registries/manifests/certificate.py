"""The cert-manager `Certificate` of a registry (or a replica) with `tls.mode: CertManager`: the
operator asks cert-manager for the serving certificate, cert-manager fills the Secret."""

from __future__ import annotations

from typing import Any, Final

from dockyard.core.meta import metadata
from dockyard.registries.manifests.config import RegistryContext

CERT_MANAGER_API: Final = "cert-manager.io/v1"


def build_certificate(ctx: RegistryContext, name: str) -> dict[str, Any]:
    """Certificate `name` for `ctx.tls_hosts` from the registry's issuer, into `ctx.tls_secret_name`,
    owned by `ctx.owner` (the Registry, or the Replication for a replica)."""
    issuer = ctx.spec.tls.issuer_ref
    if issuer is None or ctx.tls_secret_name is None:
        raise ValueError("a Certificate needs tls.mode CertManager with an issuerRef")
    return {
        "apiVersion": CERT_MANAGER_API,
        "kind": "Certificate",
        "metadata": metadata(ctx.owner, name, "registry"),
        "spec": {
            "secretName": ctx.tls_secret_name,
            "dnsNames": ctx.tls_hosts,
            "issuerRef": {"name": issuer.name, "kind": issuer.kind, "group": issuer.group},
            "privateKey": {"algorithm": "ECDSA", "size": 256},
        },
    }
