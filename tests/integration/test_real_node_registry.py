"""A Registry's life on the real node, end to end through Kubernetes: anonymous pull per spec, the
data surviving a pod restart on its claim, a config change rolling the pod while the registry keeps
serving, and webhook events from the in-cluster registry reaching the operator and a receiver on
the host, ACR-shaped and signed. The operator runs in this process (see test_real_node's
`operator` fixture); one Registry `public` serves every test of this module."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
from test_real_node import Skopeo, _accepts, _apply, _get, _until, operator  # noqa: F401  (fixture)
from test_webhooks import receiving

from localcluster.realnode import RealNodeCluster
from realregistry import read_configmap, read_secret, write_oci_image

pytestmark = pytest.mark.integration

NAME = "public"


def _ready(cluster: RealNodeCluster, namespace: str, name: str = NAME, kind: str = "registry") -> dict[str, Any] | None:
    """The Registry (or another kind) when Ready for its current generation."""
    body = _get(cluster, namespace, kind, name) or {}
    generation = (body.get("metadata") or {}).get("generation")
    status = body.get("status") or {}
    if status.get("observedGeneration") != generation:
        return None
    for condition in status.get("conditions") or []:
        if condition["type"] == "Ready" and condition["status"] == "True":
            return body
    return None


def _pods(cluster: RealNodeCluster, namespace: str, name: str) -> list[dict[str, Any]]:
    selector = f"app.kubernetes.io/instance={name}"
    out = cluster.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout
    return list(json.loads(out)["items"])


def _running_pod(cluster: RealNodeCluster, namespace: str, name: str = NAME) -> dict[str, Any] | None:
    """The registry's one pod when it is the only one and all its containers are ready."""
    pods = _pods(cluster, namespace, name)
    if len(pods) != 1 or pods[0]["metadata"].get("deletionTimestamp"):
        return None
    statuses = pods[0].get("status", {}).get("containerStatuses") or []
    return pods[0] if statuses and all(s.get("ready") for s in statuses) else None


def _serves_only(cluster: RealNodeCluster, namespace: str, pod: dict[str, Any], name: str = NAME) -> bool:
    """Whether the Service's EndpointSlices list exactly `pod`'s address, ready: the deleted pod's
    address is gone, so kube-proxy's next sync routes every connection to the new pod."""
    out = cluster.kubectl(
        "get", "endpointslices", "-n", namespace, "-l", f"kubernetes.io/service-name={name}", "-o", "json"
    ).stdout
    endpoints = [e for s in json.loads(out)["items"] for e in s.get("endpoints") or []]
    addresses = {(a, bool((e.get("conditions") or {}).get("ready"))) for e in endpoints for a in e["addresses"]}
    return addresses == {(pod["status"]["podIP"], True)}


class Registry:
    """A Registry as a client on the host sees it: skopeo through the Service ClusterIP,
    the admin credentials and the operator-issued CA."""

    def __init__(self, cluster: RealNodeCluster, namespace: str, body: dict[str, Any], workdir: Path) -> None:
        self.cluster, self.namespace = cluster, namespace
        name, status = body["metadata"]["name"], body["status"]
        self.login = status["loginServer"]
        admin = read_secret(cluster, namespace, status["credentials"]["adminSecretName"])
        ca = read_configmap(cluster, namespace, status["credentials"]["caConfigMapName"])
        assert admin is not None and ca is not None
        self.creds = f"{admin['username']}:{admin['password']}"
        cluster_ip = (_get(cluster, namespace, "service", name) or {})["spec"]["clusterIP"]
        self.skopeo = Skopeo(workdir, f"{name}.{namespace}.svc", cluster_ip, ca["ca.crt"])
        self.workdir = workdir
        write_oci_image(workdir / "image")
        _until(lambda: _accepts(cluster_ip, 5000), f"{name}'s Service accepting connections", 60)

    def push(self, reference: str, creds: str | None = "admin") -> Any:
        auth = ["--dest-no-creds"] if creds is None else ["--dest-creds", self.creds]
        source = f"oci:{self.workdir / 'image'}:v1"
        return self.skopeo("copy", *auth, "--dest-cert-dir", str(self.skopeo.certs), source, self.url(reference))

    def pull(self, reference: str, creds: str | None = "admin") -> Any:
        return self.skopeo(*self._pull_args(reference, creds))

    def _pull_args(self, reference: str, creds: str | None) -> list[str]:
        auth = ["--src-no-creds"] if creds is None else ["--src-creds", self.creds]
        target = f"oci:{self.workdir / 'pulled'}:{reference.replace('@', '-').replace(':', '-')}"
        return ["copy", *auth, "--src-cert-dir", str(self.skopeo.certs), self.url(reference), target]

    def pull_eventually(self, reference: str, deadline_s: float = 60) -> Any:
        """A pull retried until it succeeds or the deadline passes; the last attempt is returned so a
        failure shows skopeo's own words. Each attempt is bounded: a connection kube-proxy still sends
        to a deleted pod's address would otherwise spend the whole deadline in one TCP connect."""
        deadline = time.monotonic() + deadline_s
        while True:
            result = self.skopeo.bounded("20s", *self._pull_args(reference, "admin"))
            if result.returncode == 0 or time.monotonic() > deadline:
                return result
            time.sleep(0.5)

    def digest(self, reference: str) -> str:
        inspected = self.skopeo(
            "inspect", "--creds", self.creds, "--cert-dir", str(self.skopeo.certs), self.url(reference)
        )
        assert inspected.returncode == 0, inspected.stderr
        return str(json.loads(inspected.stdout)["Digest"])

    def url(self, reference: str) -> str:
        return f"docker://{self.login}/{reference}"


