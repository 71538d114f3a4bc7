"""The operator process: kopf settings, metrics endpoint, liveness probe; importing this module
registers every handler with kopf (`kopf run -m dockyard.main`, or `python -m dockyard`).

After startup:
- the Dockyard settings (read once, here or by `python -m dockyard`), the API client with the
  watch-fed cache bound to kopf's indices, and the metrics are in kopf's `memo`;
- the children are watched by `core/children.py` (not kopf), their events queued by registry;
- one drift-repair loop per kind (`core/drift.py`) reconciles every Registry, Webhook, Token and
  ScopeMap once per drift interval, from the cache;
- the event intake serves registries' notifications and hands them to its subscribers (webhooks,
  replication), and git hosts' push webhooks to the build triggers;
- the replication engine copies between each registry and its replicas (`replication/`);
- kopf keeps its state in annotations under `kopf.dockyard.dev/` (handler progress, the last-handled
  spec) and uses the finalizer `dockyard.dev/finalizer`; never `status` (status is for users). Not
  `dockyard.dev/` itself: kopf leaves every annotation under its own prefix out of the diffs it
  compares, so user-facing annotations such as `dockyard.dev/ping` would trigger no update;
- the operator runs standalone: one replica, no peering objects;
- only warnings and errors from handlers become Kubernetes Events; notable transitions are posted
  explicitly by the handlers;
- metrics are served on the configured port until cleanup, which releases it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Final

import kopf
from prometheus_client import CollectorRegistry

from dockyard import metrics
from dockyard.builds.git import resolve_git_revision
from dockyard.builds.logs import RegistryLogs
from dockyard.builds.metrics import register_build_metrics
from dockyard.builds.reconcile import MEMO_KEY as BUILDS_KEY
from dockyard.builds.reconcile import RunReconciler
from dockyard.builds.retention import sweep_forever
from dockyard.builds.triggers.endpoint import GitWebhookEndpoint
from dockyard.builds.triggers.metrics import register_trigger_metrics
from dockyard.builds.triggers.service import MEMO_KEY as TRIGGERS_KEY
from dockyard.builds.triggers.service import TriggerService
from dockyard.core import kube
from dockyard.core.cache import CHILD_INDEX, ClusterCache
from dockyard.core.children import CHILD_KINDS, ChildWatch
from dockyard.core.drift import DriftRepair
from dockyard.core.memory import freeze_startup_objects, trim_forever
from dockyard.core.names import BUILD_RUN_LABEL, CHILD_LABELS
from dockyard.core.workqueue import KeyedQueue
from dockyard.events.intake import Intake, RegistryTokens
from dockyard.events.metrics import register_intake_metrics
from dockyard.handlers import access as access_handlers
from dockyard.handlers import registry as registry_handlers
from dockyard.handlers import webhook as webhook_handlers
from dockyard.handlers.registry import CHILD_CHANGES_KEY, ChildChange, RegistryKey
from dockyard.models import API_VERSION, GROUP
from dockyard.registries.reconcile import RegistryReconciler
from dockyard.replication.service import MEMO_KEY as REPLICATION_KEY
from dockyard.replication.service import ReplicationService
from dockyard.settings import MEMO_KEY as SETTINGS_KEY
from dockyard.settings import OperatorSettings, load_settings, settings_from
from dockyard.webhooks.service import MEMO_KEY as WEBHOOKS_KEY
from dockyard.webhooks.service import WebhookService

FINALIZER = f"{GROUP}/finalizer"
KOPF_PREFIX = f"kopf.{GROUP}"
_STARTED_AT = "started_at"
_METRICS_SERVER = "metrics_server"
_INTAKE = "intake"
_LOG_SWEEPER = "log_sweeper"
_DRIFT = "drift_repair"
_CHILDREN = "child_watch"
_TRIMMER = "memory_trimmer"
CHILD_RESOURCES: Final = tuple((kind.group, kind.version, kind.plural) for kind in CHILD_KINDS)
HANDLER_THREADS: Final = 32
CONSISTENCY_SECONDS: Final = 60.0
WORKER_IDLE_SECONDS: Final = 0.5
CHILD_EVENT_CONCURRENCY: Final = 4
"""Registries whose children's events (a rollout, a deletion) are handled at once."""
CHILD_SELECTOR: Final = ",".join(f"{key}={value}" for key, value in CHILD_LABELS.items())
BUILD_RESOURCES: Final = (("batch", "v1", "jobs"), ("", "v1", "pods"))
DISCOVERED: Final = (
    *CHILD_INDEX,
    ("v1", "Event"),
    ("v1", "Node"),
    ("batch/v1", "Job"),
    *((API_VERSION, kind) for kind in ("Registry", "Webhook", "Replication", "Token", "ScopeMap", "BuildRun")),
)
"""Kinds whose API discovery is done at startup (see `Kube.discover`)."""


def _installed_version() -> str:
    try:
        return version("dockyard")
    except PackageNotFoundError:
        return "0+unknown"


