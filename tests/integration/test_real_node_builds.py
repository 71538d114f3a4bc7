"""BuildRuns on the real node: real Kaniko (upstream v1.24.0, built from the Go module proxy) builds
real Dockerfiles FROM a base image held in a Dockyard Registry and pushes into it, through the
operator's Jobs, the delegated credential of each run and the operator-issued CA.

    the CLI quick build of a local directory (.dockerignore, build args, multi-stage --target),
    its digest against skopeo's and status.outputImages, the files of the pulled image;
    a broken Dockerfile → Failed with the failing RUN line, the log read back after the pod is gone;
    a git source served from this host (checked out by the fetch container), a build argument from
    a Secret kept out of everything; a private one at an annotated tag; a git task's base recorded;
    a running build canceled: Canceled quickly, the Job and pod gone, the log kept.

The operator runs in this process (test_real_node's `operator_on_real_node`); one Registry `hub`
(Standard, admin user, self-signed TLS) serves the module. Run it alone:
`pytest tests/integration/test_real_node_builds.py -x`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from gitserver import GitServer, host_address
from test_builds_sigkill import JobRecorder, Operator
from test_real_node import Skopeo, _apply, _get, _until, operator_on_real_node
from test_real_node_registry import Registry, _accepts, _ready

from dockyard.builds.context import pack_context
from localcluster.realnode import RealNodeCluster
from realregistry import read_secret

pytestmark = pytest.mark.integration

NAME = "hub"
BASE = "base/busybox:1"
TIMINGS: dict[str, float] = {}


@dataclass
class Hub:
    cluster: RealNodeCluster
    namespace: str
    registry: Registry

    @property
    def login(self) -> str:
        return self.registry.login


@pytest.fixture(scope="module")
def hub(real_node_cluster: RealNodeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """The operator watching a fresh namespace, the Registry `hub` Ready in it, and the node's
    busybox image pushed to `<loginServer>/base/busybox:1` as the builds' base image."""
    cluster = real_node_cluster
    with operator_on_real_node(cluster, "r-builds") as (namespace, _):
        body = {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "Registry",
            "metadata": {"name": NAME},
            "spec": {"sku": "Standard", "adminUser": {"enabled": True}},
        }
        began = time.monotonic()
        _apply(cluster, namespace, body)
        ready = _until(lambda: _ready(cluster, namespace, NAME), f"Registry {NAME} Ready", 180)
        TIMINGS["registry ready"] = time.monotonic() - began
        registry = Registry(cluster, namespace, dict(ready), tmp_path_factory.mktemp("hub"))
        pushed = registry.skopeo(
            "copy",
            "--dest-creds",
            registry.creds,
            "--dest-cert-dir",
            str(registry.skopeo.certs),
            f"oci-archive:{cluster.images['busybox'].archive}",
            registry.url(BASE),
        )
        assert pushed.returncode == 0, pushed.stderr
        yield Hub(cluster, namespace, registry)
    # kopf's runner captures sys.stdout while the operator runs: write to the real one.
    timings = ", ".join(f"{what} {seconds:.1f}s" for what, seconds in TIMINGS.items())
    print(f"\n[builds] timings: {timings}", file=sys.__stdout__, flush=True)


# ---- helpers ----------------------------------------------------------------------------------


