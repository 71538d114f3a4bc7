"""Build triggers' pure decisions (timers, commit branches, push webhooks of each git host, run
names) and the tick's I/O against a fake API: exactly one run per cause, causes recorded."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from dockyard.builds.git import GitUnreachable
from dockyard.builds.triggers import hooks
from dockyard.builds.triggers.causes import CommitCause, TimerCause, build_trigger_run, run_name
from dockyard.builds.triggers.commit import is_push_to, next_poll, watched_branch
from dockyard.builds.triggers.metrics import register_trigger_metrics
from dockyard.builds.triggers.schedule import decide, latest_at_or_before, next_after
from dockyard.builds.triggers.service import TriggerService
from dockyard.models.builds import BuildTaskSpec
from dockyard.settings import OperatorSettings


def at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


# -- timers ------------------------------------------------------------------------------------


def test_a_new_timer_is_armed_without_a_run() -> None:
    decision = decide("*/15 * * * *", None, at("2026-12-01 10:07:30"))
    assert decision.occurrence is None and decision.next == at("2026-12-01 10:15:00")


def test_a_timer_waits_then_runs_for_its_minute() -> None:
    assert decide("*/15 * * * *", at("2026-12-01 10:15:00"), at("2026-12-01 10:14:59")).occurrence is None
    decision = decide("*/15 * * * *", at("2026-12-01 10:15:00"), at("2026-12-01 10:15:04"))
    assert decision.occurrence == at("2026-12-01 10:15:00") and decision.next == at("2026-12-01 10:30:00")


def test_after_downtime_one_catch_up_run_for_the_latest_occurrence_never_a_burst() -> None:
    decision = decide("* * * * *", at("2026-12-01 10:01:00"), at("2026-12-01 10:07:30"))
    assert decision.occurrence == at("2026-12-01 10:07:00") and decision.next == at("2026-12-01 10:08:00")
    # and the next tick, a second later, has nothing to do
    assert decide("* * * * *", decision.next, at("2026-12-01 10:07:31")).occurrence is None


def test_a_changed_schedule_rearms_rather_than_waiting_for_the_old_one() -> None:
    # stored next from a daily schedule, now every 5 minutes: re-armed to the new next occurrence
    decision = decide("*/5 * * * *", at("2026-12-02 00:00:00"), at("2026-12-01 10:07:30"))
    assert decision.occurrence is None and decision.next == at("2026-12-01 10:10:00")
    # stored next passed, but the new schedule had no occurrence since: re-armed, no run
    decision = decide("0 0 * * *", at("2026-12-01 10:05:00"), at("2026-12-01 10:07:30"))
    assert decision.occurrence is None and decision.next == at("2026-12-02 00:00:00")


def test_cron_names_and_weekdays_in_utc() -> None:
    assert next_after("0 9 * * Mon-Fri", at("2026-12-04 10:00:00")) == at("2026-12-07 09:00:00")  # Fri → Mon
    assert latest_at_or_before("30 * * * *", at("2026-12-01 10:30:59")) == at("2026-12-01 10:30:00")


@pytest.mark.parametrize("schedule", ["61 * * * *", "* * * *", "*/5 * * * * *", "0 0 * * Xyz"])
def test_invalid_schedules_are_refused_when_the_task_is_parsed(schedule: str) -> None:
    with pytest.raises(ValueError, match="cron"):
        BuildTaskSpec.model_validate(task_spec(timers=[{"name": "t", "schedule": schedule}]))


# -- commits -----------------------------------------------------------------------------------


def test_the_branch_a_revision_watches() -> None:
    assert watched_branch("main", None) == "main"
    assert watched_branch("refs/heads/release/1", None) == "release/1"
    assert watched_branch("HEAD", "trunk") == "trunk"
    assert watched_branch("refs/tags/v1", None) is None
    assert watched_branch("a" * 40, None) is None
    assert is_push_to("main", "refs/heads/main", None)
    assert not is_push_to("main", "refs/heads/main2", None)
    assert not is_push_to("main", "refs/tags/main", None)
    assert is_push_to("HEAD", "refs/heads/trunk", "trunk")


def test_polls_are_jittered_within_twenty_percent() -> None:
    now = at("2026-12-01 10:00:00")
    rng = random.Random(1)
    delays = {(next_poll(now, 300, rng) - now).total_seconds() for _ in range(200)}
    assert min(delays) >= 240 and max(delays) <= 360 and len(delays) > 100


# -- webhooks, in each host's real header format -------------------------------------------------

SECRET = b"It's a Secret to Everybody"
SHA = "3f786850e387550fdab836ed7e6dc881de23001b"


def push_body(ref: str = "refs/heads/main", after: str = SHA, gitlab: bool = False) -> bytes:
    repository = {"default_branch": "main", "clone_url": "https://git.example.com/org/app.git"}
    payload: dict[str, Any] = {"ref": ref, "before": "0" * 40, "after": after}
    payload["project" if gitlab else "repository"] = repository
    if gitlab:
        payload |= {"object_kind": "push", "checkout_sha": after}
    return json.dumps(payload).encode()


def github_headers(body: bytes, secret: bytes = SECRET) -> dict[str, str]:
    signature = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "X-Hub-Signature-256": f"sha256={signature}",
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/044aadd",
    }


def gitlab_headers(secret: bytes = SECRET) -> dict[str, str]:
    return {
        "X-Gitlab-Event": "Push Hook",
        "X-Gitlab-Token": secret.decode(),
        "X-Gitlab-Event-UUID": "13792a34-cac6-4fda-95a8-c58e00a3954e",
        "Idempotency-Key": "f5e5f430-f57b-4e6e-9fac-d9128cd7232f",
        "Content-Type": "application/json",
    }


def gitea_headers(body: bytes, secret: bytes = SECRET, forgejo: bool = False) -> dict[str, str]:
    signature = hmac.new(secret, body, hashlib.sha256).hexdigest()
    name = "Forgejo" if forgejo else "Gitea"
    return {
        f"X-{name}-Event": "push",
        f"X-{name}-Delivery": "f6266f16-1bf3-46a5-9ea4-602e06ead473",
        f"X-{name}-Signature": signature,
        "X-GitHub-Event": "push",  # both send GitHub's headers too
        "X-Hub-Signature-256": f"sha256={signature}",
    }


def test_github_signature_is_hmac_sha256_of_the_body() -> None:
    # GitHub's documented example: secret "It's a Secret to Everybody", payload "Hello, World!"
    example = {
        "X-GitHub-Event": "push",
        "X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
    }
    assert hooks.verify("github", example, b"Hello, World!", SECRET)
    assert not hooks.verify("github", example, b"Hello, World?", SECRET)
    body = push_body()
    headers = github_headers(body)
    assert hooks.detect_host(headers) == "github" and hooks.verify("github", headers, body, SECRET)
    assert not hooks.verify("github", github_headers(body, b"wrong"), body, SECRET)
    bare = headers | {"X-Hub-Signature-256": headers["X-Hub-Signature-256"].removeprefix("sha256=")}
    assert not hooks.verify("github", bare, body, SECRET)  # the prefix is part of the format
    assert not hooks.verify("github", {"X-GitHub-Event": "push"}, body, SECRET)


def test_gitlab_token_is_compared_as_is() -> None:
    body = push_body(gitlab=True)
    assert hooks.detect_host(gitlab_headers()) == "gitlab"
    assert hooks.verify("gitlab", gitlab_headers(), body, SECRET)
    assert not hooks.verify("gitlab", gitlab_headers(b"wrong"), body, SECRET)
    assert not hooks.verify("gitlab", {"X-Gitlab-Event": "Push Hook"}, body, SECRET)
    assert not hooks.verify("gitlab", gitlab_headers(b""), body, b"")  # an empty secret proves nothing
    push = hooks.read_push("gitlab", gitlab_headers(), body)
    assert push.delivery == "f5e5f430-f57b-4e6e-9fac-d9128cd7232f" and push.commit == SHA
    assert push.default_branch == "main"


@pytest.mark.parametrize("forgejo", [False, True])
def test_gitea_and_forgejo_sign_without_a_prefix(forgejo: bool) -> None:
    body = push_body()
    headers = gitea_headers(body, forgejo=forgejo)
    assert hooks.detect_host(headers) == "gitea"  # before GitHub's headers they also send
    assert hooks.verify("gitea", headers, body, SECRET)
    assert not hooks.verify("gitea", gitea_headers(body, b"wrong", forgejo), body, SECRET)
    assert not hooks.verify("gitea", headers, body + b" ", SECRET)
    assert hooks.is_push("gitea", headers)
    assert hooks.read_push("gitea", headers, body).delivery == "f6266f16-1bf3-46a5-9ea4-602e06ead473"


def test_a_request_of_no_known_host_is_not_detected_and_payloads_are_checked() -> None:
    assert hooks.detect_host({"Content-Type": "application/json"}) is None
    assert not hooks.is_push("github", {"X-GitHub-Event": "ping"})
    with pytest.raises(hooks.InvalidPayload):
        hooks.read_push("github", {}, b"not json")
    with pytest.raises(hooks.InvalidPayload):
        hooks.read_push("github", {}, json.dumps({"ref": "refs/heads/main", "after": "abc"}).encode())


# -- run names and records -----------------------------------------------------------------------

TASK = {
    "apiVersion": "dockyard.dev/v1alpha1",
    "kind": "BuildTask",
    "metadata": {"name": "web", "namespace": "team", "uid": "u-1"},
}


def test_run_names_derive_from_the_cause_only() -> None:
    timer = TimerCause("nightly", at("2026-12-01 02:00:00"))
    assert run_name("web", timer) == "web-nightly-202612010200"
    assert run_name("web", TimerCause("Nightly_1", at("2026-12-01 02:00:00"))).startswith("web-nightly-1-")
    assert run_name("web", TimerCause("Nightly_1", timer.occurrence)) != run_name(
        "web", TimerCause("nightly-1", timer.occurrence)
    )
    assert run_name("web", CommitCause(SHA, "main")) == run_name("web", CommitCause(SHA, None, "github:x"))
    assert run_name("web", CommitCause(SHA, "main")) == f"web-{SHA[:12]}"
    assert len(run_name("w" * 80, timer)) == 63


def test_a_trigger_run_records_its_cause_and_belongs_to_its_task() -> None:
    run = build_trigger_run(TASK, CommitCause(SHA, "main", "github:d-1"))
    assert run["spec"] == {
        "taskRef": {"name": "web"},
        "trigger": "Commit",
        "triggeredBy": {"commit": SHA, "branch": "main", "delivery": "github:d-1"},
    }
    assert run["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert run["metadata"]["labels"] == {"dockyard.dev/build-task": "web"}
    timer = build_trigger_run(TASK, TimerCause("nightly", at("2026-12-01 02:00:00")))
    assert timer["spec"]["triggeredBy"] == {"timerName": "nightly", "scheduleOccurrence": "2026-12-01T02:00:00Z"}
    assert timer["spec"]["trigger"] == "Timer"


# -- the tick against a fake API ------------------------------------------------------------------


class FakeKube:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.created: list[str] = []
        self.status_patches: list[dict[str, Any]] = []
        self.events: list[tuple[str, str, str]] = []

    def create(self, body: dict[str, Any]) -> dict[str, Any] | None:
        key = (body["kind"], body["metadata"]["name"])
        if key in self.objects:
            return None
        self.objects[key] = body
        self.created.append(body["metadata"]["name"])
        return body

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((kind, name))

    def patch_status(self, api_version: str, kind: str, namespace: str, name: str, status: dict[str, Any]) -> Any:
        self.status_patches.append(status)
        return None

    def post_event(self, involved: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))


def task_spec(**triggers: Any) -> dict[str, Any]:
    return {
        "registryRef": {"name": "hub"},
        "source": {"git": {"url": "https://git.example.com/app.git", "revision": "main"}},
        "dockerBuild": {"images": ["app:{{.Run.ID}}"]},
        "triggers": triggers,
    }


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def service(kube: FakeKube, clock: Clock, heads: list[str] | None = None) -> tuple[TriggerService, CollectorRegistry]:
    registry = CollectorRegistry()

    def resolve(url: str, revision: str, username: str | None, password: str | None) -> tuple[str | None, str]:
        if not heads:
            raise GitUnreachable("cannot reach https://git.example.com/app.git")
        return f"refs/heads/{revision}", heads[0]

    settings = OperatorSettings(events_url="http://dockyard-events.dockyard-system.svc:8090")
    return TriggerService(
        kube, settings, register_trigger_metrics(registry), resolve, now=clock, rng=random.Random(3)
    ), registry


def task(spec: dict[str, Any], status: dict[str, Any] | None = None, enabled: bool = True) -> dict[str, Any]:
    return TASK | {"spec": spec | {"enabled": enabled}, "status": status or {}}


def test_a_timer_tick_creates_one_run_per_occurrence_even_when_its_status_write_was_lost() -> None:
    kube, clock = FakeKube(), Clock(at("2026-12-01 10:00:30"))
    triggers, registry = service(kube, clock)
    spec = task_spec(timers=[{"name": "nightly", "schedule": "* * * * *"}])
    triggers.tick(task(spec))
    assert kube.created == [] and kube.status_patches[-1] == {
        "timers": [{"name": "nightly", "nextScheduleTime": "2026-12-01T10:01:00Z"}]
    }
    armed = {"timers": kube.status_patches[-1]["timers"]}
    clock.now = at("2026-12-01 10:01:02")
    triggers.tick(task(spec, armed))
    triggers.tick(task(spec, armed))  # the status write was lost (a crash): the same cause again
    assert kube.created == ["web-nightly-202612011001"]
    assert kube.status_patches[-1]["timers"] == [
        {"name": "nightly", "nextScheduleTime": "2026-12-01T10:02:00Z", "lastScheduleTime": "2026-12-01T10:01:00Z"}
    ]
    assert (
        registry.get_sample_value("dockyard_build_trigger_runs_total", {"trigger": "Timer", "outcome": "created"}) == 1
    )
    assert (
        registry.get_sample_value("dockyard_build_trigger_runs_total", {"trigger": "Timer", "outcome": "existing"}) == 1
    )
    assert [e[1] for e in kube.events] == ["RunTriggered"] and "timer nightly" in kube.events[0][2]


def test_disabled_tasks_and_timers_disarm_and_start_nothing() -> None:
    kube, clock = FakeKube(), Clock(at("2026-12-01 10:05:30"))
    triggers, _ = service(kube, clock)
    status = {
        "timers": [
            {"name": "t", "nextScheduleTime": "2026-12-01T10:01:00Z", "lastScheduleTime": "2026-12-01T10:00:00Z"}
        ]
    }
    triggers.tick(task(task_spec(timers=[{"name": "t", "schedule": "* * * * *", "enabled": False}]), status))
    triggers.tick(task(task_spec(timers=[{"name": "t", "schedule": "* * * * *"}]), status, enabled=False))
    assert kube.created == []
    assert kube.status_patches[-1] == {"timers": [{"name": "t", "lastScheduleTime": "2026-12-01T10:00:00Z"}]}


def test_a_poll_takes_a_baseline_then_runs_once_per_new_head() -> None:
    kube, clock = FakeKube(), Clock(at("2026-12-01 10:00:00"))
    heads = ["a" * 40]
    triggers, registry = service(kube, clock, heads)
    spec = task_spec(sourceCommit={"mode": "Poll", "pollIntervalSeconds": 60})
    triggers.tick(task(spec))
    assert kube.created == [] and kube.status_patches[-1] == {"lastCommit": "a" * 40}
    heads[0] = "b" * 40
    clock.now = at("2026-12-01 10:00:30")
    triggers.tick(task(spec, {"lastCommit": "a" * 40}))  # not due yet
    assert kube.created == []
    clock.now = at("2026-12-01 10:01:30")
    triggers.tick(task(spec, {"lastCommit": "a" * 40}))
    assert kube.created == [f"web-{'b' * 12}"]
    assert kube.status_patches[-1] == {"lastCommit": "b" * 40, "triggeredCommits": ["b" * 40]}
    run = kube.objects[("BuildRun", f"web-{'b' * 12}")]
    assert run["spec"]["triggeredBy"] == {"commit": "b" * 40, "branch": "main"}
    assert registry.get_sample_value("dockyard_build_trigger_polls_total", {"outcome": "new"}) == 1
    assert registry.get_sample_value("dockyard_build_trigger_polls_total", {"outcome": "baseline"}) == 1


def test_a_failing_poll_warns_once_and_a_disabled_trigger_does_not_poll() -> None:
    kube, clock = FakeKube(), Clock(at("2026-12-01 10:00:00"))
    triggers, registry = service(kube, clock, [])
    spec = task_spec(sourceCommit={"mode": "Poll", "pollIntervalSeconds": 60})
    for minute in range(3):
        clock.now = at(f"2026-12-01 10:0{minute * 2}:00")
        triggers.tick(task(spec, {"lastCommit": "a" * 40}))
    assert [e[1] for e in kube.events] == ["CommitPollFailed"]
    assert registry.get_sample_value("dockyard_build_trigger_polls_total", {"outcome": "error"}) == 3
    off = task_spec(sourceCommit={"mode": "Poll", "enabled": False})
    clock.now = at("2026-12-01 11:00:00")
    triggers.tick(task(off, {"lastCommit": "a" * 40}))
    assert registry.get_sample_value("dockyard_build_trigger_polls_total", {"outcome": "error"}) == 3


def test_webhook_mode_shows_the_url_to_paste() -> None:
    kube, clock = FakeKube(), Clock(at("2026-12-01 10:00:00"))
    triggers, _ = service(kube, clock)
    spec = task_spec(sourceCommit={"mode": "Webhook", "webhookSecretRef": {"name": "hook", "key": "secret"}})
    triggers.tick(task(spec))
    assert kube.status_patches[-1] == {"webhookUrl": "http://dockyard-events.dockyard-system.svc:8090/git/team/web"}


# -- the run reconciler builds a commit run's commit ----------------------------------------------


@pytest.mark.parametrize(
    ("triggered_by", "asked", "expected"),
    [
        (None, "main", ("refs/heads/main", "c" * 40)),
        ({"commit": SHA, "branch": "main"}, SHA, ("refs/heads/main", SHA)),
        ({"commit": SHA}, SHA, ("HEAD", SHA)),
        ({"timerName": "t", "scheduleOccurrence": "2026-12-01T10:01:00Z"}, "main", ("refs/heads/main", "c" * 40)),
    ],
)
def test_the_run_reconciler_resolves_a_commit_run_to_its_commit(
    triggered_by: dict[str, str] | None, asked: str, expected: tuple[str, str]
) -> None:
    from dockyard.builds import definition as defs
    from dockyard.builds.reconcile import RunReconciler
    from dockyard.models.builds import BuildRunSpec

    questions: list[str] = []

    def resolve(url: str, revision: str, username: str | None, password: str | None) -> tuple[str | None, str]:
        questions.append(revision)
        return ("HEAD", revision) if len(revision) == 40 else (f"refs/heads/{revision}", "c" * 40)

    kube = FakeKube()
    reconciler = RunReconciler(kube, OperatorSettings(), logs=None, resolve_git=resolve)  # type: ignore[arg-type]
    spec = {"taskRef": {"name": "web"}, "trigger": "Commit" if triggered_by else "Manual"}
    if triggered_by:
        spec["triggeredBy"] = triggered_by  # type: ignore[assignment]
    body = {"metadata": {"name": "run", "namespace": "team", "uid": "r-1", "generation": 1}, "spec": spec}
    run = defs.resolve(BuildRunSpec.model_validate(spec), "web", BuildTaskSpec.model_validate(task_spec()))
    status = reconciler._resolve_commit(body, {}, run)
    assert questions == [asked]
    assert (status["ref"], status["commit"]) == expected
    assert kube.status_patches[-1]["commit"] == expected[1]


def test_a_commit_that_started_a_run_never_starts_another_even_once_its_run_is_pruned() -> None:
    kube, clock = FakeKube(), Clock(at("2026-12-01 10:00:00"))
    heads = ["a" * 40]
    triggers, registry = service(kube, clock, heads)
    spec = task_spec(sourceCommit={"mode": "Poll", "pollIntervalSeconds": 60})
    # the branch went back to a, whose run was deleted by the history limits since
    triggers.tick(task(spec, {"lastCommit": "b" * 40, "triggeredCommits": ["b" * 40, "a" * 40]}))
    assert kube.created == []
    assert kube.status_patches[-1] == {"lastCommit": "a" * 40, "triggeredCommits": ["a" * 40, "b" * 40]}
    assert (
        registry.get_sample_value("dockyard_build_trigger_runs_total", {"trigger": "Commit", "outcome": "existing"})
        == 1
    )
