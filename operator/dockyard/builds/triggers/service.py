"""The I/O around the trigger decisions: one tick per BuildTask with triggers, and starting a run
for a cause (the webhook endpoint, `endpoint.py`, starts runs the same way).

A tick (every few seconds, from kopf's timer on the task; nothing here sleeps):
- timers: `schedule.decide` per timer, a run for a due occurrence, then `status.timers`;
- commit poll (mode Poll): when due (in memory; a restarted operator polls at once), read the
  branch head (`git ls-remote` semantics) with the task's auth Secret; a head other than
  `status.lastCommit` → a run for that commit unless it started one before
  (`status.triggeredCommits`, the last 50), then both recorded. The first head seen is a baseline
  and starts nothing;
- mode Webhook: `status.webhookUrl`;
- base image (`images.py`): the base in `status.baseImage` watched; polled when it is outside
  Dockyard and due (once per base), and a run started when its newest digest passes the guards.
A disabled task or trigger starts nothing: its timers are disarmed (no catch-up for the time it
was off), its branch not polled, its webhooks ignored.

Order, for exactly once: the run is created first (its name is its cause: `causes.py`), the cause
recorded in the task's status after. A crash in between leaves the status behind, so the next tick
finds the same cause due, creates the same name, gets 409 and records it: still one run.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from dockyard.auth.grants import Grant
from dockyard.builds.access import registry_access
from dockyard.builds.baseimage import DOCKER_HUB, BaseImage, ImageRef
from dockyard.builds.fetch import DOCKER_HUB_CONFIG_KEYS, credentials_for
from dockyard.builds.git import GitError
from dockyard.builds.triggers.causes import (
    Cause,
    CommitCause,
    ImageUpdateCause,
    TimerCause,
    build_trigger_run,
    run_name,
)
from dockyard.builds.triggers.commit import branch_of, next_poll
from dockyard.builds.triggers.images import (
    BaseImagePushes,
    BaseImageWatch,
    BaseKey,
    decide_update,
    own_repositories,
    pending_update,
)
from dockyard.builds.triggers.metrics import TriggerMetrics
from dockyard.builds.triggers.schedule import decide
from dockyard.core import conditions
from dockyard.core.conditions import EventReason
from dockyard.core.errors import ReconcileError
from dockyard.core.kube import Kube, contains
from dockyard.core.names import BUILD_TASK_LABEL, label_value
from dockyard.distribution.client import Basic, Credentials, DistributionClient
from dockyard.distribution.errors import DistributionError, RegistryThrottled
from dockyard.models import API_VERSION
from dockyard.models.builds import BuildTaskSpec
from dockyard.settings import OperatorSettings

log = logging.getLogger("dockyard.builds.triggers")

TASK_KIND = "BuildTask"
MEMO_KEY = "triggers"
COMMITS_KEPT = 50


BASE_CREDENTIAL_TTL_SECONDS = 300


class ImageHead(Protocol):
    def __call__(self, base: BaseImage, task: Mapping[str, Any]) -> str | None: ...


class GitResolver(Protocol):
    def __call__(
        self, url: str, revision: str, username: str | None, password: str | None
    ) -> tuple[str | None, str]: ...


def system_clock() -> datetime:
    return datetime.now(UTC)


def parse_time(text: str | None) -> datetime | None:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) if text else None


def decoded(secret: Mapping[str, Any] | None, key: str) -> str | None:
    value = ((secret or {}).get("data") or {}).get(key)
    return base64.b64decode(value).decode("utf-8", errors="replace") if value else None


def webhook_url(settings: OperatorSettings, namespace: str, task: str) -> str:
    base = (settings.git_webhook_base_url or settings.events_url).rstrip("/")
    return f"{base}/git/{namespace}/{task}"


class TriggerService:
    def __init__(
        self,
        kube: Kube,
        settings: OperatorSettings,
        metrics: TriggerMetrics,
        resolve_git: GitResolver,
        now: Callable[[], datetime] | None = None,
        rng: random.Random | None = None,
        head_image: ImageHead | None = None,
    ) -> None:
        self.kube, self.settings, self.metrics, self.resolve_git = kube, settings, metrics, resolve_git
        self.head_image: ImageHead = head_image or self._head_image
        self.images = BaseImageWatch()
        self.base_image_pushes = BaseImagePushes(self.images, self.registry_host, self._base_pushed)
        """The event-bus subscriber of base-image pushes in Dockyard registries (`images.py`)."""
        self._started_base: dict[str, str] = {}
        """Per task uid, the digest whose run this process started or found: not asked again."""
        self._now = now
        self._rng = rng or random.Random()
        self._next_poll: dict[str, datetime] = {}
        self._poll_errors: dict[str, str] = {}
        self._guard = threading.Lock()

    def now(self) -> datetime:
        # looked up at each call, so a test can stand in for the clock of a running operator
        return (self._now or system_clock)()

    def forget(self, uid: str) -> None:
        with self._guard:
            self._next_poll.pop(uid, None)
            self._poll_errors.pop(uid, None)
            self._started_base.pop(uid, None)
        self.images.untrack(uid)

    # -- a tick -------------------------------------------------------------------------------

    def tick(self, task: Mapping[str, Any]) -> None:
        try:
            spec = BuildTaskSpec.model_validate(task.get("spec") or {})
        except ValidationError:
            return  # the task's reconcile reports it in Ready
        status = task.get("status") or {}
        now = self.now()
        timers = self._timers(task, spec, status, now)
        patch = self._commit(task, spec, status, now)
        self._base_image(task, spec, status, now)
        if contains(status, patch):
            patch = {}
        if timers != list(status.get("timers") or []):  # exact: a dropped nextScheduleTime counts
            patch["timers"] = timers or None
        if patch:
            self._write(task, patch)

    def _timers(
        self, task: Mapping[str, Any], spec: BuildTaskSpec, status: Mapping[str, Any], now: datetime
    ) -> list[dict[str, Any]]:
        known = {entry.get("name"): entry for entry in status.get("timers") or []}
        result = []
        for timer in spec.triggers.timers:
            entry = {"name": timer.name}
            last = known.get(timer.name, {}).get("lastScheduleTime")
            if spec.enabled and timer.enabled:
                stored = parse_time(known.get(timer.name, {}).get("nextScheduleTime"))
                decision = decide(timer.schedule, stored, now)
                if decision.occurrence is not None:
                    self.start_run(task, TimerCause(timer.name, decision.occurrence))
                    last = conditions.format_time(decision.occurrence)
                entry["nextScheduleTime"] = conditions.format_time(decision.next)
            if last:
                entry["lastScheduleTime"] = last
            result.append(entry)
        return result

    def _commit(
        self, task: Mapping[str, Any], spec: BuildTaskSpec, status: Mapping[str, Any], now: datetime
    ) -> dict[str, Any]:
        trigger, git, meta = spec.triggers.source_commit, spec.source.git, task["metadata"]
        url = webhook_url(self.settings, meta["namespace"], meta["name"])
        patch: dict[str, Any] = {}
        wants_url = trigger is not None and trigger.mode == "Webhook"
        if wants_url and status.get("webhookUrl") != url:
            patch["webhookUrl"] = url
        elif not wants_url and status.get("webhookUrl"):
            patch["webhookUrl"] = None
        if trigger is None or git is None or trigger.mode != "Poll" or not (spec.enabled and trigger.enabled):
            return patch
        uid = meta["uid"]
        with self._guard:
            due = self._next_poll.get(uid)
            if due is not None and now < due:
                return patch
            self._next_poll[uid] = next_poll(now, trigger.poll_interval_seconds, self._rng)
        username = password = None
        if git.auth_secret_ref is not None:
            secret = self.kube.get("v1", "Secret", meta["namespace"], git.auth_secret_ref.name)
            username, password = decoded(secret, "username"), decoded(secret, "password")
        try:
            ref, commit = self.resolve_git(git.url, git.revision, username, password)
        except GitError as error:
            self.metrics.polls.labels(outcome="error").inc()
            self._report_poll_error(task, str(error))
            return patch
        with self._guard:
            self._poll_errors.pop(uid, None)
        last = status.get("lastCommit")
        if last is None:
            self.metrics.polls.labels(outcome="baseline").inc()
            return patch | {"lastCommit": commit}
        if commit == last:
            self.metrics.polls.labels(outcome="unchanged").inc()
            return patch
        self.metrics.polls.labels(outcome="new").inc()
        self.start_commit_run(task, CommitCause(commit, branch_of(ref)))
        return patch | commit_status(status, commit, head=True)

    def _report_poll_error(self, task: Mapping[str, Any], message: str) -> None:
        """A Warning Event when polling starts failing or fails differently; not on every poll."""
        uid = task["metadata"]["uid"]
        with self._guard:
            if self._poll_errors.get(uid) == message:
                return
            self._poll_errors[uid] = message
        log.warning("commit poll of BuildTask %s failed: %s", task["metadata"]["name"], message)
        self._event(task, "Warning", EventReason.COMMIT_POLL_FAILED, f"reading the branch head failed: {message}")

    # -- base images -------------------------------------------------------------------------

    def _base_image(
        self, task: Mapping[str, Any], spec: BuildTaskSpec, status: Mapping[str, Any], now: datetime
    ) -> None:
        trigger, meta = spec.triggers.base_image_update, task["metadata"]
        tracked = BaseImage.from_status(status.get("baseImage"))
        if trigger is None or not (spec.enabled and trigger.enabled) or tracked is None or tracked.tag is None:
            self.images.untrack(meta["uid"])
            return
        key = tracked.key
        self.images.track(meta["uid"], key, (meta["namespace"], meta["name"]))
        in_dockyard = self.dockyard_registry(tracked.registry) is not None
        upcoming = next_poll(now, trigger.poll_interval_seconds, self._rng)
        if self.images.claim_check(key, now, upcoming, once=in_dockyard):
            self._poll_base(task, tracked, now, trigger.poll_interval_seconds)
            return
        digest = self.images.digest_of(key)
        if digest is not None:  # a digest an event or another task's poll found, or a push coalesced
            self.consider_base(task, key, digest, source=None)

    def _poll_base(self, task: Mapping[str, Any], tracked: BaseImage, now: datetime, interval: int) -> None:
        key = tracked.key
        try:
            digest = self.head_image(tracked, task)
        except RegistryThrottled as error:
            wait = error.retry_after if error.retry_after is not None else interval
            self.images.defer(key, now + timedelta(seconds=wait))
            self.metrics.base_images.labels(source="poll", outcome="throttled").inc()
            return
        except (DistributionError, ReconcileError) as error:
            self.metrics.base_images.labels(source="poll", outcome="error").inc()
            self._report_base_error(task, key, f"{tracked.reference()}: {error}")
            return
        with self.images.lock:
            self.images.errors.pop(key, None)
        if digest is None:
            self.metrics.base_images.labels(source="poll", outcome="missing").inc()
            return
        self.images.seen(key, digest)
        self.consider_base(task, key, digest, source="poll")

    def _base_pushed(self, task_ref: tuple[str, str], key: BaseKey, digest: str) -> None:
        """A push event of a watched base (on the intake's thread): the task read fresh, then decided."""
        task = self.kube.get(API_VERSION, TASK_KIND, *task_ref)
        if task is None:
            return
        self.consider_base(task, key, digest, source="event")

    def consider_base(self, task: Mapping[str, Any], key: BaseKey, digest: str, *, source: str | None) -> bool:
        """Start the task's image-update run for `digest` if the guards let it; True when it did.
        `source` (event, poll) is counted; a tick re-deciding on a known digest is not."""
        try:
            spec = BuildTaskSpec.model_validate(task.get("spec") or {})
        except ValidationError:
            return False
        trigger, meta = spec.triggers.base_image_update, task["metadata"]
        tracked = BaseImage.from_status((task.get("status") or {}).get("baseImage"))
        if trigger is None or not (spec.enabled and trigger.enabled) or tracked is None or tracked.key != key:
            return False
        with self._guard:
            if self._started_base.get(meta["uid"]) == digest:
                return False
        own = own_repositories(spec, self.registry_host(meta["namespace"], spec.registry_ref.name) or "")
        outcome = decide_update(tracked, digest, own, lambda: pending_update(self._runs_of(task)))
        if source is not None:
            self.metrics.base_images.labels(source=source, outcome=outcome).inc()
        if outcome != "due":
            return False
        created = self.start_run(task, ImageUpdateCause(tracked.reference(), digest))
        with self._guard:
            self._started_base[meta["uid"]] = digest
        return created

    def _runs_of(self, task: Mapping[str, Any]) -> list[dict[str, Any]]:
        meta = task["metadata"]
        return self.kube.list(
            API_VERSION, "BuildRun", meta["namespace"], f"{BUILD_TASK_LABEL}={label_value(meta['name'])}"
        )

    def registry_host(self, namespace: str, name: str) -> str | None:
        """The login server of a Dockyard Registry (the host its images are named by)."""
        registry = self.kube.cache.registry(namespace, name)
        if not isinstance(registry, dict):
            registry = self.kube.get(API_VERSION, "Registry", namespace, name)
        host = ((registry or {}).get("status") or {}).get("loginServer")
        return str(host) if host else None

    def dockyard_registry(self, host: str) -> tuple[str, str] | None:
        """(namespace, name) of the Dockyard Registry serving `host`, if one does."""
        for registry in self.kube.cache.registries():
            if (registry.get("status") or {}).get("loginServer") == host:
                return registry["metadata"]["namespace"], registry["metadata"]["name"]
        return None

    def _head_image(self, base: BaseImage, task: Mapping[str, Any]) -> str | None:
        """The digest `base`'s tag names now: a Dockyard registry through its Service with a
        pull-only delegated credential, any other with the task's pull secrets (or anonymously)."""
        assert base.tag is not None
        located = self.dockyard_registry(base.registry)
        if located is not None:
            access = registry_access(self.kube, *located)
            grants = (Grant(repositories=base.repository, actions=("pull",)),)
            username, password = access.delegation("dockyard-operator", grants, BASE_CREDENTIAL_TTL_SECONDS)
            client = DistributionClient(
                access.host,
                connect_to=access.cluster_ip,
                ca_pem=access.ca_pem,
                credentials=Basic(username, password),
                plain_http=access.plain_http,
                timeout=20,
            )
        else:
            reference = ImageRef(base.registry, base.repository, base.tag, None)
            client = DistributionClient(reference.api_host, credentials=self._pull_credentials(task, base), timeout=20)
        with client:
            return client.head_manifest(base.repository, base.tag)

    def _pull_credentials(self, task: Mapping[str, Any], base: BaseImage) -> Credentials | None:
        spec = BuildTaskSpec.model_validate(task.get("spec") or {})
        keys = DOCKER_HUB_CONFIG_KEYS if base.registry == DOCKER_HUB else (base.registry,)
        for reference in spec.pull_secrets:
            text = decoded(
                self.kube.get("v1", "Secret", task["metadata"]["namespace"], reference.name), ".dockerconfigjson"
            )
            try:
                config = json.loads(text) if text else {}
            except ValueError:
                continue
            for key in keys:
                found = credentials_for(config, key) if isinstance(config, dict) else None
                if found is not None:
                    return found
        return None

    def _report_base_error(self, task: Mapping[str, Any], key: BaseKey, message: str) -> None:
        with self.images.lock:
            if self.images.errors.get(key) == message:
                return
            self.images.errors[key] = message
        log.warning("base image poll for BuildTask %s failed: %s", task["metadata"]["name"], message)
        self._event(task, "Warning", EventReason.BASE_IMAGE_POLL_FAILED, f"resolving the base image failed: {message}")

    # -- shared with the webhook endpoint -----------------------------------------------------

    def start_run(self, task: Mapping[str, Any], cause: Cause) -> bool:
        """Create the run for `cause` unless it exists; True when this call created it."""
        created = self.kube.create(build_trigger_run(task, cause)) is not None
        self.metrics.runs.labels(trigger=cause.trigger, outcome="created" if created else "existing").inc()
        if created:
            name = run_name(task["metadata"]["name"], cause)
            log.info("BuildTask %s: %s started run %s", task["metadata"]["name"], cause.describe(), name)
            self._event(task, "Normal", EventReason.RUN_TRIGGERED, f"{cause.describe()} started run {name}")
        return created

    def start_commit_run(self, task: Mapping[str, Any], cause: CommitCause) -> bool:
        """`start_run`, unless the commit started a run before (`status.triggeredCommits`): its run
        may be gone from the history by now, so its name alone no longer guards it."""
        if cause.commit in ((task.get("status") or {}).get("triggeredCommits") or ()):
            self.metrics.runs.labels(trigger=cause.trigger, outcome="existing").inc()
            return False
        return self.start_run(task, cause)

    def record_commit(self, task: Mapping[str, Any], commit: str, *, head: bool) -> None:
        status = task.get("status") or {}
        patch = commit_status(status, commit, head=head)
        if not contains(status, patch):
            self._write(task, patch)

    def _write(self, task: Mapping[str, Any], patch: dict[str, Any]) -> None:
        meta = task["metadata"]
        self.kube.patch_status(API_VERSION, TASK_KIND, meta["namespace"], meta["name"], patch)

    def _event(self, task: Mapping[str, Any], kind: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        body = {"apiVersion": API_VERSION, "kind": TASK_KIND, "metadata": dict(task["metadata"])}
        try:
            self.kube.post_event(body, kind, reason, message)
        except Exception as error:  # an Event is news, not state: losing one must not stop a trigger
            log.warning("an Event about BuildTask %s was not posted: %s", task["metadata"]["name"], error)


def commit_status(status: Mapping[str, Any], commit: str, *, head: bool) -> dict[str, Any]:
    """The task's status once `commit` started (or had) its run; `head`: it is the branch head now."""
    earlier = [sha for sha in status.get("triggeredCommits") or () if sha != commit]
    patch: dict[str, Any] = {"triggeredCommits": [commit, *earlier][:COMMITS_KEPT]}
    if head:
        patch["lastCommit"] = commit
    return patch


def triggers_from(memo: Mapping[str, object]) -> TriggerService:
    service = memo.get(MEMO_KEY)
    if not isinstance(service, TriggerService):
        raise LookupError("the trigger service is not in memo: the startup handler has not run")
    return service
