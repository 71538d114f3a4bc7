"""Names and labels of every object the operator creates, in one place.

Children are named after their parent (`<registry>-config`, `<webhook>-signing`, …) and carry the
`app.kubernetes.io/*` labels below; the operator watches its children by `CHILD_LABELS`, and the test
harness builds the names it looks for from these classes rather than spelling them out.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

MANAGED_BY: Final = "dockyard"
NAME_LABEL: Final = "app.kubernetes.io/name"
INSTANCE_LABEL: Final = "app.kubernetes.io/instance"
COMPONENT_LABEL: Final = "app.kubernetes.io/component"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"

CHILD_LABELS: Final = {MANAGED_BY_LABEL: MANAGED_BY}
"""What every child carries: the selector of the operator's watches on children."""


def selector_labels(kind: str, instance: str, component: str) -> dict[str, str]:
    return {NAME_LABEL: kind.lower(), INSTANCE_LABEL: instance, COMPONENT_LABEL: component}


def labels(kind: str, instance: str, component: str) -> dict[str, str]:
    return {**selector_labels(kind, instance, component), MANAGED_BY_LABEL: MANAGED_BY}


@dataclass(frozen=True)
class RegistryNames:
    """Names of a Registry's children, all derived from the Registry's name."""

    registry: str

    @property
    def deployment(self) -> str:
        return self.registry

    @property
    def service(self) -> str:
        return self.registry

    @property
    def config(self) -> str:
        return f"{self.registry}-config"

    @property
    def http_secret(self) -> str:
        return f"{self.registry}-http-secret"

    @property
    def data(self) -> str:
        return f"{self.registry}-data"

    @property
    def tls(self) -> str:
        return f"{self.registry}-tls"

    @property
    def ca_secret(self) -> str:
        return f"{self.registry}-ca"

    @property
    def ca_config_map(self) -> str:
        return f"{self.registry}-ca"

    @property
    def node_trust(self) -> str:
        """The DaemonSet that makes nodes trust and reach the registry (exposure.nodePull)."""
        return f"{self.registry}-node-trust"

    @property
    def token_signer(self) -> str:
        return f"{self.registry}-token-signer"

    @property
    def token_reader(self) -> str:
        """The token service's ServiceAccount, Role and RoleBinding (it reads Tokens and ScopeMaps)."""
        return f"{self.registry}-token-service"

    @property
    def auth(self) -> str:
        return f"{self.registry}-auth"

    @property
    def events(self) -> str:
        """The token this registry presents to the operator's event intake."""
        return f"{self.registry}-events"

    @property
    def admin(self) -> str:
        return f"{self.registry}-admin"

    @property
    def pull(self) -> str:
        return f"{self.registry}-pull"

    @property
    def ingress(self) -> str:
        return self.registry

    @property
    def network_policy(self) -> str:
        """spec.networkRuleSet / publicNetworkAccess as a NetworkPolicy on the registry pods."""
        return self.registry

    @property
    def run_ids(self) -> str:
        """The ConfigMap holding the registry's next build run number."""
        return f"{self.registry}-run-ids"


@dataclass(frozen=True)
class WebhookNames:
    """Names of a Webhook's children."""

    webhook: str

    @property
    def signing(self) -> str:
        """The generated HMAC key (when `spec.signingSecretRef` is not set)."""
        return f"{self.webhook}-signing"


BUILD_RUN_LABEL: Final = "dockyard.dev/build-run"
"""On a run's Job, its pod and its credentials Secret: the BuildRun's name (shortened when longer
than a label value may be), so the operator's watch on build pods finds the run."""
BUILD_TASK_LABEL: Final = "dockyard.dev/build-task"
"""On a task's BuildRuns: the task, for history and `kubectl get buildruns -l`."""


LABEL_VALUE_LIMIT: Final = 63


def replica_name(registry: str, location: str) -> str:
    """A replica's name, `<registry>-<location>` (its Deployment, Service and cert-manager
    Certificate), a DNS label (shortened with a hash beyond 63 characters)."""
    return shortened(f"{registry}-{location}", 63)


def shortened(name: str, limit: int) -> str:
    """`name` if it fits, else a prefix and a hash of the whole, so distinct names stay distinct."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9].rstrip('-.')}-{digest}"


def label_value(name: str) -> str:
    """An object's name as a label value (`dockyard.dev/build-run`, `dockyard.dev/build-task`): the
    name when it fits in 63 characters, else `shortened`: never a cut ending in `-` or `.` (which
    the API refuses), never two long names on one value (as a plain cut at 63 would give). The writers
    of a label and the selectors that find it must both use this."""
    return shortened(name, LABEL_VALUE_LIMIT)


@dataclass(frozen=True)
class BuildRunNames:
    """Names of a BuildRun's children."""

    run: str

    @property
    def job(self) -> str:
        """The Kaniko Job: deterministic, so a second create after a crash is refused (exactly once).
        52 characters leave room for the pod name suffix within a label value's 63."""
        return shortened(f"{self.run}-build", 52)

    @property
    def credentials(self) -> str:
        """The run's docker config (a delegated credential for its registry, plus pull secrets)."""
        return shortened(f"{self.run}-build-auth", 253)

    @property
    def label(self) -> str:
        return label_value(self.run)


@dataclass(frozen=True)
class TokenNames:
    """Names of a Token's children. A dot cannot occur in a Registry's name (a DNS label), so these
    never collide with a registry's `<name>-…` children."""

    token: str

    @property
    def credentials(self) -> str:
        """`username`, `password1`, `password2`."""
        return f"{self.token}.token"

    @property
    def pull(self) -> str:
        """The kubernetes.io/dockerconfigjson companion."""
        return f"{self.token}.token-pull"
