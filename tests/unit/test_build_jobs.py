"""Golden-file tests of a run's Kaniko Job and its credentials Secret (`UPDATE_GOLDEN=1 make unit`
rewrites them; review the diff), plus the properties a platform team checks in them."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
import yaml

from dockyard.builds.manifests.job import (
    FETCH_CONTAINER,
    ArchiveContext,
    GitContext,
    KanikoBuild,
    OciContext,
    SecretArg,
    basic_auth_entry,
    build_credentials_secret,
    build_job,
    docker_config,
    kaniko_args,
)
from dockyard.core.meta import Owner
from dockyard.core.names import BUILD_RUN_LABEL, BuildRunNames

GOLDEN = Path(__file__).parent / "golden"
OWNER = Owner("dockyard.dev/v1alpha1", "BuildRun", "app-7", "team", "uid-7")
RESOURCES = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "2", "memory": "4Gi"}}
HOST = "hub.team.svc:5000"


def _build(**changes: object) -> KanikoBuild:
    base: dict[str, object] = {
        "owner": OWNER,
        "registry_host": HOST,
        "kaniko_image": "ghcr.io/osscontainertools/kaniko:v1.28.3",
        "fetcher_image": "ghcr.io/dockyard-dev/dockyard:0.1.0",
        "context": "dir:///workspace",
        "dockerfile": "Dockerfile",
        "destinations": (f"{HOST}/team/app:ca7", f"{HOST}/team/app:latest"),
        "timeout_seconds": 3600,
        "resources": RESOURCES,
        "ca_config_map": "hub-ca",
    }
    base.update(changes)
    return KanikoBuild(**base)  # type: ignore[arg-type]


CASES = {
    "uploaded": _build(fetch=OciContext("dockyard/sources", "sha256:" + "a" * 64)),
    "git-secret-args": _build(
        fetch=GitContext(
            "http://git.example.com/org/app.git", "c" * 40, "refs/heads/main", "services/api", "git-creds"
        ),
        destinations=(f"{HOST}/team/api:ca8",),
        build_args=(("VERSION", "1.2"), ("WEIRD", "$(HOME)")),
        secret_args=(SecretArg("NPM_TOKEN", "npm", "token"),),
        report_base=True,
        target="runtime",
        platform="linux/arm64",
        cache_repository=f"{HOST}/team/api/cache",
    ),
    "archive-no-push-plain-http": _build(
        fetch=ArchiveContext("http://files.example.com/ctx.tar.gz"),
        destinations=(),
        no_push=True,
        ca_config_map=None,
        insecure_registry=True,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    rendered = yaml.safe_dump(build_job(CASES[name]), sort_keys=False)
    path = GOLDEN / f"buildjob-{name}.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(rendered)
    assert path.exists(), f"missing {path.name}: run UPDATE_GOLDEN=1 make unit"
    assert rendered == path.read_text()


def test_the_job_is_locked_down_and_exactly_once() -> None:
    job = build_job(CASES["git-secret-args"])
    pod = job["spec"]["template"]["spec"]
    assert job["metadata"]["name"] == BuildRunNames("app-7").job == "app-7-build"
    assert job["spec"]["backoffLimit"] == 0 and pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False and pod["enableServiceLinks"] is False
    assert job["metadata"]["ownerReferences"][0]["uid"] == "uid-7"
    assert job["spec"]["template"]["metadata"]["labels"][BUILD_RUN_LABEL] == "app-7"
    kaniko = pod["containers"][0]
    assert kaniko["resources"] == RESOURCES
    assert not any("skip-tls" in arg for arg in kaniko["args"])
    assert f"--registry-certificate={HOST}=/dockyard/ca/ca.crt" in kaniko["args"]
    # the Secret's value is never in the args, only the variable the kubelet expands
    assert "--build-arg=NPM_TOKEN=$(DOCKYARD_BUILD_ARG_NPM_TOKEN)" in kaniko["args"]
    # a literal that looks like a variable reference stays literal
    assert "--build-arg=WEIRD=$$(HOME)" in kaniko["args"]
    secret_refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in kaniko["env"] if "valueFrom" in e}
    assert secret_refs == {"npm"}  # the git credential is the fetcher's alone
    assert job["spec"]["activeDeadlineSeconds"] > 3600  # a backstop: the operator ends runs itself


def test_a_git_source_is_fetched_into_the_workspace_with_the_credential_from_the_secret() -> None:
    pod = build_job(CASES["git-secret-args"])["spec"]["template"]["spec"]
    (fetch,) = pod["initContainers"]
    assert fetch["name"] == FETCH_CONTAINER
    assert fetch["command"][:3] == ["python", "-m", "dockyard.builds.fetch"]
    assert "--git-url=http://git.example.com/org/app.git" in fetch["command"]
    assert "--git-commit=" + "c" * 40 in fetch["command"]
    assert "--git-ref=refs/heads/main" in fetch["command"]
    assert "--git-sub-path=services/api" in fetch["command"]
    assert "--dockerfile=Dockerfile" in fetch["command"]  # the base is reported: relative to the context
    assert fetch["env"] == [
        {"name": "GIT_USERNAME", "valueFrom": {"secretKeyRef": {"name": "git-creds", "key": "username"}}},
        {"name": "GIT_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "git-creds", "key": "password"}}},
    ]
    kaniko = pod["containers"][0]
    assert "--context=dir:///workspace" in kaniko["args"]
    assert not any(arg.startswith("--context-sub-path") for arg in kaniko["args"])  # the workspace is the context
    assert not any(e["name"].startswith("GIT_") for e in kaniko["env"])


def test_long_run_names_fit_label_values_and_stay_distinct() -> None:
    first, second = "a" * 100 + "x", "a" * 100 + "y"
    assert BuildRunNames(first).label != BuildRunNames(second).label
    assert len(BuildRunNames(first).label) <= 63 and len(BuildRunNames(first).job) <= 52
    owner = Owner("dockyard.dev/v1alpha1", "BuildRun", first, "team", "u")
    job = build_job(_build(owner=owner))
    assert all(len(value) <= 63 for value in job["metadata"]["labels"].values())


def test_the_digest_comes_back_through_the_termination_message() -> None:
    args = kaniko_args(CASES["uploaded"])
    kaniko = build_job(CASES["uploaded"])["spec"]["template"]["spec"]["containers"][0]
    assert "--image-name-tag-with-digest-file=/dev/termination-log" in args
    assert kaniko["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert [a for a in args if a.startswith("--destination=")] == [
        f"--destination={HOST}/team/app:ca7",
        f"--destination={HOST}/team/app:latest",
    ]


def test_credentials_secret_holds_a_docker_config() -> None:
    config = docker_config({HOST: basic_auth_entry("$dockyard-delegated", "jwt"), "ghcr.io": {"auth": "eA=="}})
    secret = build_credentials_secret(OWNER, config)
    stored = json.loads(base64.b64decode(secret["data"]["config.json"]))
    assert base64.b64decode(stored["auths"][HOST]["auth"]).decode() == "$dockyard-delegated:jwt"
    assert set(stored["auths"]) == {HOST, "ghcr.io"}
    assert secret["metadata"]["ownerReferences"][0]["name"] == "app-7"
