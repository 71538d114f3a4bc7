"""The Job-per-step path, pure: the shape chosen per run, a plan's steps as this path runs them
(staging, same-run images, the step translations: secrets, volumes, `|| true`, `docker pull`,
`docker stop`, privileged), the scheduler's decisions (parallel `when`, retries, repeat,
ignoreErrors, startDelay, timeout, detach and its stop, the first failure), what Jobs and pods
say, and the step Jobs themselves (golden files; UPDATE_GOLDEN=1 make unit rewrites them)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from dockyard.builds.manifests.job import OciContext
from dockyard.builds.manifests.steps import CmdStep
from dockyard.builds.push import PushError
from dockyard.builds.runplan import run_plan
from dockyard.builds.shape import Shape, execution_shape
from dockyard.builds.stepjobs.copy import blobs_of
from dockyard.builds.stepjobs.copy import parse_arguments as copy_arguments
from dockyard.builds.stepjobs.decide import Create, StepState, decide, final_states
from dockyard.builds.stepjobs.manifests import (
    StepRun,
    build_pull_secret,
    build_step_job,
    build_workspace_claim,
    step_job_name,
)
from dockyard.builds.stepjobs.observe import ATTEMPT_LABEL, FETCH_STEP, STEP_LABEL, Attempt, attempts
from dockyard.builds.stepjobs.steps import CopyStep, JobStep, StagedBuild, StopStep, job_steps, staged_cmd_step
from dockyard.builds.taskfile.plan import plan
from dockyard.builds.template import RunVariables
from dockyard.builds.translate import BUSYBOX, NotRunnable
from dockyard.core.meta import Owner

GOLDEN = Path(__file__).parent / "golden"
HOST = "hub.team.svc:5000"
OWNER = Owner("dockyard.dev/v1alpha1", "BuildRun", "web-7", "team", "uid-7")
RUN = RunVariables(ID="ca7", Registry=HOST, Date="20260101-120000z")
T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)

FAN = """\
version: v1.1.0
steps:
  - id: build-web
    build: -t {{.Run.Registry}}/web:{{.Run.ID}} -f web/Dockerfile web
  - id: build-api
    build: -t {{.Run.Registry}}/api:{{.Run.ID}} api
    when: ['-']
  - id: db
    cmd: redis:7 redis-server
    detach: true
    when: ['-']
  - id: test
    cmd: {{.Run.Registry}}/web:{{.Run.ID}} wget -qO- http://db:6379
    when: [build-web, db]
    retries: 2
    retryDelay: 10
    timeout: 120
  - id: push
    push: ["{{.Run.Registry}}/web:{{.Run.ID}}", "{{.Run.Registry}}/api:{{.Run.ID}}"]
    when: [test, build-api]