def dockyard(hub: Hub, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it on this host: its own process, KUBECONFIG the real node's."""
    env = {**os.environ, "KUBECONFIG": str(hub.cluster.kubeconfig)}
    for variable in ("DOCKYARD_REGISTRY_USERNAME", "DOCKYARD_REGISTRY_PASSWORD"):
        env.pop(variable, None)
    return subprocess.run(
        [sys.executable, "-m", "dockyard.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def run_by_id(hub: Hub, run_id: str) -> dict[str, Any]:
    out = hub.cluster.kubectl("get", "buildruns", "-n", hub.namespace, "-o", "json").stdout
    runs = [r for r in json.loads(out)["items"] if (r.get("status") or {}).get("runId") == run_id]
    assert len(runs) == 1, f"{len(runs)} BuildRuns with run ID {run_id}"
    return dict(runs[0])


def run_status(hub: Hub, name: str) -> dict[str, Any]:
    return dict(((_get(hub.cluster, hub.namespace, "buildrun", name) or {}).get("status")) or {})


def finished(hub: Hub, name: str, deadline_s: float = 300) -> dict[str, Any]:
    terminal = ("Succeeded", "Failed", "Canceled", "Timeout", "Error")
    return dict(
        _until(
            lambda: (s := run_status(hub, name)).get("status") in terminal and s,
            f"BuildRun {name} to end",
            deadline_s,
            1,
        )
    )


def children_gone(hub: Hub, name: str) -> bool:
    """The run's Job, pod and docker-config Secret are deleted."""
    if _get(hub.cluster, hub.namespace, "secret", f"{name}-build-auth"):
        return False
    job = _get(hub.cluster, hub.namespace, "job", f"{name}-build") or _jobs_of(hub, name)
    pods = hub.cluster.kubectl(
        "get", "pods", "-n", hub.namespace, "-l", f"dockyard.dev/build-run={name}", "-o", "name"
    ).stdout.strip()
    return not job and not pods


def _jobs_of(hub: Hub, name: str) -> str:
    return hub.cluster.kubectl(
        "get", "jobs", "-n", hub.namespace, "-l", f"dockyard.dev/build-run={name}", "-o", "name"
    ).stdout.strip()


def image_files(hub: Hub, reference: str, into: Path) -> dict[str, bytes | None]:
    """The regular files (content) and other entries (None) of an image in the registry, its
    layers applied in order (whiteouts honoured)."""
    copied = hub.registry.skopeo(
        "copy",
        "--src-creds",
        hub.registry.creds,
        "--src-cert-dir",
        str(hub.registry.skopeo.certs),
        hub.registry.url(reference),
        f"dir:{into}",
    )
    assert copied.returncode == 0, copied.stderr
    manifest = json.loads((into / "manifest.json").read_text())
    files: dict[str, bytes | None] = {}
    for layer in manifest["layers"]:
        with tarfile.open(into / layer["digest"].split(":", 1)[1]) as tar:
            for member in tar:
                path = "/" + member.name.lstrip("./")
                base = path.rsplit("/", 1)[-1]
                if base.startswith(".wh."):
                    gone = path.rsplit("/", 1)[0] + "/" + base.removeprefix(".wh.")
                    files = {p: c for p, c in files.items() if p != gone and not p.startswith(gone + "/")}
                    continue
                extracted = tar.extractfile(member) if member.isfile() else None
                files[path] = extracted.read() if extracted else None
    return files


def events_text(hub: Hub) -> str:
    return hub.cluster.kubectl("get", "events", "-n", hub.namespace, "-o", "json").stdout


# ---- the tests --------------------------------------------------------------------------------


def test_the_base_image_is_in_the_registry(hub: Hub) -> None:
    assert hub.registry.digest(BASE).startswith("sha256:")


def test_the_cli_quick_build_of_a_directory(hub: Hub, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "Dockerfile").write_text(
        f"FROM {hub.login}/{BASE} AS build\n"
        "ARG GREETING\n"
        "RUN echo $GREETING > /greeting\n"
        "COPY app.txt /app.txt\n"
        f"FROM {hub.login}/{BASE} AS final\n"
        "COPY --from=build /greeting /greeting\n"
        "COPY --from=build /app.txt /app.txt\n"
        "COPY . /src/\n"
        f"FROM {hub.login}/{BASE} AS unused\n"
        "RUN exit 7\n"
    )
    (source / "app.txt").write_text("the app\n")
    (source / "secret.env").write_text("NOT=shipped\n")
    (source / ".dockerignore").write_text("secret.env\n")

    began = time.monotonic()
    built = dockyard(
        hub,
        "build",
        "-r",
        NAME,
        "-n",
        hub.namespace,
        "-t",
        "app:{{.Run.ID}}",
        "-t",
        "app:latest",
        "--build-arg",
        "GREETING=hi",
        "--target",
        "final",
        str(source),
    )
    TIMINGS["cli quick build"] = time.monotonic() - began
    assert built.returncode == 0, f"{built.stdout}\n{built.stderr}"
    cluster_ip = (_get(hub.cluster, hub.namespace, "service", NAME) or {})["spec"]["clusterIP"]
    assert f"/dockyard/sources via {cluster_ip}" in built.stdout, built.stdout  # *.svc does not resolve here
    run_id = re.search(r"^Run ID: (\S+)$", built.stdout, re.M)
    assert run_id, built.stdout
    printed = re.search(rf"^{re.escape(hub.login)}/app:{run_id[1]}@(sha256:[0-9a-f]{{64}})$", built.stdout, re.M)
    assert printed, built.stdout
    digest = printed[1]

    run = run_by_id(hub, run_id[1])
    status = run["status"]
    assert status["status"] == "Succeeded"
    assert sorted(status["outputImages"], key=lambda i: i["tag"]) == sorted(
        [
            {"registry": hub.login, "repository": "app", "tag": run_id[1], "digest": digest},
            {"registry": hub.login, "repository": "app", "tag": "latest", "digest": digest},
        ],
        key=lambda i: i["tag"],
    )
    assert f"{hub.login}/app:latest@{digest}" in built.stdout
    assert hub.registry.digest(f"app:{run_id[1]}") == digest
    assert hub.registry.digest("app:latest") == digest
    files = image_files(hub, f"app:{run_id[1]}", tmp_path / "pulled")
    assert files.get("/greeting") == b"hi\n"
    assert files.get("/app.txt") == b"the app\n"
    assert files.get("/src/app.txt") == b"the app\n"
    assert "/src/secret.env" not in files
    assert "/bin/busybox" in files or "/bin/sh" in files  # the base image's layers are in it
    _until(lambda: children_gone(hub, run["metadata"]["name"]), "the run's Job and pod deleted", 60)


def test_a_broken_dockerfile_fails_with_its_line_and_the_log_outlives_the_pod(hub: Hub, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "Dockerfile").write_text(f"FROM {hub.login}/{BASE}\nRUN echo before-the-break\nRUN exit 3\n")
    began = time.monotonic()
    built = dockyard(hub, "build", "-r", NAME, "-n", hub.namespace, "-t", "broken:{{.Run.ID}}", str(source))
    TIMINGS["broken build"] = time.monotonic() - began
    assert built.returncode == 1, f"{built.stdout}\n{built.stderr}"
    run_id = re.search(r"^Run ID: (\S+)$", built.stdout, re.M)
    assert run_id, built.stdout
    run = run_by_id(hub, run_id[1])
    name, status = run["metadata"]["name"], run["status"]
    assert status["status"] == "Failed"
    assert "RUN exit 3" in status["message"], status["message"]
    assert "RUN exit 3" in built.stderr, built.stderr
    assert status["logReference"].startswith(f"{hub.login}/dockyard/logs:{run_id[1]}@sha256:")

    _until(lambda: children_gone(hub, name), "the run's Job and pod deleted", 60)
    logs = dockyard(hub, "logs", name, "-n", hub.namespace, timeout=120)
    assert logs.returncode == 0, logs.stderr
    assert "before-the-break" in logs.stdout
    assert "RUN exit 3" in logs.stdout
    assert "exit status 3" in logs.stdout or "exit code 3" in logs.stdout, logs.stdout
    assert "fetched" in logs.stdout  # the fetch init container's line is kept too
    by_id = dockyard(hub, "logs", run_id[1], "-n", hub.namespace, timeout=120)
    assert by_id.returncode == 0 and by_id.stdout == logs.stdout

    # deleting the run deletes its kept log from the registry (the run's finalizer)
    def log_manifest() -> subprocess.CompletedProcess[str]:
        return hub.registry.skopeo(  # type: ignore[no-any-return]
            "inspect", "--raw", "--creds", hub.registry.creds, "--cert-dir", str(hub.registry.skopeo.certs),
            hub.registry.url(f"dockyard/logs:{run_id[1]}"),
        )  # fmt: skip

    assert log_manifest().returncode == 0
    hub.cluster.kubectl("delete", "buildrun", name, "-n", hub.namespace, "--wait=true", "--timeout=60s")
    gone = log_manifest()
    assert gone.returncode != 0 and "manifest unknown" in gone.stderr.lower(), gone.stderr


@pytest.mark.parametrize(
    ("dockerfile", "line"),
    [
        # Kaniko checks COPY sources before it runs any instruction: its log names the file, not the line.
        ("COPY missing.txt /missing.txt\n", "missing.txt: no such file or directory"),
        ("FROM {login}/base/absent:1\n", "base/absent/manifests/1: MANIFEST_UNKNOWN"),
    ],
    ids=["copy-missing-file", "missing-base-image"],
)
def test_other_failures_name_what_failed(hub: Hub, tmp_path: Path, dockerfile: str, line: str) -> None:
    source = tmp_path / "src"
    source.mkdir()
    text = dockerfile.format(login=hub.login)
    (source / "Dockerfile").write_text(text if text.startswith("FROM") else f"FROM {hub.login}/{BASE}\n{text}")
    built = dockyard(hub, "build", "-r", NAME, "-n", hub.namespace, "-t", "broken:{{.Run.ID}}", str(source))
    assert built.returncode == 1, f"{built.stdout}\n{built.stderr}"
    run_id = re.search(r"^Run ID: (\S+)$", built.stdout, re.M)
    assert run_id, built.stdout
    status = run_by_id(hub, run_id[1])["status"]
    assert status["status"] == "Failed"
    assert line in status["message"], status["message"]


def test_a_git_source_with_a_secret_build_argument(hub: Hub, tmp_path: Path) -> None:
    token = "tok-" + base64.b32encode(os.urandom(10)).decode().lower()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "build-secrets"},
        "type": "Opaque",
        "stringData": {"token": token},
    }
    with GitServer(tmp_path / "git") as server:
        commit = server.make_repo(
            "app",
            {
                "Dockerfile": (
                    f"FROM {hub.login}/{BASE}\n"
                    "ARG TOKEN\n"
                    'RUN echo "the token is $TOKEN" && test -n "$TOKEN" && echo -n "$TOKEN" | wc -c > /token-length\n'
                    "RUN sleep 3\n"
                    "COPY hello.txt /hello.txt\n"
                ),
                "hello.txt": "from git\n",
            },
        )
        run = {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "BuildRun",
            "metadata": {"name": "from-git"},
            "spec": {
                "build": {
                    "registryRef": {"name": NAME},
                    "source": {"git": {"url": server.pod_url("app"), "revision": "main"}},
                    "dockerBuild": {
                        "images": ["gitapp:{{.Run.ID}}"],
                        "buildArgs": [{"name": "TOKEN", "valueFrom": {"name": "build-secrets", "key": "token"}}],
                    },
                }
            },
        }
        began = time.monotonic()
        _apply(hub.cluster, hub.namespace, secret, run)
        # Someone following the log live, as `dockyard logs` does while a run goes on.
        live = subprocess.Popen(
            [sys.executable, "-m", "dockyard.cli", "logs", "from-git", "-n", hub.namespace],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "KUBECONFIG": str(hub.cluster.kubeconfig)},
        )
        job = _until(lambda: _get(hub.cluster, hub.namespace, "job", "from-git-build"), "the run's Job", 60)
        status = finished(hub, "from-git")
        TIMINGS["git build"] = time.monotonic() - began
        assert status["status"] == "Succeeded", status
        streamed, _ = live.communicate(timeout=60)
    assert "the token is ***" in streamed, streamed
    assert token not in streamed, "the Secret value is in the live log"
    assert status["commit"] == commit
    assert status["ref"] == "refs/heads/main"
    run_id = status["runId"]
    (image,) = status["outputImages"]
    assert image["repository"] == "gitapp" and image["tag"] == run_id
    assert hub.registry.digest(f"gitapp:{run_id}") == image["digest"]
    files = image_files(hub, f"gitapp:{run_id}", tmp_path / "pulled")
    assert files.get("/hello.txt") == b"from git\n"
    assert files.get("/token-length") == f"{len(token)}\n".encode()

    assert token not in json.dumps(job), "the Secret value is in the Job"
    assert token not in json.dumps(status), "the Secret value is in the status"
    assert token not in events_text(hub), "the Secret value is in an Event"
    _until(lambda: children_gone(hub, "from-git"), "the run's Job and pod deleted", 60)
    logs = dockyard(hub, "logs", "from-git", "-n", hub.namespace, timeout=120)
    assert logs.returncode == 0, logs.stderr
    assert "the token is ***" in logs.stdout, logs.stdout
    assert token not in logs.stdout
    assert "eyJ" not in logs.stdout + streamed, "a JWT (the delegated credential?) is in the log"


