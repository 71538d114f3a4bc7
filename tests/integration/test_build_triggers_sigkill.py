"""Triggers never start two runs for one cause, proven by killing the operator: `python -m dockyard`
is SIGKILLed at random moments while a `* * * * *` timer comes due, commits are pushed to a real git
server (polled by one task) and announced by signed webhooks (to another), and restarted each time;
each webhook is delivered again after the restart that follows it (the process that saw it first is
gone). Watches started before the operator record every BuildRun and Job the API server ever
creates: one run per timer minute and per commit, each run created once, each with one Job."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import kubernetes.client
import kubernetes.config
import kubernetes.watch
import pytest
import yaml
from conftest import free_port
from gitserver import GitServer
from test_builds_sigkill import JobRecorder, Operator

from dockyard.core.names import BuildRunNames
from realregistry import until

pytestmark = pytest.mark.integration

S3 = {"s3": {"bucket": "images", "region": "us-east-1"}}
SECRET = "s3cret-hook"


@pytest.fixture(scope="module")
def crds(cluster: Any) -> None:
    cluster.kubectl("apply", "--server-side", "-f", "crds")
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd", "-l", "app.kubernetes.io/part-of=dockyard"
    )


@pytest.fixture
def operator(cluster: Any, namespace: str, tmp_path: Path) -> Iterator[Operator]:
    process = Operator(cluster, namespace, tmp_path / "state")
    process.env["DOCKYARD_EVENTS_PORT"] = str(free_port())
    process.env["DOCKYARD_EVENTS_HOST"] = "127.0.0.1"
    try:
        yield process
    finally:
        process.kill()


class RunRecorder:
    """Every ADDED BuildRun in the namespace, from a watch that starts before the operator does."""

    def __init__(self, cluster: Any, namespace: str) -> None:
        self.added: Counter[str] = Counter()
        self.log: list[tuple[str, str, str]] = []
        self._stop = threading.Event()
        api = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))
        self._custom = kubernetes.client.CustomObjectsApi(api)
        self._args = ("dockyard.dev", "v1alpha1", namespace, "buildruns")
        listed = self._custom.list_namespaced_custom_object(*self._args)
        self._version = listed["metadata"]["resourceVersion"]
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            stream = kubernetes.watch.Watch()
            for event in stream.stream(
                self._custom.list_namespaced_custom_object,
                *self._args,
                resource_version=self._version,
                timeout_seconds=5,
            ):
                self._version = event["object"]["metadata"]["resourceVersion"]
                meta = event["object"]["metadata"]
                if event["type"] != "MODIFIED":
                    self.log.append((event["type"], meta["name"], meta["uid"]))
                if event["type"] == "ADDED":
                    self.added[event["object"]["metadata"]["name"]] += 1
                if self._stop.is_set():
                    break

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _apply(cluster: Any, namespace: str, *objects: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(objects))


def _get(cluster: Any, namespace: str, kind: str, name: str) -> dict[str, Any]:
    return dict(json.loads(cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout))


def _task(name: str, url: str, triggers: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "BuildTask",
        "metadata": {"name": name},
        "spec": {
            "registryRef": {"name": "hub"},
            "source": {"git": {"url": url, "revision": "main"}},
            "dockerBuild": {"images": ["app:{{.Run.ID}}"]},
            "triggers": triggers,
        },
    }


def _webhook(url: str, sha: str, delivery: str) -> int | None:
    body = json.dumps({"ref": "refs/heads/main", "after": sha, "repository": {"default_branch": "main"}}).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": f"sha256={signature}"}
    try:
        return httpx.post(url, content=body, headers=headers, timeout=5).status_code
    except httpx.TransportError:
        return None  # the operator is not up (yet, or any more): the host would redeliver


def _parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def test_sigkill_never_starts_two_runs_for_one_cause(
    cluster: Any, crds: None, namespace: str, operator: Operator, tmp_path: Path
) -> None:
    with GitServer(tmp_path / "repos", host="127.0.0.1") as git:
        baseline = git.make_repo("app", {"Dockerfile": "FROM scratch\n"})
        cluster.kubectl("create", "secret", "generic", "hook", "-n", namespace, f"--from-literal=secret={SECRET}")
        _apply(
            cluster,
            namespace,
            {
                "apiVersion": "dockyard.dev/v1alpha1",
                "kind": "Registry",
                "metadata": {"name": "hub"},
                "spec": {"storage": S3},
            },
            _task(
                "polled",
                git.url("app"),
                {
                    "sourceCommit": {"mode": "Poll", "pollIntervalSeconds": 60},
                    "timers": [{"name": "tick", "schedule": "* * * * *"}],
                },
            ),
            _task(
                "hooked",
                git.url("app"),
                {"sourceCommit": {"mode": "Webhook", "webhookSecretRef": {"name": "hook", "key": "secret"}}},
            ),
        )
        hook_url = f"http://127.0.0.1:{operator.env['DOCKYARD_EVENTS_PORT']}/git/{namespace}/hooked"
        runs_seen, jobs_seen = RunRecorder(cluster, namespace), JobRecorder(cluster, namespace)
        try:
            operator.start()
            armed = until(
                lambda: ((_get(cluster, namespace, "buildtask", "polled").get("status") or {}).get("timers") or [{}])[
                    0
                ].get("nextScheduleTime"),
                "the timer armed",
                90,
            )
            until(
                lambda: (
                    (_get(cluster, namespace, "buildtask", "polled").get("status") or {}).get("lastCommit") == baseline
                ),
                "the baseline head",
                60,
            )
            first_due = _parse(armed)
            rng = random.Random(12)
            pushed: list[str] = []
            unanswered: list[tuple[str, str]] = []
            # kill and restart until two timer minutes have come due, pushing and announcing commits
            iteration = 0
            while datetime.now(UTC) < first_due + timedelta(seconds=70) or iteration < 6:
                if iteration % 2 == 0:
                    sha = git.commit("app", {"README": f"change {iteration}\n"})
                    pushed.append(sha)
                    unanswered.append((sha, f"delivery-{iteration}"))
                if iteration:
                    operator.start()
                deadline = time.monotonic() + rng.uniform(3.0, 8.0)  # the process needs ~3 s to start
                redelivered: list[tuple[str, str]] = []
                while time.monotonic() < deadline:
                    for sha, delivery in list(unanswered):
                        if _webhook(hook_url, sha, delivery) == 200:
                            # answered; the host's redelivery (a lost answer) reaches the next process
                            unanswered.remove((sha, delivery))
                            redelivered.append((sha, delivery))
                    time.sleep(0.2)
                operator.kill()
                unanswered.extend(redelivered)
                iteration += 1
            operator.start()
            until(lambda: all(_webhook(hook_url, s, d) == 200 for s, d in unanswered), "the last deliveries", 60)
            last = pushed[-1]

            def settled() -> list[dict[str, Any]] | None:
                polled = _get(cluster, namespace, "buildtask", "polled").get("status") or {}
                hooked = _get(cluster, namespace, "buildtask", "hooked").get("status") or {}
                if polled.get("lastCommit") != last or hooked.get("lastCommit") not in pushed:
                    return None
                if not {f"hooked-{sha[:12]}" for sha in pushed} <= set(runs_seen.added):
                    return None
                runs = json.loads(cluster.kubectl("get", "buildruns", "-n", namespace, "-o", "json").stdout)["items"]
                ended = all((r.get("status") or {}).get("status") in ("Succeeded", "Failed", "Error") for r in runs)
                return runs if ended and runs else None

            try:
                runs = until(settled, "a run of every pushed commit and every run ended", 180)
            except TimeoutError:
                listed = json.loads(cluster.kubectl("get", "buildruns", "-n", namespace, "-o", "json").stdout)["items"]
                tasks = {t: _get(cluster, namespace, "buildtask", t).get("status") for t in ("polled", "hooked")}
                states = {r["metadata"]["name"]: (r.get("status") or {}).get("status") for r in listed}
                pytest.fail(f"not settled: pushed {pushed}, tasks {tasks}, runs {states}, seen {runs_seen.log}")
        finally:
            runs_seen.stop()
            jobs_seen.stop()

    # Every run ever created, pruned ones included (12 pushes outgrow the history limit of 10, so a
    # redelivery may reach a process after its commit's run is gone: it must not start it again).
    created = runs_seen.added
    assert all(count == 1 for count in created.values()), runs_seen.log
    for name in created:
        assert jobs_seen.added[BuildRunNames(name).job] == 1, (name, dict(jobs_seen.added))
    assert all(r["status"]["status"] == "Succeeded" for r in runs), {r["metadata"]["name"]: r["status"] for r in runs}
    # webhooks: exactly one run per pushed commit, whatever was redelivered to which process
    assert {name for name in created if name.startswith("hooked-")} == {f"hooked-{sha[:12]}" for sha in pushed}
    # polls: runs only for pushed commits (polls see heads, so some may coalesce), the last one built
    polled = {name for name in created if name.startswith("polled-") and not name.startswith("polled-tick-")}
    assert polled <= {f"polled-{sha[:12]}" for sha in pushed} and f"polled-{last[:12]}" in polled
    assert f"polled-{baseline[:12]}" not in polled
    for run in runs:
        if run["spec"]["trigger"] == "Commit":
            assert run["status"]["commit"] == run["spec"]["triggeredBy"]["commit"]  # built exactly that commit
    # the timer: at most one run per minute that came due, none before it was armed. A minute in
    # which no process lived long enough to tick is caught up by the latest one only (no burst).
    minutes = sorted(
        datetime.strptime(name.removeprefix("polled-tick-"), "%Y%m%d%H%M").replace(tzinfo=UTC)
        for name in created
        if name.startswith("polled-tick-")
    )
    assert minutes and len(minutes) == len(set(minutes)) and minutes[0] >= first_due, minutes
    elapsed = (datetime.now(UTC) - first_due).total_seconds() // 60 + 1
    assert len(minutes) <= elapsed
