"""A planned step's ACR features as Kubernetes gives them: pure translations shared by every
execution shape (the single pod of `taskrun.py`, a Job per step), and the refusals of what has no
Kubernetes meaning, each naming the step and the cause.

Secrets (`secrets:` in the task file). acr-builder resolves `keyvault:` URLs from Azure Key Vault;
Dockyard has no Key Vault and reads Kubernetes Secrets instead, written in the same key:

    secrets:
      - id: token
        keyvault: k8s-secret:<secret-name>/<key>      # a Secret in the run's namespace

A Key Vault URL (or an identity-only secret) is refused with that form in the message. The value
never passes through the operator into a manifest: the file is planned with a placeholder per
secret, and wherever the placeholder lands (cmd arguments, entry point, env, build args) it becomes
the kubelet's `$(DOCKYARD_SECRET_<n>)` reference to an env var filled from the Secret
(`secretKeyRef`); anywhere else (an image name, a tag, a path) is refused, as is a template
function applied to the secret (`b64enc`, `upper`: the placeholder would be transformed, not the
value). Values are redacted from the kept log by the operator (`definition.secret_selectors`).

Volumes (`volumes:` with `secret:` files, `volumeMounts:` on cmd steps). The files' base64 content
(acr-builder decodes it into files) goes into the run's own Secret, the one that holds its docker
config, under `volume.<volume>.<file>` keys; each task volume is a pod volume projecting exactly its
keys, mounted read-only where the step says. A file whose content is a secret placeholder gets the
Secret's value there (the operator reads it, as it reads a git password). Mounts on build steps are
refused: on ACR they serve docker build flags (`--secret src=…`) that are not translated.

Host-shell operators. acr-builder runs `docker run … <cmd>` through the host's `/bin/sh -c`, so a
trailing `|| true` ignores the exit code and `> /dev/null` discards stdout. Both are kept with no
shell in the step's image (distroless images have none): a static BusyBox, copied from the tools
image into an emptyDir by an init container, runs the step's program as a supervisor
(`busybox sh -c <wrapper> dockyard <program> <args>`). The wrapper looks the program up in the
image's PATH itself (BusyBox would otherwise run its own applets for `echo`, `sh`…), so what runs
is the image's own file. Kubernetes replaces the image's ENTRYPOINT when it sets `command`, and the
ENTRYPOINT is not known before the pull: the program is `entryPoint`/`--entrypoint` when given,
else the first argument — and when that is not a file in the image's PATH the step fails (exit 127,
also under `|| true`) with a message saying to set `entryPoint`, rather than succeed silently.
Any other operator (`;`, `&&`, `|`, `2>`, `<`, a second command on a new line) is refused.

Docker CLI steps (`cmd: docker …`): there is no daemon. `docker pull IMAGE` becomes a pre-pull: a
container of that image (`imagePullPolicy: Always`, as docker pull fetches anew) whose command is
the tools' BusyBox `true`, so the step succeeds when the node has pulled the image, and fails as
`docker pull` fails when it cannot. `docker stop ID…` is accepted when every ID is a detached step
(`DockerStop` says which: the Job-per-step path stops their pods, `stepjobs/`); anything else is
refused.

docker build flags (a build step's text): `--label` and `--platform` become Kaniko's `--label` and
`--custom-platform` (one platform; Kaniko does not emulate, so RUN needs a node of that
architecture); `--no-cache`, `--pull`, `-q`, `--rm`, `--force-rm`, `--compress`, `--load`,
`--progress` change nothing Kaniko does (it keeps no local cache, always reads base images from
their registry and has no daemon); `--cache-from` is accepted with a warning (the legacy builder
only uses images already on the host, which a fresh ACR agent has not: a build cache is `cache:
enabled`); every other flag is refused naming it (BuildKit's `--secret`/`--ssh`, `--network`,
`--output`, `--push`, …). `cache: enabled` is Kaniko's layer cache in the run's registry,
`<registry>/<first tag's repository>/cache` (acr-builder keeps buildx's cache as the tag
`cache_<task>_<step>` of that repository); `cache: disabled` is Kaniko without a cache, as a build
on a fresh ACR agent. A detached build step is refused.

Other step keys: `keep` (no `--rm` on ACR, where CleanTask removes the container at the run's end
anyway) is what every step pod does: it is kept, with its log, until the run ends. `pull: true`
is `imagePullPolicy: Always`; its `cmdDownloadRetries`/`cmdDownloadRetryDelay` are the kubelet's
own pull retries with back-off, which last until the step's timeout (the run's on the single pod)
rather than a count. `network` is the pod network (every step is on it, as on ACR's default
network; `host`, `none`, `container:` are refused); a task's `networks` run with a warning, since
steps on different networks can reach each other here. `isolation` other than `default` is
Windows' and refused. `exitedWith`/`exitedWithout` and keys acr-builder ignores for a step's type
are warnings of the planner (`plan.unused_fields`).

docker run flags before the image: `-e/--env K=V`, `-w/--workdir`, `--entrypoint`, `-u/--user`
(numeric `uid[:gid]`), `-v/--volume <task volume>:<path>[:ro]`, `--cpus`, `-m/--memory`, `--pull
always`, `--privileged`, `--network` (anything but `host`/`none`: every step shares the pod's
network), `--name` (the step's own name on ACR), and `--rm -i -t` (no effect here) are translated;
every other flag is refused naming it, among them `--env-file` (a file on ACR's host), `-e K`
without a value (the host's environment), `-d` (use `detach:`), `-p/--expose` (a service for later
steps is `detach:`), and bind mounts of host paths.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from dockyard.builds.taskfile.model import Secret, Volume
from dockyard.builds.taskfile.plan import Plan, PlannedStep

SECRET_FORM: Final = "k8s-secret:"
SECRET_ENV_PREFIX: Final = "DOCKYARD_SECRET_"
SECRET_PLACEHOLDER: Final = "dockyardsecret{index}z7c1e"
_PLACEHOLDER = re.compile(r"dockyardsecret(\d+)z7c1e")
VOLUME_KEY_PREFIX: Final = "volume."
TOOLS_DIR: Final = "/dockyard/tools"
BUSYBOX: Final = f"{TOOLS_DIR}/busybox"
DOCKER_CLI_IMAGES: Final = frozenset({"docker", "docker-cli", "cli"})
DEFAULT_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_SECRET_NAME = re.compile(r"\A[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\Z")
_SECRET_KEY = re.compile(r"\A[-._a-zA-Z0-9]{1,253}\Z")
_FD_REDIRECT = re.compile(r"(?:^|[\s;|&])\d+>")
_USER = re.compile(r"\A(\d+)(?::(\d+))?\Z")
_MEMORY = re.compile(r"\A(\d+)([bkmgBKMG]?)\Z")


class NotRunnable(ValueError):
    """The plan cannot run as Kubernetes work; the message names the step (or the task-file key)
    and the cause."""


def refuse(step: PlannedStep, why: str) -> NotRunnable:
    return NotRunnable(f"step {step.id}: {why}")


# -- secrets ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SecretRef:
    """A task-file secret read from a Kubernetes Secret: `{{.Secrets.<id>}}` renders as
    `placeholder`, which containers see as `$(variable)`."""

    id: str
    secret: str
    key: str
    index: int

    @property
    def placeholder(self) -> str:
        return SECRET_PLACEHOLDER.format(index=self.index)

    @property
    def variable(self) -> str:
        return f"{SECRET_ENV_PREFIX}{self.index}"


def secret_refs(secrets: tuple[Secret, ...]) -> tuple[SecretRef, ...]:
    """The Kubernetes Secret behind each declared secret, or NotRunnable for a Key Vault one."""
    refs = []
    for index, secret in enumerate(secrets):
        where = f"secrets: {secret.id}"
        if not secret.keyvault.startswith(SECRET_FORM):
            given = f"keyvault {secret.keyvault!r}" if secret.keyvault else "a managed identity (clientID)"
            raise NotRunnable(
                f"{where}: {given} is Azure Key Vault's, which Dockyard does not read; put the value in a "
                f"Kubernetes Secret in the run's namespace and write `keyvault: {SECRET_FORM}<secret-name>/<key>`"
            )
        name, slash, key = secret.keyvault.removeprefix(SECRET_FORM).partition("/")
        if not slash or not _SECRET_NAME.match(name) or not _SECRET_KEY.match(key):
            raise NotRunnable(
                f"{where}: {secret.keyvault!r} is not `{SECRET_FORM}<secret-name>/<key>` (a Secret name and "
                "one of its keys)"
            )
        refs.append(SecretRef(secret.id, name, key, index))
    return tuple(refs)


def placeholders(refs: tuple[SecretRef, ...]) -> dict[str, str]:
    """`.Secrets` for planning: each id → its placeholder."""
    return {ref.id: ref.placeholder for ref in refs}


def secrets_in(text: str, refs: tuple[SecretRef, ...]) -> tuple[SecretRef, ...]:
    found = {int(m.group(1)) for m in _PLACEHOLDER.finditer(text)}
    return tuple(ref for ref in refs if ref.index in found)


def kubelet_text(text: str) -> str:
    """Literal text for container args/env values with each secret placeholder made the kubelet's
    `$(DOCKYARD_SECRET_<n>)` (other `$(` escaped, so nothing else is expanded)."""
    escaped = text.replace("$(", "$$(")
    return _PLACEHOLDER.sub(lambda m: f"$({SECRET_ENV_PREFIX}{m.group(1)})", escaped)


def check_no_secret(step: PlannedStep, what: str, text: str | None) -> None:
    if text and _PLACEHOLDER.search(text):
        raise refuse(
            step,
            f"a secret is used in {what}: secrets reach steps only in cmd arguments, entryPoint, env and build args",
        )


def check_secrets_whole(text: str, rendered: str, refs: tuple[SecretRef, ...]) -> None:
    """Each secret the file names must reach the rendered text as a whole: a template function
    applied to it would transform the placeholder, not the value."""
    for ref in refs:
        named = re.search(r"\.Secrets\." + re.escape(ref.id) + r"\b", text) or re.search(
            r"index\s+\.Secrets\s+\"" + re.escape(ref.id) + '"', text
        )
        if named and ref.placeholder not in rendered:
            raise NotRunnable(
                f"secrets: {ref.id} is changed by a template function before use; Dockyard passes a secret to "
                "the container as it is in the Secret (store the transformed value there instead)"
            )


def secret_selectors(refs: tuple[SecretRef, ...]) -> list[tuple[str, str]]:
    return [(ref.secret, ref.key) for ref in refs]


# -- volumes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskVolume:
    """A task-file volume of secret files, held in the run's Secret under `volume.<name>.<file>`."""

    name: str
    pod_volume: str
    files: tuple[tuple[str, str], ...]
    """(file name, base64 content as rendered; may be a secret placeholder)."""

    def key(self, file_name: str) -> str:
        return f"{VOLUME_KEY_PREFIX}{self.name}.{file_name}"