def test_canceling_a_running_build(hub: Hub, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "Dockerfile").write_text(f"FROM {hub.login}/{BASE}\nRUN echo sleeping-now && sleep 600\n")
    queued = dockyard(hub, "build", "-r", NAME, "-n", hub.namespace, "-t", "slow:v1", "--no-wait", str(source))
    assert queued.returncode == 0, queued.stderr
    name = re.search(r"^Queued BuildRun (\S+)$", queued.stdout, re.M)
    assert name, queued.stdout
    name = name[1]

    def sleeping() -> bool:
        pods = hub.cluster.kubectl(
            "get", "pods", "-n", hub.namespace, "-l", f"dockyard.dev/build-run={name}", "-o", "name"
        ).stdout.split()
        if not pods:
            return False
        log = hub.cluster.kubectl("logs", "-n", hub.namespace, pods[0], "-c", "kaniko", check=False).stdout
        return "sleeping-now" in log

    _until(sleeping, "the build to reach its RUN sleep", 180, 1)
    assert run_status(hub, name)["status"] == "Running"
    began = time.monotonic()
    canceled = dockyard(hub, "cancel", name, "-n", hub.namespace, timeout=60)
    assert canceled.returncode == 0, canceled.stderr
    status = finished(hub, name, 60)
    TIMINGS["cancel → Canceled"] = time.monotonic() - began
    assert status["status"] == "Canceled"
    assert TIMINGS["cancel → Canceled"] < 20
    _until(lambda: children_gone(hub, name), "the run's Job and pod deleted", 60)
    TIMINGS["cancel → pod gone"] = time.monotonic() - began
    assert status.get("logReference"), status
    logs = dockyard(hub, "logs", name, "-n", hub.namespace, timeout=120)
    assert logs.returncode == 0, logs.stderr
    assert "sleeping-now" in logs.stdout
    assert (
        hub.registry.skopeo(
            "inspect",
            "--creds",
            hub.registry.creds,
            "--cert-dir",
            str(hub.registry.skopeo.certs),
            hub.registry.url("slow:v1"),
        ).returncode
        != 0
    )


