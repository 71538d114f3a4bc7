"""The operator's own configuration, from `DOCKYARD_*` environment variables.

Loaded once per process (`load_settings`) and handed to handlers through kopf's `memo`
(`settings_from`); the object is frozen, so no handler can change what another one sees.
Invalid values fail at startup with a message naming the setting, never later in a
handler.

Kubernetes injects `<SERVICE>_PORT`-style variables for every Service in the pod's namespace, so a
Service named e.g. `dockyard-metrics` would set `DOCKYARD_METRICS_PORT=tcp://…`; the operator's pod
must run with `enableServiceLinks: false`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MEMO_KEY = "settings"

LogFormat = Literal["plain", "full", "json"]
LogLevel = Literal["debug", "info", "warning"]

Port = Annotated[int, Field(ge=1, le=65535)]
Seconds = Annotated[float, Field(gt=0)]


class OperatorSettings(BaseSettings):
    """Everything about the operator process that is not part of a resource's spec."""

    model_config = SettingsConfigDict(env_prefix="DOCKYARD_", frozen=True)

    namespace: str = ""
    """The one namespace to watch; empty watches all namespaces."""

    health_host: str = "0.0.0.0"
    health_port: Port = 8080
    health_path: str = Field(default="/healthz", pattern=r"^/")

    metrics_host: str = "0.0.0.0"
    metrics_port: Port = 9090

    log_format: LogFormat = "full"
    """kopf's formats: `plain` (message only), `full` (time, logger, level), `json` (structured)."""
    log_level: LogLevel = "info"

    registry_image: str = Field(default="registry:3", min_length=1)
    kaniko_image: str = Field(default="ghcr.io/osscontainertools/kaniko:v1.28.3", min_length=1)
    """The maintained community fork: the original GoogleContainerTools/kaniko is archived. A task's
    `builderImage` overrides it."""
    build_cpu_request: str = "250m"
    build_memory_request: str = "512Mi"
    build_cpu_limit: str = "2"
    build_memory_limit: str = "4Gi"
    """Resources of a build container when its task sets none (Kaniko holds layers in memory)."""
    build_workspace_size: str = "2Gi"
    build_workspace_storage_class: str | None = None
    """The shared /workspace of a task run on the Job-per-step path: one ReadWriteOnce claim per run
    (the cluster's default class unless set), deleted when the run ends."""

    build_allow_privileged_steps: bool = False
    """Whether task-file steps may run privileged (`privileged: true`, `--privileged`): a privileged
    container owns the node, so it is off unless the cluster's admin allows it."""
    step_tools_image: str = Field(default="busybox:1.36.1-musl", min_length=1)
    """An image with a static BusyBox at /bin/busybox, copied into task-file cmd steps that need a
    supervisor without a shell in their own image (`|| true`, `> /dev/null`, `docker pull`)."""

    operator_image: str = Field(default="ghcr.io/dockyard-dev/dockyard:0.1.0", min_length=1)
    """The Dockyard image (this repository's Dockerfile); registry pods run its token service."""
    token_service_image: str | None = Field(default=None, min_length=1)
    """The token service's own image (the Dockerfile's `token-service` target); unset: the operator
    image. Runs the registry pods' token container and the nodePull DaemonSet."""

    events_host: str = "0.0.0.0"
    events_port: Annotated[int, Field(ge=0, le=65535)] = 8090
    """The event intake registries post notifications to (0 picks a free port, for tests)."""
    events_url: str = Field(default="http://dockyard-events.dockyard-system.svc:8090", pattern=r"^https?://")
    """How registry pods reach the event intake: the operator's Service, rendered into every
    registry's notification endpoint."""

    git_webhook_base_url: str | None = Field(default=None, pattern=r"^https?://")
    """The event intake as git hosts reach it (an Ingress or load balancer in front of the
    operator's Service), for the push-webhook URL a BuildTask shows in `status.webhookUrl`
    (`<base>/git/<namespace>/<task>`); unset: events_url, which only in-cluster hosts reach."""

    node_registry_config_dir: str = Field(default="/etc/containerd/certs.d", pattern=r"^/")
    """containerd's registry `config_path` directory on the nodes, where a Registry with
    exposure.nodePull has its CA and hosts.toml written (k3s/RKE2:
    /var/lib/rancher/k3s/agent/etc/containerd/certs.d)."""

    state_dir: str = "/var/lib/dockyard"
    """Where the webhook delivery queue lives (SQLite); mount a PersistentVolume here so accepted
    events survive the pod."""
    delivery_history_days: Annotated[float, Field(gt=0)] = 7
    """How long finished deliveries are kept for status and inspection."""
    delivery_concurrency: Annotated[int, Field(ge=1, le=1024)] = 32
    """Webhook HTTP attempts in flight at once (at most 4 per webhook)."""

    drift_interval_seconds: Seconds = 60
    """How often every resource is reconciled again to repair hand edits and deleted children."""

    watch_server_timeout: int = Field(default=60, gt=0)
    """Seconds the API server keeps a watch open before it ends it cleanly (`timeoutSeconds`, an
    integer in the API)."""
    watch_client_timeout: Seconds = 90
    """Seconds after which the operator drops a watch the server has not ended (a stuck connection)."""
    api_request_timeout: Seconds = 60
    api_connect_timeout: Seconds = 10

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _lowercase(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _client_outlives_server(self) -> OperatorSettings:
        # A client timeout at or below the server's cuts every healthy watch short and makes
        # the operator re-list all objects each time.
        if self.watch_client_timeout <= self.watch_server_timeout:
            raise ValueError(
                f"watch_client_timeout ({self.watch_client_timeout}) must be greater than "
                f"watch_server_timeout ({self.watch_server_timeout})"
            )
        return self

    @property
    def liveness_endpoint(self) -> str:
        host = f"[{self.health_host}]" if ":" in self.health_host else self.health_host
        return f"http://{host}:{self.health_port}{self.health_path}"


def load_settings() -> OperatorSettings:
    """Read the settings from the environment; raises `pydantic.ValidationError` if any is invalid."""
    return OperatorSettings()


def settings_from(memo: Mapping[str, object]) -> OperatorSettings:
    """The settings that startup put into kopf's `memo`."""
    settings = memo.get(MEMO_KEY)
    if not isinstance(settings, OperatorSettings):
        raise LookupError("the operator settings are not in memo: the startup handler has not run")
    return settings
