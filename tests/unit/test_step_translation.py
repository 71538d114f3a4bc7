"""Task-file step features as Kubernetes gives them (builds/translate.py, through the single pod):
secrets from Kubernetes Secrets, secret-file volumes, `|| true` and `> /dev/null` through the
BusyBox supervisor (run here for real when the host has a static BusyBox), `docker pull`/`docker
stop`, docker run flags, privileged behind the setting, and each refusal naming the step."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from dockyard.builds.definition import secret_selectors
from dockyard.builds.manifests.job import OciContext, build_credentials_secret
from dockyard.builds.manifests.steps import BuildStep, CmdStep, TaskPod, build_task_job
from dockyard.builds.runplan import TaskPlan, run_plan, task_file_refusal
from dockyard.builds.taskfile.plan import plan
from dockyard.builds.template import RunVariables
from dockyard.builds.translate import (
    BUSYBOX,
    DockerPull,
    DockerStop,
    NotRunnable,
    ShellEffects,
    docker_cli,
    volume_files,
    wrapper_script,
)
from dockyard.core.meta import Owner
from dockyard.models.builds import BuildDefinition
from dockyard.settings import OperatorSettings

GOLDEN = Path(__file__).parent / "golden"
HOST = "hub.team.svc:5000"
OWNER = Owner("dockyard.dev/v1alpha1", "BuildRun", "web-4", "team", "uid-4")
RUN = RunVariables(ID="ca4", Registry=HOST, Date="20260101-120000z")
RESOURCES = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "2", "memory": "4Gi"}}
PEM = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nabc\n").decode()

FEATURES = f"""\
version: v1.1.0
secrets:
  - id: token
    keyvault: k8s-secret:app-secrets/api-token
  - id: key-file
    keyvault: k8s-secret:app-secrets/key.b64
volumes:
  - name: certs
    secret:
      ca.pem: {PEM}
      key.pem: {{{{index .Secrets "key-file"}}}}
steps:
  - id: build
    build: -t $Registry/web:$ID --build-arg TOKEN={{{{.Secrets.token}}}} .
  - id: check
    cmd: -e GREETING={{{{.Values.greeting}}}} -u 1000:1000 busybox:1.36 sh -c 'test -s /certs/ca.pem' > /dev/null || true
    env: ["API_TOKEN={{{{.Secrets.token}}}}"]
    volumeMounts:
      - name: certs
        mountPath: /certs
  - id: prefetch
    cmd: docker pull busybox:1.36
  - id: push
    push: ["$Registry/web:$ID"]
