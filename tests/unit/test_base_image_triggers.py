"""Base-image triggers: the Dockerfile's base (ARGs, stages, target, platform, scratch, digests),
what a run records, the guards, and the service against a fake API: a push or a poll starts exactly
one run per new digest, and never for the task's own image, a known digest or a disabled trigger."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from dockyard.builds import fetch
from dockyard.builds.baseimage import BaseImage, DockerfileError, ImageRef, final_base, reported_base
from dockyard.builds.history import task_status
from dockyard.builds.manifests.job import ArchiveContext, KanikoBuild, fetch_container
from dockyard.builds.triggers.causes import ImageUpdateCause, build_trigger_run, run_name
from dockyard.builds.triggers.images import decide_update, own_repositories, pending_update
from dockyard.builds.triggers.metrics import register_trigger_metrics
from dockyard.builds.triggers.service import TriggerService
from dockyard.core.meta import Owner
from dockyard.distribution.client import retry_after_seconds
from dockyard.distribution.errors import RegistryThrottled, RegistryUnreachable
from dockyard.events.bus import EventBatch
from dockyard.events.envelope import RegistryEvent
from dockyard.models.builds import BuildTaskSpec
from dockyard.settings import OperatorSettings

HUB = "hub.team.svc:5000"
OLD = "sha256:" + "1" * 64
NEW = "sha256:" + "2" * 64
NEWER = "sha256:" + "3" * 64

# -- the Dockerfile's base ------------------------------------------------------------------------


def test_the_last_stage_is_the_base_and_earlier_stages_are_not() -> None:
    text = "FROM golang:1.22 AS build\nRUN go build\nFROM alpine:3.20\nCOPY --from=build /app /app\n"
    assert final_base(text, {}) == "alpine:3.20"


def test_global_args_expand_with_defaults_and_build_args_override_them() -> None:
    text = "ARG REG=docker.io\nARG VERSION=3.11\nFROM ${REG}/library/python:${VERSION}-slim\n"
    assert final_base(text, {}) == "docker.io/library/python:3.11-slim"
    assert final_base(text, {"VERSION": "3.12", "UNDECLARED": "x"}) == "docker.io/library/python:3.12-slim"
    # ${X:-default} and an ARG without a default that nobody passes
    assert final_base("ARG TAG\nFROM alpine:${TAG:-latest}\n", {}) == "alpine:latest"
    assert final_base("ARG TAG\nFROM alpine:${TAG:-latest}\n", {"TAG": "3.19"}) == "alpine:3.19"
    assert final_base("ARG A=1 B=2\nFROM img:$A.$B\n", {}) == "img:1.2"


def test_args_declared_inside_a_stage_do_not_reach_a_later_from() -> None:
    text = "FROM alpine AS one\nARG TAG=3.20\nFROM alpine:${TAG:-edge}\n"
    assert final_base(text, {"TAG": "9"}) == "alpine:edge"


def test_stage_aliases_are_followed_back_to_an_image() -> None:
    text = (
        "ARG BASE=debian:12\n"
        "FROM $BASE AS os\n"
        "FROM os AS deps\nRUN apt-get update\n"
        "FROM golang:1.22 AS build\n"
        "from DEPS as Final\n"
    )
    assert final_base(text, {}) == "debian:12"
    assert final_base(text, {"BASE": "ubuntu:24.04"}) == "ubuntu:24.04"


def test_target_stops_at_its_stage() -> None:
    text = "FROM node:20 AS test\nRUN npm test\nFROM nginx:1.27 AS web\nFROM web AS debug\n"
    assert final_base(text, {}, target="test") == "node:20"
    assert final_base(text, {}, target="WEB") == "nginx:1.27"
    assert final_base(text, {}) == "nginx:1.27"
    with pytest.raises(DockerfileError, match="prod"):
        final_base(text, {}, target="prod")


def test_platform_flags_are_skipped_and_platform_args_are_predefined() -> None:
    text = "FROM --platform=$BUILDPLATFORM golang:1.22 AS build\nFROM --platform=linux/arm64 base-$TARGETARCH:1\n"
    assert final_base(text, {}) == "base-amd64:1"
    assert final_base(text, {}, platform="linux/arm64/v8") == "base-arm64:1"


def test_scratch_is_no_base_and_digests_are_kept() -> None:
    assert final_base("FROM golang AS b\nFROM scratch\nCOPY --from=b /x /x\n", {}) is None
    reference = final_base("FROM alpine:3.20@sha256:" + "a" * 64 + "\n", {})
    assert reference == "alpine:3.20@sha256:" + "a" * 64
    assert ImageRef.parse(reference).pinned


def test_continuations_comments_directives_and_case() -> None:
    text = "# escape=`\n# a comment\nARG V=1\nfrom `\n  # inside\n  registry.example.com/base:$V `\n  as x\n"
    assert final_base(text, {}) == "registry.example.com/base:1"
    assert final_base("FROM \\\n alpine:3 \\\n AS a\n", {}) == "alpine:3"


def test_a_dockerfile_without_from_or_with_an_empty_image_is_refused() -> None:
    with pytest.raises(DockerfileError):
        final_base("RUN true\n", {})
    with pytest.raises(DockerfileError, match="expands to nothing"):
        final_base("ARG IMAGE\nFROM $IMAGE\n", {})


def test_references_are_qualified_as_docker_does() -> None:
    assert ImageRef.parse("alpine") == ImageRef("docker.io", "library/alpine", "latest", None)
    assert ImageRef.parse("bitnami/redis:7") == ImageRef("docker.io", "bitnami/redis", "7", None)
    assert ImageRef.parse(f"{HUB}/base/py:3.11") == ImageRef(HUB, "base/py", "3.11", None)
    assert ImageRef.parse("localhost/x") == ImageRef("localhost", "x", "latest", None)
    assert ImageRef.parse("alpine").api_host == "registry-1.docker.io"
    assert not ImageRef.parse("alpine:3").pinned


# -- what a run records ----------------------------------------------------------------------------


def _pod(message: str, exit_code: int = 0) -> dict[str, Any]:
    state = {"terminated": {"exitCode": exit_code, "message": message}}
    return {"status": {"initContainerStatuses": [{"name": "fetch-context", "state": state}]}}


def test_the_fetch_containers_report_is_read_only_on_success() -> None:
    base = {"registry": HUB, "repository": "base/py", "tag": "3.11", "digest": OLD}
    assert reported_base(_pod(json.dumps({"baseImage": base})), "fetch-context") == base
    assert reported_base(_pod(json.dumps({"baseImage": base}), exit_code=1), "fetch-context") is None
    assert reported_base(_pod(json.dumps({"baseImage": None, "reason": "scratch"})), "fetch-context") is None
    assert reported_base(_pod("not json"), "fetch-context") is None
    assert reported_base(None, "fetch-context") is None


def test_the_fetcher_reports_no_base_for_scratch_a_pin_or_a_missing_dockerfile(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "Pinned").write_text(f"FROM {HUB}/base/py:3.11@{OLD}\n")
    scratch = fetch.resolve_base(fetch.BaseQuery("Dockerfile", {}), tmp_path, {})
    assert scratch["baseImage"] is None and "scratch" in scratch["reason"]
    pinned = fetch.resolve_base(fetch.BaseQuery("Pinned", {}), tmp_path, {})
    assert pinned["baseImage"] == {"registry": HUB, "repository": "base/py", "digest": OLD}
    missing = fetch.resolve_base(fetch.BaseQuery("nope/Dockerfile", {}), tmp_path, {})
    assert missing["baseImage"] is None and missing["reason"]


def test_a_task_builds_fetch_container_is_asked_for_the_base_with_kanikos_arguments() -> None:
    build = KanikoBuild(
        owner=Owner("dockyard.dev/v1alpha1", "BuildRun", "r", "ns", "uid"),
        registry_host=HUB,
        kaniko_image="kaniko",
        fetcher_image="dockyard",
        context="dir:///workspace",
        dockerfile="docker/Dockerfile",
        destinations=(f"{HUB}/app:1",),
        timeout_seconds=600,
        resources={},
        fetch=ArchiveContext("https://example.com/c.tar.gz"),
        build_args=(("VERSION", "3.12"),),
        target="web",
        platform="linux/arm64",
        insecure_registry=True,
        report_base=True,
    )
    command = fetch_container(build)["command"]
    for arg in (
        "--dockerfile=docker/Dockerfile",
        "--build-arg=VERSION=3.12",
        "--target=web",
        "--platform=linux/arm64",
        f"--registry={HUB}",
        "--docker-config=/kaniko/.docker/config.json",
        "--plain-http",
    ):
        assert arg in command
    plain = fetch_container(KanikoBuild(**{**build.__dict__, "report_base": False}))["command"]
    assert not any(arg.startswith(("--dockerfile", "--registry")) for arg in plain)


def test_the_task_shows_the_base_of_its_newest_run_that_resolved_one() -> None:
    def run(name: str, run_id: str, base: str | None) -> dict[str, Any]:
        status: dict[str, Any] = {"runId": run_id, "status": "Succeeded"}
        if base:
            status["baseImage"] = {"registry": HUB, "repository": "base/py", "tag": "3.11", "digest": base}
        return {"metadata": {"name": name}, "spec": {}, "status": status}

    history = task_status([run("a", "ca1", OLD), run("b", "ca2", NEW), run("c", "ca3", None)])
    assert history["baseImageDigest"] == NEW and history["baseImage"]["digest"] == NEW
    assert "baseImage" not in task_status([run("a", "ca1", None)])


# -- the guards -------------------------------------------------------------------------------------

TRACKED = BaseImage(HUB, "base/py", "3.11", OLD)


def test_only_a_new_digest_of_a_tracked_tag_is_due() -> None:
    never = lambda: None
    assert decide_update(None, NEW, frozenset(), never) == "untracked"
    assert decide_update(BaseImage(HUB, "base/py", None, OLD), NEW, frozenset(), never) == "untracked"
    assert decide_update(TRACKED, OLD, frozenset(), never) == "unchanged"
    assert decide_update(TRACKED, NEW, frozenset(), never) == "due"


def test_never_from_the_tasks_own_image_and_a_pending_update_run_takes_the_burst() -> None:
    own = own_repositories(
        BuildTaskSpec.model_validate(
            {
                "registryRef": {"name": "hub"},
                "source": {"archive": {"url": "https://example.com/c.tar.gz"}},
                "dockerBuild": {"images": ["base/py:{{.Run.ID}}", "other.example.com/x/y:1"]},
            }
        ),
        HUB,
    )
    assert own == {(HUB, "base/py"), ("other.example.com", "x/y")}
    assert decide_update(TRACKED, NEW, own, lambda: None) == "self"
    assert decide_update(TRACKED, NEW, frozenset(), lambda: "t-base-222") == "coalesced"


def test_a_pending_update_run_is_one_that_has_not_resolved_its_base() -> None:
    def run(trigger: str, status: dict[str, Any]) -> dict[str, Any]:
        return {"metadata": {"name": f"r-{trigger}"}, "spec": {"trigger": trigger}, "status": status}

    assert pending_update([run("ImageUpdate", {"status": "Queued"})]) == "r-ImageUpdate"
    assert pending_update([run("ImageUpdate", {"status": "Running", "baseImage": {"digest": NEW}})]) is None
    assert pending_update([run("ImageUpdate", {"status": "Failed"}), run("Manual", {"status": "Queued"})]) is None


def test_image_update_runs_are_named_after_the_digest_and_record_it() -> None:
    cause = ImageUpdateCause(f"{HUB}/base/py:3.11", NEW)
    assert run_name("app", cause) == "app-base-222222222222"
    run = build_trigger_run(TASK, cause)
    assert run["spec"]["trigger"] == "ImageUpdate"
    assert run["spec"]["triggeredBy"] == {"baseImage": f"{HUB}/base/py:3.11", "baseImageDigest": NEW}


def test_retry_after_is_read_as_seconds_or_a_date() -> None:
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


# -- the service against a fake API -------------------------------------------------------------------

TASK: dict[str, Any] = {"metadata": {"name": "app", "namespace": "team", "uid": "u-app"}}


class FakeCache:
    def registries(self) -> list[dict[str, Any]]:
        return [{"metadata": {"namespace": "team", "name": "hub"}, "status": {"loginServer": HUB}}]

    def registry(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.registries()[0] if (namespace, name) == ("team", "hub") else None


class FakeKube:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.created: list[str] = []
        self.events: list[tuple[str, str, str]] = []
        self.cache = FakeCache()

    def create(self, body: dict[str, Any]) -> dict[str, Any] | None:
        key = (body["kind"], body["metadata"]["name"])
        if key in self.objects:
            return None
        self.objects[key] = body
        self.created.append(body["metadata"]["name"])
        return body

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((kind, name))

    def list(self, api_version: str, kind: str, namespace: str, label_selector: str = "") -> list[dict[str, Any]]:
        label, _, value = label_selector.partition("=")
        return [
            body
            for (k, _), body in self.objects.items()
            if k == kind and (body["metadata"].get("labels") or {}).get(label) == value
        ]

    def patch_status(self, api_version: str, kind: str, namespace: str, name: str, status: dict[str, Any]) -> Any:
        return None

    def post_event(self, involved: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))


def base_task(
    name: str = "app",
    base: BaseImage | None = TRACKED,
    images: tuple[str, ...] = ("app:{{.Run.ID}}",),
    enabled: bool = True,
    trigger_enabled: bool = True,
    interval: int = 600,
) -> dict[str, Any]:
    spec = {
        "registryRef": {"name": "hub"},
        "source": {"oci": {"repository": "dockyard/sources", "digest": "sha256:" + "f" * 64}},
        "dockerBuild": {"images": list(images)},
        "enabled": enabled,
        "triggers": {"baseImageUpdate": {"enabled": trigger_enabled, "pollIntervalSeconds": interval}},
    }
    status = {"baseImage": base.as_status()} if base else {}
    return {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "BuildTask",
        "metadata": {**TASK["metadata"], "name": name, "uid": f"u-{name}"},
        "spec": spec,
        "status": status,
    }


class Heads:
    """The registry's answers to HEAD, in order; an exception is raised."""

    def __init__(self, *answers: str | Exception) -> None:
        self.answers, self.asked = list(answers), 0

    def __call__(self, base: BaseImage, task: Any) -> str | None:
        self.asked += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def make_service(kube: FakeKube, heads: Heads, now: list[datetime]) -> tuple[TriggerService, CollectorRegistry]:
    registry = CollectorRegistry()

    def no_git(*_: Any) -> tuple[str | None, str]:
        raise AssertionError("no git here")

    settings = OperatorSettings(events_url="http://dockyard-events.dockyard-system.svc:8090")
    service = TriggerService(
        kube,  # type: ignore[arg-type]
        settings,
        register_trigger_metrics(registry),
        no_git,
        now=lambda: now[0],
        rng=random.Random(1),
        head_image=heads,
    )
    return service, registry