@dataclass(frozen=True)
class Mount:
    pod_volume: str
    path: str


def task_volumes(volumes: tuple[Volume, ...]) -> tuple[TaskVolume, ...]:
    return tuple(
        TaskVolume(volume.name, f"task-volume-{index}", tuple(sorted((volume.secret or {}).items())))
        for index, volume in enumerate(volumes)
    )


def volume_files(
    volumes: tuple[TaskVolume, ...], values: Mapping[str, str], refs: tuple[SecretRef, ...]
) -> dict[str, str]:
    """The run Secret's `data` for the volumes: base64 per key, secret placeholders replaced with
    the Secrets' values (`values`: secret id → value); NotRunnable when a file is not base64."""
    by_index = {ref.index: values.get(ref.id, "") for ref in refs}
    data = {}
    for volume in volumes:
        for file_name, content in volume.files:
            text = _PLACEHOLDER.sub(lambda m: by_index.get(int(m.group(1)), ""), content)
            try:
                raw = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                raise NotRunnable(
                    f"volumes: {volume.name}: file {file_name} is not base64 (acr-builder decodes it into the file)"
                ) from None
            data[volume.key(file_name)] = base64.b64encode(raw).decode()
    return data


def step_mounts(
    step: PlannedStep, volumes: tuple[TaskVolume, ...], extra: tuple[tuple[str, str], ...] = ()
) -> tuple[Mount, ...]:
    """The step's `volumeMounts` (and `-v <volume>:<path>` flags) as pod volume mounts."""
    by_name = {volume.name: volume for volume in volumes}
    mounts = []
    for name, path in (*((m.name, m.mount_path) for m in step.volume_mounts), *extra):
        check_no_secret(step, "a mount path", path)
        if name not in by_name:
            raise refuse(step, f"volume {name} is not a volume of the task file")
        if not path.startswith("/"):
            raise refuse(step, f"mount path {path!r} must be absolute")
        if path == "/workspace" or path.startswith("/dockyard"):
            raise refuse(step, f"mount path {path} is the run's own")
        mounts.append(Mount(by_name[name].pod_volume, path))
    return tuple(mounts)


