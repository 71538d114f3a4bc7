"""Webhooks end to end with real parts: the operator's rendered registry (Debian's docker-registry,
CNCF distribution 2.8, with the notification endpoint and token the operator put in the Deployment),
real pushes and deletes with skopeo, the operator's event intake and dispatcher, and a real HTTP
receiver in this test process."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import free_port, running_operator
from test_registry import _apply, _metric_sum, _until, crds  # noqa: F401  (fixture)

from dockyard.core.names import RegistryNames, WebhookNames
from dockyard.webhooks import signing
from realregistry import ROOT, LocalRegistry
from realregistry import read_secret as _secret
from realregistry import write_oci_image as _oci_image

pytestmark = pytest.mark.integration


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class Receiver:
    """An HTTP server recording every POST; `answers` (per path prefix) pops the next status to
    return (200 once empty); `delay` makes the next answers that many seconds late."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    arrived: int = 0
    """Requests whose body has been read, answered or not."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def delivered(self, path: str) -> list[dict[str, Any]]:
        """Events answered 200 on `path`, one per delivery id."""
        with self.lock:
            seen: dict[str, dict[str, Any]] = {}
            for r in self.requests:
                if r.path == path and r.headers.get("x-answered") == "200":
                    seen.setdefault(r.headers[signing.DELIVERY_HEADER.lower()], r.event)
            return list(seen.values())


@contextlib.contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with receiver.lock:
                receiver.arrived += 1
                status = receiver.answers.pop(0) if receiver.answers else 200
                delay = receiver.delays.pop(0) if receiver.delays else 0.0
            time.sleep(delay)
            headers = {k.lower(): v for k, v in self.headers.items()} | {
                "x-answered": str(status) if not delay else "late"
            }
            with receiver.lock:
                receiver.requests.append(Received(self.path, headers, body))
            try:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                pass

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def _webhook(
    cluster: Any, namespace: str, name: str, spec: dict[str, Any], annotations: dict[str, str] | None = None
) -> None:
    metadata: dict[str, Any] = {"name": name}
    if annotations:
        metadata["annotations"] = annotations
    manifest = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "Webhook",
        "metadata": metadata,
        "spec": {"registryRef": {"name": "hub"}, **spec},
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))


def _get_webhook(cluster: Any, namespace: str, name: str) -> dict[str, Any]:
    return dict(json.loads(cluster.kubectl("get", "webhook", name, "-n", namespace, "-o", "json").stdout))


def _ready(cluster: Any, namespace: str, name: str) -> dict[str, Any] | None:
    body = _get_webhook(cluster, namespace, name)
    for condition in body.get("status", {}).get("conditions", []):
        if condition["type"] == "Ready":
            return dict(condition)
    return None


def _manifest_digest(stack: Stack, tag: str) -> tuple[str, int]:
    """Digest and size of the manifest as stored (skopeo compresses the layer on the way in)."""
    assert stack.registry is not None
    raw = stack.registry.skopeo(
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        stack.creds,
        f"docker://127.0.0.1:{stack.registry.port}/team/app:{tag}",
    )
    assert raw.returncode == 0, raw.stderr
    data = raw.stdout.encode()
    return f"sha256:{hashlib.sha256(data).hexdigest()}", len(data)


@dataclass
class Stack:
    cluster: Any
    namespace: str
    workdir: Path
    state_dir: Path
    events_port: int
    registry: LocalRegistry | None = None
    binary: str = "docker-registry"

    @contextlib.contextmanager
    def operator(self) -> Iterator[str]:
        with running_operator(
            self.cluster, "-n", self.namespace, state_dir=self.state_dir, events_port=self.events_port
        ) as url:
            yield url

    def start_registry(self, sku: str = "Standard") -> LocalRegistry:
        _apply(self.cluster, self.namespace, "hub", {"sku": sku, "adminUser": {"enabled": True}})
        self.registry = LocalRegistry(self.cluster, self.namespace, "hub", self.workdir, self.binary)
        self.registry.start()
        return self.registry

    @contextlib.contextmanager
    def operator_process(self, kubeconfig: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
        """The operator as its own process (`python -m dockyard`), for tests that kill it or give it
        other credentials; it logs to `operator.log` in the work directory."""
        env = {k: v for k, v in self.cluster.env().items() if not k.startswith("DOCKYARD_")} | {
            "KUBECONFIG": str(kubeconfig or self.cluster.kubeconfig),
            "DOCKYARD_NAMESPACE": self.namespace,
            "DOCKYARD_HEALTH_HOST": "127.0.0.1",
            "DOCKYARD_HEALTH_PORT": str(free_port()),
            "DOCKYARD_METRICS_HOST": "127.0.0.1",
            "DOCKYARD_METRICS_PORT": str(free_port()),
            "DOCKYARD_EVENTS_HOST": "127.0.0.1",
            "DOCKYARD_EVENTS_PORT": str(self.events_port),
            "DOCKYARD_EVENTS_URL": f"http://127.0.0.1:{self.events_port}",
            "DOCKYARD_STATE_DIR": str(self.state_dir),
            "DOCKYARD_DRIFT_INTERVAL_SECONDS": "3",
            "PYTHONPATH": str(ROOT / "operator"),
        }
        log = open(self.workdir / "operator.log", "ab")
        process = subprocess.Popen([sys.executable, "-m", "dockyard"], env=env, stdout=log, stderr=log)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            log.close()

    @property
    def creds(self) -> str:
        admin = _until(lambda: _secret(self.cluster, self.namespace, RegistryNames("hub").admin), "admin Secret")
        return f"hub:{admin['password']}"

    def push(self, tag: str, repository: str = "team/app") -> None:
        assert self.registry is not None
        result = self.registry.push(self.creds, tag, repository)
        assert result.returncode == 0, result.stderr

    def delete(self, tag: str, repository: str = "team/app") -> None:
        assert self.registry is not None
        result = self.registry.delete(self.creds, tag, repository)
        assert result.returncode == 0, result.stderr


@pytest.fixture
def stack(cluster: Any, crds: None, namespace: str, tmp_path: Path) -> Iterator[Stack]:
    _oci_image(tmp_path / "image")
    built = Stack(cluster, namespace, tmp_path, tmp_path / "state", free_port())
    try:
        yield built
    finally:
        if built.registry is not None:
            built.registry.stop()


@pytest.mark.parametrize("distribution", ["2.8", "3.x"])
def test_push_and_delete_arrive_signed_and_acr_shaped(
    stack: Stack,
    cluster: Any,
    namespace: str,
    caplog: pytest.LogCaptureFixture,
    distribution: str,
    request: pytest.FixtureRequest,
) -> None:
    if distribution == "3.x":
        stack.binary = str(request.getfixturevalue("distribution_v3"))
    cluster.kubectl(
        "create", "secret", "generic", "hook-auth", "-n", namespace, "--from-literal=token=Bearer s3cr3t-header-value"
    )
    with receiving() as receiver, stack.operator():
        stack.start_registry()
        _webhook(
            cluster,
            namespace,
            "all",
            {
                "serviceUri": receiver.url("/all?code=s3cr3t-query"),
                "actions": ["push", "delete"],
                "customHeaders": [
                    {"name": "Authorization", "valueFrom": {"secretKeyRef": {"name": "hook-auth", "key": "token"}}},
                    {"name": "X-Team", "value": "platform"},
                ],
            },
        )
        _until(lambda: (c := _ready(cluster, namespace, "all")) and c["status"] == "True", "webhook Ready")
        stack.push("v1")
        digest, size = _manifest_digest(stack, "v1")
        pushes = _until(lambda: receiver.delivered("/all?code=s3cr3t-query"), "the push to be delivered", 30)
        assert len(pushes) == 1, pushes
        event = pushes[0]
        assert event["action"] == "push"
        assert event["target"] == {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "size": size,
            "digest": digest,
            "length": size,
            "repository": "team/app",
            "tag": "v1",
        }
        assert event["request"]["method"] == "PUT" and event["request"]["useragent"].startswith("skopeo")
        assert event["request"]["host"] == f"127.0.0.1:{stack.registry.port}"  # type: ignore[union-attr]
        assert set(event) == {"id", "timestamp", "action", "target", "request"}

        request = receiver.on("/all?code=s3cr3t-query")[0]
        assert request.headers["content-type"] == "application/json"
        assert request.headers["authorization"] == "Bearer s3cr3t-header-value"
        assert request.headers["x-team"] == "platform"
        key = _secret(cluster, namespace, WebhookNames("all").signing)
        assert key is not None
        signature = request.headers[signing.SIGNATURE_HEADER.lower()]
        assert signing.verify(key["secret"].encode(), request.body, signature)
        assert not signing.verify(key["secret"].encode(), request.body.replace(b'"v1"', b'"v2"'), signature)
        assert not signing.verify(b"another key", request.body, signature)

        stack.delete("v1")
        deletes = _until(
            lambda: [e for e in receiver.delivered("/all?code=s3cr3t-query") if e["action"] == "delete"],
            "the delete",
            30,
        )
        assert len(deletes) == 1
        assert deletes[0]["target"] == {"digest": digest, "repository": "team/app"}

        body = _until(
            lambda: (
                (b := _get_webhook(cluster, namespace, "all"))["status"].get("deliveries", {}).get("delivered") == 2
                and b
            ),
            "status to count two deliveries",
        )
        records = body["status"]["recentDeliveries"]
        assert [r["action"] for r in records] == ["delete", "push"]
        assert (
            records[1]["target"] == "team/app:v1"
            and records[1]["httpStatus"] == 200
            and records[1]["state"] == "delivered"
        )
        assert body["status"]["signingSecretName"] == WebhookNames("all").signing
        shown = json.dumps(body["status"]) + cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout
        assert "s3cr3t" not in shown

        def cli(*args: str) -> str:
            run = subprocess.run(
                [sys.executable, "-m", "dockyard.webhooks", "--state-dir", str(stack.state_dir), *args],
                capture_output=True,
                text=True,
                timeout=30,
                env=os.environ | {"PYTHONPATH": str(ROOT / "operator")},
            )
            assert run.returncode == 0, run.stderr
            return run.stdout

        listed = [json.loads(line) for line in cli("deliveries", f"{namespace}/all", "--body").splitlines()]
        assert [(d["action"], d["state"]) for d in listed] == [("delete", "delivered"), ("push", "delivered")]
        assert listed[1]["body"] == event and "s3cr3t" not in json.dumps(listed)
        push_id = listed[1]["id"]
        assert "1 of 1 deliveries queued again" in cli("redeliver", push_id)
        replayed = _until(
            lambda: [
                r
                for r in receiver.on("/all?code=s3cr3t-query")
                if r.headers[signing.DELIVERY_HEADER.lower()] == push_id
            ][1:],
            "the push to be delivered again",
            30,
        )
        assert replayed[0].body == request.body
    assert "s3cr3t" not in caplog.text, "no secret in the operator's logs"


def test_scope_action_and_enabled_select_what_each_webhook_receives(stack: Stack, cluster: Any, namespace: str) -> None:
    with receiving() as receiver, stack.operator():
        stack.start_registry()
        hooks = {
            "team-v1": {"scope": "team/*:v1", "actions": ["push"]},
            "other": {"scope": "other/*:*", "actions": ["push", "delete"]},
            "deletes": {"scope": "team/app:*", "actions": ["delete"]},
            "latest": {"scope": "team/app", "actions": ["push"]},
            "off": {"actions": ["push", "delete"], "enabled": False},
        }
        for name, spec in hooks.items():
            _webhook(cluster, namespace, name, {"serviceUri": receiver.url(f"/{name}"), **spec})
        for name in hooks:
            _until(lambda n=name: (c := _ready(cluster, namespace, n)) and c["status"] == "True", f"{name} Ready")
        assert (_ready(cluster, namespace, "off") or {})["reason"] == "Disabled"
        for tag in ("v1", "v2", "latest"):
            stack.push(tag)
        stack.delete("v2")
        _until(lambda: receiver.delivered("/deletes"), "the delete to reach its webhook", 30)
        _until(lambda: len(receiver.delivered("/team-v1")) >= 1 and receiver.delivered("/latest"), "pushes", 30)
        time.sleep(3)  # anything wrongly selected would have been delivered by now
        assert [(e["action"], e["target"].get("tag")) for e in receiver.delivered("/team-v1")] == [("push", "v1")]
        assert [(e["action"], e["target"].get("tag")) for e in receiver.delivered("/latest")] == [("push", "latest")]
        assert [e["action"] for e in receiver.delivered("/deletes")] == ["delete"]
        assert receiver.on("/other") == []
        assert receiver.on("/off") == []


def test_receiver_outage_is_retried_until_delivered(stack: Stack, cluster: Any, namespace: str) -> None:
    with receiving() as receiver, stack.operator() as metrics_url:
        stack.start_registry()
        _webhook(
            cluster,
            namespace,
            "flaky",
            {
                "serviceUri": receiver.url("/flaky"),
                "actions": ["push"],
                "delivery": {"timeoutSeconds": 1, "maxAttempts": 10},
            },
        )
        _until(lambda: (c := _ready(cluster, namespace, "flaky")) and c["status"] == "True", "webhook Ready")
        receiver.delays = [2.5]  # the first attempt times out
        receiver.answers = [200, 500, 503, 429]  # (the late answer to the first) then three failures
        stack.push("v1")
        failing = _until(
            lambda: (c := _ready(cluster, namespace, "flaky")) and c["reason"] == "ReceiverFailing" and c,
            "Ready=False ReceiverFailing",
            30,
        )
        assert failing["status"] == "False"
        delivered = _until(lambda: receiver.delivered("/flaky"), "delivery after the receiver recovers", 60)
        assert len(delivered) == 1 and delivered[0]["target"]["tag"] == "v1"
        ids = {r.headers[signing.DELIVERY_HEADER.lower()] for r in receiver.on("/flaky")}
        assert len(ids) == 1, "every retry carries the same delivery id"
        assert [r.headers[signing.ATTEMPT_HEADER.lower()] for r in receiver.on("/flaky")][-1] == "5"
        body = _until(
            lambda: (
                (b := _get_webhook(cluster, namespace, "flaky"))["status"].get("deliveries", {}).get("delivered") == 1
                and b
            ),
            "status to show the delivery",
        )
        record = body["status"]["recentDeliveries"][0]
        assert record["attempts"] == 5 and record["httpStatus"] == 200 and record["state"] == "delivered"
        ready = _until(
            lambda: (c := _ready(cluster, namespace, "flaky")) and c["status"] == "True" and c, "Ready again"
        )
        assert ready["reason"] == "Reconciled"
        events = json.loads(
            cluster.kubectl(
                "get", "events", "-n", namespace, "--field-selector", "involvedObject.name=flaky", "-o", "json"
            ).stdout
        )
        assert {(e["type"], e["reason"]) for e in events["items"]} >= {
            ("Warning", "ReceiverFailing"),
            ("Normal", "Reconciled"),
        }

        metrics = httpx.get(metrics_url).text
        assert _metric_sum(metrics, "dockyard_webhook_attempts_total", result="timeout") == 1
        assert _metric_sum(metrics, "dockyard_webhook_attempts_total", result="http_error") == 3
        assert _metric_sum(metrics, "dockyard_webhook_attempts_total", result="success") == 1
        assert _metric_sum(metrics, "dockyard_webhook_deliveries_total", outcome="delivered") == 1
        assert _metric_sum(metrics, "dockyard_webhook_delivery_latency_seconds_count") == 1
        assert _metric_sum(metrics, "dockyard_webhook_envelopes_total", outcome="accepted") >= 1
        assert _metric_sum(metrics, "dockyard_webhook_queue_depth") == 0


def test_operator_restart_loses_no_pending_or_incoming_event(stack: Stack, cluster: Any, namespace: str) -> None:
    with receiving() as receiver:
        with stack.operator():
            stack.start_registry()
            _webhook(cluster, namespace, "durable", {"serviceUri": receiver.url("/durable"), "actions": ["push"]})
            _until(lambda: (c := _ready(cluster, namespace, "durable")) and c["status"] == "True", "webhook Ready")
            receiver.answers = [503] * 1000
            for tag in ("v1", "v2", "v3"):
                stack.push(tag)
            _until(
                lambda: len({r.event["target"]["tag"] for r in receiver.on("/durable")}) == 3,
                "three events attempted",
                30,
            )
        stack.push("v4")  # the operator is down: distribution keeps retrying the intake
        with receiver.lock:
            receiver.answers.clear()
        with stack.operator():
            delivered = _until(
                lambda: len(receiver.delivered("/durable")) == 4 and receiver.delivered("/durable"),
                "all four delivered",
                90,
            )
            assert sorted(e["target"]["tag"] for e in delivered) == ["v1", "v2", "v3", "v4"]


def test_intake_takes_a_registrys_events_only_with_its_own_token(stack: Stack, cluster: Any, namespace: str) -> None:
    with stack.operator():
        for name in ("hub", "other"):
            _apply(cluster, namespace, name, {"sku": "Standard"})
        hub = _until(lambda: _secret(cluster, namespace, RegistryNames("hub").events), "hub's events token")["token"]
        other = _until(lambda: _secret(cluster, namespace, RegistryNames("other").events), "other's events token")[
            "token"
        ]
        url = f"http://127.0.0.1:{stack.events_port}/events/{namespace}/hub"
        envelope = {"events": []}
        assert httpx.post(url, json=envelope).status_code == 401
        assert httpx.post(url, json=envelope, headers={"Authorization": f"Bearer {other}"}).status_code == 401
        assert httpx.post(url, json=envelope, headers={"Authorization": f"Bearer {hub}"}).status_code == 200
        assert httpx.post(url, content=b"[1, 2]", headers={"Authorization": f"Bearer {hub}"}).status_code == 400
        elsewhere = f"http://127.0.0.1:{stack.events_port}/events/default/hub"
        assert httpx.post(elsewhere, json=envelope, headers={"Authorization": f"Bearer {hub}"}).status_code == 401


def test_operator_killed_mid_delivery_loses_nothing(stack: Stack, cluster: Any, namespace: str) -> None:
    with receiving() as receiver:
        with stack.operator_process() as first:
            stack.start_registry()
            _webhook(
                cluster,
                namespace,
                "durable",
                {"serviceUri": receiver.url("/killed"), "actions": ["push"], "delivery": {"timeoutSeconds": 30}},
            )
            _until(lambda: (c := _ready(cluster, namespace, "durable")) and c["status"] == "True", "webhook Ready", 60)
            receiver.delays = [5.0] * 2  # both first attempts hang while the operator is killed
            stack.push("v1")
            stack.push("v2")
            _until(lambda: receiver.arrived == 2, "both attempts in flight", 30)
            first.kill()  # SIGKILL: no cleanup, attempts in flight are not recorded
            first.wait()
        stack.push("v3")  # while no operator runs
        with stack.operator_process():
            delivered = _until(
                lambda: len(receiver.delivered("/killed")) == 3 and receiver.delivered("/killed"),
                "all three delivered",
                60,
            )
        assert sorted(e["target"]["tag"] for e in delivered) == ["v1", "v2", "v3"]
        late = _until(
            lambda: (
                (x := [r for r in receiver.on("/killed") if r.headers["x-answered"] == "late"]) and len(x) == 2 and x
            ),
            "the cut-short attempts to be logged by the receiver",
            10,
        )
        assert sorted(r.event["target"]["tag"] for r in late) == ["v1", "v2"], "the attempts cut short by the kill"


def test_tier_limit_refuses_one_webhook_too_many(stack: Stack, cluster: Any, namespace: str) -> None:
    with receiving() as receiver, stack.operator():
        stack.start_registry(sku="Basic")
        for name in ("first", "second", "third"):
            _webhook(cluster, namespace, name, {"serviceUri": receiver.url(f"/{name}"), "actions": ["push"]})
            time.sleep(1.1)  # distinct creation timestamps decide who is over the limit
        over = _until(
            lambda: (c := _ready(cluster, namespace, "third")) and c["status"] == "False" and c, "third refused"
        )
        assert over["reason"] == "QuotaExceeded"
        assert "Quota exceeded for resource type webhooks for the registry SKU Basic" in over["message"]
        for name in ("first", "second"):
            _until(lambda n=name: (c := _ready(cluster, namespace, n)) and c["status"] == "True", f"{name} Ready")
        stack.push("v1")
        _until(lambda: receiver.delivered("/first") and receiver.delivered("/second"), "the two allowed webhooks", 30)
        time.sleep(2)
        assert receiver.on("/third") == []
        cluster.kubectl("delete", "webhook", "first", "-n", namespace)
        _until(
            lambda: (c := _ready(cluster, namespace, "third")) and c["status"] == "True",
            "third allowed once first is gone",
            30,
        )


def test_webhook_waits_for_its_registry_and_follows_its_tier(stack: Stack, cluster: Any, namespace: str) -> None:
    with stack.operator():
        for name in ("early", "second", "third"):
            _webhook(cluster, namespace, name, {"serviceUri": "http://127.0.0.1:9/", "actions": ["push"]})
            time.sleep(1.1)
        waiting = _until(
            lambda: (c := _ready(cluster, namespace, "early")) and c["status"] == "False" and c, "early waiting"
        )
        assert waiting["reason"] == "DependencyNotReady" and waiting["message"] == "Registry hub not found"
        _apply(cluster, namespace, "hub", {"sku": "Basic"})
        _until(
            lambda: (c := _ready(cluster, namespace, "early")) and c["status"] == "True",
            "Ready once the registry exists",
        )
        over = _until(
            lambda: (c := _ready(cluster, namespace, "third")) and c["reason"] == "QuotaExceeded" and c,
            "third over quota",
        )
        assert over["status"] == "False"
        _apply(cluster, namespace, "hub", {"sku": "Standard"})
        _until(
            lambda: (c := _ready(cluster, namespace, "third")) and c["status"] == "True", "third allowed on Standard"
        )
        claim = json.loads(
            cluster.kubectl("get", "pvc", RegistryNames("hub").data, "-n", namespace, "-o", "json").stdout
        )
        assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi", "the tier change did not resize the volume"
        cluster.kubectl("delete", "registry", "hub", "-n", namespace)
        gone = _until(
            lambda: (c := _ready(cluster, namespace, "early")) and c["status"] == "False" and c, "registry gone"
        )
        assert gone["reason"] == "DependencyNotReady"


def test_ping_annotation_sends_a_ping_and_records_it(stack: Stack, cluster: Any, namespace: str) -> None:
    with receiving() as receiver, stack.operator():
        stack.start_registry()
        cluster.kubectl(
            "create", "secret", "generic", "hook-url", "-n", namespace, f"--from-literal=url={receiver.url('/ping')}"
        )
        _webhook(
            cluster,
            namespace,
            "pinged",
            {"serviceUriSecretRef": {"name": "hook-url", "key": "url"}, "actions": ["push"]},
        )
        _until(lambda: (c := _ready(cluster, namespace, "pinged")) and c["status"] == "True", "webhook Ready")
        cluster.kubectl("annotate", "webhook", "pinged", "-n", namespace, "dockyard.dev/ping=1")
        pings = _until(lambda: receiver.delivered("/ping"), "the ping", 30)
        assert pings[0]["action"] == "ping" and set(pings[0]) == {"id", "timestamp", "action"}
        record = _until(
            lambda: (
                (p := _get_webhook(cluster, namespace, "pinged")["status"].get("lastPing"))
                and p["state"] != "pending"
                and p
            ),
            "the ping's result in status",
        )
        assert record["state"] == "delivered" and record["httpStatus"] == 200 and record["attempts"] == 1
        cluster.kubectl("annotate", "--overwrite", "webhook", "pinged", "-n", namespace, "dockyard.dev/ping=1")
        time.sleep(2)
        assert len(receiver.on("/ping")) == 1, "the same annotation value pings once"
