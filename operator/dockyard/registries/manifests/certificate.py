"""The cert-manager `Certificate` of a registry (or a replica) with `tls.mode: CertManager`: the
operator asks cert-manager for the serving certificate, cert-manager fills the Secret."""

from __future__ import annotations

import ipaddress
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
            **_subject_alternative_names(ctx.tls_hosts),
            "issuerRef": {"name": issuer.name, "kind": issuer.kind, "group": issuer.group},
            "privateKey": {"algorithm": "ECDSA", "size": 256},
        },
    }


def _subject_alternative_names(hosts: list[str]) -> dict[str, list[str]]:
    """cert-manager's `dnsNames` and `ipAddresses`: an address among the hosts (the ClusterIP
    kubelets pull from, with `exposure.nodePull`) is an IP SAN. As a DNS name it would match no
    client, which checks an address against IP SANs only."""
    addresses = [host for host in hosts if _is_address(host)]
    names = [host for host in hosts if not _is_address(host)]
    return {"dnsNames": names, **({"ipAddresses": addresses} if addresses else {})}


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