# -- host-shell operators --------------------------------------------------------------------------


@dataclass(frozen=True)
class ShellEffects:
    ignore_exit_code: bool = False
    discard_stdout: bool = False

    @property
    def wrapped(self) -> bool:
        return self.ignore_exit_code or self.discard_stdout


_IGNORE: Final = "|| true"
_DISCARD: Final = frozenset({"> /dev/null", ">> /dev/null", "1> /dev/null"})


def shell_effects(step: PlannedStep) -> ShellEffects:
    """`|| true` and `> /dev/null` after the command; NotRunnable for any other operator."""
    if step.command and _FD_REDIRECT.search(step.command):
        raise refuse(
            step, "a file-descriptor redirection (like 2> or 2>&1) acts on ACR's host shell and is not translated"
        )
    operators = list(step.shell_operators)
    discard = ignore = False
    if operators and operators[0] in _DISCARD:
        discard = True
        operators.pop(0)
    if operators and operators[0] == _IGNORE:
        ignore = True
        operators.pop(0)
        if operators and operators[0] in _DISCARD:  # `cmd || true > /dev/null` silences `true`
            operators.pop(0)
    if operators:
        raise refuse(
            step,
            f"the host-shell operator {operators[0]!r} is not translated (only `|| true` and `> /dev/null` "
            "after the command are): run the commands in a shell inside the image, e.g. sh -c '…'",
        )
    return ShellEffects(ignore, discard)