"""


def _task(text: str, values: dict[str, str] | None = None, **kwargs: Any) -> TaskPlan:
    return run_plan(text, RUN, values or {}, HOST, **kwargs)


def _cmd(text: str, **kwargs: Any) -> CmdStep:
    step = _task(text, **kwargs).steps[0]
    assert isinstance(step, CmdStep)
    return step


def _refusal(text: str, **kwargs: Any) -> str:
    with pytest.raises(NotRunnable) as refused:
        _task(text, **kwargs)
    return str(refused.value)


def _job(text: str = FEATURES, values: dict[str, str] | None = None) -> dict[str, Any]:
    task = _task(text, values or {"greeting": "hi"})
    pod = TaskPod(
        owner=OWNER,
        registry_host=HOST,
        kaniko_image="ghcr.io/osscontainertools/kaniko:v1.28.3",
        operator_image="ghcr.io/dockyard-dev/dockyard:0.1.0",
        fetch=OciContext("dockyard/sources", "sha256:" + "b" * 64),
        steps=task.steps,
        timeout_seconds=3600,
        resources=RESOURCES,
        volumes=task.volumes,
    )
    return build_task_job(pod)


def _containers(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in job["spec"]["template"]["spec"]["initContainers"]}


def test_golden_secrets_volumes_shell_and_pull() -> None:
    rendered = yaml.safe_dump(_job(), sort_keys=False)
    path = GOLDEN / "taskjob-step-features.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(rendered)
    assert path.exists(), f"missing {path.name}: run UPDATE_GOLDEN=1 make unit"
    assert rendered == path.read_text()


# ---- secrets ------------------------------------------------------------------------------------


def test_secrets_reach_containers_through_the_kubelet_never_through_the_manifest() -> None:
    job = _job()
    containers = _containers(job)
    build, check = containers["step-build"], containers["step-check"]
    reference = {"secretKeyRef": {"name": "app-secrets", "key": "api-token"}}
    assert build["env"] == [{"name": "DOCKYARD_SECRET_0", "valueFrom": reference}]
    assert "--build-arg=TOKEN=$(DOCKYARD_SECRET_0)" in build["args"]
    # secret env vars come first, so the kubelet expands the step's own env from them
    assert check["env"][0] == {"name": "DOCKYARD_SECRET_0", "valueFrom": reference}
    assert {"name": "API_TOKEN", "value": "$(DOCKYARD_SECRET_0)"} in check["env"]
    assert {"name": "GREETING", "value": "hi"} in check["env"]
    assert "dockyardsecret" not in yaml.safe_dump(job)


def test_a_dollar_paren_in_a_cmd_stays_literal_next_to_a_secret() -> None:
    text = (
        "secrets:\n  - id: t\n    keyvault: k8s-secret:s/k\n"
        "steps:\n  - cmd: busybox sh -c 'echo $(date) {{.Secrets.t}}'\n"
    )
    step = _cmd(text)
    assert step.secrets[0].secret == "s"
    job = _job(text)
    assert _containers(job)["step-acb-step-0"]["args"] == ["sh", "-c", "echo $$(date) $(DOCKYARD_SECRET_0)"]


def test_a_key_vault_secret_is_refused_with_the_kubernetes_form() -> None:
    text = "secrets:\n  - id: pw\n    keyvault: https://v.vault.azure.net/secrets/pw\nsteps:\n  - cmd: busybox true\n"
    message = _refusal(text)
    assert "secrets: pw: keyvault 'https://v.vault.azure.net/secrets/pw' is Azure Key Vault's" in message
    assert "keyvault: k8s-secret:<secret-name>/<key>" in message
    # a BuildTask with it says so up front (Ready=False), not only each run
    assert (task_file_refusal(text, {}, HOST) or "").startswith("taskFile: secrets: pw: keyvault")
    assert "is not `k8s-secret:<secret-name>/<key>`" in _refusal(
        text.replace("https://v.vault.azure.net/secrets/pw", "k8s-secret:Bad_Name")
    )


@pytest.mark.parametrize(
    ("step", "where"),
    [
        ("cmd: registry.example/{{.Secrets.t}}:1 run", "step acb_step_0: a secret is used in the image name"),
        ("build: '-t app:{{.Secrets.t}} .'", "step acb_step_0: a secret is used in a tag"),
        ("cmd: busybox true\n    workingDirectory: /x/{{.Secrets.t}}", "a secret is used in the working directory"),
    ],
)
def test_a_secret_outside_args_env_and_build_args_is_refused(step: str, where: str) -> None:
    text = f"secrets:\n  - id: t\n    keyvault: k8s-secret:s/k\nsteps:\n  - {step}\n"
    assert where in _refusal(text)


def test_a_secret_changed_by_a_template_function_is_refused() -> None:
    text = "secrets:\n  - id: t\n    keyvault: k8s-secret:s/k\nsteps:\n  - cmd: busybox echo {{.Secrets.t | b64enc}}\n"
    assert "secrets: t is changed by a template function" in _refusal(text)


def test_task_file_secrets_are_redacted_from_logs() -> None:
    definition = BuildDefinition.model_validate(
        {
            "registryRef": {"name": "hub"},
            "source": {"oci": {"repository": "dockyard/sources", "digest": "sha256:" + "c" * 64}},
            "taskFile": FEATURES,
        }
    )
    assert secret_selectors(definition) == [("app-secrets", "api-token"), ("app-secrets", "key.b64")]


# ---- volumes ------------------------------------------------------------------------------------


def test_volume_files_go_into_the_run_secret_and_each_volume_projects_only_its_keys() -> None:
    task = _task(FEATURES, {"greeting": "hi"})
    key = base64.b64encode(b"private").decode()
    data = volume_files(task.volumes, {"key-file": key, "token": "x"}, task.secrets)
    assert data == {"volume.certs.ca.pem": PEM, "volume.certs.key.pem": key}
    secret = build_credentials_secret(OWNER, "{}", data)
    assert set(secret["data"]) == {"config.json", "volume.certs.ca.pem", "volume.certs.key.pem"}
    volumes = {v["name"]: v for v in _job()["spec"]["template"]["spec"]["volumes"]}
    assert volumes["task-volume-0"]["secret"] == {
        "secretName": "web-4-build-auth",
        "items": [{"key": "volume.certs.ca.pem", "path": "ca.pem"}, {"key": "volume.certs.key.pem", "path": "key.pem"}],
        "defaultMode": 0o444,
    }
    check = _containers(_job())["step-check"]
    assert {"name": "task-volume-0", "mountPath": "/certs", "readOnly": True} in check["volumeMounts"]
    assert not any(m["name"] == "docker-config" for m in check["volumeMounts"])


def test_a_volume_file_that_is_not_base64_is_refused_naming_it() -> None:
    text = "volumes:\n  - name: v\n    secret:\n      f: not*base64\nsteps:\n  - cmd: busybox true\n"
    task = _task(text)
    with pytest.raises(NotRunnable, match="volumes: v: file f is not base64"):
        volume_files(task.volumes, {}, task.secrets)


def test_a_volume_flag_mounts_a_task_volume_and_host_paths_are_refused() -> None:
    text = f"volumes:\n  - name: v\n    secret:\n      f: {PEM}\nsteps:\n  - cmd: -v v:/etc/app:ro busybox cat /etc/app/f\n"
    assert [m.path for m in _cmd(text).mounts] == ["/etc/app"]
    assert "only `-v <task volume>:<path>[:ro]`" in _refusal(text.replace("-v v:", "-v /var/run:"))
    assert "volume w is not a volume of the task file" in _refusal(text.replace("-v v:", "-v w:"))


def test_volume_mounts_on_a_build_step_are_refused() -> None:
    text = f"volumes:\n  - name: v\n    secret:\n      f: {PEM}\nsteps:\n  - build: -t a .\n    volumeMounts:\n      - name: v\n        mountPath: /run/s\n"
    assert "volumeMounts on a build step serve docker build flags" in _refusal(text)


# ---- host-shell operators --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tail", "effects"),
    [
        ("|| true", ShellEffects(ignore_exit_code=True)),
        ("> /dev/null", ShellEffects(discard_stdout=True)),
        (">/dev/null || true", ShellEffects(True, True)),
        ("|| true > /dev/null", ShellEffects(ignore_exit_code=True)),
    ],
)
def test_or_true_and_dev_null_wrap_the_program_in_the_tools_busybox(tail: str, effects: ShellEffects) -> None:
    step = _cmd(f"steps:\n  - cmd: busybox false {tail}\n")
    assert step.command == (BUSYBOX, "sh", "-c", wrapper_script(effects), "dockyard", "false")
    assert step.args == () and step.uses_tools
    entry = _cmd(f"steps:\n  - cmd: alpine/git clone x {tail}\n    entryPoint: git\n")
    assert entry.command[-4:] == ("dockyard", "git", "clone", "x")


def test_the_pod_copies_the_tools_only_when_a_step_needs_them() -> None:
    job = _job()
    init = [c["name"] for c in job["spec"]["template"]["spec"]["initContainers"]]
    assert init[:2] == ["fetch-context", "copy-tools"]
    plain = _job("steps:\n  - cmd: busybox true\n")
    assert "copy-tools" not in [c["name"] for c in plain["spec"]["template"]["spec"]["initContainers"]]
    assert "tools" not in [v["name"] for v in plain["spec"]["template"]["spec"]["volumes"]]


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        ("&& echo done", "the host-shell operator '&& echo done' is not translated"),
        ("| grep x", "the host-shell operator '| grep x'"),
        ("; echo done", "the host-shell operator '; echo done'"),
        ("> out.txt", "the host-shell operator '> out.txt'"),
        ("2>/dev/null", "a file-descriptor redirection (like 2> or 2>&1)"),
        ("|| true && echo x", "the host-shell operator '&& echo x'"),
    ],
)
def test_other_host_shell_operators_are_refused_naming_the_step(tail: str, expected: str) -> None:
    assert f"step s: {expected}" in _refusal(f"steps:\n  - id: s\n    cmd: busybox false {tail}\n")


@pytest.mark.skipif(not Path("/bin/busybox").exists(), reason="no static BusyBox on this host")
def test_the_wrapper_runs_the_images_program_ignores_its_exit_code_and_discards_stdout(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # a program named like a BusyBox applet: the image's file must run, not the applet
    (bin_dir / "echo").write_text('#!/bin/sh\nprintf "image-echo %s\\n" "$*"\nexit 3\n')
    (bin_dir / "echo").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}

    def run(effects: ShellEffects, *words: str) -> subprocess.CompletedProcess[str]:
        script = wrapper_script(effects)
        argv = ["/bin/busybox", "sh", "-c", script, "dockyard", *words]
        return subprocess.run(argv, capture_output=True, text=True, env=env, check=False)

    plain = run(ShellEffects(), "echo", "hi")
    assert (plain.returncode, plain.stdout) == (3, "image-echo hi\n")
    ignored = run(ShellEffects(ignore_exit_code=True), "echo", "hi")
    assert (ignored.returncode, ignored.stdout) == (0, "image-echo hi\n")
    assert "exit code 3 ignored (|| true)" in ignored.stderr
    quiet = run(ShellEffects(True, True), "echo", "hi")
    assert (quiet.returncode, quiet.stdout) == (0, "")
    missing = run(ShellEffects(ignore_exit_code=True), "acr-purge", "x")
    assert missing.returncode == 127 and "set entryPoint" in missing.stderr
    assert "$(" not in wrapper_script(ShellEffects(True, True))  # the kubelet would expand it


def test_a_wrapped_step_needs_a_program() -> None:
    assert "the program must be named" in _refusal("steps:\n  - cmd: busybox || true\n")


# ---- the Docker CLI ----------------------------------------------------------------------------------


def test_docker_pull_is_a_pre_pull_of_the_image() -> None:
    step = _cmd("steps:\n  - cmd: docker pull -q mcr.microsoft.com/dotnet/sdk:8.0\n")
    assert step.image == "mcr.microsoft.com/dotnet/sdk:8.0" and step.always_pull
    assert step.command == (BUSYBOX, "true") and step.uses_tools and step.args == ()


def test_docker_stop_names_detached_steps_and_other_docker_commands_are_refused() -> None:
    planned = plan("steps:\n  - id: db\n    cmd: postgres\n    detach: true\n  - id: s\n    cmd: docker stop db\n", RUN)
    assert docker_cli(planned.steps[1], frozenset({"db"})) == DockerStop(("db",))
    assert docker_cli(plan("steps:\n  - cmd: docker pull a\n", RUN).steps[0], frozenset()) == DockerPull("a")
    assert "step s: docker stop web: not a detached step" in _refusal("steps:\n  - id: s\n    cmd: docker stop web\n")
    assert "step b: docker build: Docker CLI steps need a Docker daemon" in _refusal(
        "steps:\n  - id: b\n    cmd: docker build -t x .\n"
    )
    assert "only `docker pull [-q] IMAGE`" in _refusal("steps:\n  - cmd: docker pull -a x\n")


# ---- docker run flags ------------------------------------------------------------------------------


def test_docker_run_flags_before_the_image_are_translated() -> None:
    step = _cmd(
        "steps:\n  - cmd: --rm -it -e A=1 --env=B=2 -w /src --entrypoint /bin/sh -u 1000:2000 --cpus 0.5 -m 256m"
        " --pull always --network acb_default_network --name x busybox -c 'echo hi'\n"
    )
    assert ("A=1" in step.env) and ("B=2" in step.env)
    assert step.working_directory == "/src" and step.command == ("/bin/sh",) and step.args == ("-c", "echo hi")
    assert (step.user, step.group, step.cpus, step.memory, step.always_pull) == (1000, 2000, "0.5", "256Mi", True)
    container = _containers(_job("steps:\n  - cmd: --cpus 0.5 -u 7 busybox true\n"))["step-acb-step-0"]
    assert container["resources"]["limits"]["cpu"] == "0.5" and container["securityContext"] == {"runAsUser": 7}


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("--network host", "step f: network host: every step runs on the pod network"),
        ("--env-file app.env", "step f: docker run flag --env-file: reads a file on ACR's host"),
        ("-e TOKEN", "step f: -e TOKEN: a variable without a value takes it from ACR's host environment"),
        ("-p 8080:80", "step f: docker run flag -p: publishes on ACR's host"),
        ("-d", "step f: docker run flag -d: use `detach: true`"),
        ("--cap-add NET_ADMIN", "step f: docker run flag --cap-add: not translated"),
        ("-u app", "step f: user 'app': only a numeric uid[:gid]"),
    ],
)
def test_docker_run_flags_that_do_not_map_are_refused_naming_the_flag(flags: str, expected: str) -> None:
    assert expected in _refusal(f"steps:\n  - id: f\n    cmd: {flags} busybox true\n")


def test_privileged_needs_the_operator_setting() -> None:
    text = "steps:\n  - id: p\n    cmd: busybox true\n    privileged: true\n"
    assert "step p: privileged containers are not allowed" in _refusal(text)
    assert "DOCKYARD_BUILD_ALLOW_PRIVILEGED_STEPS" in _refusal(
        "steps:\n  - id: p\n    cmd: --privileged busybox true\n"
    )
    step = _cmd(text, allow_privileged=True)
    assert step.privileged
    assert task_file_refusal(text, {}, HOST) is not None
    assert task_file_refusal(text, {}, HOST, allow_privileged=True) is None


def test_the_privileged_and_tools_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert OperatorSettings().build_allow_privileged_steps is False
    monkeypatch.setenv("DOCKYARD_BUILD_ALLOW_PRIVILEGED_STEPS", "true")
    monkeypatch.setenv("DOCKYARD_STEP_TOOLS_IMAGE", "mirror.example/busybox:1.36.1-musl")
    settings = OperatorSettings()
    assert settings.build_allow_privileged_steps and settings.step_tools_image == "mirror.example/busybox:1.36.1-musl"


def test_a_task_file_given_as_a_path_is_refused_with_what_to_write() -> None:
    refusal = task_file_refusal("acr-task.yaml", {}, HOST)
    assert refusal is not None and "looks like a path; taskFile holds the task file's contents" in refusal


class _Kube:
    """The API calls reading a run's log make: each container's log and the Secrets it names."""

    def __init__(self, logs: dict[str, str], secrets: dict[str, dict[str, str]]) -> None:
        self.logs, self.secrets = logs, secrets

    def pod_log(self, namespace: str, pod: str, container: str, *, limit_bytes: int | None = None) -> str | None:
        return self.logs.get(container)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        data = self.secrets.get(name) if kind == "Secret" else None
        return None if data is None else {"data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def test_the_kept_log_of_a_task_run_has_its_secret_values_redacted() -> None:
    from dockyard.builds.reconcile import RunReconciler

    text = "secrets:\n  - id: t\n    keyvault: k8s-secret:app-secrets/api-token\nsteps:\n  - id: s\n    cmd: busybox true\n"
    kube = _Kube({"step-s": "token is s3cr3t-v\n"}, {"app-secrets": {"api-token": "s3cr3t-v"}})
    reconciler = RunReconciler(kube, OperatorSettings(), logs=None, resolve_git=None)  # type: ignore[arg-type]
    body = {
        "metadata": {"name": "web-4", "namespace": "team", "uid": "uid-4"},
        "spec": {
            "build": {
                "registryRef": {"name": "hub"},
                "source": {"archive": {"url": "https://x/a.tgz"}},
                "taskFile": text,
            }
        },
        "status": {"steps": [{"id": "s", "type": "cmd", "status": "Succeeded"}]},
    }
    log = reconciler._read_log(body, {"metadata": {"name": "web-4-build-abcde"}})
    assert "token is " in log and "s3cr3t-v" not in log


# ---- every step field: translated, warned as acr-builder ignores it, or refused -------------------

BUILD = "steps:\n  - id: b\n    build: -t {{.Run.Registry}}/web:1 {flags}.\n{more}  - id: p\n    push: [{{{{.Run.Registry}}}}/web:1]\n"


def _build(flags: str = "", more: str = "") -> TaskPlan:
    text = BUILD.replace("{flags}", flags).replace("{more}", more).replace("{{{{", "{{").replace("}}}}", "}}")
    return _task(text)


def _kaniko(flags: str = "", more: str = "") -> list[str]:
    text = BUILD.replace("{flags}", flags).replace("{more}", more).replace("{{{{", "{{").replace("}}}}", "}}")
    task = _task(text)
    pod = TaskPod(
        owner=OWNER,
        registry_host=HOST,
        kaniko_image="kaniko",
        operator_image="dockyard",
        fetch=OciContext("dockyard/sources", "sha256:" + "b" * 64),
        steps=task.steps,
        timeout_seconds=3600,
        resources=RESOURCES,
    )
    return list(_containers(build_task_job(pod))["step-b"]["args"])


def test_labels_and_platform_become_kaniko_flags_and_flags_without_effect_are_accepted() -> None:
    args = _kaniko("--label team=web --label=tier=front --platform linux/arm64 --no-cache --pull -q --rm ")
    assert "--label=team=web" in args and "--label=tier=front" in args
    assert "--custom-platform=linux/arm64" in args
    assert not any(a.startswith("--cache") for a in args)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("--secret id=npm,src=npmrc ", "docker build flag --secret: BuildKit secrets are not translated"),
        ("--network host ", "docker build flag --network: Kaniko runs RUN instructions on the pod network"),
        ("--output type=tar,dest=x ", "docker build flag --output: the image goes where the task's push steps say"),
        ("--add-host a:1.2.3.4 ", "docker build flag --add-host: not translated (Kaniko builds the image)"),
        ("--frobnicate x ", "docker build flag --frobnicate: not translated"),
        ("--platform linux/amd64,linux/arm64 ", "Kaniko builds one platform per step"),
    ],
)
def test_docker_build_flags_that_do_not_map_are_refused_naming_the_step_and_flag(flags: str, expected: str) -> None:
    with pytest.raises(NotRunnable) as refused:
        _build(flags)
    assert str(refused.value).startswith("step b: ") and expected in str(refused.value)


def test_cache_enabled_is_kanikos_layer_cache_in_the_runs_registry_and_disabled_is_none() -> None:
    args = _kaniko(more="    cache: Enabled\n")
    assert "--cache=true" in args and f"--cache-repo={HOST}/web/cache" in args
    assert not any(a.startswith("--cache") for a in _kaniko(more="    cache: disabled\n"))
    # --no-cache wins over cache: enabled, as docker reads no cache then
    assert not any(a.startswith("--cache") for a in _kaniko("--no-cache ", more="    cache: enabled\n"))


def test_the_cache_repository_is_granted_to_the_run_on_both_shapes() -> None:
    from dockyard.builds.stepjobs.steps import cache_repositories as job_caches
    from dockyard.builds.taskrun import cache_repositories

    pod = _build(more="    cache: enabled\n")
    assert cache_repositories(pod.steps) == (f"{HOST}/web/cache",)
    jobs = _build(more="    cache: enabled\n    retries: 1\n")
    assert jobs.job_steps and job_caches(jobs.job_steps) == (f"{HOST}/web/cache",)
    # no tags: no cache, as acr-builder builds without buildx's cache then
    untagged = _task("steps:\n  - build: .\n    cache: enabled\n")
    assert cache_repositories(untagged.steps) == ()


def test_a_detached_build_step_is_refused() -> None:
    with pytest.raises(NotRunnable) as refused:
        _build(more="    detach: true\n")
    assert str(refused.value).startswith("step b: detach on a build step is not translated")


def test_cache_from_and_networks_run_with_a_warning() -> None:
    warned = _build("--cache-from {{.Run.Registry}}/web:0 ").plan.warnings
    assert any("step b: --cache-from has no effect" in w for w in warned)
    text = "networks:\n  - name: back\n  - name: front\nsteps:\n  - cmd: busybox true\n    network: back\n"
    task = _task(text)
    assert any(
        w.startswith("networks: back, front: every step runs on the cluster's pod network") for w in task.plan.warnings
    )


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (
            "push: [x]\n    retries: 2\n    repeat: 1\n    keep: true",
            "retries, repeat, keep have no effect on a push step",
        ),
        ("build: -t x .\n    entryPoint: sh\n    pull: true", "entryPoint, pull have no effect on a build step"),
        (
            "build: -t x .\n    cpus: '2'\n    user: '1000'",
            "user, cpus on a build step apply on ACR to the docker CLI container",
        ),
        ("cmd: busybox true\n    cache: enabled", "cache has no effect on a cmd step"),
        (
            "cmd: busybox true\n    cmdDownloadRetries: 3",
            "cmdDownloadRetries/cmdDownloadRetryDelay have no effect without `pull: true`",
        ),
        ("cmd: busybox true\n    retryOnErrors: [flaky]", "retryOnErrors has no effect without retries"),
    ],
)
def test_keys_acr_builder_ignores_for_the_step_type_are_warnings(step: str, expected: str) -> None:
    found = plan(f"steps:\n  - id: s\n    {step}\n", RUN)
    assert any(w.startswith("step 's' (line 2): ") and expected in w for w in found.warnings), found.warnings


def test_fields_that_do_what_they_say_raise_no_warning() -> None:
    text = (
        "steps:\n  - id: s\n    cmd: busybox true\n    pull: true\n    cmdDownloadRetries: 3\n"
        "    cmdDownloadRetryDelay: 2\n    keep: true\n    retries: 1\n    retryOnErrors: [flaky]\n"
        "  - id: b\n    build: -t x .\n    cache: enabled\n"
    )
    assert plan(text, RUN).warnings == ()
    task = _task(text)
    cmd = task.job_steps[0]
    assert cmd.retry_on_errors == ("flaky",) and cmd.retries == 1


def test_a_push_steps_retries_and_repeat_are_not_applied() -> None:
    text = "steps:\n  - build: -t x .\n    when: ['-']\n  - id: p\n    push: [x]\n    retries: 3\n    repeat: 2\n"
    task = _task(text)
    assert task.steps  # a chain: the push step's retries do not send it to a Job per step
    fanned = _task(text.replace("when: ['-']", "retries: 1"))
    (_, push) = fanned.job_steps
    assert (push.retries, push.repeat) == (0, 0)


def test_isolation_other_than_default_and_host_networks_are_refused() -> None:
    assert _cmd("steps:\n  - cmd: busybox true\n    isolation: default\n    network: acb_default_network\n")
    assert "isolation hyperv: Windows container isolation" in _refusal(
        "steps:\n  - cmd: busybox true\n    isolation: hyperv\n"
    )
    assert "network host: every step runs on the pod network" in _refusal(
        "steps:\n  - cmd: busybox true\n    network: host\n"
    )


def test_keep_and_pull_with_download_retries_run_as_the_kubelet_does() -> None:
    step = _cmd("steps:\n  - cmd: busybox true\n    keep: true\n    pull: true\n    cmdDownloadRetries: 3\n")
    assert step.always_pull and step.image == "busybox"


def test_a_build_arg_without_a_value_is_taken_from_the_steps_env_as_the_docker_cli_takes_it() -> None:
    text = (
        "env: [TASK_WIDE=t]\nsteps:\n  - id: b\n    build: -t x --build-arg VERSION --build-arg TASK_WIDE"
        " --build-arg UNSET --build-arg A=1 .\n    env: [VERSION=1.2]\n"
    )
    (build,) = _task(text).steps
    assert isinstance(build, BuildStep)
    assert build.build_args == ("VERSION=1.2", "TASK_WIDE=t", "A=1")


def test_privileged_on_a_build_step_is_a_warning_not_a_refusal() -> None:
    text = "steps:\n  - id: b\n    build: -t x .\n    privileged: true\n"
    task = _task(text)
    assert any("privileged on a build step applies on ACR to the docker CLI container" in w for w in task.plan.warnings)


def test_disable_working_directory_override_on_a_build_step_is_refused() -> None:
    text = "steps:\n  - id: b\n    build: -t x .\n    disableWorkingDirectoryOverride: true\n"
    assert _refusal(text).startswith("step b: disableWorkingDirectoryOverride on a build step is not translated")
