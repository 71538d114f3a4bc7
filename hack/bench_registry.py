"""`make bench`: Registry reconcile latency, burst throughput, operator memory and idle API traffic on
the local control plane, beside the Deployment controller's figures in the same run.

Phases, each printed as soon as it is measured (an interrupted run still reports what it saw):
1. one after another, --sequential of each in turn, a Registry then a plain Deployment (after one
   Registry not counted: the first reconcile after a start opens its connections): p50/p99 of
   Registry created -> its Deployment created and -> Ready=True, and of Deployment created ->
   ReplicaSet created (the yardstick); the ratio of the two p99s (target: Registry -> Deployment
   <= 3x the Deployment controller's);
2. the yardstick bursts: --deployments Deployments created at once -> all ReplicaSets created,
   -> all Available; once plain (one small container), once shaped as a registry's (the pod
   template the operator's own builder renders for the burst's registries: two containers,
   probes, volumes): what the Deployment controller, scheduler and node cost for the same pods
   without the operator (the floor under phase 3), unless --deployment-shapes says otherwise;
   after phases 1 and 2 their Registries and Deployments are deleted and their pods gone, so each
   burst starts from the cluster the first phase found (the yardstick's 1,000 pods would weigh on
   every watch and list), and phases 4-7 hold exactly --registries Registries (and --webhooks);
3. --registries Registries created at once -> all Deployments created, -> all Deployments
   Available, -> all Ready=True (target: <= 120 s for 1,000), with the operator's RSS, and what
   the burst cost the API server per registry (every client's writes and reads by resource, the
   operator's requests by verb and kind);
4. settle (no writes for --quiet-seconds), then --idle-seconds idle with the
   Registries only: requests by verb from the operator's `dockyard_kube_requests_total` (target:
   0 writes), writes the API server counted by resource (kopf's own patches included; kwok's node
   heartbeats left out), and requests per drift pass per registry (passes = Registry reconciles /
   registries; DOCKYARD_DRIFT_INTERVAL_SECONDS=--drift-interval);
5. --webhooks Webhooks created at once (one per registry in turn; serviceUri on loopback port
   9, where nothing listens) -> all Ready=True, with the operator's RSS;
6. settle again, then the same counts for --settled-seconds with Registries and Webhooks;
7. operator RSS peak (VmHWM) and settled (end of phase 6; target <= 250 MB), and the CPU time
   each process used.

Times are taken by this process from watch events, so every figure includes the same watch
latency. The cluster gets enough kwok nodes for the largest phase's pods (--pods-per-node, kubelet's
default 110, on 16-CPU/64-GiB nodes: a common node size; one 500-pod node would be unlike any real
cluster), a service range of 10.0.0.0/16 (the harness's /24 runs out after 254 Services: one per
registry), and the controller-manager and scheduler the client limits of Kubernetes' own
scalability tests (--kube-api-qps=100 --kube-api-burst=100) instead of 20/30 and 50/100.

For a diagnosis: BENCH_LOG_LEVEL=debug and BENCH_LOG_FORMAT=full set the operator's log (default
warning, plain); LOCALCLUSTER_PROFILING=true serves the API server's /debug/pprof (for
`kubectl get --raw '/debug/pprof/profile?seconds=30'`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hack"))
sys.path.insert(0, str(ROOT / "operator"))  # the registry-shaped yardstick uses the operator's builder

import kubernetes  # noqa: E402
from kubernetes import watch  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402

from bench_probes import (  # noqa: E402
    MIB,
    Labels,
    MemorySampler,
    Seen,
    counter_delta,
    cpu_seconds,
    latency_line,
    machine_cpu,
    mib,
    nodes_for,
    parse_prometheus,
    pct,
    phase_cpu_line,
    say,
    timeline_line,
    warn,
)
from localcluster import LocalCluster, Tuning, ensure_binaries  # noqa: E402
from realregistry import free_port  # noqa: E402

GROUP, VERSION = "dockyard.dev", "v1alpha1"
S3 = {"s3": {"bucket": "bench", "region": "us-east-1"}}
SEQ, KUBE, BURST = "bench-seq", "bench-kube", "bench-burst"
HOOK_URI = "http://127.0.0.1:9/hook"  # discard port on loopback: nothing listens, nothing leaves the host
# What a Standard registry pod requests (registry 100m/128Mi + token service 10m/48Mi): the plain
# Deployments of the yardstick ask the scheduler for the same.
POD_REQUESTS = {"cpu": "110m", "memory": "176Mi"}
NODE = {"cpu": "16", "memory": "64Gi", "ephemeral-storage": "1Ti"}
WRITE_VERBS = ("create", "apply", "patch", "delete")
READ_VERBS_API = {"GET", "LIST", "WATCH", "CONNECT"}
HEARTBEATS = {"nodes", "leases"}
SERVICE_CIDR = "10.0.0.0/16"  # a Service per registry: the harness's /24 holds only 254  # kwok plays the kubelets: node status and lease renewals


def registry_body(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Registry",
        "metadata": {"name": name},
        "spec": {"sku": "Standard", "storage": S3},
    }


def webhook_body(name: str, registry: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Webhook",
        "metadata": {"name": name},
        "spec": {"registryRef": {"name": registry}, "serviceUri": HOOK_URI, "actions": ["push"]},
    }


def _shapes(text: str) -> list[str]:
    shapes = [shape for shape in text.split(",") if shape]
    if not set(shapes) <= {"plain", "registry"}:
        raise argparse.ArgumentTypeError(f"shapes are plain and registry, not {text!r}")
    return shapes


def registry_shaped_deployment_body(name: str) -> dict[str, Any]:
    """The Deployment the operator renders for the burst's Registry `name` (`registry_body`), by its
    own builder, without owner references (no Registry owns it: the garbage collector would take
    it) and with the registry pod's requests as kwok sees them."""
    from dockyard.core.meta import Owner
    from dockyard.core.names import CHILD_LABELS, RegistryNames
    from dockyard.models import RegistrySpec
    from dockyard.registries.manifests.config import RegistryContext, tls_secret_name
    from dockyard.registries.manifests.workload import build_deployment

    spec = RegistrySpec.model_validate(registry_body(name)["spec"])
    owner = Owner(f"{GROUP}/{VERSION}", "Registry", name, KUBE, "00000000-0000-4000-8000-000000000000")
    ctx = RegistryContext(
        owner,
        spec,
        "registry:3",
        "dockyard:bench",
        tls_secret_name(spec, RegistryNames(name)),
        "http://dockyard-events.dockyard-system.svc:8090",
    )
    deployment = build_deployment(ctx, "bench")
    # Without the labels the operator watches its children by: it would take these for its own.
    template = deployment["spec"]["template"]["metadata"]
    template["labels"] = {k: v for k, v in template["labels"].items() if k not in CHILD_LABELS}
    # The namespace's own account: the registry's ServiceAccount is the operator's to create, and
    # the API server refuses a pod whose account does not exist.
    deployment["spec"]["template"]["spec"]["serviceAccountName"] = "default"
    deployment["metadata"] = {"name": name}
    return deployment