def wrapper_script(effects: ShellEffects) -> str:
    """The BusyBox `sh -c` text that runs `"$@"` (program, arguments) with the effects; no `$(`
    (the kubelet would expand it)."""
    lines = [
        "set -f",
        'p="$1"; shift',
        'case "$p" in */*) ;; *)',
        f'  f=""; IFS=:; for d in ${{PATH:-{DEFAULT_PATH}}}; do',
        '    if [ -f "$d/$p" ] && [ -x "$d/$p" ]; then f="$d/$p"; break; fi',
        "  done; unset IFS",
        '  if [ -z "$f" ]; then',
        "    echo \"dockyard: $p is not a program in the image's PATH (without entryPoint the step's first word"
        ' runs as the program: set entryPoint if the image has an ENTRYPOINT)" >&2',
        "    exit 127",
        "  fi",
        '  p="$f";;',
        "esac",
        '"$p" "$@"' + (" >/dev/null" if effects.discard_stdout else ""),
        "c=$?",
    ]
    if effects.ignore_exit_code:
        lines.append('if [ "$c" -ne 0 ]; then echo "dockyard: exit code $c ignored (|| true)" >&2; fi')
        lines.append("exit 0")
    else:
        lines.append('exit "$c"')
    return "\n".join(lines)


def wrapped_command(words: tuple[str, ...], effects: ShellEffects) -> tuple[str, ...]:
    return (BUSYBOX, "sh", "-c", wrapper_script(effects), "dockyard", *words)


# -- the Docker CLI ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DockerPull:
    image: str


@dataclass(frozen=True)
class DockerStop:
    """`docker stop <ids>`: the detached steps to stop (the Job-per-step path stops them)."""

    step_ids: tuple[str, ...]


def is_docker_cli(image: str) -> bool:
    name = image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
    return name in DOCKER_CLI_IMAGES


def docker_cli(step: PlannedStep, detached: frozenset[str]) -> DockerPull | DockerStop:
    """A `cmd: docker …` step that maps: `docker pull IMAGE`, `docker stop <detached step>…`."""
    args = list(step.args)
    verb = args.pop(0) if args else ""
    if verb == "pull":
        images = [a for a in args if a not in ("-q", "--quiet")]
        if len(images) == 1 and not images[0].startswith("-"):
            check_no_secret(step, "an image name", images[0])
            return DockerPull(images[0])
        raise refuse(step, f"docker pull {' '.join(args)}: only `docker pull [-q] IMAGE` is translated")
    if verb == "stop":
        ids = tuple(a for a in args if not a.startswith("-"))
        if len(ids) != len(args) or not ids:
            raise refuse(step, "docker stop: only `docker stop <detached step id>…` is translated")
        missing = [i for i in ids if i not in detached]
        if missing:
            raise refuse(step, f"docker stop {' '.join(missing)}: not a detached step of this task file")
        return DockerStop(ids)
    shown = f"docker {verb}".strip()
    raise refuse(
        step,
        f"{shown}: Docker CLI steps need a Docker daemon, which Kubernetes does not give "
        "(only `docker pull` and `docker stop <detached step>` are translated)",
    )