@pytest.fixture(scope="module")
def public(real_node_cluster: RealNodeCluster, operator: tuple[str, str]) -> dict[str, Any]:
    """The Registry `public`: Standard with anonymous pull, the admin user, self-signed TLS, a claim."""
    namespace = operator[0]
    registry = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "Registry",
        "metadata": {"name": NAME},
        "spec": {"sku": "Standard", "anonymousPull": True, "adminUser": {"enabled": True}},
    }
    began = time.monotonic()
    _apply(real_node_cluster, namespace, registry)
    body = _until(lambda: _ready(real_node_cluster, namespace), f"Registry {NAME} Ready", 180)
    print(f"Registry {NAME} Ready {time.monotonic() - began:.1f}s after apply")
    return dict(body)


@pytest.fixture
def registry(
    real_node_cluster: RealNodeCluster, operator: tuple[str, str], public: dict[str, Any], tmp_path: Path
) -> Registry:
    return Registry(real_node_cluster, operator[0], public, tmp_path)


def test_anonymous_pull_works_and_anonymous_push_is_refused(registry: Registry) -> None:
    pushed = registry.push("open/app:v1")
    assert pushed.returncode == 0, pushed.stderr
    pulled = registry.pull("open/app:v1", creds=None)
    assert pulled.returncode == 0, pulled.stderr
    refused = registry.push("open/app:anonymous", creds=None)
    assert refused.returncode != 0
    assert "unauthorized" in refused.stderr.lower() or "authentication required" in refused.stderr.lower(), (
        refused.stderr
    )
    missing = registry.skopeo(
        "inspect", "--no-creds", "--cert-dir", str(registry.skopeo.certs), registry.url("open/app:anonymous")
    )
    assert missing.returncode != 0  # nothing was written by the refused push


def test_the_data_survives_a_pod_restart_on_its_claim(real_node_cluster: RealNodeCluster, registry: Registry) -> None:
    cluster, namespace = real_node_cluster, registry.namespace
    pushed = registry.push("keep/app:v1")
    assert pushed.returncode == 0, pushed.stderr
    digest = registry.digest("keep/app:v1")
    old = _until(lambda: _running_pod(cluster, namespace), "the registry pod", 60)["metadata"]
    claim = next(v for v in _volumes(cluster, namespace, old["name"]) if "persistentVolumeClaim" in v)
    assert claim["persistentVolumeClaim"]["claimName"] == f"{NAME}-data"

    began = time.monotonic()
    cluster.kubectl("delete", "pod", "-n", namespace, old["name"], "--wait=false")
    new = _until(
        lambda: (p := _running_pod(cluster, namespace)) and p["metadata"]["uid"] != old["uid"] and p,
        "a new registry pod",
        120,
    )
    print(f"new registry pod ready {time.monotonic() - began:.1f}s after the delete")
    assert new["metadata"]["name"] != old["name"]
    _until(lambda: _serves_only(cluster, namespace, new), "the Service to route to the new pod only", 60)
    pulled = registry.pull_eventually(f"keep/app@{digest}")
    assert pulled.returncode == 0, pulled.stderr
    assert registry.digest("keep/app:v1") == digest