VERSION = _installed_version()


def configure_kopf(kopf_settings: kopf.OperatorSettings, config: OperatorSettings) -> None:
    """Apply Dockyard's choices to kopf's settings object."""
    kopf_settings.persistence.finalizer = FINALIZER
    kopf_settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    kopf_settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=KOPF_PREFIX, key="last-handled-configuration"
    )
    kopf_settings.watching.server_timeout = config.watch_server_timeout
    kopf_settings.watching.client_timeout = config.watch_client_timeout
    kopf_settings.watching.connect_timeout = config.api_connect_timeout
    kopf_settings.networking.request_timeout = config.api_request_timeout
    kopf_settings.networking.connect_timeout = config.api_connect_timeout
    # kopf would turn every INFO line of every handler into an Event; that buries the few that matter.
    kopf_settings.posting.level = logging.WARNING
    kopf_settings.posting.reporting_component = "dockyard"
    kopf_settings.posting.reporting_instance = socket.gethostname()
    # httpx logs every request's URL at INFO; webhook URLs can carry tokens.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Children are watched by label on the server (by `core/children.py`, not by kopf): the operator
    # never sees the cluster's other Secrets, ConfigMaps, Services, claims, Deployments or
    # Ingresses. The same selector for kopf keeps it so should a kopf handler on a child be added.
    for resource in CHILD_RESOURCES:
        kopf_settings.watching.label_selectors[resource] = CHILD_SELECTOR
    # Build Jobs and their pods by the run label: never the cluster's other Jobs and pods.
    for resource in BUILD_RESOURCES:
        kopf_settings.watching.label_selectors[resource] = BUILD_RUN_LABEL
    # Handlers wait on the API server, not on the CPU: kopf's default pool (CPUs + 4 threads, 6 on
    # two cores) left a burst of creations queued behind a few requests in flight. 1,000 Registries
    # at once were Ready in 174-182 s with 12 threads, 138 s with 24, 134 s with 32 (bench).
    kopf_settings.execution.max_workers = HANDLER_THREADS
    # After its own PATCH kopf waits this long for the watch to bring that version before it
    # trusts an older event. Under a burst the watch lags more than kopf's 5 s: the event of our
    # own status write (older than kopf's annotation) then read as "never handled", and the whole
    # creation ran a second time (0.6-0.9 extra reconciles, status writes and Events per registry).
    kopf_settings.persistence.consistency_timeout = CONSISTENCY_SECONDS
    # kopf keeps an object's worker task for this long after its last event, and the worker holds
    # that event's parsed body meanwhile: with kopf's 5 s, every object of a burst's last five
    # seconds kept one alive (about 5 MiB more at the end of a 1,000-Registry burst, bench). A new
    # event after the worker left starts a new one, for microseconds.
    kopf_settings.queueing.idle_timeout = WORKER_IDLE_SECONDS
    kopf_settings.peering.standalone = True
    kopf_settings.peering.mandatory = False


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: kopf.Logger, **kwargs: Any) -> None:
    if SETTINGS_KEY not in memo:
        memo[SETTINGS_KEY] = load_settings()
    config = settings_from(memo)
    configure_kopf(settings, config)
    operator_metrics = metrics.register_metrics(CollectorRegistry(), version=VERSION)
    memo[metrics.MEMO_KEY] = operator_metrics
    changes: KeyedQueue[RegistryKey, ChildChange] = KeyedQueue(
        lambda key, change: registry_handlers.handle_child_change(key, change, memo),
        ChildChange.merge,
        concurrency=CHILD_EVENT_CONCURRENCY,
    )
    children = ChildWatch(
        kube.connect(pool_size=len(CHILD_KINDS) + 1),  # a connection per watch
        CHILD_SELECTOR,
        namespace=config.namespace or None,
        server_timeout=config.watch_server_timeout,
        client_timeout=config.watch_client_timeout,
        listener=registry_handlers.child_listener(changes),
    )
    cache = ClusterCache()
    # kopf's indices of Dockyard's kinds, empty now and filled by its watches; the children's.
    cache.bind({**kwargs, **children.indices})
    api = kube.Kube(kube.connect(), registry=operator_metrics.registry, cache=cache)
    await asyncio.to_thread(api.discover, DISCOVERED)
    memo[kube.MEMO_KEY] = api
    # Listed before this handler returns, so before any resource handler runs.
    changes.start()
    memo[CHILD_CHANGES_KEY] = changes
    memo[_CHILDREN] = children
    await children.start()
    memo[_STARTED_AT] = time.monotonic()
    webhooks = WebhookService(
        api,
        Path(config.state_dir),
        operator_metrics.registry,
        history_days=config.delivery_history_days,
        user_agent=f"Dockyard-Webhook/{VERSION}",
        concurrency=config.delivery_concurrency,
    )
    triggers = TriggerService(api, config, register_trigger_metrics(operator_metrics.registry), resolve_git_revision)
    replication = ReplicationService(
        api,
        RegistryReconciler(
            api, config.registry_image, config.operator_image, config.events_url, config.node_registry_config_dir
        ),
        Path(config.state_dir),
        operator_metrics.registry,
    )
    intake = Intake(
        RegistryTokens(api),
        [webhooks.fanout, triggers.base_image_pushes, replication.subscriber],
        register_intake_metrics(operator_metrics.registry),
        routes=GitWebhookEndpoint(triggers).routes(),
    )
    await webhooks.start()
    try:
        await intake.start(config.events_host, config.events_port)
        server = metrics.serve_metrics(operator_metrics.registry, config.metrics_host, config.metrics_port)
    except BaseException:
        # kopf retries a failed startup handler: leave no port bound, no store open behind.
        await intake.stop()
        await webhooks.stop()
        replication.stop()
        raise
    replication.start()
    memo[REPLICATION_KEY] = replication
    memo[WEBHOOKS_KEY] = webhooks
    # One reconciler for every run: kopf copies `memo` per object, and a run's own events, its
    # Job's and its pod's must share the reconciler's per-run locks and last-written statuses.
    runs = RunReconciler(
        api, config, RegistryLogs(), resolve_git_revision, metrics=register_build_metrics(operator_metrics.registry)
    )
    memo[BUILDS_KEY] = runs
    memo[TRIGGERS_KEY] = triggers
    memo[_LOG_SWEEPER] = asyncio.create_task(sweep_forever(api, runs.logs, lambda: _builds(kwargs)))
    memo[_TRIMMER] = asyncio.create_task(trim_forever())
    memo[_INTAKE] = intake
    memo[_METRICS_SERVER] = server
    memo[_DRIFT] = [
        DriftRepair(
            "Registry",
            cache.registries,
            lambda body: registry_handlers.repair_drift(body, memo),
            config.drift_interval_seconds,
            current=lambda key: _found(cache.registry(*key)),
        ),
        DriftRepair(
            "Webhook",
            cache.webhooks,
            lambda body: webhook_handlers.repair_drift(body, memo),
            config.drift_interval_seconds,
            current=lambda key: _found(cache.webhook(*key)),
        ),
        DriftRepair(
            "Token",
            cache.tokens,
            lambda body: access_handlers.repair_token_drift(body, memo, kwargs),
            config.drift_interval_seconds,
        ),
        DriftRepair(
            "ScopeMap",
            cache.scope_maps,
            lambda body: access_handlers.repair_scope_map_drift(body, memo, kwargs),
            config.drift_interval_seconds,
        ),
    ]
    for repair in memo[_DRIFT]:
        repair.start()
    freeze_startup_objects()  # last: everything above lives as long as the process
    logger.info(
        f"Dockyard {VERSION}: watching {config.namespace or 'all namespaces'}, "
        f"metrics on {config.metrics_host}:{server.port}, event intake on {config.events_host}:{intake.port}"
    )


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    for repair in memo.pop(_DRIFT, []):
        await repair.stop()
    children = memo.pop(_CHILDREN, None)
    if isinstance(children, ChildWatch):
        children.stop()
    changes = memo.pop(CHILD_CHANGES_KEY, None)
    if isinstance(changes, KeyedQueue):
        await changes.stop()
    intake = memo.pop(_INTAKE, None)
    if isinstance(intake, Intake):
        await intake.stop()
    webhooks = memo.pop(WEBHOOKS_KEY, None)
    if isinstance(webhooks, WebhookService):
        await webhooks.stop()
    replication = memo.pop(REPLICATION_KEY, None)
    if isinstance(replication, ReplicationService):
        await asyncio.to_thread(replication.stop)
    server = memo.pop(_METRICS_SERVER, None)
    if isinstance(server, metrics.MetricsServer):
        server.stop()
    for task in (memo.pop(_LOG_SWEEPER, None), memo.pop(_TRIMMER, None)):
        if isinstance(task, asyncio.Task):
            task.cancel()


def _found(cached: object) -> dict[str, Any] | None:
    """A cache lookup's object, None when absent (or, before the cache is bound, unknown)."""
    return cached if isinstance(cached, dict) else None


def _builds(indices: dict[str, Any]) -> tuple[list[Any], dict[Any, Any]]:
    """Every run and every task by (namespace, name), from kopf's indices (handlers/build.py)."""
    runs = [run for store in list(indices["build_runs"].values()) for run in list(store)]
    tasks = {key: next(iter(store)) for key, store in list(indices["build_tasks"].items()) if list(store)}
    return runs, tasks


@kopf.on.probe(id="version")
def report_version(**_: Any) -> str:
    return VERSION


@kopf.on.probe(id="uptimeSeconds")
def report_uptime(memo: kopf.Memo, **_: Any) -> float:
    return round(time.monotonic() - float(memo.get(_STARTED_AT, time.monotonic())), 1)