@contextlib.contextmanager
def serving(path: str, body: bytes) -> Iterator[str]:
    """`body` at http://<host's address>:<port><path>, which pods on the node reach."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = self.path.split("?", 1)[0] == path
            self.send_response(200 if found else 404)
            self.send_header("Content-Length", str(len(body) if found else 0))
            self.end_headers()
            if found:
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("0.0.0.0", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host_address()}:{server.server_address[1]}{path}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_archive_source_over_http(hub: Hub, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "Dockerfile").write_text(f"FROM {hub.login}/{BASE}\nCOPY data.txt /data.txt\n")
    (source / "data.txt").write_text("from an archive\n")
    with serving("/ctx.tar.gz", pack_context(source)) as url:
        run = {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "BuildRun",
            "metadata": {"name": "from-archive"},
            "spec": {
                "build": {
                    "registryRef": {"name": NAME},
                    "source": {"archive": {"url": url}},
                    "dockerBuild": {"images": ["archived:v1"]},
                }
            },
        }
        began = time.monotonic()
        _apply(hub.cluster, hub.namespace, run)
        status = finished(hub, "from-archive")
        TIMINGS["archive build"] = time.monotonic() - began
    assert status["status"] == "Succeeded", status
    (image,) = status["outputImages"]
    assert hub.registry.digest("archived:v1") == image["digest"]
    assert image_files(hub, "archived:v1", tmp_path / "pulled").get("/data.txt") == b"from an archive\n"


def test_a_run_past_its_timeout_ends_as_timeout_with_its_log(hub: Hub, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "Dockerfile").write_text(f"FROM {hub.login}/{BASE}\nRUN echo waiting-for-the-end && sleep 600\n")
    began = time.monotonic()
    built = dockyard(
        hub, "build", "-r", NAME, "-n", hub.namespace, "-t", "late:v1", "--timeout", "60", str(source), timeout=300
    )
    TIMINGS["timeout run (limit 60s)"] = time.monotonic() - began
    assert built.returncode == 1, f"{built.stdout}\n{built.stderr}"
    name = re.search(r"^Queued BuildRun (\S+)$", built.stdout, re.M)
    assert name, built.stdout
    status = run_status(hub, name[1])
    assert status["status"] == "Timeout", status
    assert "timeout of 60s" in status["message"]
    assert TIMINGS["timeout run (limit 60s)"] < 120
    _until(lambda: children_gone(hub, name[1]), "the run's Job and pod deleted", 60)
    logs = dockyard(hub, "logs", name[1], "-n", hub.namespace, timeout=120)
    assert logs.returncode == 0, logs.stderr
    assert "waiting-for-the-end" in logs.stdout


def test_a_task_with_a_layer_cache_reuses_it_on_the_next_run(hub: Hub, tmp_path: Path) -> None:
    with GitServer(tmp_path / "git") as server:
        server.make_repo(
            "cached",
            {"Dockerfile": f"FROM {hub.login}/{BASE}\nRUN echo expensive-step && date +%s%N > /stamp\n"},
        )
        task = {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "BuildTask",
            "metadata": {"name": "cached"},
            "spec": {
                "registryRef": {"name": NAME},
                "source": {"git": {"url": server.pod_url("cached"), "revision": "main"}},
                "dockerBuild": {"images": ["cached:{{.Run.ID}}"], "cache": {"enabled": True}},
                # the fetch container checks the commit out and reads its Dockerfile's base
                "triggers": {"baseImageUpdate": {}},
            },
        }
        _apply(hub.cluster, hub.namespace, task)
        statuses = []
        for name in ("cached-1", "cached-2"):
            run = {
                "apiVersion": "dockyard.dev/v1alpha1",
                "kind": "BuildRun",
                "metadata": {"name": name},
                "spec": {"taskRef": {"name": "cached"}},
            }
            began = time.monotonic()
            _apply(hub.cluster, hub.namespace, run)
            statuses.append(finished(hub, name))
            TIMINGS[f"task run {name}"] = time.monotonic() - began
            assert statuses[-1]["status"] == "Succeeded", statuses[-1]
    assert statuses[0]["taskName"] == "cached", statuses[0]
    base = {"registry": hub.login, "repository": "base/busybox", "tag": "1", "digest": hub.registry.digest(BASE)}
    assert [s.get("baseImage") for s in statuses] == [base, base]  # a git source's base is tracked
    tags = hub.registry.skopeo(
        "list-tags",
        "--creds",
        hub.registry.creds,
        "--cert-dir",
        str(hub.registry.skopeo.certs),
        hub.registry.url("cached/cache"),
    )
    assert tags.returncode == 0, tags.stderr
    assert json.loads(tags.stdout)["Tags"], "nothing in the cache repository"
    stamps = [
        image_files(hub, f"cached:{s['runId']}", tmp_path / f"pulled-{s['runId']}").get("/stamp") for s in statuses
    ]
    assert stamps[0] and stamps[0] == stamps[1], "the second run did not reuse the cached RUN layer"


def test_a_quick_build_in_a_plain_http_registry(hub: Hub, tmp_path: Path) -> None:
    """tls.mode Disabled: the fetcher pulls the context over plain HTTP and Kaniko pulls the base
    image and pushes with --insecure-registry."""
    cluster, namespace = hub.cluster, hub.namespace
    body = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "Registry",
        "metadata": {"name": "plain"},
        "spec": {"sku": "Standard", "adminUser": {"enabled": True}, "tls": {"mode": "Disabled"}},
    }
    _apply(cluster, namespace, body)
    ready = _until(lambda: _ready(cluster, namespace, "plain"), "Registry plain Ready", 180)
    login = ready["status"]["loginServer"]
    admin = read_secret(cluster, namespace, ready["status"]["credentials"]["adminSecretName"])
    assert admin is not None
    creds = f"{admin['username']}:{admin['password']}"
    cluster_ip = (_get(cluster, namespace, "service", "plain") or {})["spec"]["clusterIP"]
    skopeo = Skopeo(tmp_path, f"plain.{namespace}.svc", cluster_ip, "")
    _until(lambda: _accepts(cluster_ip, 5000), "plain's Service accepting connections", 60)
    pushed = skopeo(
        "copy",
        "--dest-creds",
        creds,
        "--dest-tls-verify=false",
        f"oci-archive:{cluster.images['busybox'].archive}",
        f"docker://{login}/{BASE}",
    )
    assert pushed.returncode == 0, pushed.stderr
    source = tmp_path / "src"
    source.mkdir()
    (source / "Dockerfile").write_text(f"FROM {login}/{BASE}\nRUN echo plain > /plain.txt\n")
    began = time.monotonic()
    built = dockyard(hub, "build", "-r", "plain", "-n", namespace, "-t", "app:v1", str(source))
    TIMINGS["plain-http quick build"] = time.monotonic() - began
    assert built.returncode == 0, f"{built.stdout}\n{built.stderr}"
    inspected = skopeo("inspect", "--creds", creds, "--tls-verify=false", f"docker://{login}/app:v1")
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["Digest"] in built.stdout


def test_a_private_git_repository_at_an_annotated_tag(hub: Hub, tmp_path: Path) -> None:
    """Basic auth at the git server from `authSecretRef`, for the operator's resolve and the fetch
    container's checkout (the credential from secretKeyRefs, in the fetcher's environment only);
    the revision an annotated tag, built at the commit it points to."""
    password = "pw-" + base64.b32encode(os.urandom(10)).decode().lower()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "git-creds"},
        "type": "Opaque",
        "stringData": {"username": "bot", "password": password},
    }
    with GitServer(tmp_path / "git", username="bot", password=password) as server:
        tagged = server.make_repo(
            "private", {"Dockerfile": f"FROM {hub.login}/{BASE}\nCOPY v.txt /v.txt\n", "v.txt": "one\n"}
        )
        server.tag("private", "v1", message="release v1")
        server.commit("private", {"v.txt": "two\n"})
        run = {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "BuildRun",
            "metadata": {"name": "private"},
            "spec": {
                "build": {
                    "registryRef": {"name": NAME},
                    "source": {
                        "git": {
                            "url": server.pod_url("private"),
                            "revision": "v1",
                            "authSecretRef": {"name": "git-creds"},
                        }
                    },
                    "dockerBuild": {"images": ["private:{{.Run.ID}}"]},
                }
            },
        }
        began = time.monotonic()
        _apply(hub.cluster, hub.namespace, secret, run)
        job = _until(lambda: _get(hub.cluster, hub.namespace, "job", "private-build"), "the run's Job", 60)
        status = finished(hub, "private")
        TIMINGS["private git build"] = time.monotonic() - began
        assert status["status"] == "Succeeded", status
        users = {user for _, _, user in server.requests}
    assert users == {"bot"}, users  # every request authenticated
    assert status["commit"] == tagged and status["ref"] == "refs/tags/v1"
    files = image_files(hub, f"private:{status['runId']}", tmp_path / "pulled")
    assert files.get("/v.txt") == b"one\n"
    assert password not in json.dumps(job) + json.dumps(status) + events_text(hub)
    pod = job["spec"]["template"]["spec"]
    (fetcher,) = pod["initContainers"]
    assert f"--git-commit={tagged}" in fetcher["command"] and "--git-ref=refs/tags/v1" in fetcher["command"]
    assert {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in fetcher["env"]} == {
        "GIT_USERNAME": "git-creds",
        "GIT_PASSWORD": "git-creds",
    }
    assert "--context=dir:///workspace" in pod["containers"][0]["args"]
    assert not any(e["name"].startswith("GIT_") for e in pod["containers"][0].get("env") or [])
    _until(lambda: children_gone(hub, "private"), "the run's Job and pod deleted", 60)
    logs = dockyard(hub, "logs", "private", "-n", hub.namespace, timeout=120)
    assert logs.returncode == 0, logs.stderr
    assert password not in logs.stdout


def test_a_build_survives_the_operator_being_killed(hub: Hub, tmp_path: Path) -> None:
    """`python -m dockyard` (its own process, its own namespace) is SIGKILLed while Kaniko builds
    and started again after the build has ended: the run ends Succeeded with the image pushed and
    its log kept, and the API server saw exactly one Job for it. (`hub` installed the CRDs.)"""
    cluster = hub.cluster
    namespace = f"r-kill-{os.urandom(3).hex()}"
    cluster.kubectl("create", "namespace", namespace)
    operator = Operator(cluster, namespace, tmp_path / "state")
    operator.env |= {
        "DOCKYARD_REGISTRY_IMAGE": cluster.images["registry"].name,
        "DOCKYARD_OPERATOR_IMAGE": cluster.images["operator"].name,
        "DOCKYARD_KANIKO_IMAGE": cluster.images["kaniko"].name,
    }
    operator.start()
    recorder = None
    try:
        body = {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "Registry",
            "metadata": {"name": NAME},
            "spec": {"sku": "Standard", "adminUser": {"enabled": True}},
        }
        _apply(cluster, namespace, body)
        ready = _until(lambda: _ready(cluster, namespace, NAME), f"Registry {NAME} Ready", 180)
        (tmp_path / "registry").mkdir()
        registry = Registry(cluster, namespace, dict(ready), tmp_path / "registry")
        base = registry.skopeo(
            "copy",
            "--dest-creds",
            registry.creds,
            "--dest-cert-dir",
            str(registry.skopeo.certs),
            f"oci-archive:{cluster.images['busybox'].archive}",
            registry.url(BASE),
        )
        assert base.returncode == 0, base.stderr
        killed = Hub(cluster, namespace, registry)
        source = tmp_path / "src"
        source.mkdir()
        (source / "Dockerfile").write_text(
            f"FROM {registry.login}/{BASE}\nRUN echo build-started && sleep 8 && echo done > /done\n"
        )
        recorder = JobRecorder(cluster, namespace)
        queued = dockyard(killed, "build", "-r", NAME, "-n", namespace, "-t", "survivor:v1", "--no-wait", str(source))
        assert queued.returncode == 0, queued.stderr
        found = re.search(r"^Queued BuildRun (\S+)$", queued.stdout, re.M)
        assert found, queued.stdout
        name = found[1]

        def building() -> bool:
            pods = cluster.kubectl(
                "get", "pods", "-n", namespace, "-l", f"dockyard.dev/build-run={name}", "-o", "name"
            ).stdout.split()
            logs = cluster.kubectl("logs", "-n", namespace, *pods[:1], "-c", "kaniko", check=False).stdout
            return bool(pods) and "build-started" in logs

        _until(building, "Kaniko running the build", 120, 0.5)
        operator.kill()

        def pod_ended() -> bool:
            out = cluster.kubectl("get", "pods", "-n", namespace, "-l", f"dockyard.dev/build-run={name}", "-o", "json")
            return any(p["status"].get("phase") == "Succeeded" for p in json.loads(out.stdout)["items"])

        _until(pod_ended, "the build pod to end while the operator is down", 120, 1)
        operator.start()
        restarted = time.monotonic()
        status = finished(killed, name, 120)
        TIMINGS["operator restarted → run Succeeded"] = time.monotonic() - restarted
        assert status["status"] == "Succeeded", status
        (image,) = status["outputImages"]
        assert registry.digest("survivor:v1") == image["digest"]
        _until(lambda: children_gone(killed, name), "the run's Job and pod deleted", 60)
        assert recorder.added == {f"{name}-build": 1}, recorder.added
        logs = dockyard(killed, "logs", name, "-n", namespace, timeout=120)
        assert logs.returncode == 0 and "build-started" in logs.stdout, logs.stdout + logs.stderr
    finally:
        if recorder is not None:
            recorder.stop()
        if operator.process is None or operator.process.poll() is not None:
            operator.start()
        cluster.kubectl("delete", "registries", "--all", "-n", namespace, "--timeout=60s", check=False)
        operator.kill()
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