def deployment_body(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "x", "resources": {"requests": POD_REQUESTS}}]},
            },
        },
    }


def _ready(obj: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in (obj.get("status") or {}).get("conditions", [])
    )


def on_deployment(seen: Seen, obj: dict[str, Any]) -> None:
    name = obj["metadata"]["name"]
    seen.mark("deployment", name)
    status = obj.get("status") or {}
    if status.get("availableReplicas", 0) >= (obj.get("spec") or {}).get("replicas", 1) >= 1:
        seen.mark("available", name)


def on_replicaset(seen: Seen, obj: dict[str, Any]) -> None:
    for owner in obj["metadata"].get("ownerReferences") or []:
        if owner.get("kind") == "Deployment":
            seen.mark("rs-of", owner["name"])


def on_registry(seen: Seen, obj: dict[str, Any]) -> None:
    seen.mark("registry", obj["metadata"]["name"])
    if _ready(obj):
        seen.mark("ready", obj["metadata"]["name"])


def on_webhook(seen: Seen, obj: dict[str, Any]) -> None:
    if _ready(obj):
        seen.mark("webhook-ready", obj["metadata"]["name"])


def watch_into(
    seen: Seen,
    custom: kubernetes.client.CustomObjectsApi,
    group: str,
    version: str,
    namespace: str,
    plural: str,
    handler: Callable[[Seen, dict[str, Any]], None],
    stop: threading.Event,
) -> threading.Thread:
    """Feed every watch event of a namespace's `plural` to `handler`, resuming from the last
    resourceVersion after each server timeout (a re-list only after 410 Gone). Through
    CustomObjectsApi for every group: events stay dicts, never deserialized into models, which
    would cost this process more CPU than the watch itself."""

    def loop() -> None:
        resource_version: str | None = None
        while not stop.is_set():
            kwargs: dict[str, Any] = {"timeout_seconds": 60, "allow_watch_bookmarks": True, "deserialize": False}
            if resource_version:
                kwargs["resource_version"] = resource_version
            try:
                for event in watch.Watch().stream(
                    custom.list_namespaced_custom_object, group, version, namespace, plural, **kwargs
                ):
                    if stop.is_set():
                        return
                    obj = event["object"]
                    resource_version = obj.get("metadata", {}).get("resourceVersion") or resource_version
                    if event["type"] != "BOOKMARK":
                        handler(seen, obj)
            except ApiException as error:
                resource_version = None  # 410 Gone: list again (first-seen times are kept)
                if error.status != 410:
                    time.sleep(1)
            except Exception as error:  # a dropped connection under load: watch again from where it was
                if not stop.is_set():
                    warn(f"watch of {plural} in {namespace}: {error!r}")
                    time.sleep(1)

    thread = threading.Thread(target=loop, name=f"watch-{namespace}-{plural}", daemon=True)
    thread.start()
    return thread