def push(digest: str, repository: str = "base/py", tag: str = "3.11", event_id: str = "e1") -> EventBatch:
    event = RegistryEvent(id=event_id, timestamp="", action="push", repository=repository, tag=tag, digest=digest)
    return EventBatch("team", "hub", (event,))


def checks(registry: CollectorRegistry, source: str, outcome: str) -> float:
    value = registry.get_sample_value(
        "dockyard_build_trigger_base_image_checks_total", {"source": source, "outcome": outcome}
    )
    return value or 0.0


def test_a_push_of_a_new_digest_starts_one_run_and_its_redelivery_nothing() -> None:
    kube, now = FakeKube(), [datetime(2026, 12, 1, 10, tzinfo=UTC)]
    service, registry = make_service(kube, Heads(OLD), now)
    task = base_task()
    kube.objects[("BuildTask", "app")] = task
    service.tick(task)  # watches the base; in a Dockyard registry: resolved once after a start
    assert kube.created == []
    service.base_image_pushes.accept(push(OLD))  # the same digest again: nothing
    service.base_image_pushes.accept(push(NEW, event_id="e2"))
    service.base_image_pushes.accept(push(NEW, event_id="e2"))  # redelivered envelope
    service.tick(task)
    assert kube.created == ["app-base-222222222222"]
    run = kube.objects[("BuildRun", "app-base-222222222222")]
    assert run["spec"]["trigger"] == "ImageUpdate" and run["spec"]["triggeredBy"]["baseImageDigest"] == NEW
    assert checks(registry, "event", "due") == 1 and checks(registry, "event", "unchanged") == 1
    assert any(reason == "RunTriggered" for _, reason, _ in kube.events)
    # a push to another tag or repository is not the base
    service.base_image_pushes.accept(push(NEWER, tag="3.12", event_id="e3"))
    assert kube.created == ["app-base-222222222222"]


