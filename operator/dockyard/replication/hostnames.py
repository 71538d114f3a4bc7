"""The DNS names a replica answers to, in one pure place shared by its serving certificate (every
`tls.mode`) and by global routing.

- **regional**: the replica's own Service `<registry>-<location>` in its namespace, in the four
  forms a Registry's Service is named by (`RegistryContext.service_hosts`: `<svc>.<ns>.svc` first,
  the certificate's common name, then `<svc>`, `<svc>.<ns>`, `<svc>.<ns>.svc.cluster.local`). Its
  login server (`status.loginServer`) and token realm use the first, `<svc>.<ns>.svc`: a
  certificate the user provides must name that one (a wildcard `*.<ns>.svc` does); the operator
  and cert-manager certify all four.
- **global**: the registry's own Service `<registry>` in the registry's namespace, in the same four
  forms: the names a client uses when the registry's global login server routes it to this replica.

A registry's Ingress host is not among them: the Ingress terminates TLS with the registry's own
certificate whichever pod serves behind it.
"""

from __future__ import annotations

from dataclasses import dataclass


def service_dns_names(service: str, namespace: str) -> list[str]:
    """The names of a Service in-cluster, `<svc>.<ns>.svc` first (as `RegistryContext.service_hosts`)."""
    return [f"{service}.{namespace}.svc", service, f"{service}.{namespace}", f"{service}.{namespace}.svc.cluster.local"]


@dataclass(frozen=True)
class ReplicaHosts:
    regional: tuple[str, ...]
    """The replica's own login server names: required of any certificate it serves."""
    global_: tuple[str, ...]
    """The registry's global login server names: needed once the registry's Service routes to it."""

    @property
    def login_host(self) -> str:
        """The replica's login server host (`status.loginServer`, its token realm): the one name a
        certificate it serves must have."""
        return self.regional[0]

    @property
    def global_login_host(self) -> str:
        """The registry's login server host: what a certificate needs for global routing."""
        return self.global_[0]

    @property
    def all(self) -> list[str]:
        """Regional first (the first is the certificate's common name), without repeats."""
        return list(dict.fromkeys((*self.regional, *self.global_)))


def replica_hosts(replica_service: str, namespace: str, registry: str, registry_namespace: str) -> ReplicaHosts:
    """The names of replica `replica_service` (its Service, `<registry>-<location>`) in `namespace`,
    a replica of `registry` in `registry_namespace`."""
    return ReplicaHosts(
        tuple(service_dns_names(replica_service, namespace)), tuple(service_dns_names(registry, registry_namespace))
    )
