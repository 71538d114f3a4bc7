"""The push-webhook endpoint: `POST /git/{namespace}/{task}`, served by the event intake beside the
registries' notifications (status.webhookUrl of a task with `sourceCommit.mode: Webhook`).

    401  unknown task, no webhook trigger, its Secret missing, no or a wrong signature: nothing
         about the task is revealed, nothing runs, `dockyard_git_webhooks_total{outcome=unauthorized}`
    400  signed, but not a push payload
    202  signed, nothing to do: a ping, another event or branch, a deleted branch, a disabled trigger
    200  a push to the task's branch: its run exists ({"run": name, "created": bool})
    503  the Kubernetes API failed: the host may redeliver, which adds nothing

A redelivery (the same delivery id, seen by this process) is answered 200 at once; any other repeat
of a commit (a redelivery after a restart, a second push of the same SHA) finds the run of that
commit, or finds the commit in `status.triggeredCommits` (its run may be gone from the history),
and creates nothing. `status.lastCommit` is the commit of the last push that started a run
(deliveries may come out of order, so a repeat never moves it). The Secret is read on each
request, so a rotated secret holds at once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Final

from aiohttp import web
from pydantic import ValidationError

from dockyard.builds.triggers import hooks
from dockyard.builds.triggers.causes import CommitCause, run_name
from dockyard.builds.triggers.commit import NO_COMMIT, branch_of, is_push_to
from dockyard.builds.triggers.service import TASK_KIND, TriggerService, decoded
from dockyard.models import API_VERSION
from dockyard.models.builds import BuildTaskSpec

log = logging.getLogger("dockyard.builds.triggers")

ROUTE: Final = "/git/{namespace}/{task}"
DELIVERIES_KEPT: Final = 10_000


class GitWebhookEndpoint:
    def __init__(self, service: TriggerService) -> None:
        self.service = service
        self._deliveries: OrderedDict[str, None] = OrderedDict()
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def routes(self) -> list[tuple[str, str, Any]]:
        return [("POST", ROUTE, self.receive)]

    def _answer(self, host: str, outcome: str, status: int, body: Mapping[str, Any]) -> web.Response:
        self.service.metrics.webhooks.labels(host=host, outcome=outcome).inc()
        return web.json_response(dict(body), status=status)

    def _refuse(self, host: str) -> web.Response:
        return self._answer(host, "unauthorized", 401, {"error": "no such webhook, or the signature does not match"})

    async def receive(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["task"]
        headers = dict(request.headers)
        host = hooks.detect_host(headers)
        if host is None:
            return self._refuse("unknown")
        body = await request.read()
        try:
            task, secret = await asyncio.to_thread(self._task_and_secret, namespace, name)
        except Exception as error:
            log.warning("git webhook for %s/%s: the API failed: %s", namespace, name, type(error).__name__)
            return self._answer(host, "unavailable", 503, {"error": "cannot verify the webhook now"})
        if task is None or secret is None or not hooks.verify(host, headers, body, secret):
            return self._refuse(host)
        if not hooks.is_push(host, headers):
            return self._answer(host, "ignored", 202, {"ignored": f"event {hooks.event_of(host, headers)!r}"})
        try:
            push = hooks.read_push(host, headers, body)
        except hooks.InvalidPayload as error:
            return self._answer(host, "invalid", 400, {"error": str(error)})
        spec = BuildTaskSpec.model_validate(task["spec"])
        trigger, git = spec.triggers.source_commit, spec.source.git
        assert trigger is not None and git is not None  # _task_and_secret returns such tasks only
        if not (spec.enabled and trigger.enabled):
            return self._answer(host, "ignored", 202, {"ignored": "the task's commit trigger is disabled"})
        if push.commit == NO_COMMIT or not is_push_to(git.revision, push.ref, push.default_branch):
            return self._answer(host, "ignored", 202, {"ignored": f"a push to {push.ref}, not the task's branch"})
        run = run_name(name, CommitCause(push.commit, None))
        delivery = f"{host}:{push.delivery}" if push.delivery else None
        if delivery is not None and delivery in self._deliveries:
            return self._answer(host, "duplicate", 200, {"run": run, "created": False})
        cause = CommitCause(push.commit, branch_of(push.ref), delivery)
        try:
            created = await asyncio.to_thread(self._start, task, cause)
        except Exception as error:
            log.warning("git webhook for %s/%s: the run was not created: %r", namespace, name, error)
            return self._answer(host, "unavailable", 503, {"error": "cannot start the run now"})
        if delivery is not None:
            self._deliveries[delivery] = None
            while len(self._deliveries) > DELIVERIES_KEPT:
                self._deliveries.popitem(last=False)
        return self._answer(host, "accepted" if created else "duplicate", 200, {"run": run, "created": created})

    def _task_and_secret(self, namespace: str, name: str) -> tuple[dict[str, Any] | None, bytes | None]:
        """The task if it takes push webhooks, and its shared secret."""
        kube = self.service.kube
        task = kube.get(API_VERSION, TASK_KIND, namespace, name)
        if task is None:
            return None, None
        try:
            spec = BuildTaskSpec.model_validate(task.get("spec") or {})
        except ValidationError:
            return None, None
        trigger = spec.triggers.source_commit
        if (
            trigger is None
            or trigger.mode != "Webhook"
            or trigger.webhook_secret_ref is None
            or spec.source.git is None
        ):
            return None, None
        reference = trigger.webhook_secret_ref
        value = decoded(kube.get("v1", "Secret", namespace, reference.name), reference.key)
        if value is None:
            log.warning(
                "git webhook for %s/%s: Secret %s has no key %s", namespace, name, reference.name, reference.key
            )
        return task, value.encode() if value is not None else None

    def _start(self, task: Mapping[str, Any], cause: CommitCause) -> bool:
        meta = task["metadata"]
        with self._guard:
            lock = self._locks.setdefault((meta["namespace"], meta["name"]), threading.Lock())
        with lock:  # one push of a task at a time: its status list is read, extended and written
            fresh = self.service.kube.get(API_VERSION, TASK_KIND, meta["namespace"], meta["name"]) or task
            created = self.service.start_commit_run(fresh, cause)
            # a redelivery of an older push must not move lastCommit back
            self.service.record_commit(fresh, cause.commit, head=created)
        return created