# -- docker run flags ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunOptions:
    """A cmd step's container settings: the step's keys, then its docker run flags (which come
    after them on ACR's command line, so they win)."""

    env: tuple[str, ...]
    working_directory: str | None
    entry_point: str | None
    user: int | None
    group: int | None
    privileged: bool
    always_pull: bool
    cpus: str | None
    memory: str | None
    volumes: tuple[tuple[str, str], ...]
    """(task volume, path) from `-v` flags."""


_IGNORED_FLAGS: Final = frozenset({"--rm", "-i", "-t", "-it", "-ti", "--interactive", "--tty"})
_VALUE_FLAGS: Final = frozenset(
    {"-e", "--env", "-w", "--workdir", "--entrypoint", "-u", "--user", "-v", "--volume", "--cpus", "-m",
     "--memory", "--pull", "--network", "--net", "--name"}
)  # fmt: skip
_WHY_NOT: Final = {
    "--env-file": "reads a file on ACR's host",
    "-d": "use `detach: true` for a service (Job per step)",
    "--detach": "use `detach: true` for a service (Job per step)",
    "-p": "publishes on ACR's host; a service for later steps is `detach: true` (Job per step)",
    "--publish": "publishes on ACR's host; a service for later steps is `detach: true` (Job per step)",
    "--expose": "a service for later steps is `detach: true` (Job per step)",
    "--mount": "only `-v <task volume>:<path>` mounts are translated",
}


def _user(step: PlannedStep, text: str) -> tuple[int, int | None]:
    match = _USER.match(text)
    if not match:
        raise refuse(step, f"user {text!r}: only a numeric uid[:gid] maps to Kubernetes")
    return int(match.group(1)), int(match.group(2)) if match.group(2) else None


def _memory(step: PlannedStep, text: str) -> str:
    match = _MEMORY.match(text)
    if not match:
        raise refuse(step, f"--memory {text!r} is not a docker memory size")
    unit = {"": "", "b": "", "k": "Ki", "m": "Mi", "g": "Gi"}[match.group(2).lower()]
    return f"{match.group(1)}{unit}"


def _network(step: PlannedStep, network: str) -> None:
    if network in ("host", "none") or network.startswith("container:"):
        raise refuse(
            step, f"network {network}: every step runs on the pod network (ACR's default network), not {network}"
        )


def run_options(step: PlannedStep, volumes: tuple[TaskVolume, ...]) -> RunOptions:
    """The step's keys and docker run flags as container settings; NotRunnable naming a flag that
    does not map."""
    env = list(step.container_env)
    workdir = step.container_working_directory
    entry = step.entry_point
    user, group = _user(step, step.user) if step.user else (None, None)
    privileged, always_pull = step.privileged, step.pull
    cpus, memory = step.cpus, None
    mounts: list[tuple[str, str]] = []
    if step.network:
        _network(step, step.network)
    if step.isolation and step.isolation.lower() != "default":
        # docker on Linux refuses any isolation but `default` (ACR's Linux agents fail the step)
        raise refuse(step, f"isolation {step.isolation}: Windows container isolation has no Kubernetes meaning here")
    if step.ports or step.expose:
        raise refuse(step, f"ports/expose: {_WHY_NOT['--expose']}")
    flags = list(step.run_flags)
    while flags:
        flag = flags.pop(0)
        name, eq, value = flag.partition("=")
        if name in _IGNORED_FLAGS and not eq:
            continue
        if name == "--privileged" and not eq:
            privileged = True
            continue
        if name not in _VALUE_FLAGS:
            raise refuse(step, f"docker run flag {name}: {_WHY_NOT.get(name, 'not translated')}")
        if not eq:
            if not flags:
                raise refuse(step, f"docker run flag {flag} has no value")
            value = flags.pop(0)
        if name in ("-e", "--env"):
            if "=" not in value:
                raise refuse(step, f"{name} {value}: a variable without a value takes it from ACR's host environment")
            env.append(value)
        elif name in ("-w", "--workdir"):
            workdir = value
        elif name == "--entrypoint":
            entry = value
        elif name in ("-u", "--user"):
            user, group = _user(step, value)
        elif name in ("-v", "--volume"):
            source, _, rest = value.partition(":")
            path, _, mode = rest.partition(":")
            if source.startswith(("/", ".")) or not path or mode not in ("", "ro"):
                raise refuse(
                    step, f"{name} {value}: only `-v <task volume>:<path>[:ro]` mounts a volume here (no host paths)"
                )
            mounts.append((source, path))
        elif name == "--cpus":
            cpus = value
        elif name in ("-m", "--memory"):
            memory = _memory(step, value)
        elif name == "--pull":
            if value not in ("always", "missing", "never"):
                raise refuse(step, f"--pull {value}: not a docker pull policy")
            always_pull = always_pull or value == "always"
        elif name in ("--network", "--net"):
            _network(step, value)
        # --name: the step's container name on ACR; the pod names its containers itself
    for what, text in (("the working directory", workdir), ("user", step.user)):
        check_no_secret(step, what, text)
    return RunOptions(tuple(env), workdir, entry, user, group, privileged, always_pull, cpus, memory, tuple(mounts))


