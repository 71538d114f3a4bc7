"""The registry's serving certificate, by `spec.tls.mode`:

- `SelfSigned`: the operator's CA (generated once, Secret `<name>-ca`) issues a serving certificate
  for the Service's names; it is reissued only when the CA changed or the names are no longer
  covered. The CA certificate is published in ConfigMap `<name>-ca`;
- `Secret`: the user's `kubernetes.io/tls` Secret, waited for;
- `CertManager`: a cert-manager Certificate the operator owns, and the Secret cert-manager fills;
- `Disabled`: plain HTTP.

`ensure_tls` returns a fingerprint of the serving certificate: a new certificate rolls the pods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from dockyard.core.conditions import Reason
from dockyard.core.errors import WaitsForUser
from dockyard.core.kube import Kube
from dockyard.core.names import RegistryNames
from dockyard.core.pki import KeyPair, certificate_covers, issue_ca, issue_serving_cert
from dockyard.registries.admin import decode
from dockyard.registries.manifests.certificate import CERT_MANAGER_API, build_certificate
from dockyard.registries.manifests.config import RegistryContext, content_hash
from dockyard.registries.manifests.secrets import build_ca_config_map, build_tls_secret

CERT_MANAGER_NEEDED = "tls.mode CertManager needs cert-manager, whose Certificate kind is not served"
CERTIFICATE_NAME_ANNOTATION: Final = "cert-manager.io/certificate-name"
"""What cert-manager writes on the Secret it fills: the Certificate's name."""


@dataclass
class TlsPlan:
    """The serving certificate's fingerprint ("" for plain HTTP), and the children still to
    ensure for it (by name in `changed`): the fingerprint is known before they are written, so
    the Deployment need not wait for them."""

    fingerprint: str
    children: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    new_ca: dict[str, Any] | None = None
    """With `defer_ca`: the CA Secret generated now and not written yet. It must be created
    before `children` are written; if another writer's CA is found instead, plan again."""


def ensure_tls(kube: Kube, ctx: RegistryContext, changed: list[str]) -> str:
    """Make the serving certificate exist; its fingerprint ("" for plain HTTP). Appends what it
    wrote to `changed`."""
    plan = plan_tls(kube, ctx)
    for what, manifest in plan.children:
        if kube.ensure(manifest) != "unchanged":
            changed.append(what)
    return plan.fingerprint


def plan_tls(kube: Kube, ctx: RegistryContext, *, defer_ca: bool = False) -> TlsPlan:
    """The CA created once (generated values), the serving certificate reused or issued; its
    Secret and the CA ConfigMap as children still to ensure. With `defer_ca`, a CA that does not
    exist yet is generated but not written (`TlsPlan.new_ca`): the fingerprint is known without
    a request."""
    ns, names, mode = ctx.owner.namespace, ctx.names, ctx.spec.tls.mode
    if ctx.tls_secret_name is None:
        return TlsPlan("")
    if mode == "CertManager":
        _ensure_certificate(kube, ctx)
    if mode in ("Secret", "CertManager"):
        provided = read_tls_secret(kube, ns, ctx.tls_secret_name)
        return TlsPlan(content_hash(provided["data"].get("tls.crt")))

    def build_ca() -> dict[str, Any]:
        return build_tls_secret(ctx, names.ca_secret, issue_ca(f"{ctx.owner.name} registry CA"))

    new_ca = None
    if defer_ca:
        ca_secret = kube.read_child("v1", "Secret", ns, names.ca_secret) or (new_ca := build_ca())
    else:
        ca_secret = kube.create_if_missing("v1", "Secret", ns, names.ca_secret, build_ca)
    ca = KeyPair(decode(ca_secret, "tls.key").encode(), decode(ca_secret, "tls.crt").encode())
    stored = kube.read_child("v1", "Secret", ns, names.tls)
    reusable = (
        stored is not None
        and decode(stored, "ca.crt") == ca.cert_pem.decode()
        and certificate_covers(decode(stored, "tls.crt").encode(), ctx.tls_hosts)
    )
    if stored is not None and reusable:
        serving = KeyPair(decode(stored, "tls.key").encode(), decode(stored, "tls.crt").encode())
    else:
        serving = issue_serving_cert(ca, ctx.tls_hosts)
    return TlsPlan(
        content_hash(serving.cert_pem.decode()),
        [
            ("tls", build_tls_secret(ctx, names.tls, serving, ca.cert_pem)),
            ("ca", build_ca_config_map(ctx, ca.cert_pem)),
        ],
        new_ca,
    )


def _ensure_certificate(kube: Kube, ctx: RegistryContext) -> None:
    ensure_certificate(kube, build_certificate(ctx, ctx.owner.name))


def ensure_certificate(kube: Kube, certificate: dict[str, Any]) -> str:
    """Make a built Certificate exist, or wait (`DependencyNotReady`) while cert-manager's
    Certificate kind is not served."""
    if not kube.kind_served(CERT_MANAGER_API, "Certificate"):
        raise WaitsForUser(Reason.DEPENDENCY_NOT_READY, CERT_MANAGER_NEEDED)
    return kube.ensure(certificate)


def retire_certificate(
    kube: Kube, namespace: str, name: str, owner_uid: str | None = None, *, keep_secret: str | None = None
) -> list[str]:
    """The cert-manager Certificate `name` the operator made, and the Secret cert-manager filled
    for it, deleted; what was removed. With `owner_uid`, a Certificate of that name owned by
    anything else (the user's own) is left alone, and so is its Secret. `keep_secret`: a Secret
    the new spec serves from (`tls.mode: Secret` naming the one cert-manager filled) stays."""
    if not kube.kind_served(CERT_MANAGER_API, "Certificate"):
        return []
    removed = []
    found = kube.get(CERT_MANAGER_API, "Certificate", namespace, name)
    if found is not None:
        owners = {ref.get("uid") for ref in (found.get("metadata") or {}).get("ownerReferences") or []}
        if owner_uid is not None and owner_uid not in owners:
            return []
        kube.delete(CERT_MANAGER_API, "Certificate", namespace, name)
        removed.append(f"Certificate {name} removed")
    secret_name = str(((found or {}).get("spec") or {}).get("secretName") or RegistryNames(name).tls)
    if secret_name == keep_secret:
        return removed
    secret = kube.get("v1", "Secret", namespace, secret_name)
    if (((secret or {}).get("metadata") or {}).get("annotations") or {}).get(CERTIFICATE_NAME_ANNOTATION) == name:
        kube.delete("v1", "Secret", namespace, secret_name)
        removed.append(f"Secret {secret_name} removed")
    return removed


def read_tls_secret(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    """A serving Secret that is not a child of ours (the user's or cert-manager's), read from the
    API; waits (`DependencyNotReady`) until it holds tls.crt and tls.key."""
    stored = kube.get("v1", "Secret", namespace, name)
    data = (stored or {}).get("data") or {}
    if stored is None or "tls.crt" not in data or "tls.key" not in data:
        raise WaitsForUser(Reason.DEPENDENCY_NOT_READY, f"waiting for TLS Secret {name} (tls.crt, tls.key)")
    return stored