"""


def _steps(text: str = FAN) -> tuple[JobStep, ...]:
    return job_steps(plan(text, RUN), HOST, RUN.ID)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def done(step: str, number: int, created: float, code: int = 0, finished: float | None = None, **extra: Any) -> Attempt:
    end = at(finished if finished is not None else created + 5)
    return Attempt(
        step,
        number,
        at(created),
        "Succeeded" if code == 0 else "Failed",
        pod=f"{step}-{number}-pod",
        started=at(created + 1),
        finished=end,
        exit_code=code,
        message="" if code == 0 else f"exit status {code}",
        **extra,
    )


def running(step: str, number: int, created: float, ip: str | None = None) -> Attempt:
    return Attempt(step, number, at(created), "Running", pod=f"{step}-{number}-pod", started=at(created + 1), ip=ip)


def pending(step: str, number: int, created: float) -> Attempt:
    return Attempt(step, number, at(created), "Pending")


def seen(*found: Attempt) -> dict[str, list[Attempt]]:
    out: dict[str, list[Attempt]] = {}
    for attempt in found:
        out.setdefault(attempt.step, []).append(attempt)
    return out


FETCHED = done(FETCH_STEP, 0, 0, finished=10)


def status_of(states: tuple[StepState, ...]) -> dict[str, str]:
    return {s.id: s.status for s in states}


# -- the shape ---------------------------------------------------------------------------------------

CHAIN = "steps:\n  - id: a\n    build: -t x .\n  - id: b\n    cmd: busybox true\n  - id: c\n    push: [x]\n"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (CHAIN.replace("  - id: b\n", "  - id: b\n    when: ['-']\n"), "step b runs in parallel with other steps"),
        (CHAIN.replace("cmd: busybox true", "cmd: busybox true\n    detach: true"), "step b is a detached service"),
        (CHAIN.replace("cmd: busybox true", "cmd: busybox true\n    retries: 1"), "step b has retries"),
        (CHAIN.replace("cmd: busybox true", "cmd: busybox true\n    repeat: 2"), "step b repeats"),
        (CHAIN.replace("cmd: busybox true", "cmd: busybox true\n    ignoreErrors: true"), "step b ignores its errors"),
        (CHAIN.replace("cmd: busybox true", "cmd: busybox true\n    startDelay: 3"), "step b has a startDelay"),
        (CHAIN.replace("cmd: busybox true", "cmd: busybox true\n    timeout: 30"), "step b has its own timeout (30s)"),
        ("stepTimeout: 900\n" + CHAIN, "step a has its own timeout (900s)"),
        (CHAIN.replace("cmd: busybox true", "cmd: x make test"), "step b runs an image built earlier in the run"),
        (CHAIN.replace("cmd: busybox true", "cmd: docker pull x"), "step b runs an image built earlier in the run"),
    ],
)
def test_a_plan_needing_more_than_init_containers_runs_as_a_job_per_step(text: str, why: str) -> None:
    shape, reason = execution_shape(plan(text, RUN))
    assert shape is Shape.JOB_PER_STEP
    assert reason.startswith(why), reason


def test_a_plain_chain_runs_in_one_pod() -> None:
    assert execution_shape(plan(CHAIN, RUN)) == (Shape.POD, "the steps form a plain chain")
    # a later step with the same name as an image built: not a same-run image before it is built
    assert execution_shape(plan("steps:\n  - cmd: x true\n  - build: -t x .\n", RUN))[0] is Shape.POD


# -- steps, staging ------------------------------------------------------------------------------------


def test_images_move_between_steps_through_the_runs_staging_repository() -> None:
    steps = {s.id: s for s in _steps()}
    web, api = steps["build-web"].work, steps["build-api"].work
    assert isinstance(web, StagedBuild) and isinstance(api, StagedBuild)
    assert web.staging == f"{HOST}/dockyard/staging/ca7/build-web:built"
    assert api.staging == f"{HOST}/dockyard/staging/ca7/build-api:built"
    assert web.build.context == "/workspace/web" and web.build.destinations == (f"{HOST}/web:ca7",)
    # the cmd step runs the staged image, the push copies staged → final
    assert steps["test"].work.image == web.staging  # type: ignore[union-attr]
    push = steps["push"].work
    assert isinstance(push, CopyStep)
    assert push.images == ((web.staging, f"{HOST}/web:ca7"), (api.staging, f"{HOST}/api:ca7"))
    assert steps["db"].detach and steps["db"].hostname == "db"
    assert (steps["test"].retries, steps["test"].retry_delay, steps["test"].timeout) == (2, 10, 120)


def test_a_build_no_later_step_uses_is_not_staged() -> None:
    (build,) = _steps("steps:\n  - build: -t {{.Run.Registry}}/x:1 .\n    retries: 1\n")
    assert isinstance(build.work, StagedBuild) and build.work.staging is None


def test_the_image_comes_from_the_latest_build_the_step_waits_for() -> None:
    text = (
        "steps:\n  - id: one\n    build: -t app .\n  - id: two\n    build: -t app -f Dockerfile.two .\n"
        "    when: ['-']\n  - id: run\n    cmd: app true\n    when: [one]\n"
    )
    steps = {s.id: s for s in _steps(text)}
    assert steps["run"].work.image == f"{HOST}/dockyard/staging/ca7/one:built"  # type: ignore[union-attr]
    assert steps["two"].work.staging is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "steps:\n  - id: b\n    build: -t app .\n  - id: p\n    push: [app]\n    when: ['-']\n",
            "step p: image app:latest is not built by any step it runs after",
        ),
        ("steps:\n  - id: My_DB\n    cmd: redis\n    detach: true\n", "step My_DB: a detached step's id must be a DNS"),
        (
            "steps:\n  - id: d\n    cmd: docker ps\n    retries: 1\n",
            "step d: docker ps: Docker CLI steps need a Docker",
        ),
        (
            "steps:\n  - id: db\n    cmd: redis\n  - id: s\n    cmd: docker stop db\n    retries: 1\n",
            "step s: docker stop db: not a detached step of this task file",
        ),
        (
            "steps:\n  - id: db\n    cmd: redis\n    detach: true\n  - id: s\n    cmd: docker stop db\n    when: ['-']\n",
            "step s: docker stop db: a detached step is stopped by a step that runs after it",
        ),
    ],
)
def test_what_this_path_cannot_run_is_refused_naming_the_step(text: str, expected: str) -> None:
    with pytest.raises(NotRunnable) as refused:
        _steps(text)
    assert str(refused.value).startswith(expected)


# -- the step translations on this path ---------------------------------------------------------------

FEATURES = """\
version: v1.1.0
secrets:
  - id: token
    keyvault: k8s-secret:app-secrets/token
