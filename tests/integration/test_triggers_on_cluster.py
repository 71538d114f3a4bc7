"""BuildTask triggers on the real control plane (kwok plays the node and finishes build pods as
Kaniko would), with the operator in this process and the trigger service's clock in the test's
hand: a timer fires when the test moves the clock past its minute, not minutes later.

- a `* * * * *` timer: armed, one run for its minute, one catch-up run (not six) after the clock
  jumps six minutes, none once disabled;
- commit polling against a real git server (git http-backend): the first head is a baseline, a
  pushed commit → exactly one run, which builds exactly that commit;
- push webhooks in GitHub's, GitLab's and Gitea's formats → one run per commit; redeliveries and
  repeats add nothing; forged or unsigned requests → 401 and a metric, never a run.

Every check is what a user sees: runs and their spec/status, the task's status, Events, metrics."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import free_port, running_operator
from gitserver import GitServer

from dockyard.builds.triggers import service as trigger_service
from realregistry import until

pytestmark = pytest.mark.integration

S3 = {"s3": {"bucket": "images", "region": "us-east-1"}}
OCI = {"oci": {"repository": "dockyard/sources", "digest": "sha256:" + "a" * 64}}
SECRET = "s3cret-hook"
TICK = 5  # handlers/triggers.py TICK_SECONDS


class Clock:
    """The trigger service's `now`, frozen where the test puts it."""

    def __init__(self, now: datetime) -> None:
        self._now = now
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, now: datetime) -> None:
        with self._lock:
            self._now = now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)


def at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def _until(check: Callable[[], Any], what: str, deadline_s: float = 60) -> Any:
    try:
        return until(check, what, deadline_s)
    except TimeoutError as timeout:
        pytest.fail(str(timeout))


@pytest.fixture(scope="module")
def crds(cluster: Any) -> None:
    cluster.kubectl("apply", "--server-side", "-f", "crds")
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd", "-l", "app.kubernetes.io/part-of=dockyard"
    )


@pytest.fixture(scope="module")
def clock() -> Iterator[Clock]:
    fake = Clock(at("2030-01-01 10:00:30"))
    patch = pytest.MonkeyPatch()
    patch.setattr(trigger_service, "system_clock", fake)
    try:
        yield fake
    finally:
        patch.undo()


@pytest.fixture(scope="module")
def events_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def operator(cluster: Any, crds: None, clock: Clock, events_port: int) -> Iterator[str]:
    with running_operator(cluster, "-A", events_port=events_port) as url:
        yield url


@pytest.fixture
def git(tmp_path: Path) -> Iterator[GitServer]:
    with GitServer(tmp_path / "repos", host="127.0.0.1") as server:
        yield server


def _apply(cluster: Any, namespace: str, *objects: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(objects))


