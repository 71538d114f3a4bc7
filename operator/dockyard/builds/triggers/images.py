"""Base-image update triggers: which digest a watched base has now, and whether a task rebuilds.

What is watched: `status.baseImage` of a task with `triggers.baseImageUpdate` (the base its newest
run resolved when it started, `builds/baseimage.py`), so nothing is watched before a first run
(as ACR). A base pinned by digest never changes and is not watched.

Where the new digest comes from:
- a base in a Dockyard registry: that registry's push events (the event intake's bus; this module's
  `BaseImagePushes` is a subscriber): a push of the watched repository:tag starts the run while the
  intake commits the envelope, so the run exists before the registry hears 200. After an operator
  start each such base is resolved once with `HEAD` (a push during the downtime was answered by
  nobody), then events alone;
- a base elsewhere: `HEAD` of its tag every `pollIntervalSeconds` ± 20 %, once per base across all
  tasks (the first task to tick when it is due polls; the others read the digest it found), with
  the task's `pullSecrets`; a 429 waits for its `Retry-After`.

Guards (`decide_update`), in order: no watched base → nothing; the digest the last run used → nothing
(re-pushing a digest does nothing); a base the task pushes itself → never (a build would trigger
itself); an image-update run of the task that has not resolved its base yet → coalesced into it
(it will build on whatever the tag names when it starts, so a burst of pushes is one run).
Otherwise one run named after the digest (`causes.py`), so the same update never runs twice for a
task, whoever sees it (an event and a poll, a redelivered envelope, a restart).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from dockyard.builds.baseimage import BaseImage
from dockyard.builds.definition import qualify, split_reference
from dockyard.builds.observe import TERMINAL
from dockyard.builds.taskfile.plan import PlanError, plan
from dockyard.builds.template import RunVariables, render
from dockyard.events.bus import EventBatch
from dockyard.models.builds import BuildTaskSpec

log = logging.getLogger("dockyard.builds.triggers")

BaseKey = tuple[str, str, str]
"""(registry host, repository, tag)."""
Outcome = Literal["untracked", "unchanged", "self", "coalesced", "due"]
IMAGE_UPDATE: Final = "ImageUpdate"


def own_repositories(spec: BuildTaskSpec, registry_host: str) -> frozenset[tuple[str, str]]:
    """(host, repository) of every image the task pushes, templates rendered with placeholders
    (a template in a tag does not change the repository); for a task file, every image its build
    steps tag and its push steps push (a file that does not plan pushes nothing)."""
    build = spec.docker_build
    values = {v.name: v.value for v in spec.values}
    variables = RunVariables(ID="x", Registry=registry_host, Date="x")
    if build is not None:
        images: Iterable[str] = build.images
    elif spec.task_file is not None:
        try:
            planned = plan(spec.task_file, variables, values)
        except PlanError:
            return frozenset()
        images = [image for step in planned.steps for image in (*step.tags, *step.images)]  # rendered
    else:
        return frozenset()
    own = set()
    for image in images:
        try:
            host, repository, _ = split_reference(qualify(render(image, variables, values).strip(), registry_host))
        except ValueError:
            continue
        own.add((host, repository))
    return frozenset(own)


def pending_update(runs: Iterable[Mapping[str, Any]]) -> str | None:
    """An image-update run that has not resolved its base yet (it will take the newest digest)."""
    for run in runs:
        status = run.get("status") or {}
        if (run.get("spec") or {}).get("trigger") != IMAGE_UPDATE or run["metadata"].get("deletionTimestamp"):
            continue
        if status.get("status") not in TERMINAL and not status.get("baseImage"):
            return str(run["metadata"]["name"])
    return None


def decide_update(
    tracked: BaseImage | None,
    digest: str,
    own: frozenset[tuple[str, str]],
    pending: Callable[[], str | None],
) -> Outcome:
    """Whether a base whose tag names `digest` now starts a run of the task (see the guards above);
    `pending` is asked last, as it costs a read of the task's runs."""
    if tracked is None or tracked.tag is None:
        return "untracked"
    if digest == tracked.digest:
        return "unchanged"
    if (tracked.registry, tracked.repository) in own:
        return "self"
    if pending() is not None:
        return "coalesced"
    return "due"


@dataclass
class BaseImageWatch:
    """What this process knows of the watched bases; thread-safe. Lost on restart by design: the
    durable state is each task's `status.baseImage` and the runs' names."""

    latest: dict[BaseKey, str] = field(default_factory=dict)
    """The digest each base's tag was last seen to name (event or poll)."""
    next_check: dict[BaseKey, datetime] = field(default_factory=dict)
    watchers: dict[BaseKey, dict[str, tuple[str, str]]] = field(default_factory=dict)
    """Per base, the tasks watching it: uid → (namespace, name)."""
    errors: dict[BaseKey, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def track(self, uid: str, key: BaseKey, task: tuple[str, str]) -> None:
        with self.lock:
            for other, tasks in list(self.watchers.items()):
                if other != key and tasks.pop(uid, None) is not None and not tasks:
                    del self.watchers[other]
            self.watchers.setdefault(key, {})[uid] = task

    def untrack(self, uid: str) -> None:
        with self.lock:
            for key, tasks in list(self.watchers.items()):
                if tasks.pop(uid, None) is not None and not tasks:
                    del self.watchers[key]

    def watching(self, key: BaseKey) -> list[tuple[str, str]]:
        with self.lock:
            return list((self.watchers.get(key) or {}).values())

    def seen(self, key: BaseKey, digest: str) -> None:
        with self.lock:
            self.latest[key] = digest

    def digest_of(self, key: BaseKey) -> str | None:
        with self.lock:
            return self.latest.get(key)

    def claim_check(self, key: BaseKey, now: datetime, next_time: datetime, *, once: bool) -> bool:
        """Whether this caller polls `key` now (and so sets its next check). `once`: a base in a
        Dockyard registry, resolved only while no digest is known for it."""
        with self.lock:
            if once and key in self.latest:
                return False
            due = self.next_check.get(key)
            if due is not None and now < due:
                return False
            self.next_check[key] = next_time
            return True

    def defer(self, key: BaseKey, until: datetime) -> None:
        with self.lock:
            self.next_check[key] = max(until, self.next_check.get(key, until))


class BaseImagePushes:
    """The event-bus subscriber: a push of a watched repository:tag in a Dockyard registry starts
    the runs it is due for, before the intake answers the registry (`accept` raises when the API
    fails, so the registry posts the envelope again; run names make that harmless)."""

    name = "build-triggers"

    def __init__(
        self,
        watch: BaseImageWatch,
        registry_host: Callable[[str, str], str | None],
        pushed: Callable[[tuple[str, str], BaseKey, str], None],
    ) -> None:
        self.watch, self.registry_host, self.pushed = watch, registry_host, pushed

    async def prepare(self, namespace: str) -> None:
        return None

    def accept(self, batch: EventBatch) -> None:
        pushes = [e for e in batch.events if e.action == "push" and e.tag and e.digest]
        if not pushes:
            return
        host = self.registry_host(batch.namespace, batch.registry)
        if host is None:
            return
        for event in pushes:
            assert event.tag is not None and event.digest is not None
            key = (host, event.repository, event.tag)
            self.watch.seen(key, event.digest)
            for task in self.watch.watching(key):
                self.pushed(task, key, event.digest)