volumes:
  - name: conf
    secret:
      token.txt: {{.Secrets.token}}
steps:
  - id: build
    build: -t app --build-arg TOKEN={{.Secrets.token}} .
  - id: db
    cmd: redis:7
    detach: true
    when: ['-']
  - id: check
    cmd: busybox sh -c 'cat /conf/token.txt; exit 3' || true
    env: ["TOKEN={{.Secrets.token}}"]
    volumeMounts:
      - name: conf
        mountPath: /conf
    when: [db]
  - id: pull
    cmd: docker pull app
    when: [build]
  - id: stop
    cmd: docker stop db
    when: [check]
"""


def _features() -> dict[str, JobStep]:
    task = run_plan(FEATURES, RUN, {}, HOST)
    assert task.shape is Shape.JOB_PER_STEP and task.secrets[0].secret == "app-secrets"
    assert [v.name for v in task.volumes] == ["conf"]
    return {s.id: s for s in task.job_steps}


def test_secrets_volumes_and_or_true_are_translated_on_this_path_too() -> None:
    steps = _features()
    check = steps["check"].work
    assert isinstance(check, CmdStep)
    assert check.command[0] == BUSYBOX and check.uses_tools
    assert [ref.id for ref in check.secrets] == ["token"] and check.env[-1:] == ("TOKEN=dockyardsecret0z7c1e",)
    assert [(m.pod_volume, m.path) for m in check.mounts] == [("task-volume-0", "/conf")]
    build = steps["build"].work
    assert isinstance(build, StagedBuild) and [ref.id for ref in build.build.secrets] == ["token"]


def test_a_docker_pull_of_a_same_run_image_pre_pulls_the_staged_image() -> None:
    pull = _features()["pull"].work
    assert isinstance(pull, CmdStep) and pull.command == (BUSYBOX, "true") and pull.always_pull
    assert pull.image == f"{HOST}/dockyard/staging/ca7/build:built"


def test_docker_stop_of_a_detached_step_is_a_stop_step_without_a_job() -> None:
    stop = _features()["stop"]
    assert stop.work == StopStep("stop", "step-stop", ("step-db",))
    with pytest.raises(ValueError, match="no Job"):
        build_step_job(_run(), stop, 0)


def test_privileged_runs_here_only_when_the_operator_allows_it() -> None:
    text = "steps:\n  - cmd: busybox true\n    privileged: true\n    retries: 1\n"
    with pytest.raises(NotRunnable, match="DOCKYARD_BUILD_ALLOW_PRIVILEGED_STEPS"):
        run_plan(text, RUN, {}, HOST)
    (step,) = run_plan(text, RUN, {}, HOST, allow_privileged=True).job_steps
    assert isinstance(step.work, CmdStep) and step.work.privileged


def test_golden_step_jobs_with_translations() -> None:
    steps = _features()
    task = run_plan(FEATURES, RUN, {}, HOST)
    run = StepRun(**{**_run().__dict__, "volumes": task.volumes, "tools_image": "busybox:1.36.1-musl"})
    documents = [
        build_step_job(run, steps["build"], 0, deadline_seconds=600),
        build_step_job(run, steps["check"], 0, deadline_seconds=600),
        build_step_job(run, steps["pull"], 0, deadline_seconds=600),
    ]
    rendered = yaml.safe_dump_all(documents, sort_keys=False)
    path = GOLDEN / "stepjobs-step-features.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(rendered)
    assert path.exists(), f"missing {path.name}: run UPDATE_GOLDEN=1 make unit"
    assert rendered == path.read_text()


# -- the scheduler -------------------------------------------------------------------------------------


def test_the_workspace_is_fetched_before_any_step() -> None:
    first = decide(_steps(), {}, at(0))
    assert first.create == (Create(FETCH_STEP, 0),)
    assert first.verdict.status == "Queued" and set(status_of(first.steps).values()) == {"Queued"}
    fetching = decide(_steps(), seen(running(FETCH_STEP, 0, 0)), at(3))
    assert fetching.create == () and fetching.verdict.status == "Running"
    failed = decide(_steps(), seen(done(FETCH_STEP, 0, 0, code=1)), at(9))
    assert failed.verdict.status == "Error" and failed.verdict.message.startswith("fetching the context failed")
    assert failed.create == ()


def test_steps_without_a_dependency_start_together_after_the_fetch() -> None:
    decision = decide(_steps(), seen(FETCHED), at(11))
    assert [(c.step, c.number) for c in decision.create] == [
        ("step-build-web", 0),
        ("step-build-api", 0),
        ("step-db", 0),
    ]
    assert decision.create[2].deadline_seconds is None  # a service has no step deadline
    assert decision.create[0].deadline_seconds == 600
    # the same observation asks for the same Jobs (their names refuse a second create)
    assert decide(_steps(), seen(FETCHED), at(11)) == decision


def test_a_step_starts_once_every_dependency_succeeded_and_reaches_services_by_id() -> None:
    steps = _steps()
    web_running = seen(
        FETCHED,
        running("step-build-web", 0, 11),
        pending("step-build-api", 0, 11),
        running("step-db", 0, 11, "10.1.0.9"),
    )
    decision = decide(steps, web_running, at(20))
    assert decision.create == ()
    assert status_of(decision.steps) == {
        "build-web": "Running",
        "build-api": "Queued",
        "db": "Succeeded",  # detached: succeeded once its container started
        "test": "Queued",
        "push": "Queued",
    }
    web_done = seen(
        FETCHED,
        done("step-build-web", 0, 11, finished=30),
        pending("step-build-api", 0, 11),
        running("step-db", 0, 11, "10.1.0.9"),
    )
    decision = decide(steps, web_done, at(31))
    assert decision.create == (Create("step-test", 0, 120, (("10.1.0.9", "db"),)),)
    assert decision.verdict.status == "Running"


def test_a_join_waits_for_its_slowest_dependency() -> None:
    base = [FETCHED, done("step-build-web", 0, 11), running("step-db", 0, 11, "10.1.0.9"), done("step-test", 0, 20)]
    waiting = decide(_steps(), seen(*base, running("step-build-api", 0, 11)), at(40))
    assert waiting.create == ()
    joined = decide(_steps(), seen(*base, done("step-build-api", 0, 11, finished=45)), at(46))
    assert [c.step for c in joined.create] == ["step-push"]


def test_the_first_failure_ends_the_run_stops_the_others_and_skips_the_rest() -> None:
    found = seen(
        FETCHED,
        done("step-build-web", 0, 11, code=1, finished=20),
        running("step-build-api", 0, 11),
        running("step-db", 0, 11, "10.1.0.9"),
    )
    decision = decide(_steps(), found, at(21))
    assert decision.verdict.status == "Failed"
    assert decision.verdict.message == "step build-web failed: exit status 1"
    assert decision.create == ()
    final = {s.id: s for s in final_states(decision.steps, "Failed")}
    assert {k: v.status for k, v in final.items()} == {
        "build-web": "Failed",
        "build-api": "Canceled",
        "db": "Succeeded",
        "test": "Skipped",
        "push": "Skipped",
    }
    assert final["build-web"].exit_code == 1 and final["build-api"].message == "stopped: the run ended (Failed)"


RETRY = "steps:\n  - id: t\n    cmd: busybox false\n    retries: 2\n    retryDelay: 10\n    timeout: 300\n"


def test_a_failed_attempt_is_retried_after_the_retry_delay() -> None:
    steps = _steps(RETRY)
    first_failed = seen(FETCHED, done("step-t", 0, 11, code=1, finished=20))
    early = decide(steps, first_failed, at(25))
    assert early.create == () and early.wake_at == at(30) and early.verdict.status == "Running"
    assert status_of(early.steps) == {"t": "Running"}
    due = decide(steps, first_failed, at(30))
    # what is left of the step's one timeout (from its first Job, created at 11 s)
    assert due.create == (Create("step-t", 1, 281),)
    second_ok = seen(FETCHED, done("step-t", 0, 11, code=1, finished=20), done("step-t", 1, 30, finished=40))
    ended = decide(steps, second_ok, at(41))
    assert ended.verdict.status == "Succeeded"
    (state,) = ended.steps
    assert (state.status, state.attempts, state.exit_code, state.start_time) == ("Succeeded", 2, 0, at(12))


def test_a_step_whose_retries_are_spent_fails() -> None:
    tries = [done("step-t", n, 11 + 20 * n, code=1) for n in range(3)]
    decision = decide(_steps(RETRY), seen(FETCHED, *tries), at(80))
    assert decision.verdict.status == "Failed" and decision.create == ()
    assert decision.steps[0].attempts == 3


RETRY_ON = RETRY + "    retryOnErrors: ['connection refused', 'TLS handshake timeout']\n"


def test_retry_on_errors_retries_only_a_failure_whose_output_names_one_of_them() -> None:
    steps = _steps(RETRY_ON)
    assert steps[0].retry_on_errors == ("connection refused", "TLS handshake timeout")
    # the kubelet's termination message holds the failed container's log tail
    flaky = done("step-t", 0, 11, code=1, finished=20, termination_message="dial tcp: connection refused\n")
    assert decide(steps, seen(FETCHED, flaky), at(30)).create == (Create("step-t", 1, 281),)
    real = done("step-t", 0, 11, code=1, finished=20, termination_message="FAIL: 3 tests failed\n")
    ended = decide(steps, seen(FETCHED, real), at(30))
    assert ended.verdict.status == "Failed" and ended.create == () and ended.steps[0].attempts == 1
    # the attempt's failure message counts too (a pod that ended before its container said anything)
    evicted = Attempt("step-t", 0, at(11), "Failed", finished=at(20), message="Evicted: TLS handshake timeout")
    assert decide(steps, seen(FETCHED, evicted), at(30)).create == (Create("step-t", 1, 281),)


def test_retry_on_errors_stops_a_repetitions_retries_not_its_other_repetitions() -> None:
    steps = _steps(RETRY_ON.replace("retries: 2", "retries: 2\n    repeat: 1"))
    real = done("step-t", 0, 11, code=1, finished=20, termination_message="assertion failed")
    decision = decide(steps, seen(FETCHED, real), at(21))
    assert decision.create == (Create("step-t", 1, 290),)  # the second repetition, at once
    second = done("step-t", 1, 21, finished=30)
    assert decide(steps, seen(FETCHED, real, second), at(31)).verdict.status == "Failed"


def test_repeat_runs_every_repetition_and_fails_if_one_failed() -> None:
    steps = _steps("steps:\n  - id: r\n    cmd: busybox true\n    repeat: 2\n")
    one_failed = seen(FETCHED, done("step-r", 0, 11, code=1, finished=15))
    assert decide(steps, one_failed, at(15)).create == (Create("step-r", 1, 596),)  # no delay between repetitions
    all_ran = seen(FETCHED, done("step-r", 0, 11, code=1), done("step-r", 1, 17), done("step-r", 2, 23))
    ended = decide(steps, all_ran, at(30))
    assert ended.verdict.status == "Failed" and ended.steps[0].attempts == 3
    all_ok = seen(FETCHED, done("step-r", 0, 11), done("step-r", 1, 17), done("step-r", 2, 23))
    assert decide(steps, all_ok, at(30)).verdict.status == "Succeeded"


def test_ignore_errors_counts_a_failure_as_success_and_keeps_its_exit_code() -> None:
    text = "steps:\n  - id: lint\n    cmd: busybox false\n    ignoreErrors: true\n  - id: next\n    cmd: busybox true\n"
    decision = decide(_steps(text), seen(FETCHED, done("step-lint", 0, 11, code=3)), at(20))
    lint = decision.steps[0]
    assert (lint.status, lint.exit_code, lint.message) == ("Succeeded", 3, "errors ignored: exit status 3")
    assert [c.step for c in decision.create] == ["step-next"]


def test_start_delay_counts_from_the_end_of_the_dependencies() -> None:
    text = "steps:\n  - id: a\n    cmd: busybox true\n  - id: b\n    cmd: busybox true\n    startDelay: 30\n"
    found = seen(FETCHED, done("step-a", 0, 11, finished=20))
    early = decide(_steps(text), found, at(40))
    assert early.create == () and early.wake_at == at(50)
    assert [c.step for c in decide(_steps(text), found, at(50)).create] == ["step-b"]
    # the first steps wait from the fetch's end
    lone = _steps("steps:\n  - id: a\n    cmd: busybox true\n    startDelay: 5\n")
    assert decide(lone, seen(FETCHED), at(12)).wake_at == at(15)


def test_a_step_past_its_timeout_fails_the_run_and_is_not_retried() -> None:
    steps = _steps(RETRY.replace("timeout: 300", "timeout: 60"))
    stuck = decide(steps, seen(FETCHED, pending("step-t", 0, 11)), at(71))
    assert stuck.verdict.status == "Failed" and stuck.verdict.message == "step t timed out"
    assert stuck.steps[0].status == "Timeout" and stuck.steps[0].message == "timed out after 60s"
    killed = done("step-t", 0, 11, code=137, timed_out=True)
    decision = decide(steps, seen(FETCHED, killed), at(30))
    assert decision.verdict.status == "Failed" and decision.create == ()
    assert decision.steps[0].status == "Timeout"


def test_a_service_that_never_starts_fails_at_its_timeout() -> None:
    steps = _steps("steps:\n  - id: db\n    cmd: redis\n    detach: true\n    timeout: 60\n  - cmd: busybox true\n")
    waiting = decide(steps, seen(FETCHED, pending("step-db", 0, 11)), at(30))
    assert waiting.verdict.status == "Running" and waiting.create == ()
    assert waiting.steps[0].status == "Queued"
    late = decide(steps, seen(FETCHED, pending("step-db", 0, 11)), at(72))
    assert late.verdict.status == "Failed" and late.steps[0].status == "Timeout"


STOPS = "steps:\n  - id: db\n    cmd: redis\n    detach: true\n  - id: stop\n    cmd: docker stop db\n  - id: after\n    cmd: busybox true\n"


def test_docker_stop_ends_the_detached_pod_and_succeeds_once_it_ended() -> None:
    steps = _steps(STOPS)
    serving = seen(FETCHED, running("step-db", 0, 11, "10.1.0.9"))
    decision = decide(steps, serving, at(20))
    assert decision.stop == ("step-db-0-pod",) and decision.create == ()
    assert status_of(decision.steps) == {"db": "Succeeded", "stop": "Running", "after": "Queued"}
    stopped = seen(FETCHED, done("step-db", 0, 11, code=137, finished=25))
    decision = decide(steps, stopped, at(26))
    assert decision.stop == ()
    assert status_of(decision.steps) == {"db": "Succeeded", "stop": "Succeeded", "after": "Queued"}
    assert decision.steps[0].message == "ran as a service until stopped"
    assert decision.steps[1].finish_time == at(25)
    assert decision.create == (Create("step-after", 0, 600, ()),)


def test_a_detached_step_that_does_not_stop_times_the_stop_step_out() -> None:
    steps = _steps(STOPS.replace("cmd: docker stop db\n", "cmd: docker stop db\n    timeout: 30\n"))
    decision = decide(steps, seen(FETCHED, running("step-db", 0, 11, "10.1.0.9")), at(12 + 30))
    assert decision.verdict.status == "Failed" and decision.verdict.message.startswith("step stop timed out")
    assert status_of(decision.steps)["stop"] == "Timeout"


def test_a_run_succeeds_with_the_push_steps_images_while_services_still_run() -> None:
    message = f"{HOST}/web:ca7@sha256:{'1' * 64}\n{HOST}/api:ca7@sha256:{'2' * 64}\n"
    found = seen(
        FETCHED,
        done("step-build-web", 0, 11),
        done("step-build-api", 0, 11),
        running("step-db", 0, 11, "10.1.0.9"),
        done("step-test", 0, 20),
        Attempt(
            "step-push",
            0,
            at(30),
            "Succeeded",
            started=at(31),
            finished=at(35),
            exit_code=0,
            termination_message=message,
        ),
    )
    decision = decide(_steps(), found, at(36))
    assert decision.verdict.status == "Succeeded"
    assert [(o.repository, o.tag, o.digest) for o in decision.verdict.outputs] == [
        ("web", "ca7", "sha256:" + "1" * 64),
        ("api", "ca7", "sha256:" + "2" * 64),
    ]
    assert final_states(decision.steps, "Succeeded") == decision.steps


# -- what Jobs and pods say -------------------------------------------------------------------------------


def _job(step: str, number: int, **status: Any) -> dict[str, Any]:
    labels = {STEP_LABEL: step, ATTEMPT_LABEL: str(number)}
    return {
        "metadata": {"name": f"j-{step}-{number}", "creationTimestamp": "2026-01-01T12:00:10Z", "labels": labels},
        "status": status,
    }


def _pod(
    step: str, number: int, state: Mapping[str, Any], created: str = "2026-01-01T12:00:11Z", **status: Any
) -> dict[str, Any]:
    labels = {STEP_LABEL: step, ATTEMPT_LABEL: str(number)}
    return {
        "metadata": {"name": f"p-{step}-{number}-{created[-3:-1]}", "creationTimestamp": created, "labels": labels},
        "status": {"containerStatuses": [{"name": "step", "state": state}], **status},
    }


def test_attempts_are_read_from_each_jobs_pod() -> None:
    terminated = {
        "terminated": {
            "exitCode": 2,
            "startedAt": "2026-01-01T12:00:12Z",
            "finishedAt": "2026-01-01T12:00:19Z",
            "message": "make: *** [test] Error 2\n",
        }
    }
    found = attempts(
        [_job("step-t", 0), _job("step-t", 1), _job("step-db", 0), {"metadata": {"name": "x", "labels": {}}}],
        [
            _pod("step-t", 0, terminated),
            _pod("step-t", 1, {"waiting": {"reason": "ContainerCreating"}}),
            _pod("step-db", 0, {"running": {"startedAt": "2026-01-01T12:00:13Z"}}, podIP="10.1.0.9"),
        ],
    )
    assert sorted(found) == ["step-db", "step-t"]
    first, second = found["step-t"]
    assert (first.phase, first.exit_code, first.message, first.finished) == (
        "Failed",
        2,
        "make: *** [test] Error 2",
        at(19),
    )
    assert (second.number, second.phase, second.pod) == (1, "Pending", "p-step-t-1-11")
    assert (found["step-db"][0].phase, found["step-db"][0].ip) == ("Running", "10.1.0.9")


def test_a_pod_killed_at_its_deadline_or_a_lost_pod_is_a_failed_attempt() -> None:
    killed = _pod(
        "step-t",
        0,
        {"running": {"startedAt": "2026-01-01T12:00:13Z"}},
        phase="Failed",
        reason="DeadlineExceeded",
        message="Pod was active on the node longer than the specified deadline",
    )
    (attempt,) = attempts([_job("step-t", 0)], [killed])["step-t"]
    assert attempt.phase == "Failed" and attempt.timed_out
    lost = _job(
        "step-t",
        0,
        conditions=[{"type": "Failed", "status": "True", "reason": "PodFailurePolicy", "message": "evicted"}],
    )
    (attempt,) = attempts([lost], [])["step-t"]
    assert attempt.phase == "Failed" and not attempt.timed_out and "evicted" in attempt.message
    (attempt,) = attempts([_job("step-t", 0)], [])["step-t"]
    assert attempt.phase == "Pending"


def test_the_newest_pod_of_an_attempt_wins() -> None:
    old = _pod("step-t", 0, {"terminated": {"exitCode": 1}}, created="2026-01-01T12:00:11Z")
    new = _pod("step-t", 0, {"running": {"startedAt": "2026-01-01T12:00:30Z"}}, created="2026-01-01T12:00:29Z")
    (attempt,) = attempts([_job("step-t", 0)], [new, old])["step-t"]
    assert attempt.phase == "Running"


# -- the children -------------------------------------------------------------------------------------------


def _run() -> StepRun:
    return StepRun(
        owner=OWNER,
        registry_host=HOST,
        kaniko_image="ghcr.io/osscontainertools/kaniko:v1.28.3",
        operator_image="ghcr.io/dockyard-dev/dockyard:0.1.0",
        fetch=OciContext("dockyard/sources", "sha256:" + "a" * 64),
        timeout_seconds=3600,
        resources={"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
        ca_config_map="hub-ca",
    )


def test_golden_step_jobs() -> None:
    steps = {s.id: s for s in _steps()}
    run = _run()
    documents = [
        build_workspace_claim(run),
        build_pull_secret(OWNER, '{"auths": {}}'),
        build_step_job(run, None, 0),
        build_step_job(run, steps["build-web"], 0, deadline_seconds=600),
        build_step_job(run, steps["db"], 0),
        build_step_job(run, steps["test"], 1, deadline_seconds=95, hosts=(("10.1.0.9", "db"),)),
        build_step_job(run, steps["push"], 0, deadline_seconds=600),
    ]
    rendered = yaml.safe_dump_all(documents, sort_keys=False)
    path = GOLDEN / "stepjobs-fan-in.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(rendered)
    assert path.exists(), f"missing {path.name}: run UPDATE_GOLDEN=1 make unit"
    assert rendered == path.read_text()


def test_step_jobs_are_named_per_attempt_and_labelled_for_the_watch() -> None:
    steps = {s.id: s for s in _steps()}
    job = build_step_job(_run(), steps["test"], 2, deadline_seconds=50, hosts=(("10.1.0.9", "db"),))
    assert job["metadata"]["name"] == step_job_name("web-7", "step-test", 2) == "web-7-step-test-2"
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert labels["dockyard.dev/build-run"] == "web-7"
    assert (labels[STEP_LABEL], labels[ATTEMPT_LABEL]) == ("step-test", "2")
    pod = job["spec"]["template"]["spec"]
    assert pod["activeDeadlineSeconds"] == 50 and job["spec"]["backoffLimit"] == 0
    assert pod["hostAliases"] == [{"ip": "10.1.0.9", "hostnames": ["db"]}]
    assert pod["imagePullSecrets"] == [{"name": "web-7-build-pull"}]
    (container,) = pod["containers"]
    assert container["image"] == f"{HOST}/dockyard/staging/ca7/build-web:built"
    assert not any(m["name"] == "docker-config" for m in container["volumeMounts"])
    assert {"name": "workspace", "persistentVolumeClaim": {"claimName": "web-7-workspace"}} in pod["volumes"]
    long = step_job_name("r" * 60, "step-" + "s" * 60, 10)
    assert len(long) <= 52 and long != step_job_name("r" * 60, "step-" + "s" * 60, 11)


def test_a_staged_build_pushes_to_staging_and_an_unused_one_does_not_push() -> None:
    steps = {s.id: s for s in _steps()}
    args = build_step_job(_run(), steps["build-web"], 0)["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--destination={HOST}/dockyard/staging/ca7/build-web:built" in args and "--no-push" not in args
    (lone,) = _steps("steps:\n  - build: -t x .\n    retries: 1\n")
    args = build_step_job(_run(), lone, 0)["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--no-push" in args and not any(a.startswith("--destination") for a in args)


def test_copy_arguments_pair_each_destination_with_the_source_before_it() -> None:
    parsed = copy_arguments(
        [
            "--docker-config=/c.json",
            "--source",
            "h/s/a:built",
            "--destination=h/a:1",
            "--destination=h/a:2",
            "--source=h/s/b:built",
            "--destination=h/b:1",
        ]
    )
    assert parsed.images == (("h/s/a:built", "h/a:1"), ("h/s/a:built", "h/a:2"), ("h/s/b:built", "h/b:1"))
    with pytest.raises(PushError, match="no --source before it"):
        copy_arguments(["--docker-config=/c.json", "--destination=h/a:1"])
    with pytest.raises(PushError, match="multi-platform"):
        blobs_of(b"{}", "application/vnd.oci.image.index.v1+json", "h/s/a:built")
    manifest = b'{"config": {"digest": "sha256:c"}, "layers": [{"digest": "sha256:l1"}, {"digest": "sha256:l2"}]}'
    assert blobs_of(manifest, "application/vnd.oci.image.manifest.v1+json", "x") == [
        "sha256:c",
        "sha256:l1",
        "sha256:l2",
    ]


def test_the_node_pulls_the_runs_registry_images_from_its_node_login_server() -> None:
    steps = {s.id: s for s in _steps()}
    run = StepRun(**{**_run().__dict__, "node_registry_host": "10.0.0.12:5000"})
    (container,) = build_step_job(run, steps["test"], 0)["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "10.0.0.12:5000/dockyard/staging/ca7/build-web:built"
    # other images, and the images pods (not the node) use, keep their names
    (db,) = build_step_job(run, steps["db"], 0)["spec"]["template"]["spec"]["containers"]
    assert db["image"] == "redis:7"
    (build,) = build_step_job(run, steps["build-web"], 0)["spec"]["template"]["spec"]["containers"]
    assert f"--destination={HOST}/dockyard/staging/ca7/build-web:built" in build["args"]
    assert staged_cmd_step(tuple(steps.values()), HOST) == "test"
    assert staged_cmd_step(_steps(RETRY), HOST) is None


def test_a_step_jobs_build_gets_labels_platform_and_the_layer_cache() -> None:
    text = (
        "steps:\n  - id: b\n    build: -t {{.Run.Registry}}/web:1 --label a=b --platform linux/arm64 .\n"
        "    cache: enabled\n    retries: 1\n"
    )
    (build,) = _steps(text)
    job = build_step_job(_run(), build, 0, deadline_seconds=600)
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--label=a=b" in args and "--custom-platform=linux/arm64" in args
    assert "--cache=true" in args and f"--cache-repo={HOST}/web/cache" in args


def test_the_copy_container_says_why_it_failed_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m dockyard.builds.stepjobs.copy` fails like the push step does: exit 1 and one line
    on stderr and in the termination log."""
    from dockyard.builds.stepjobs import copy as copier

    log = tmp_path / "termination-log"
    config = tmp_path / "config.json"
    config.write_text("{}")
    argv = ["--docker-config", str(config), "--termination-log", str(log), "--source", "r.example/staged:1"]
    argv += ["--destination", "r.example/a:1", "--insecure-registry", "r.example"]
    assert copier.main(argv) == 1
    written = log.read_text()
    assert written.startswith("pushing failed: ") and written.count("\n") == 1
    assert capsys.readouterr().err == written