def _volumes(cluster: RealNodeCluster, namespace: str, pod: str) -> list[dict[str, Any]]:
    return list(((_get(cluster, namespace, "pod", pod) or {}).get("spec") or {}).get("volumes") or [])


def test_a_config_change_rolls_the_pod_and_the_registry_keeps_serving(
    real_node_cluster: RealNodeCluster, registry: Registry
) -> None:
    cluster, namespace = real_node_cluster, registry.namespace
    annotation = "dockyard.dev/config-hash"
    pushed = registry.push("roll/app:v1")
    assert pushed.returncode == 0, pushed.stderr
    before = _until(lambda: _running_pod(cluster, namespace), "the registry pod", 60)
    config = (_get(cluster, namespace, "configmap", f"{NAME}-config") or {})["data"]["config.yml"]
    assert "minimumtls: tls1.2" in config

    began = time.monotonic()
    patch = json.dumps({"spec": {"tls": {"minimumVersion": "tls1.3"}}})
    cluster.kubectl("patch", "registry", NAME, "-n", namespace, "--type=merge", "-p", patch)
    try:
        after = _until(
            lambda: (
                (p := _running_pod(cluster, namespace))
                and p["metadata"]["annotations"][annotation] != before["metadata"]["annotations"][annotation]
                and p
            ),
            "the pod to roll with the new config",
            120,
        )
        print(f"pod rolled {time.monotonic() - began:.1f}s after the patch")
        config = (_get(cluster, namespace, "configmap", f"{NAME}-config") or {})["data"]["config.yml"]
        assert "minimumtls: tls1.3" in config
        assert after["metadata"]["uid"] != before["metadata"]["uid"]
        _until(lambda: _ready(cluster, namespace), f"Registry {NAME} Ready again", 60)
        _until(lambda: _serves_only(cluster, namespace, after), "the Service to route to the new pod only", 60)
        pulled = registry.pull_eventually("roll/app:v1")
        assert pulled.returncode == 0, pulled.stderr
        again = registry.push("roll/app:v2")
        assert again.returncode == 0, again.stderr
    finally:
        back = json.dumps({"spec": {"tls": {"minimumVersion": "tls1.2"}}})
        cluster.kubectl("patch", "registry", NAME, "-n", namespace, "--type=merge", "-p", back, check=False)