# -- docker build flags -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildOptions:
    """A build step's docker build flags as Kaniko takes them."""

    labels: tuple[str, ...] = ()
    platform: str | None = None
    no_cache: bool = False


_BUILD_NO_EFFECT: Final = frozenset(
    {"--no-cache", "--pull", "-q", "--quiet", "--rm", "--force-rm", "--compress", "--load",
     "--disable-content-trust"}
)  # fmt: skip
_BUILD_WHY_NOT: Final = {
    "--secret": "BuildKit secrets are not translated: pass the secret as a build argument ({{.Secrets.id}})",
    "--ssh": "BuildKit SSH forwarding is not translated",
    "--network": "Kaniko runs RUN instructions on the pod network",
    "--output": "the image goes where the task's push steps say",
    "-o": "the image goes where the task's push steps say",
    "--push": "the image goes where the task's push steps say",
    "--cache-to": "a build cache is `cache: enabled`",
    "--iidfile": "writes a file on ACR's host",
    "--metadata-file": "writes a file on ACR's host",
}


def build_options(step: PlannedStep) -> BuildOptions:
    """The build flags Kaniko maps; NotRunnable naming the first one it does not."""
    labels: list[str] = []
    platform: str | None = None
    no_cache = False
    flags = list(step.build_flags)
    while flags:
        flag = flags.pop(0)
        name, eq, value = flag.partition("=")
        if name in _BUILD_NO_EFFECT:
            if name == "--no-cache":
                no_cache = value.lower() not in ("false", "0") if eq else True
            continue
        if not eq:
            value = flags.pop(0) if flags else ""
        if name == "--label":
            labels.append(value)
        elif name == "--platform":
            if "," in value or not value:
                raise refuse(step, f"--platform {value}: Kaniko builds one platform per step")
            platform = value
        elif name in ("--progress", "--cache-from"):
            continue  # output style; --cache-from: a warning (`translation_warnings`)
        else:
            raise refuse(
                step,
                f"docker build flag {name}: {_BUILD_WHY_NOT.get(name, 'not translated (Kaniko builds the image)')}",
            )
    check_no_secret(step, "a label or platform", " ".join((*labels, platform or "")))
    return BuildOptions(tuple(labels), platform, no_cache)


def translation_warnings(plan: Plan) -> tuple[str, ...]:
    """What runs, but differs from ACR in a way the user should hear about."""
    notes = []
    if plan.networks:
        names = ", ".join(n.name for n in plan.networks)
        notes.append(
            f"networks: {names}: every step runs on the cluster's pod network; steps on different networks "
            "can reach each other, and driver/ipv6/skipCreation do not apply"
        )
    for step in plan.steps:
        if any(f == "--cache-from" or f.startswith("--cache-from=") for f in step.build_flags):
            notes.append(
                f"step {step.id}: --cache-from has no effect (Kaniko has no local images; a layer cache is "
                "`cache: enabled`)"
            )
    return tuple(notes)
