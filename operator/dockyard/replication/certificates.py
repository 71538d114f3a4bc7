"""Which certificate a replica serves, by its registry's `tls.mode`: pure, so every choice is
unit-tested (`replication/tls.py` reads the Secrets and carries the choice out).

- `SelfSigned`: a serving certificate from the registry's CA (one trust anchor, `<registry>-ca`).
- `CertManager`: a Certificate of its own (`<registry>-<location>`, owned by the Replication, in the
  replica's namespace) from the registry's issuer, for the replica's names (`hostnames.py`:
  regional and global), into Secret `<registry>-<location>-tls`; the replica waits for cert-manager.
- `Secret` (the user's certificate; the operator cannot issue one): `spec.tls.secretName` of the
  Replication when set, a Secret in the replica's namespace; else the registry's own Secret when
  its certificate names the replica's login server `<registry>-<location>.<namespace>.svc`
  (typically through a wildcard `*.<namespace>.svc`), copied to `<registry>-<location>-tls` when the
  replica runs in another namespace. A certificate that misses it is refused
  (`CertificateNameMismatch`, the message names the missing name): a replica clients cannot verify
  would not serve. The registry's login server name missing is only reported (`uncovered_global`):
  global routing decides whether to route clients there.

Messages name Secrets and DNS names, never their content.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dockyard.core.conditions import Reason
from dockyard.core.pki import uncovered_hosts
from dockyard.registries.manifests.certificate import build_certificate
from dockyard.replication.hostnames import ReplicaHosts
from dockyard.replication.manifests import ReplicaContext, owned
from dockyard.replication.placement import Refusal
from dockyard.replication.reasons import ReplicationReason


@dataclass(frozen=True)
class Presented:
    """A certificate offered for the replica: the Secret holding it and its `tls.crt` (PEM)."""

    secret: str
    cert_pem: bytes


@dataclass(frozen=True)
class ServingSecret:
    """The Secret the replica mounts (in its namespace), and the registry's Secret it is a copy of
    (None: used as it is)."""

    secret: str
    copy_of: str | None = None
    uncovered_global: tuple[str, ...] = ()


def _uncovered(presented: Presented, hosts: list[str]) -> list[str] | Refusal:
    try:
        return uncovered_hosts(presented.cert_pem, hosts)
    except ValueError:
        return Refusal(Reason.DEPENDENCY_NOT_READY, f"tls.crt of Secret {presented.secret} holds no PEM certificate")


def choose_serving_secret(
    hosts: ReplicaHosts,
    registry: str,
    namespace: str,
    *,
    own: Presented | None,
    home: Presented | None,
    copy_name: str | None,
) -> ServingSecret | Refusal:
    """With the registry's `tls.mode: Secret`: the replica's own certificate (`spec.tls.secretName`,
    `own`) when given, else the registry's (`home`), copied to `copy_name` when the replica runs in
    another namespace (None: the same namespace). Refused when the chosen certificate does not name
    the replica's login server."""
    regional = [hosts.login_host]
    if own is not None:
        missing = _uncovered(own, regional)
        if isinstance(missing, Refusal):
            return missing
        if missing:
            return Refusal(
                ReplicationReason.CERTIFICATE_NAME_MISMATCH,
                f"the certificate in Secret {own.secret} (spec.tls.secretName) does not name the replica's "
                f"login server: missing {', '.join(missing)}",
            )
        return ServingSecret(own.secret, None, _global_missing(own, hosts))
    if home is None:
        return Refusal(Reason.DEPENDENCY_NOT_READY, f"waiting for Registry {registry}'s TLS Secret")
    missing = _uncovered(home, regional)
    if isinstance(missing, Refusal):
        return missing
    if missing:
        return Refusal(
            ReplicationReason.CERTIFICATE_NAME_MISMATCH,
            f"the certificate of Registry {registry} (Secret {home.secret}) does not name the replica's login "
            f"server: missing {', '.join(missing)}; add them to it (e.g. *.{namespace}.svc), or give the replica "
            f"its own certificate in spec.tls.secretName (a kubernetes.io/tls Secret in {namespace})",
        )
    global_missing = _global_missing(home, hosts)
    if copy_name is None:
        return ServingSecret(home.secret, None, global_missing)
    return ServingSecret(copy_name, home.secret, global_missing)


def _global_missing(presented: Presented, hosts: ReplicaHosts) -> tuple[str, ...]:
    missing = _uncovered(presented, [hosts.global_login_host])
    return (hosts.global_login_host,) if isinstance(missing, Refusal) else tuple(missing)


def build_replica_certificate(ctx: ReplicaContext) -> dict[str, Any]:
    """The replica's cert-manager Certificate `<registry>-<location>` in its namespace, for all its
    names (`ctx.tls_hosts`), from the registry's issuer, into `ctx.tls_secret_name`; owned by the
    Replication (in another namespace unowned: removed by name, `registries.tls.retire_certificate`)."""
    return owned(ctx, build_certificate(ctx, ctx.names.deployment))