def test_a_burst_of_pushes_coalesces_into_the_pending_run_and_a_restart_adds_no_second_run() -> None:
    kube, now = FakeKube(), [datetime(2026, 12, 1, 10, tzinfo=UTC)]
    service, registry = make_service(kube, Heads(OLD), now)
    task = base_task()
    kube.objects[("BuildTask", "app")] = task
    service.tick(task)
    for index, digest in enumerate((NEW, NEWER, "sha256:" + "4" * 64)):
        service.base_image_pushes.accept(push(digest, event_id=f"e{index}"))
    assert kube.created == ["app-base-222222222222"] and checks(registry, "event", "coalesced") == 2
    # the run failed before resolving its base; a new process (restart) finds NEW again: the
    # run's name refuses a second run for the same digest
    kube.objects[("BuildRun", "app-base-222222222222")]["status"] = {"status": "Failed"}
    restarted, restarted_metrics = make_service(kube, Heads(NEW), now)
    restarted.tick(task)
    restarted.tick(task)
    assert kube.created == ["app-base-222222222222"]
    assert (
        restarted_metrics.get_sample_value(
            "dockyard_build_trigger_runs_total", {"trigger": "ImageUpdate", "outcome": "existing"}
        )
        == 1
    )


def test_never_from_an_image_the_task_pushes_itself_nor_when_disabled() -> None:
    kube, now = FakeKube(), [datetime(2026, 12, 1, 10, tzinfo=UTC)]
    service, registry = make_service(kube, Heads(OLD), now)
    own = base_task(images=("base/py:3.11",))
    kube.objects[("BuildTask", "app")] = own
    service.tick(own)
    service.base_image_pushes.accept(push(NEW))
    assert kube.created == [] and checks(registry, "event", "self") == 1
    for disabled in (base_task(enabled=False), base_task(trigger_enabled=False)):
        kube.objects[("BuildTask", "app")] = disabled
        service.tick(disabled)  # no longer watched
        service.base_image_pushes.accept(push(NEWER, event_id="e9"))
        assert kube.created == []