class Bench:
    def __init__(self, args: argparse.Namespace, cluster: LocalCluster, operator: subprocess.Popen[bytes]) -> None:
        self.args = args
        self.cluster = cluster
        self.operator = operator
        self.api = kubernetes.config.new_client_from_config(str(cluster.kubeconfig))
        self.api.configuration.connection_pool_maxsize = max(16, args.create_threads * 2)
        self.custom = kubernetes.client.CustomObjectsApi(self.api)
        self.stop = threading.Event()
        self.seen = Seen()
        self.memory = MemorySampler(operator.pid).start()
        self.metrics_url = f"http://127.0.0.1:{args.metrics_port}/metrics"
        self.registries: list[str] = []
        self.webhooks: list[str] = []

    def watch(self, namespace: str, *kinds: str) -> None:
        plurals = {
            "deployments": ("apps", "v1", on_deployment),
            "replicasets": ("apps", "v1", on_replicaset),
            "registries": (GROUP, VERSION, on_registry),
            "webhooks": (GROUP, VERSION, on_webhook),
        }
        for plural in kinds:
            group, version, handler = plurals[plural]
            watch_into(self.seen, self.custom, group, version, namespace, plural, handler, self.stop)

    def create(self, namespace: str, plural: str, bodies: list[dict[str, Any]]) -> tuple[dict[str, float], float]:
        """Create all at once from --create-threads threads; (start time by name, seconds to submit)."""
        group, version = ("apps", "v1") if plural == "deployments" else (GROUP, VERSION)
        started: dict[str, float] = {}

        def one(body: dict[str, Any]) -> None:
            name = body["metadata"]["name"]
            started[name] = time.monotonic()
            self.custom.create_namespaced_custom_object(group, version, namespace, plural, body)

        began = time.monotonic()
        with ThreadPoolExecutor(self.args.create_threads) as pool:
            list(pool.map(one, bodies))
        return started, time.monotonic() - began

    def progress(self, what: str, total: int, began: float) -> Callable[[int, float], None]:
        def report(count: int, _: float) -> None:
            elapsed = time.monotonic() - began
            say(f"   ... {count}/{total} {what} after {elapsed:.0f} s ({mib(self.memory.latest())} operator RSS)")

        return report

    def await_all(self, what: str, label: str, names: list[str], began: float) -> float | None:
        """Wait for every name to be seen as `what`; print and return the seconds from `began` to
        the last one, or print how many made it by the timeout and return None."""
        missing = self.seen.wait(
            what,
            names,
            max(self.args.burst_timeout - (time.monotonic() - began), 1.0),
            progress=self.progress(label, len(names), began),
        )
        if missing:
            done = len(names) - len(missing)
            say(
                f"   -> {label}: only {done}/{len(names)} after {time.monotonic() - began:.0f} s "
                f"(--burst-timeout), e.g. missing {missing[:3]}"
            )
            return None
        last = self.seen.last(what, names)
        assert last is not None
        say(f"   -> all {len(names)} {label}: {last - began:6.1f} s")
        return last - began

    # 1. One after another.
    def sequential(self) -> None:
        n = self.args.sequential
        if n <= 0:
            return
        self.watch(SEQ, "deployments", "replicasets", "registries")
        time.sleep(2)
        # One Registry first, not counted: the first reconcile after the operator's start (and
        # this client's first create) opens connections the Deployment controller, running for
        # a while already, has open.
        self.custom.create_namespaced_custom_object(GROUP, VERSION, SEQ, "registries", registry_body("warmup"))
        if self.seen.wait("ready", ["warmup"], 120):
            warn("the warm-up registry was not Ready within 120 s")
        self.registries.append("warmup")
        # Interleaved, a Registry then a plain Deployment: both series see the same moments of the
        # run (the operator's drift passes, the API server's compactions and GC), so a pause lands
        # on either with the same odds. The p99 of 200 is their third-slowest, not one pause.
        to_deployment, to_ready, to_rs = [], [], []
        for i in range(n):
            name = f"r{i}"
            started = time.monotonic()
            self.custom.create_namespaced_custom_object(GROUP, VERSION, SEQ, "registries", registry_body(name))
            missing = self.seen.wait("ready", [name], 120) + self.seen.wait("deployment", [name], 1)
            if missing:
                warn(f"registry {name}: no Deployment or not Ready within 120 s")
            else:
                to_deployment.append(self.seen.times[("deployment", name)] - started)
                to_ready.append(self.seen.times[("ready", name)] - started)
            self.registries.append(name)
            plain = f"plain{i}"
            started = time.monotonic()
            self.custom.create_namespaced_custom_object("apps", "v1", SEQ, "deployments", deployment_body(plain))
            if self.seen.wait("rs-of", [plain], 60):
                warn(f"deployment {plain}: no ReplicaSet within 60 s")
            else:
                to_rs.append(self.seen.times[("rs-of", plain)] - started)
        say(f"1. one after another ({n} each, a Registry then a Deployment, after one Registry not counted)")
        say(latency_line("   Registry created -> Deployment created", to_deployment))
        if to_deployment:
            slowest = max(range(len(to_deployment)), key=to_deployment.__getitem__)
            say(
                f"   (slowest: registry #{slowest + 1} of {len(to_deployment)}, {to_deployment[slowest] * 1000:.1f} ms)"
            )
        say(latency_line("   Registry created -> Ready=True", to_ready))
        say(latency_line("   Deployment created -> ReplicaSet created (kube)", to_rs))
        if to_deployment and to_rs:
            ratio = pct(to_deployment, 99) / pct(to_rs, 99)
            say(f"   p99 ratio Registry->Deployment / Deployment->ReplicaSet: {ratio:.1f}x  (target <= 3x)")
        self.clear(SEQ)

    # 2. The yardsticks: Deployments at once, plain and shaped as a registry's.
    def deployment_burst(self) -> None:
        n = self.args.deployments
        if n <= 0:
            return
        self.watch(KUBE, "deployments", "replicasets")
        time.sleep(2)
        for shape in self.args.deployment_shapes:
            plain = shape == "plain"
            names = [f"{'d' if plain else 'r'}{i}" for i in range(n)]
            body = deployment_body if plain else registry_shaped_deployment_body
            what = "plain Deployments" if plain else "Deployments shaped as the registries' (their pod template)"
            say(f"2{'' if plain else 'b'}. {n} {what} created at once (the Deployment controller's yardstick)")
            cpu_before = self.cpu()
            began = time.monotonic()
            started, submitted = self.create(KUBE, "deployments", [body(name) for name in names])
            say(f"   submitted in {submitted:.1f} s")
            self.await_all("rs-of", "ReplicaSets created", names, began)
            say(latency_line("   each: Deployment created -> ReplicaSet created", self.seen.spans("rs-of", started)))
            self.await_all("available", "Deployments Available", names, began)
            say(f"   {phase_cpu_line(cpu_before, self.cpu())}")
            for what, label in (("rs-of", "ReplicaSet created"), ("available", "Available")):
                say(timeline_line(f"   timeline, {label}", self.seen.reached(what, names, began)))
            self.clear(KUBE)

    def clear(self, namespace: str) -> None:
        """Delete a namespace's Registries and Deployments and wait until their pods are gone,
        then settle: the next phase starts from the cluster the first one found."""
        began = time.monotonic()
        apps, core = kubernetes.client.AppsV1Api(self.api), kubernetes.client.CoreV1Api(self.api)
        self.custom.delete_collection_namespaced_custom_object(GROUP, VERSION, namespace, "registries")
        apps.delete_collection_namespaced_deployment(namespace, propagation_policy="Background")
        left = -1
        while time.monotonic() - began < self.args.settle_timeout:
            left = len(json.loads(core.list_namespaced_pod(namespace, _preload_content=False).data)["items"])
            if left == 0:
                break
            time.sleep(2)
        if namespace == SEQ:
            self.registries = [name for name in self.registries if name.startswith("b")]  # the bursts' own
        say(f"   deleted, {left} pods left after {time.monotonic() - began:.0f} s")
        self.settle()

    # 3. Registries at once.
    def registry_burst(self) -> None:
        n = self.args.registries
        if n <= 0:
            return
        self.watch(BURST, "deployments", "registries", "webhooks")
        time.sleep(2)
        names = [f"b{i}" for i in range(n)]
        say(f"3. {n} Registries created at once")
        server_before, operator_before = self.apiserver_requests(), self.operator_metrics()
        cpu_before = self.cpu()
        phase = began = time.monotonic()
        started, submitted = self.create(BURST, "registries", [registry_body(name) for name in names])
        self.registries += names
        say(f"   submitted in {submitted:.1f} s")
        self.await_all("deployment", "registry Deployments created", names, began)
        self.await_all("available", "registry Deployments Available", names, began)
        total = self.await_all("ready", "Registries Ready", names, began)
        say(f"   {phase_cpu_line(cpu_before, self.cpu())}")
        for what, label in (("deployment", "Deployment created"), ("available", "Available"), ("ready", "Ready")):
            say(timeline_line(f"   timeline, {label}", self.seen.reached(what, names, began)))
        say(latency_line("   each: Registry created -> Deployment created", self.seen.spans("deployment", started)))
        say(latency_line("   each: Registry created -> Ready=True", self.seen.spans("ready", started)))
        if total is not None:
            verdict = "met" if total <= 120 else "missed"
            say(f"   all {n} Ready in {total:.1f} s: target <= 120 s {verdict}")
        self.writes_per_registry(n, server_before, operator_before)
        say(f"   {self.memory.describe(phase)}")

    def writes_per_registry(
        self, n: int, server_before: dict[Labels, float], operator_before: dict[str, dict[Labels, float]]
    ) -> None:
        """What the burst cost the API server, per registry: every client's writes by resource
        (the bench's own creates included, kwok's heartbeats left out), and the operator's."""
        server = counter_delta(server_before, self.apiserver_requests(), ["verb", "resource", "subresource"])
        writes = {k: v for k, v in server.items() if k[0] not in READ_VERBS_API and k[1] not in HEARTBEATS}
        say(
            f"   API-server writes per registry (every client): {sum(writes.values()) / n:.1f} = "
            + ", ".join(
                f"{verb} {res}{'/' + sub if sub else ''} {v / n:.2f}"
                for (verb, res, sub), v in sorted(writes.items(), key=lambda item: -item[1])
            )
        )
        reads = {k: v for k, v in server.items() if k[0] in READ_VERBS_API - {"WATCH"}}
        say(
            f"   API-server reads per registry (every client): {sum(reads.values()) / n:.2f} = "
            + ", ".join(
                f"{verb} {res}{'/' + sub if sub else ''} {v / n:.3f}"
                for (verb, res, sub), v in sorted(reads.items(), key=lambda item: -item[1])[:12]
            )
        )
        refused = failed_requests(server_before, self.apiserver_requests())
        say(
            f"   API-server answers not 2xx per registry (every client, watches left out): "
            f"{sum(refused.values()) / n:.2f}"
            + "".join(
                f", {code} {verb} {res}{'/' + sub if sub else ''} {v / n:.3f}"
                for (code, verb, res, sub), v in sorted(refused.items(), key=lambda item: -item[1])[:10]
            )
        )
        mine = counter_delta(
            operator_before.get("dockyard_kube_requests_total", {}),
            self.operator_metrics().get("dockyard_kube_requests_total", {}),
            ["verb", "kind"],
        )
        say(
            f"   operator requests per registry: {sum(mine.values()) / n:.1f} = "
            + ", ".join(f"{verb} {kind} {v / n:.2f}" for (verb, kind), v in sorted(mine.items(), key=lambda i: -i[1]))
        )

    # 5. Webhooks at once.
    def webhook_burst(self) -> None:
        n = self.args.webhooks
        burst = [name for name in self.registries if name.startswith("b")]
        if n <= 0:
            return
        if not burst:
            say("5. no Webhooks: they need the registries of phase 3 (--registries > 0)")
            return
        names = [f"h{i}" for i in range(n)]
        bodies = [webhook_body(name, burst[i % len(burst)]) for i, name in enumerate(names)]
        say(f"5. {n} Webhooks created at once, over {min(n, len(burst))} registries (serviceUri {HOOK_URI})")
        phase = began = time.monotonic()
        started, submitted = self.create(BURST, "webhooks", bodies)
        self.webhooks = names
        say(f"   submitted in {submitted:.1f} s")
        self.await_all("webhook-ready", "Webhooks Ready", names, began)
        say(latency_line("   each: Webhook created -> Ready=True", self.seen.spans("webhook-ready", started)))
        say(f"   {self.memory.describe(phase)}")

    # Counting requests.
    def operator_metrics(self) -> dict[str, dict[Labels, float]]:
        """The operator's counters; waits up to a minute for its metrics server (a first phase
        may start before the operator has)."""
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.metrics_url, timeout=30) as response:
                    text = response.read().decode()
                break
            except urllib.error.URLError:
                if time.monotonic() > deadline or self.operator.poll() is not None:
                    raise
                time.sleep(1)
        return parse_prometheus(text, ["dockyard_kube_requests_total", "dockyard_reconcile_total"])

    def apiserver_requests(self) -> dict[Labels, float]:
        """`apiserver_request_total` from the API server's own /metrics (admin token)."""
        method, url, headers, body, post = self.api.param_serialize("GET", "/metrics", auth_settings=["BearerToken"])
        response = self.api.call_api(method, url, headers, body, post, _request_timeout=60)
        lines = [line for line in response.read().decode().splitlines() if line.startswith("apiserver_request_total")]
        if response.status != 200:
            raise RuntimeError(f"GET /metrics on the API server answered {response.status}")
        return parse_prometheus("\n".join(lines)).get("apiserver_request_total", {})

    def writes(self) -> tuple[float, float]:
        """(operator write requests, API-server writes but heartbeats) so far."""
        operator = self.operator_metrics().get("dockyard_kube_requests_total", {})
        mine = sum(v for labels, v in operator.items() if dict(labels).get("verb") in WRITE_VERBS)
        server = sum(
            v
            for labels, v in self.apiserver_requests().items()
            if dict(labels).get("verb") not in READ_VERBS_API and dict(labels).get("resource") not in HEARTBEATS
        )
        return mine, server

    def settle(self) -> bool:
        """Wait until neither the operator nor anyone else (but kwok's heartbeats) has written for
        --quiet-seconds, at most --settle-timeout; False if writes were still going then."""
        began = time.monotonic()
        last = self.writes()
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < self.args.quiet_seconds:
            if time.monotonic() - began > self.args.settle_timeout:
                say(
                    f"   not settled: writes still going after {self.args.settle_timeout:.0f} s (--settle-timeout); "
                    "measured anyway, so the figures below include catching up, not only idling"
                )
                return False
            time.sleep(5)
            now = self.writes()
            if now != last:
                last, quiet_since = now, time.monotonic()
        say(
            f"   settled: no writes for {self.args.quiet_seconds:.0f} s, {time.monotonic() - began:.0f} s after the burst"
        )
        return True

    def quiet_period(self, seconds: float, *, target: bool) -> tuple[float, float]:
        """Settle, then count requests for `seconds`: the operator's by verb (and kind), the API
        server's writes by resource, reconciles by kind, and requests per drift pass per registry
        (Registry reconciles / registries = passes). Returns the period's (start, end)."""
        self.settle()
        operator_before, server_before = self.operator_metrics(), self.apiserver_requests()
        began = time.monotonic()
        time.sleep(seconds)
        operator_after, server_after = self.operator_metrics(), self.apiserver_requests()
        ended = time.monotonic()
        requests_before = operator_before.get("dockyard_kube_requests_total", {})
        requests_after = operator_after.get("dockyard_kube_requests_total", {})
        by_verb = counter_delta(requests_before, requests_after, ["verb"])
        by_kind = counter_delta(requests_before, requests_after, ["verb", "kind"])
        reconciles = counter_delta(
            operator_before.get("dockyard_reconcile_total", {}),
            operator_after.get("dockyard_reconcile_total", {}),
            ["kind", "result"],
        )
        writes = sum(v for (verb,), v in by_verb.items() if verb in WRITE_VERBS)
        verdict = f" (target 0: {'met' if writes == 0 else 'missed'})" if target else ""
        say(
            f"   operator requests in {ended - began:.0f} s by verb: "
            + (", ".join(f"{verb} {v:.0f}" for (verb,), v in sorted(by_verb.items())) or "none")
            + f"; writes {writes:.0f}{verdict}"
        )
        say(
            "   by verb and kind: "
            + (", ".join(f"{verb} {kind} {v:.0f}" for (verb, kind), v in sorted(by_kind.items())) or "none")
        )
        server = counter_delta(server_before, server_after, ["verb", "resource", "subresource"])
        server_writes = {k: v for k, v in server.items() if k[0] not in READ_VERBS_API and k[1] not in HEARTBEATS}
        heartbeats = sum(v for k, v in server.items() if k[0] not in READ_VERBS_API and k[1] in HEARTBEATS)
        say(
            "   API-server writes (every client, kopf's own patches too): "
            + (
                ", ".join(
                    f"{verb} {res}{'/' + sub if sub else ''} {v:.0f}"
                    for (verb, res, sub), v in sorted(server_writes.items())
                )
                or "none"
            )
            + f"  [kwok node heartbeats and leases, left out: {heartbeats:.0f}]"
        )
        registry_runs = sum(v for (kind, _), v in reconciles.items() if kind == "Registry")
        webhook_runs = sum(v for (kind, _), v in reconciles.items() if kind == "Webhook")
        failed = {f"{kind} {result}": v for (kind, result), v in reconciles.items() if result != "success"}
        say(
            f"   reconciles: Registry {registry_runs:.0f}, Webhook {webhook_runs:.0f}"
            + (f" (not successful: {failed})" if failed else "")
        )
        total = len(self.registries)
        if total and registry_runs:
            shared = " (Webhook reconciles' requests included)" if webhook_runs else ""
            say(
                f"   drift passes: {registry_runs / total:.1f} (Registry reconciles / {total} registries); "
                f"requests per pass per registry: {sum(by_verb.values()) / registry_runs:.2f}{shared}"
            )
        else:
            say("   no Registry drift pass in this period (is it shorter than --drift-interval?)")
        return began, ended

    # 4. Idle, registries only.
    def idle(self) -> None:
        seconds = self.args.idle_seconds
        if seconds <= 0:
            return
        say(
            f"4. idle {seconds:.0f} s with {len(self.registries)} Registries (drift interval "
            f"{self.args.drift_interval:.0f} s: ~{seconds / self.args.drift_interval:.0f} passes)"
        )
        began, _ = self.quiet_period(seconds, target=True)
        say(f"   {self.memory.describe(began)}")

    # 6. Settled with the Webhooks too.
    def settled(self) -> None:
        seconds = self.args.settled_seconds
        if seconds <= 0 or not self.webhooks:
            return
        say(f"6. settled with {len(self.registries)} Registries and {len(self.webhooks)} Webhooks, {seconds:.0f} s")
        self.settled_window = self.quiet_period(seconds, target=False)

    def summary(self, cpu_before: dict[str, float]) -> None:
        hwm = self.memory.hwm
        say("7. operator memory and CPU")
        window = getattr(self, "settled_window", None)
        if window is not None:
            samples = self.memory.between(*window)
            settled = samples[-1] if samples else self.memory.latest()
            say(
                f"   RSS peak (VmHWM) {mib(hwm)}; settled (end of phase 6) {mib(settled)}, over phase 6 "
                f"{mib(min(samples or [0]))}..{mib(max(samples or [0]))}; target <= 250 MB (= {250e6 / MIB:.0f} MiB): "
                f"{'met' if hwm <= 250e6 else 'missed'} at peak, {'met' if settled <= 250e6 else 'missed'} settled"
            )
        else:
            say(f"   RSS peak (VmHWM) {mib(hwm)}, now {mib(self.memory.latest())}")
        used = {name: (cpu_seconds(pid) or 0.0) - cpu_before.get(name, 0.0) for name, pid in self.pids().items()}
        say("   CPU seconds since the operator started: " + ", ".join(f"{k} {v:.0f}" for k, v in used.items()))
        say(f"   load average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")

    def cpu(self) -> tuple[dict[str, float], tuple[float, float]]:
        """Each process's CPU seconds so far, and the machine's (busy, total)."""
        return {name: cpu_seconds(pid) or 0.0 for name, pid in self.pids().items()}, machine_cpu()

    def pids(self) -> dict[str, int]:
        return {"operator": self.operator.pid, **self.cluster.pids(), "bench": os.getpid()}