def _get(cluster: Any, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    out = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", "--ignore-not-found", check=False).stdout
    return json.loads(out) if out.strip() else None


def _task_status(cluster: Any, namespace: str, name: str) -> dict[str, Any]:
    return dict((_get(cluster, namespace, "buildtask", name) or {}).get("status") or {})


def _runs(cluster: Any, namespace: str) -> dict[str, dict[str, Any]]:
    out = cluster.kubectl("get", "buildruns", "-n", namespace, "-o", "json").stdout
    return {run["metadata"]["name"]: run for run in json.loads(out)["items"]}


def _ended(cluster: Any, namespace: str, name: str) -> dict[str, Any] | None:
    status = (_get(cluster, namespace, "buildrun", name) or {}).get("status") or {}
    return status if status.get("status") in ("Succeeded", "Failed", "Canceled", "Error", "Timeout") else None


def _registry(cluster: Any, namespace: str) -> None:
    _apply(
        cluster,
        namespace,
        {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "Registry",
            "metadata": {"name": "hub"},
            "spec": {"storage": S3},
        },
    )


def _task(name: str, source: dict[str, Any], triggers: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "BuildTask",
        "metadata": {"name": name},
        "spec": {
            "registryRef": {"name": "hub"},
            "source": source,
            "dockerBuild": {"images": ["app:{{.Run.ID}}-{{.Run.Branch}}"]},
            "triggers": triggers,
        },
    }


def _events(cluster: Any, namespace: str, name: str) -> list[dict[str, Any]]:
    out = cluster.kubectl(
        "get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}", "-o", "json"
    ).stdout
    return list(json.loads(out)["items"])


def _metric(url: str, name: str, labels: dict[str, str]) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in httpx.get(url, timeout=5).text.splitlines():
        if line.startswith(f"{name}{{"):
            head, _, value = line.rpartition(" ")
            found = ",".join(sorted(head[len(name) + 1 : -1].split(",")))
            if found == wanted:
                return float(value)
    return 0.0


def _ready(cluster: Any, namespace: str, name: str) -> dict[str, Any] | None:
    for condition in _task_status(cluster, namespace, name).get("conditions") or []:
        if condition["type"] == "Ready":
            return condition if condition["status"] == "True" else None
    return None


def test_a_timer_fires_for_its_minute_catches_up_once_and_stops_when_disabled(
    cluster: Any, operator: str, clock: Clock, namespace: str
) -> None:
    clock.set(at("2030-01-01 10:00:30"))
    _registry(cluster, namespace)
    _apply(cluster, namespace, _task("nightly", OCI, {"timers": [{"name": "every-minute", "schedule": "* * * * *"}]}))
    assert _until(lambda: _ready(cluster, namespace, "nightly"), "task Ready (timers are built now)", 90)

    def timers() -> list[dict[str, Any]]:
        return list(_task_status(cluster, namespace, "nightly").get("timers") or [])

    _until(lambda: timers() == [{"name": "every-minute", "nextScheduleTime": "2030-01-01T10:01:00Z"}], "armed", 30)
    assert _runs(cluster, namespace) == {}

    clock.set(at("2030-01-01 10:01:04"))
    first = "nightly-every-minute-203001011001"
    _until(lambda: first in _runs(cluster, namespace), "the 10:01 run", 30)
    run = _runs(cluster, namespace)[first]
    assert run["spec"]["trigger"] == "Timer"
    assert run["spec"]["triggeredBy"] == {"timerName": "every-minute", "scheduleOccurrence": "2030-01-01T10:01:00Z"}
    status = _until(lambda: _ended(cluster, namespace, first), "the timer run ended", 90)
    assert status["status"] == "Succeeded" and status["runType"] == "AutoBuild"
    _until(
        lambda: (
            timers()
            == [
                {
                    "name": "every-minute",
                    "nextScheduleTime": "2030-01-01T10:02:00Z",
                    "lastScheduleTime": "2030-01-01T10:01:00Z",
                }
            ]
        ),
        "status.timers after the run",
        30,
    )
    events = [e for e in _events(cluster, namespace, "nightly") if e["reason"] == "RunTriggered"]
    assert len(events) == 1 and first in events[0]["message"] and "timer every-minute" in events[0]["message"]

    # six minutes pass at once (an operator that was down): one catch-up run, for 10:07, not six
    clock.set(at("2030-01-01 10:07:30"))
    catch_up = "nightly-every-minute-203001011007"
    _until(lambda: catch_up in _runs(cluster, namespace), "the catch-up run", 30)
    time.sleep(3 * TICK)
    assert sorted(_runs(cluster, namespace)) == [first, catch_up]

    cluster.kubectl(
        "patch",
        "buildtask",
        "nightly",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps(
            {"spec": {"triggers": {"timers": [{"name": "every-minute", "schedule": "* * * * *", "enabled": False}]}}}
        ),
    )
    _until(lambda: "nextScheduleTime" not in (timers() or [{}])[0], "the disabled timer disarmed", 30)
    clock.set(at("2030-01-01 10:12:10"))
    time.sleep(3 * TICK)
    assert sorted(_runs(cluster, namespace)) == [first, catch_up]
    assert _metric(operator, "dockyard_build_trigger_runs_total", {"trigger": "Timer", "outcome": "created"}) >= 2


def test_a_polled_commit_runs_once_and_builds_exactly_that_commit(
    cluster: Any, operator: str, clock: Clock, namespace: str, git: GitServer
) -> None:
    baseline = git.make_repo("app", {"Dockerfile": "FROM scratch\n"})
    _registry(cluster, namespace)
    trigger = {"sourceCommit": {"mode": "Poll", "pollIntervalSeconds": 60}}
    _apply(cluster, namespace, _task("app", {"git": {"url": git.url("app"), "revision": "main"}}, trigger))
    _until(lambda: _task_status(cluster, namespace, "app").get("lastCommit") == baseline, "the baseline head", 60)
    assert _runs(cluster, namespace) == {}  # the head seen first is not a new commit

    pushed = git.commit("app", {"README": "one\n"})
    clock.advance(75)  # past the poll interval with its jitter
    name = f"app-{pushed[:12]}"
    _until(lambda: name in _runs(cluster, namespace), "the commit run", 30)
    status = _until(lambda: _ended(cluster, namespace, name), "the commit run ended", 90)
    assert status["status"] == "Succeeded"
    assert status["commit"] == pushed and status["ref"] == "refs/heads/main"
    assert status["outputImages"][0]["tag"] == f"{status['runId']}-main"  # {{.Run.Branch}}
    run = _runs(cluster, namespace)[name]
    assert run["spec"]["trigger"] == "Commit" and run["spec"]["triggeredBy"] == {"commit": pushed, "branch": "main"}
    _until(lambda: _task_status(cluster, namespace, "app").get("lastCommit") == pushed, "lastCommit", 30)

    # two pushes between polls: the head is built, once; a later poll with no push adds nothing
    git.commit("app", {"README": "two\n"})
    head = git.commit("app", {"README": "three\n"})
    assert git.head("app") == head
    clock.advance(75)
    _until(lambda: f"app-{head[:12]}" in _runs(cluster, namespace), "the run of the new head", 30)
    status = _until(lambda: _ended(cluster, namespace, f"app-{head[:12]}"), "the head's run ended", 90)
    assert status["commit"] == head
    clock.advance(75)
    time.sleep(2 * TICK)
    assert sorted(_runs(cluster, namespace)) == sorted([name, f"app-{head[:12]}"])
    triggered = [e for e in _events(cluster, namespace, "app") if e["reason"] == "RunTriggered"]
    assert len(triggered) == 2 and all("commit" in e["message"] for e in triggered)


def _github(body: bytes, secret: str, delivery: str) -> dict[str, str]:
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": f"sha256={signature}"}


def _gitlab(body: bytes, secret: str, delivery: str) -> dict[str, str]:
    return {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": secret, "X-Gitlab-Event-UUID": delivery}


def _gitea(body: bytes, secret: str, delivery: str) -> dict[str, str]:
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Gitea-Event": "push", "X-Gitea-Delivery": delivery, "X-Gitea-Signature": signature}


def _payload(sha: str, ref: str = "refs/heads/main", gitlab: bool = False) -> bytes:
    repository = {"name": "app", "default_branch": "main"}
    body: dict[str, Any] = {"ref": ref, "before": "0" * 40, "after": sha, "commits": []}
    body["project" if gitlab else "repository"] = repository
    return json.dumps(body).encode()


def test_signed_push_webhooks_of_each_host_run_once_and_forged_ones_are_refused(
    cluster: Any, operator: str, events_port: int, namespace: str, git: GitServer
) -> None:
    git.make_repo("app", {"Dockerfile": "FROM scratch\n"})
    _registry(cluster, namespace)
    cluster.kubectl("create", "secret", "generic", "hook", "-n", namespace, f"--from-literal=secret={SECRET}")
    trigger = {"sourceCommit": {"mode": "Webhook", "webhookSecretRef": {"name": "hook", "key": "secret"}}}
    _apply(cluster, namespace, _task("hooked", {"git": {"url": git.url("app"), "revision": "main"}}, trigger))
    url = f"http://127.0.0.1:{events_port}/git/{namespace}/hooked"
    _until(lambda: _task_status(cluster, namespace, "hooked").get("webhookUrl") == url, "status.webhookUrl", 60)
    _until(lambda: _ready(cluster, namespace, "hooked"), "task Ready", 90)

    def post(body: bytes, headers: dict[str, str], target: str = url) -> httpx.Response:
        return httpx.post(target, content=body, headers={"Content-Type": "application/json", **headers}, timeout=10)

    unauthorized_before = sum(
        _metric(operator, "dockyard_git_webhooks_total", {"host": h, "outcome": "unauthorized"})
        for h in ("github", "gitlab", "gitea", "unknown")
    )
    commits = {}
    for host, sign in (("github", _github), ("gitlab", _gitlab), ("gitea", _gitea)):
        sha = git.commit("app", {"README": f"{host}\n"})
        body = _payload(sha, gitlab=host == "gitlab")
        # forged: another secret, no proof at all, another task's URL
        assert post(body, sign(body, "not-the-secret", f"{host}-forged")).status_code == 401
        assert post(body, {k: v for k, v in sign(body, SECRET, "x").items() if "Event" in k}).status_code == 401
        assert post(body, sign(body, SECRET, "x"), url.replace("/hooked", "/nope")).status_code == 401
        answer = post(body, sign(body, SECRET, f"{host}-1"))
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"run": f"hooked-{sha[:12]}", "created": True}
        # the same delivery again, and the same commit in another delivery: nothing new
        assert post(body, sign(body, SECRET, f"{host}-1")).json() == {"run": f"hooked-{sha[:12]}", "created": False}
        assert post(body, sign(body, SECRET, f"{host}-2")).json()["created"] is False
        commits[host] = sha
    tampered = _payload(commits["github"])
    signed = _github(tampered, SECRET, "t")
    assert post(tampered.replace(b"main", b"mainx"), signed).status_code == 401  # the body was changed
    other = git.commit("app", {"x": "1\n"}, branch="feature")
    assert (
        post(
            _payload(other, "refs/heads/feature"), _github(_payload(other, "refs/heads/feature"), SECRET, "f")
        ).status_code
        == 202
    )
    ping = b'{"zen": "Keep it logically awesome."}'
    assert post(ping, {**_github(ping, SECRET, "p"), "X-GitHub-Event": "ping"}).status_code == 202

    runs = _runs(cluster, namespace)
    assert sorted(runs) == sorted(f"hooked-{sha[:12]}" for sha in commits.values())
    for host, sha in commits.items():
        run = runs[f"hooked-{sha[:12]}"]
        assert run["spec"]["trigger"] == "Commit"
        assert run["spec"]["triggeredBy"]["commit"] == sha and run["spec"]["triggeredBy"]["branch"] == "main"
        assert run["spec"]["triggeredBy"]["delivery"] == f"{host}:{host}-1"
        status = _until(lambda n=run["metadata"]["name"]: _ended(cluster, namespace, n), f"{host} run ended", 90)
        assert status["status"] == "Succeeded" and status["commit"] == sha  # built exactly the pushed commit
    assert _task_status(cluster, namespace, "hooked")["lastCommit"] == commits["gitea"]
    unauthorized = sum(
        _metric(operator, "dockyard_git_webhooks_total", {"host": h, "outcome": "unauthorized"})
        for h in ("github", "gitlab", "gitea", "unknown")
    )
    assert unauthorized - unauthorized_before == 10
    assert _metric(operator, "dockyard_git_webhooks_total", {"host": "gitlab", "outcome": "accepted"}) >= 1

    # a disabled trigger accepts the signature and starts nothing
    cluster.kubectl("patch", "buildtask", "hooked", "-n", namespace, "--type=merge", "-p", '{"spec":{"enabled":false}}')
    late = git.commit("app", {"README": "late\n"})
    time.sleep(1)
    answer = post(_payload(late), _github(_payload(late), SECRET, "late"))
    assert answer.status_code == 202 and "disabled" in answer.text
    assert len(_runs(cluster, namespace)) == 3