def test_no_tracking_before_the_first_run() -> None:
    kube, now = FakeKube(), [datetime(2026, 12, 1, 10, tzinfo=UTC)]
    heads = Heads(NEW)
    service, _ = make_service(kube, heads, now)
    task = base_task(base=None)
    kube.objects[("BuildTask", "app")] = task
    service.tick(task)
    service.base_image_pushes.accept(push(NEW))
    assert kube.created == [] and heads.asked == 0


def test_an_external_base_is_polled_once_per_interval_for_all_tasks_and_waits_on_429() -> None:
    kube, now = FakeKube(), [datetime(2026, 12, 1, 10, tzinfo=UTC)]
    external = BaseImage("docker.io", "library/python", "3.12", OLD)
    heads = Heads(OLD, RegistryThrottled("HEAD: 429", retry_after=3600), NEW)
    service, registry = make_service(kube, heads, now)
    one, two = base_task("one", base=external), base_task("two", base=external)
    for task in (one, two):
        kube.objects[("BuildTask", task["metadata"]["name"])] = task
    service.tick(one)
    service.tick(two)
    assert heads.asked == 1 and checks(registry, "poll", "unchanged") == 1
    now[0] += timedelta(seconds=800)  # past 600 s + 20 %
    service.tick(two)
    service.tick(one)
    assert heads.asked == 2 and checks(registry, "poll", "throttled") == 1
    now[0] += timedelta(seconds=1800)  # due by the interval, but the registry asked for an hour
    service.tick(one)
    assert heads.asked == 2
    now[0] += timedelta(seconds=1801)
    service.tick(one)  # polls, finds NEW: one's run; two learns the digest at its tick
    service.tick(two)
    assert heads.asked == 3 and sorted(kube.created) == ["one-base-222222222222", "two-base-222222222222"]