def failed_requests(before: dict[Labels, float], after: dict[Labels, float]) -> dict[tuple[str, ...], float]:
    """Requests the API server answered with anything but 2xx, by (code, verb, resource,
    subresource): a burst's wasted work (conflicts, creates of what exists, reads of what does
    not). WATCH is left out: its code is that of the stream, not of the work."""
    grown = counter_delta(before, after, ["code", "verb", "resource", "subresource"])
    return {key: v for key, v in grown.items() if not key[0].startswith("2") and key[1] != "WATCH"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sequential", type=int, default=200, help="registries and Deployments, one at a time, in turn"
    )
    parser.add_argument("--registries", "--burst", type=int, default=1000, help="registries created at once")
    parser.add_argument("--deployments", type=int, help="plain Deployments at once (default: --registries)")
    parser.add_argument(
        "--deployment-shapes",
        type=_shapes,
        default=["plain", "registry"],
        help="the yardstick bursts of phase 2, in order: plain, registry (default: plain,registry)",
    )
    parser.add_argument("--webhooks", type=int, default=1000, help="webhooks created at once")
    parser.add_argument("--idle-seconds", type=float, default=600, help="length of the idle period")
    parser.add_argument(
        "--settled-seconds", type=float, help="observed after the Webhooks settle (default: 2 drift intervals)"
    )
    parser.add_argument("--drift-interval", type=float, default=60, help="DOCKYARD_DRIFT_INTERVAL_SECONDS")
    parser.add_argument("--burst-timeout", type=float, default=900, help="give up on a burst phase after this")
    parser.add_argument("--quiet-seconds", type=float, default=30, help="no writes for this long = settled")
    parser.add_argument("--settle-timeout", type=float, default=600, help="start the idle period anyway after this")
    parser.add_argument("--create-threads", type=int, default=8, help="client threads creating a burst")
    parser.add_argument("--pods-per-node", type=int, default=110, help="max pods of each fake node")
    parser.add_argument("--nodes", type=int, default=0, help="fake nodes (default: enough for every pod, +1)")
    parser.add_argument("--kcm-qps", type=float, default=100, help="controller-manager --kube-api-qps")
    parser.add_argument("--kcm-burst", type=int, default=100, help="controller-manager --kube-api-burst")
    parser.add_argument("--scheduler-qps", type=float, default=100, help="scheduler clientConnection.qps")
    parser.add_argument("--scheduler-burst", type=int, default=100, help="scheduler clientConnection.burst")
    parser.add_argument("--max-requests-inflight", type=int, help="kube-apiserver (default: its own, 400)")
    parser.add_argument("--max-mutating-requests-inflight", type=int, help="kube-apiserver (default: its own, 200)")
    args = parser.parse_args(argv)
    if args.deployments is None:
        args.deployments = args.registries
    if args.settled_seconds is None:
        args.settled_seconds = 2 * args.drift_interval
    if args.nodes <= 0:
        pods = max(2 * args.sequential + 1, args.deployments, args.registries)  # each phase's are gone before the next
        args.nodes = nodes_for(pods, args.pods_per_node)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tuning = Tuning(
        max_requests_inflight=args.max_requests_inflight,
        max_mutating_requests_inflight=args.max_mutating_requests_inflight,
        controller_manager_qps=args.kcm_qps,
        controller_manager_burst=args.kcm_burst,
        scheduler_qps=args.scheduler_qps,
        scheduler_burst=args.scheduler_burst,
    )
    allocatable = NODE | {"pods": str(args.pods_per_node)}
    say(
        f"Dockyard bench: {args.sequential} sequential, {args.deployments} Deployments, {args.registries} Registries, "
        f"{args.webhooks} Webhooks, idle {args.idle_seconds:.0f} s; {args.nodes} kwok nodes of "
        f"{allocatable['cpu']} CPU/{allocatable['memory']}/{allocatable['pods']} pods; "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs"
    )
    state = Path(tempfile.mkdtemp(prefix="dockyard-bench-"))
    with LocalCluster(
        ensure_binaries(),
        nodes=args.nodes,
        node_allocatable=allocatable,
        tuning=tuning,
        service_cidr=SERVICE_CIDR,
        startup_timeout=300,
    ) as cluster:
        say(f"cluster up in {cluster.startup_seconds:.0f} s; operator log: {state / 'operator.log'}")
        cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        cluster.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s", "crd", "-l", "app.kubernetes.io/part-of=dockyard"
        )
        for ns in (SEQ, KUBE, BURST):
            cluster.kubectl("create", "namespace", ns)
        args.metrics_port = free_port()
        env = cluster.env() | {
            "DOCKYARD_HEALTH_HOST": "127.0.0.1",
            "DOCKYARD_HEALTH_PORT": str(free_port()),
            "DOCKYARD_METRICS_HOST": "127.0.0.1",
            "DOCKYARD_METRICS_PORT": str(args.metrics_port),
            "DOCKYARD_LOG_FORMAT": os.environ.get("BENCH_LOG_FORMAT", "plain"),
            "DOCKYARD_EVENTS_HOST": "127.0.0.1",
            "DOCKYARD_EVENTS_PORT": "0",
            "DOCKYARD_STATE_DIR": str(state / "state"),
            "DOCKYARD_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "warning"),
            "DOCKYARD_DRIFT_INTERVAL_SECONDS": str(args.drift_interval),
            "PYTHONPATH": str(ROOT / "operator"),
        }
        cpu_before = {name: cpu_seconds(pid) or 0.0 for name, pid in cluster.pids().items()}
        cpu_before["bench"] = cpu_seconds(os.getpid()) or 0.0
        with open(state / "operator.log", "wb") as log:
            operator = subprocess.Popen([sys.executable, "-m", "dockyard"], env=env, stdout=log, stderr=log)
        bench: Bench | None = None
        try:
            bench = Bench(args, cluster, operator)
            phases = (
                bench.sequential,
                bench.deployment_burst,
                bench.registry_burst,
                bench.idle,
                bench.webhook_burst,
                bench.settled,
            )
            for phase in phases:
                try:
                    phase()
                except Exception as error:  # report it and go on: the later figures may still be worth having
                    say(f"   {phase.__name__} failed: {error!r} (traceback on stderr)")
                    traceback.print_exc()
            bench.summary(cpu_before)
        except KeyboardInterrupt:
            say("interrupted")
            if bench is not None:
                bench.summary(cpu_before)
        finally:
            if bench is not None:
                bench.stop.set()
                bench.memory.stop()
            operator.terminate()
            try:
                # With many registries kopf waits for handlers busy on a loaded API server; the
                # figures are printed already, so a slow shutdown is not a failed benchmark.
                operator.wait(timeout=60)
            except subprocess.TimeoutExpired:
                warn("the operator did not stop within 60 s of SIGTERM; killed")
                operator.kill()
                operator.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