def test_webhook_events_from_the_in_cluster_registry_reach_a_receiver_signed(
    real_node_cluster: RealNodeCluster, registry: Registry
) -> None:
    cluster, namespace = real_node_cluster, registry.namespace
    _until(lambda: _ready(cluster, namespace) and _running_pod(cluster, namespace), f"Registry {NAME} serving", 120)
    with receiving() as receiver:
        hook = {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "Webhook",
            "metadata": {"name": "ci"},
            "spec": {"registryRef": {"name": NAME}, "serviceUri": receiver.url("/hook"), "actions": ["push"]},
        }
        _apply(cluster, namespace, hook)

        def hook_ready() -> bool:
            conditions = ((_get(cluster, namespace, "webhook", "ci") or {}).get("status") or {}).get("conditions")
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions or [])

        _until(hook_ready, "Webhook ci Ready", 60)
        began = time.monotonic()
        pushed = registry.push("hooked/app:v1")
        assert pushed.returncode == 0, pushed.stderr
        events = _until(lambda: receiver.delivered("/hook"), "the push at the receiver", 60)
        print(f"push delivered {time.monotonic() - began:.1f}s after the push began")
        digest = registry.digest("hooked/app:v1")
        assert len(events) == 1, events
        event = events[0]
        assert set(event) == {"id", "timestamp", "action", "target", "request"}
        assert event["action"] == "push"
        assert event["target"]["repository"] == "hooked/app" and event["target"]["tag"] == "v1"
        assert event["target"]["digest"] == digest
        assert event["target"]["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
        assert event["request"]["method"] == "PUT" and event["request"]["useragent"].startswith("skopeo")
        assert event["request"]["host"] == registry.login

        # Verified as README Webhooks tells a receiver to.
        delivery = receiver.on("/hook")[0]
        assert delivery.headers["content-type"] == "application/json"
        assert delivery.headers["x-dockyard-event"] == "push"
        assert delivery.headers["x-dockyard-attempt"] == "1"
        signing = read_secret(cluster, namespace, "ci-signing")
        assert signing is not None
        expected = "sha256=" + hmac.new(signing["secret"].encode(), delivery.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(expected.encode(), delivery.headers["x-dockyard-signature-256"].encode())
        cluster.kubectl("delete", "webhook", "ci", "-n", namespace, "--timeout=30s", check=False)


def test_a_token_logs_in_through_the_pods_own_token_service(
    real_node_cluster: RealNodeCluster, operator: tuple[str, str], registry: Registry
) -> None:
    """The token container reads Tokens with its own ServiceAccount (projected token, the Role the
    operator rendered) from inside the pod: a new Token logs in, a disabled one gets 401."""
    namespace = operator[0]
    token = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "Token",
        "metadata": {"name": "ci"},
        "spec": {"registryRef": {"name": NAME}, "scopeMapRef": {"name": "_repositories_push"}},
    }
    _apply(real_node_cluster, namespace, token)
    secret = _until(lambda: read_secret(real_node_cluster, namespace, "ci.token"), "the token's Secret", 60)
    creds = f"ci:{secret['password2']}"
    source = f"oci:{registry.workdir / 'image'}:v1"

    def push(tag: str) -> Any:
        return registry.skopeo(
            "copy", "--dest-creds", creds, "--dest-cert-dir", str(registry.skopeo.certs), source,
            registry.url(f"ci/app:{tag}"),
        )  # fmt: skip

    _until(lambda: push("v1").returncode == 0, "a push with the token", 60)
    _apply(real_node_cluster, namespace, {**token, "spec": {**token["spec"], "enabled": False}})
    refused = _until(lambda: (r := push("v2")).returncode != 0 and r, "the disabled token to be refused", 60)
    assert "unauthorized" in refused.stderr.lower() or "authentication required" in refused.stderr.lower()


def test_a_replica_pod_serves_through_its_service(
    real_node_cluster: RealNodeCluster, operator: tuple[str, str], tmp_path: Path
) -> None:
    """A Premium registry's Replication runs a replica pod of its own on the node: through the
    replica's Service (its `loginServer`), with the registry's admin credentials and CA, an image
    pushed there is pulled back by digest."""
    namespace, cluster = operator[0], real_node_cluster
    _apply(
        cluster,
        namespace,
        {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "Registry",
            "metadata": {"name": "geo"},
            "spec": {"sku": "Premium", "adminUser": {"enabled": True}},
        },
    )
    home = _until(lambda: _ready(cluster, namespace, "geo"), "Registry geo Ready", 180)
    _apply(
        cluster,
        namespace,
        {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "Replication",
            "metadata": {"name": "geo-west"},
            "spec": {"registryRef": {"name": "geo"}, "location": "west", "nodeSelector": {"kubernetes.io/os": "linux"}},
        },
    )
    replica = _until(lambda: _ready(cluster, namespace, "geo-west", kind="replication"), "Replication Ready", 180)
    assert replica["status"]["loginServer"] == f"geo-west.{namespace}.svc:5000"
    _until(lambda: _running_pod(cluster, namespace, "geo-west"), "the replica's pod running", 60)
    # the replica as a client sees it: its Service, the registry's credentials and CA
    served = Registry(cluster, namespace, {**home, "metadata": {"name": "geo-west"}}, tmp_path)
    served.login = replica["status"]["loginServer"]
    pushed = served.push("geo/app:v1")
    assert pushed.returncode == 0, pushed.stderr
    digest = served.digest("geo/app:v1")
    pulled = served.pull(f"geo/app@{digest}")
    assert pulled.returncode == 0, pulled.stderr


def test_the_operator_copies_between_the_home_and_a_replica_pod(
    real_node_cluster: RealNodeCluster, operator: tuple[str, str], tmp_path: Path
) -> None:
    """Replication between real pods: a Premium registry `sync` and its Replication `sync-west`
    each run a pod on the node; their notifications reach the operator's intake and its engine
    (on the host, dialling each Service's ClusterIP) copies between them. An image pushed through
    the home's login server is pulled by the same digest from the replica's; a tag deleted on the
    replica is gone at the home."""
    namespace, cluster = operator[0], real_node_cluster
    home_body = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "Registry",
        "metadata": {"name": "sync"},
        "spec": {"sku": "Premium", "adminUser": {"enabled": True}},
    }
    replication = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "Replication",
        "metadata": {"name": "sync-west"},
        # Off: the home's login server must reach the home's pod (with it on, the host's pushes
        # land on either pod, and a replica's token realm is its regional name, which only the
        # routing test resolves). Routing is that test's subject; copying is this one's.
        "spec": {
            "registryRef": {"name": "sync"},
            "location": "west",
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "regionEndpointEnabled": False,
        },
    }
    _apply(cluster, namespace, home_body)
    try:
        home_ready = _until(lambda: _ready(cluster, namespace, "sync"), "Registry sync Ready", 180)
        _apply(cluster, namespace, replication)
        west_ready = _until(lambda: _ready(cluster, namespace, "sync-west", kind="replication"), "sync-west Ready", 180)
        _until(lambda: _running_pod(cluster, namespace, "sync-west"), "the replica's pod running", 60)
        (tmp_path / "home").mkdir()
        (tmp_path / "west").mkdir()
        home = Registry(cluster, namespace, home_ready, tmp_path / "home")
        west = Registry(cluster, namespace, {**home_ready, "metadata": {"name": "sync-west"}}, tmp_path / "west")
        west.login = west_ready["status"]["loginServer"]

        pushed = home.push("sync/app:v1")
        assert pushed.returncode == 0, pushed.stderr
        digest = home.digest("sync/app:v1")
        began = time.monotonic()
        _until(lambda: west.pull(f"sync/app@{digest}").returncode == 0, "the image copied into the replica", 120)
        print(f"pullable from the replica {time.monotonic() - began:.1f}s after the push")
        assert west.digest("sync/app:v1") == digest

        def present(registry: Registry) -> bool:
            certs = str(registry.skopeo.certs)
            url = registry.url("sync/app:v1")
            return registry.skopeo("inspect", "--creds", registry.creds, "--cert-dir", certs, url).returncode == 0

        deleted = west.skopeo(
            "delete", "--creds", west.creds, "--cert-dir", str(west.skopeo.certs), west.url("sync/app:v1")
        )
        assert deleted.returncode == 0, deleted.stderr
        assert not present(west)
        _until(lambda: not present(home), "the delete on the replica to reach the home", 120)
    finally:
        cluster.kubectl("delete", "replication", "sync-west", "-n", namespace, "--wait=false", check=False)
        cluster.kubectl("delete", "registry", "sync", "-n", namespace, "--wait=false", check=False)


