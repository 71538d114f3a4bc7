"""The CLI's live log hides the values of the Secrets a run names, as the kept log does."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from dockyard.cli.follow import LineRedactor, RunFollower, secret_values
from dockyard.core.apiserver import ApiError


def _secret(**data: str) -> dict[str, Any]:
    return {"data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}}


class FakeKube:
    def __init__(self, objects: dict[tuple[str, str], dict[str, Any]], forbidden: tuple[str, ...] = ()) -> None:
        self.objects, self.forbidden = objects, forbidden
        self.chunks: list[str] = []

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        if kind in self.forbidden:
            raise ApiError(403, "Forbidden")
        return self.objects.get((kind, name))

    def list(self, api_version: str, kind: str, namespace: str, label_selector: str = "") -> list[dict[str, Any]]:
        if kind != "Pod":
            return []
        pod = {
            "metadata": {"name": "run-build-x", "creationTimestamp": "2026-12-01T00:00:00Z"},
            "status": {"phase": "Running", "containerStatuses": [{"name": "kaniko", "state": {"running": {}}}]},
        }
        return [pod]

    def follow_pod_log(self, namespace: str, pod: str, container: str) -> Iterator[str]:
        yield from self.chunks


def _run(**build: Any) -> dict[str, Any]:
    definition = {
        "registryRef": {"name": "hub"},
        "source": {"oci": {"repository": "r", "digest": "sha256:" + "a" * 64}},
    }
    return {"metadata": {"name": "run"}, "spec": {"build": {**definition, **build}}, "status": {"jobName": "run-build"}}


SECRET_ARGS = {
    "dockerBuild": {
        "images": ["app:v1"],
        "buildArgs": [{"name": "TOKEN", "valueFrom": {"name": "creds", "key": "token"}}, {"name": "A", "value": "x"}],
    }
}


def test_values_of_secret_build_args_and_of_the_git_password_are_found() -> None:
    kube = FakeKube({("Secret", "creds"): _secret(token="s3cr3t"), ("Secret", "git"): _secret(password="pw-123")})
    git = {"git": {"url": "https://git.example.com/app.git", "authSecretRef": {"name": "git"}}}
    assert secret_values(kube, "ns", _run(**SECRET_ARGS)) == ["s3cr3t"]  # type: ignore[arg-type]
    assert secret_values(kube, "ns", _run(**SECRET_ARGS, source=git)) == ["s3cr3t", "pw-123"]  # type: ignore[arg-type]


def test_a_task_runs_secrets_come_from_its_task() -> None:
    task = {"spec": {"registryRef": {"name": "hub"}, "source": {"git": {"url": "https://g/a.git"}}, **SECRET_ARGS}}
    kube = FakeKube({("BuildTask", "t"): task, ("Secret", "creds"): _secret(token="s3cr3t")})
    run = {"metadata": {"name": "run"}, "spec": {"taskRef": {"name": "t"}}}
    assert secret_values(kube, "ns", run) == ["s3cr3t"]  # type: ignore[arg-type]


def test_secrets_the_user_cannot_read_mean_unknown() -> None:
    kube = FakeKube({}, forbidden=("Secret",))
    assert secret_values(kube, "ns", _run(**SECRET_ARGS)) is None  # type: ignore[arg-type]
    assert secret_values(kube, "ns", _run()) == []  # type: ignore[arg-type]  # no Secret named: nothing to read


def test_a_value_split_across_chunks_is_hidden() -> None:
    out: list[str] = []
    redactor = LineRedactor(out.append, ["s3cr3t"])
    for chunk in ("the token is s3", "cr3t\nnext ", "line s3cr", "3t"):
        redactor(chunk)
    assert "".join(out) == "the token is ***\n"
    redactor.close()
    assert "".join(out) == "the token is ***\nnext line ***"


def test_without_secrets_chunks_pass_at_once() -> None:
    out: list[str] = []
    redactor = LineRedactor(out.append, [])
    redactor("partial")
    assert out == ["partial"]


@pytest.mark.parametrize("split", [3, 7, 16])
def test_the_follower_streams_redacted(split: int) -> None:
    kube = FakeKube({})
    text = "INFO RUN echo $TOKEN\nthe token is s3cr3t\ndone\n"
    kube.chunks = [text[i : i + split] for i in range(0, len(text), split)]
    out: list[str] = []
    follower = RunFollower(kube, "ns", "run", sleep=lambda _: None)  # type: ignore[arg-type]
    kube.objects[("BuildRun", "run")] = _run()
    read = follower.stream(out.append, ["s3cr3t"])
    assert "".join(out) == "INFO RUN echo $TOKEN\nthe token is ***\ndone\n"
    assert read == len(text)


def test_without_read_access_to_the_secrets_only_the_kept_log_is_shown() -> None:
    import io

    from dockyard.cli.main import Cli

    run = _run(**SECRET_ARGS)
    run["status"] = {"status": "Succeeded", "runId": "ca1", "logTail": "the token is ***\n"}
    kube = FakeKube({("BuildRun", "run"): run}, forbidden=("Secret",))
    kube.chunks = ["the token is s3cr3t\n"]  # what the pod would show
    out, err = io.StringIO(), io.StringIO()
    code = Cli(kube, "ns", out=out, err=err).follow("run")  # type: ignore[arg-type]
    assert code == 0
    assert "s3cr3t" not in out.getvalue() and "the token is ***" in out.getvalue()
    assert "The live log is not shown" in err.getvalue()