def test_a_failing_poll_warns_once_per_error() -> None:
    kube, now = FakeKube(), [datetime(2026, 12, 1, 10, tzinfo=UTC)]
    external = BaseImage("quay.example.com", "org/base", "1", OLD)
    service, registry = make_service(kube, Heads(RegistryUnreachable("HEAD: timed out")), now)
    task = base_task(base=external)
    for _ in range(3):
        service.tick(task)
        now[0] += timedelta(seconds=800)
    warnings = [e for e in kube.events if e[1] == "BaseImagePollFailed"]
    assert len(warnings) == 1 and checks(registry, "poll", "error") == 3


# -- timer tasks without a source (ACR's --context /dev/null) -------------------------------------------


def test_a_timer_task_without_a_source_is_accepted_and_its_pod_fetches_nothing() -> None:
    from dockyard.builds.definition import NotBuildable, check_buildable
    from dockyard.builds.manifests.steps import TaskPod, build_task_job
    from dockyard.builds.taskfile.plan import plan
    from dockyard.builds.taskrun import pod_steps
    from dockyard.builds.template import RunVariables

    purge = "version: v1.1.0\nsteps:\n  - cmd: busybox:1.36 sh -c 'echo purging'\n"
    spec = BuildTaskSpec.model_validate(
        {
            "registryRef": {"name": "hub"},
            "taskFile": purge,
            "triggers": {"timers": [{"name": "t1", "schedule": "0 1 * * *"}]},
        }
    )
    check_buildable(spec)
    steps = pod_steps(plan(purge, RunVariables(ID="ca1", Registry=HUB, Date="20260101-000000z")), HUB)
    job = build_task_job(
        TaskPod(
            owner=Owner("dockyard.dev/v1alpha1", "BuildRun", "purge-1", "team", "uid"),
            registry_host=HUB,
            kaniko_image="kaniko",
            operator_image="dockyard",
            fetch=None,
            steps=steps,
            timeout_seconds=600,
            resources={},
        )
    )
    names = [c["name"] for c in job["spec"]["template"]["spec"]["initContainers"]]
    assert "fetch-context" not in names and len(names) == 1
    # a Dockerfile build still needs its context
    docker = BuildTaskSpec.model_validate({"registryRef": {"name": "hub"}, "dockerBuild": {"images": ["a:1"]}})
    with pytest.raises(NotBuildable, match="build context"):
        check_buildable(docker)


TASK_FILE = "version: v1.1.0\nsteps:\n- cmd: hello-world"


def test_a_base_image_trigger_that_cannot_be_tracked_is_refused_in_ready() -> None:
    from dockyard.handlers.build import unsupported_fields

    def spec(source: dict[str, Any], **build: Any) -> BuildTaskSpec:
        return BuildTaskSpec.model_validate(
            {"registryRef": {"name": "hub"}, "source": source, **build, "triggers": {"baseImageUpdate": {}}}
        )

    docker = {"dockerBuild": {"images": ["a:1"]}}
    assert unsupported_fields(spec({"archive": {"url": "https://example.com/c.tar.gz"}}, **docker)) == []
    # a git source is fetched into the workspace: the fetch container reads its Dockerfile too
    assert unsupported_fields(spec({"git": {"url": "https://example.com/a.git"}}, **docker)) == []
    # a task file: its last build step's base, read by the fetch container
    assert unsupported_fields(spec({"archive": {"url": "https://example.com/c.tar.gz"}}, taskFile=TASK_FILE)) == []
    # no source, no Dockerfile: said in Ready
    assert unsupported_fields(spec({}, taskFile=TASK_FILE))