def _glob_slice(cluster: RealNodeCluster, namespace: str) -> set[tuple[str, str, bool]]:
    """(namespace, pod, ready) of each endpoint of Registry glob's global EndpointSlice."""
    body = _get(cluster, namespace, "endpointslice", "glob-global") or {}
    return {
        (e["targetRef"]["namespace"], e["targetRef"]["name"], bool(e["conditions"].get("ready")))
        for e in body.get("endpoints") or []
    }


def _glob_challenge(pod_ip: str, host: str, ca_pem: str) -> str:
    """`GET /v2/` at one pod, verifying its certificate for `host`: the WWW-Authenticate header."""
    context = ssl.create_default_context(cadata=ca_pem)
    with (
        socket.create_connection((pod_ip, 5000), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        tls.sendall(f"GET /v2/ HTTP/1.1\r\nHost: {host}:5000\r\nConnection: close\r\n\r\n".encode())
        response = b""
        while chunk := tls.recv(65536):
            response += chunk
    head = response.split(b"\r\n\r\n", 1)[0].decode()
    assert head.startswith("HTTP/1.1 401"), head
    return next(
        line.split(":", 1)[1].strip() for line in head.split("\r\n") if line.lower().startswith("www-authenticate")
    )


def test_the_global_login_server_routes_over_a_replica(
    real_node_cluster: RealNodeCluster, operator: tuple[str, str], tmp_path: Path
) -> None:
    """A Premium registry with a routed replica: the registry's Service (the global login server)
    lists both pods through the operator's EndpointSlice, the replica's pod presents a certificate
    valid for the global name, and a client pushes through the global name and pulls back by
    digest (ClientIP affinity keeps the push on one pod). With `regionEndpointEnabled: false`
    the slice lists only the home's pod, and the global name still serves (from it)."""
    namespace, cluster = operator[0], real_node_cluster
    registry = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "Registry",
        "metadata": {"name": "glob"},
        "spec": {"sku": "Premium", "adminUser": {"enabled": True}},
    }
    replication = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "Replication",
        "metadata": {"name": "glob-west"},
        "spec": {"registryRef": {"name": "glob"}, "location": "west", "nodeSelector": {"kubernetes.io/os": "linux"}},
    }
    _apply(cluster, namespace, registry)
    home = _until(lambda: _ready(cluster, namespace, "glob"), "Registry glob Ready", 180)
    _apply(cluster, namespace, replication)
    try:
        _until(lambda: _ready(cluster, namespace, "glob-west", kind="replication"), "Replication glob-west Ready", 180)
        home_pod = _until(lambda: _running_pod(cluster, namespace, "glob"), "glob's pod running", 60)
        west_pod = _until(lambda: _running_pod(cluster, namespace, "glob-west"), "glob-west's pod running", 60)
        both = {(namespace, pod["metadata"]["name"], True) for pod in (home_pod, west_pod)}
        _until(lambda: _glob_slice(cluster, namespace) == both, "the global EndpointSlice to list both pods", 60)
        routing = {
            c["type"]: c for c in (_get(cluster, namespace, "replication", "glob-west") or {})["status"]["conditions"]
        }
        assert routing["GlobalEndpointRouting"]["reason"] == "Routed"
        service = _get(cluster, namespace, "service", "glob") or {}
        assert "selector" not in service["spec"] and service["spec"]["sessionAffinity"] == "ClientIP"

        # Either pod answers for the global name with a certificate valid for it; the same token
        # service (`service`) and signer back both challenges.
        ca = read_configmap(cluster, namespace, home["status"]["credentials"]["caConfigMapName"])
        assert ca is not None
        global_host = f"glob.{namespace}.svc"
        challenges = {
            pod["metadata"]["name"]: _glob_challenge(pod["status"]["podIP"], global_host, ca["ca.crt"])
            for pod in (home_pod, west_pod)
        }
        assert all(f'service="{global_host}:5000"' in c for c in challenges.values()), challenges

        # A client of the global name: both regional names resolve too (a replica's challenge names
        # its own token service); push, then pull back by digest.
        client = Registry(cluster, namespace, home, tmp_path)
        west_ip = (_get(cluster, namespace, "service", "glob-west") or {})["spec"]["clusterIP"]
        client.skopeo.hosts.write_text(client.skopeo.hosts.read_text() + f"{west_ip} glob-west.{namespace}.svc\n")
        pushed = client.push("glob/app:v1")
        assert pushed.returncode == 0, pushed.stderr
        digest = client.digest("glob/app:v1")
        pulled = client.pull(f"glob/app@{digest}")
        assert pulled.returncode == 0, pulled.stderr

        # Out of routing: the slice lists the home's pod only; the replica keeps running.
        _apply(cluster, namespace, {**replication, "spec": {**replication["spec"], "regionEndpointEnabled": False}})
        _until(
            lambda: _glob_slice(cluster, namespace) == {(namespace, home_pod["metadata"]["name"], True)},
            "the global EndpointSlice to list only the home's pod",
            60,
        )
        _until(
            lambda: {c["type"]: c["reason"] for c in (_get(cluster, namespace, "replication", "glob-west") or {})
                     .get("status", {}).get("conditions", [])}.get("GlobalEndpointRouting") == "RoutingDisabled",
            "glob-west's GlobalEndpointRouting=False RoutingDisabled",
            60,
        )  # fmt: skip
        assert _running_pod(cluster, namespace, "glob-west") is not None
        # The global name now reaches the home only (v1 may have landed on the replica and wait to
        # be copied home: that is the sync engine's, not routing's): a new push and its pull.
        again = client.push("glob/app:v2")
        assert again.returncode == 0, again.stderr
        pulled = client.pull(f"glob/app@{client.digest('glob/app:v2')}")
        assert pulled.returncode == 0, pulled.stderr
    finally:
        cluster.kubectl("delete", "replication", "glob-west", "-n", namespace, "--ignore-not-found", "--wait=false")
        cluster.kubectl("delete", "registry", "glob", "-n", namespace, "--ignore-not-found", "--wait=false")
