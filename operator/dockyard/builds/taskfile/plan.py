"""A task file → a plan: what acr-builder would run, in which order, or why it would refuse.

`plan(text, run, values, secrets)` follows `acb exec` (cmd/acb/commands/exec/exec.go) step by step:
comment lines dropped; for `version >= "v1.1.0"` the `alias:` block cut out, rendered and applied;
the text rendered as a Go template with `.Run`, `.Build.ID`, `.Values`, `.ValuesJSON`, `.RunJSON`
and `.Secrets` (rendered once without secrets to find the declared `secrets:` ids, as acr-builder
does before resolving them); the YAML decoded with go-yaml's rules; then acr-builder's checks and
defaults in its own order (graph/task.go Validate, initialize; graph/dag.go NewDagFromTask), so the
first error reported is the one acr-builder reports:

- task: secrets (id, no spaces, `keyvault` or `clientID`, a UUID `clientID`, unique), volumes (name
  `^[a-zA-Z0-9-_]+$`, unique, a non-empty `secret` map of well-formed file names), every
  `volumeMounts` name a volume; `version` in {1.0-preview-1, v1.0.0, v1.1.0} (lower-cased,
  default v1.0.0);
- step defaults: `timeout` ≤ 0 → `stepTimeout` (≤ 0 → 600); `retryDelay` ≤ 0 → 5; task `env`
  (entries split on commas) appended for the keys the step does not set; id `acb_step_<index>`;
  task `workingDirectory` for steps without one; push names `:latest`-normalised and de-duplicated;
- per step in file order: `retries`/`repeat` ≥ 0, exactly one of build/cmd/push (`push: []` is
  none), no spaces in the id, mounts on build/cmd only with unique paths, `-` alone in `when`, no
  self-reference, `cache` enabled/disabled; `acb_root` reserved; unique ids; `when` ids defined
  earlier in the file.

Dependencies: no `when` → the previous step (none for the first), `["-"]` → none, else the listed
ids. A `when` naming an id twice is refused: acr-builder would count the edge twice and never start
the step. Unknown keys, `exitedWith`/`exitedWithout` (parsed, never used), keys acr-builder takes
no notice of for the step's type (`unused_fields`: `retries` on a push step, `entryPoint` on a
build step, …) and declared secrets with no value are warnings. `cmd` text is parsed with POSIX
shell rules into docker-run flags, image and arguments, and host-shell operators are recorded;
build steps into tags, Dockerfile, context, build args and target with docker's flag rules.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

from pydantic import ConfigDict
from pydantic.alias_generators import to_camel

from dockyard.builds.taskfile import aliases as alias_rules
from dockyard.builds.taskfile.arguments import container_env, container_working_directory, parse_build, parse_cmd
from dockyard.builds.taskfile.model import DecodeError, Model, Mount, Network, Secret, Step, Task, Volume, decode_task
from dockyard.builds.taskfile.render import RenderError, render
from dockyard.builds.template import DATE_LAYOUT, RunVariables

DEFAULT_VERSION: Final = "v1.0.0"
VALID_VERSIONS: Final = frozenset({"1.0-preview-1", "v1.0.0", "v1.1.0"})
DEFAULT_STEP_TIMEOUT: Final = 600
DEFAULT_RETRY_DELAY: Final = 5
ROOT_ID: Final = "acb_root"
IMMEDIATE: Final = "-"
BUILDKIT_ENV: Final = "DOCKER_BUILDKIT=1"

StepType = Literal["build", "push", "cmd"]


class PlanError(ValueError):
    """acr-builder would refuse the task file; the message names the step and the cause."""

    def __init__(self, message: str, warnings: tuple[str, ...] = (), version: str | None = None) -> None:
        super().__init__(message)
        self.warnings = warnings
        self.version = version
        """The task's version once the file was parsed (None when it was refused before)."""


class PlannedStep(Model):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True)

    id: str
    type: StepType
    depends_on: tuple[str, ...]
    line: int
    timeout: int
    retries: int
    retry_delay: int
    repeat: int
    ignore_errors: bool
    detach: bool
    env: tuple[str, ...]
    start_delay: int = 0
    working_directory: str | None = None
    disable_working_directory_override: bool = False
    entry_point: str | None = None
    user: str | None = None
    privileged: bool = False
    keep: bool = False
    network: str | None = None
    isolation: str | None = None
    cpus: str | None = None
    ports: tuple[str, ...] = ()
    expose: tuple[str, ...] = ()
    pull: bool = False
    retry_on_errors: tuple[str, ...] = ()
    volume_mounts: tuple[Mount, ...] = ()
    # build
    tags: tuple[str, ...] = ()
    dockerfile: str | None = None
    context: str | None = None
    build_args: tuple[str, ...] = ()
    target: str | None = None
    cache: bool = False
    build_flags: tuple[str, ...] = ()
    uses_buildkit: bool = False
    # push
    images: tuple[str, ...] = ()
    # cmd
    image: str | None = None
    args: tuple[str, ...] = ()
    run_flags: tuple[str, ...] = ()
    shell_operators: tuple[str, ...] = ()
    command: str | None = None

    @property
    def container_env(self) -> tuple[str, ...]:
        """The environment the step's container gets on ACR: HOME=/acb/home, then `env` after the
        host shell's quote removal (`K='v w'` is `K=v w`)."""
        return container_env(self.env)[0]

    @property
    def container_working_directory(self) -> str | None:
        """`--workdir`: None with disableWorkingDirectoryOverride (the image's WORKDIR)."""
        if self.disable_working_directory_override:
            return None
        return container_working_directory(self.working_directory)

    def as_json(self) -> dict[str, Any]:
        """The step in `plan --json`: the common fields, then the type's own."""
        common = [
            "id", "type", "dependsOn", "timeout", "retries", "retryDelay", "repeat", "ignoreErrors", "detach",
            "env", "startDelay", "workingDirectory", "disableWorkingDirectoryOverride", "entryPoint", "user",
            "privileged", "keep", "network", "isolation", "cpus", "ports", "expose", "retryOnErrors", "volumeMounts",
        ]  # fmt: skip
        own = {
            "build": ["tags", "dockerfile", "context", "buildArgs", "target", "cache", "buildFlags", "usesBuildkit"],
            "push": ["images"],
            "cmd": ["image", "args", "runFlags", "shellOperators", "command", "pull"],
        }[self.type]
        data = self.model_dump(by_alias=True, mode="json")
        data["volumeMounts"] = [{"name": m.name, "mountPath": m.mount_path} for m in self.volume_mounts]
        first = ["id", "type", "dependsOn"]
        ordered = first + own[:5] + [k for k in common if k not in first] + own[5:]
        return {key: data[key] for key in ordered}


@dataclass(frozen=True)
class Plan:
    version: str
    steps: tuple[PlannedStep, ...]
    warnings: tuple[str, ...]
    secrets: tuple[Secret, ...] = ()
    volumes: tuple[Volume, ...] = ()
    networks: tuple[Network, ...] = ()
    rendered: str = ""

    @property
    def stages(self) -> tuple[tuple[str, ...], ...]:
        """Steps grouped by the earliest wave they can start in: a step runs after all its
        dependencies, so the steps of one stage may run in parallel."""
        level: dict[str, int] = {}
        for step in self.steps:
            level[step.id] = 1 + max((level[d] for d in step.depends_on), default=-1)
        waves: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
        for step in self.steps:
            waves[level[step.id]].append(step.id)
        return tuple(tuple(w) for w in waves)

    def as_json(self) -> dict[str, Any]:
        return {
            "valid": True,
            "error": None,
            "version": self.version,
            "warnings": list(self.warnings),
            "steps": [s.as_json() for s in self.steps],
        }


# ---------------------------------------------------------------------------------------- render data


def registry_name(registry: str) -> str:
    """acr-builder's parseRegistryName: the text before the first dot."""
    return registry.split(".", 1)[0]


def _go_json(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_SHELL_UNSAFE = re.compile(r"[^\w_^@=+%,:./-]")


def shell_quote(text: str) -> str:
    if not text:
        return "''"
    if _SHELL_UNSAFE.search(text):
        return "'" + text.replace("'", "'\"'\"'") + "'"
    return text


def run_start(run: RunVariables) -> datetime | None:
    """The run's start time from `.Run.Date`: what Sprig's `now` returns while acr-builder renders."""
    try:
        return datetime.strptime(run.Date, DATE_LAYOUT).replace(tzinfo=UTC)
    except ValueError:
        return None


def render_data(run: RunVariables, values: Mapping[str, Any], secrets: Mapping[str, str]) -> dict[str, Any]:
    """What a task file's templates see (templating/base_render_options.go)."""
    run_map = {
        "ID": run.ID,
        "Commit": run.Commit,
        "Repository": run.Repository,
        "Branch": run.Branch,
        "GitTag": run.GitTag,
        "TriggeredBy": run.TriggeredBy,
        "Registry": run.Registry,
        "RegistryName": registry_name(run.Registry),
        "Date": run.Date,
        "SharedVolume": run.SharedVolume,
        "OS": run.OS,
        "OSVersion": run.OSVersion,
        "Architecture": run.Architecture,
        "TaskName": run.TaskName,
    }
    return {
        "Build": {"ID": run.ID},
        "Run": run_map,
        "Values": dict(values),
        "ValuesJSON": shell_quote(_go_json(dict(values))),
        "RunJSON": shell_quote(_go_json(run_map)),
        "Secrets": dict(secrets),
    }


# ---------------------------------------------------------------------------------------- the plan


_LINE = re.compile(r"\bline (\d+)\b")


@dataclass
class _Notes:
    """Warnings so far, and where the current text's lines come from in the file: comment lines and
    the alias block are cut out before rendering, so a line number of the rendered text is mapped
    back to the file's (while templates keep the line count; else it is named as rendered)."""

    warnings: list[str] = field(default_factory=list)
    origin: list[int] | None = None
    now: datetime | None = None
    version: str | None = None

    def fail(self, message: str) -> PlanError:
        return PlanError(message, tuple(self.warnings), self.version)

    def follow(self, before: str, after: str) -> None:
        if self.origin is not None and before.count("\n") != after.count("\n"):
            self.origin = None

    def line(self, number: int) -> str:
        if self.origin is not None and 0 < number <= len(self.origin):
            return f"line {self.origin[number - 1]}"
        return f"line {number} of the rendered file"

    def relocate(self, message: str) -> str:
        return _LINE.sub(lambda m: self.line(int(m.group(1))), message)

    def who(self, step: Step, step_id: str | None = None) -> str:
        name = step_id or step.id or f"acb_step_{step.index}"
        return f"step {name!r} ({self.line(step.line)})"

    def file_line(self, number: int) -> int:
        if self.origin is not None and 0 < number <= len(self.origin):
            return self.origin[number - 1]
        return number


def _render(text: str, data: Mapping[str, Any], notes: _Notes, what: str) -> str:
    try:
        return render(text, data, now=notes.now)
    except RenderError as error:
        raise notes.fail(f"{what}: {notes.relocate(str(error))}") from None


def _decode(rendered: str, notes: _Notes) -> tuple[Task, list[str]]:
    try:
        task, warnings = decode_task(rendered)
    except DecodeError as error:
        notes.warnings.extend(notes.relocate(w) for w in error.warnings)
        raise notes.fail(f"invalid task file: {notes.relocate(str(error))}") from None
    return task, [notes.relocate(w) for w in warnings]


def plan(
    text: str,
    run: RunVariables,
    values: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str] | None = None,
    *,
    read_alias_source: alias_rules.AliasSourceReader | None = None,
) -> Plan:
    """The plan acr-builder would execute for this task file, or PlanError with its refusal."""
    values = values or {}
    secrets = secrets or {}
    if _has_map(values):
        # go-yaml reads nested maps as map[interface{}]interface{}, which acr-builder's .ValuesJSON
        # cannot serialise: every such run fails before rendering
        raise PlanError("values: failed to serialize Values: acr-builder cannot use nested maps in values")
    lines = text.split("\n")
    notes = _Notes(
        origin=[i + 1 for i, line in enumerate(lines) if not alias_rules.is_comment_line(line)],
        now=run_start(run),
    )
    text = alias_rules.strip_comments(text)
    aliases: alias_rules.Aliases | None = None
    if alias_rules.uses_aliases(alias_rules.find_version(text)):
        block, rest, rest_indexes = alias_rules.split_alias_block(text)
        origin = notes.origin or []
        block_origin = [origin[i] for i in range(len(origin)) if i not in set(rest_indexes)]
        notes.origin = block_origin
        rendered_block = _render(block, render_data(run, values, {}), notes, "alias block") if block else ""
        notes.origin = [origin[i] for i in rest_indexes]
        try:
            aliases = alias_rules.load_aliases(rendered_block, read_alias_source)
        except alias_rules.AliasError as error:
            raise notes.fail(f"alias: {error}") from None
        text = alias_rules.expand(rest, aliases)
        notes.follow(rest, text)

    warnings: list[str] = []
    if not text:
        task = Task()
        rendered = ""
    else:
        resolved = _secret_values(text, run, values, secrets, notes)
        rendered = _render(text, render_data(run, values, resolved), notes, "render")
        if not rendered:
            raise notes.fail("render: rendered template was empty")
        notes.follow(text, rendered)
        task, warnings = _decode(rendered, notes)
    notes.warnings.extend(warnings)
    return _plan_task(task, aliases, notes, rendered)


def _has_map(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(isinstance(v, Mapping) or _has_map(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(isinstance(v, Mapping) or _has_map(v) for v in value)
    return False


def _secret_values(
    text: str, run: RunVariables, values: Mapping[str, Any], given: Mapping[str, str], notes: _Notes
) -> dict[str, str]:
    """`.Secrets`: the declared `secrets:` ids with their values (acb renders once without them to
    find the declarations). Values for undeclared ids are not visible, as on ACR."""
    if "secrets" not in text:
        for secret_id in given:
            notes.warnings.append(f"secret {secret_id!r} is not declared under secrets: and is not visible to the file")
        return {}
    first = _render(text, render_data(run, values, {}), notes, "render (secrets pass)")
    if not first:
        raise notes.fail("render: rendered template was empty")
    origin = notes.origin
    notes.follow(text, first)
    task, _ = _decode(first, notes)
    notes.origin = origin
    _check_secrets(task, notes)
    declared = [s.id for s in task.secrets if s is not None]
    for secret_id in declared:
        if secret_id not in given:
            notes.warnings.append(f"secret {secret_id!r} has no value in this plan: it renders as an empty string")
    for secret_id in given:
        if secret_id not in declared:
            notes.warnings.append(f"secret {secret_id!r} is not declared under secrets: and is not visible to the file")
    return {secret_id: given.get(secret_id, "") for secret_id in declared}


_UUID = re.compile(r"\A[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\Z")
_VOLUME_NAME = re.compile(r"\A[a-zA-Z0-9-_]+\Z")
_SECRET_FILE = re.compile(r"\A[a-zA-Z0-9-_.]+\Z")


def _has_space(text: str) -> bool:
    return any(c.isspace() for c in text)


def _check_secrets(task: Task, notes: _Notes) -> None:
    seen: set[str] = set()
    for secret in task.secrets:
        if secret is None:
            continue
        problem = None
        if not secret.id:
            raise notes.fail("secrets: secret is missing an ID as well as auto-generated ID")
        if _has_space(secret.id):
            problem = "secret ID cannot contain spaces"
        elif not secret.keyvault and not secret.aad_resource_id:
            problem = (
                "secret should contain either keyvault property for vault secret, "
                "or msi clientID/aadResourceId for msi authentication"
            )
        elif secret.client_id and not _UUID.match(secret.client_id):
            problem = "msi client ID is not a valid guid"
        if problem:
            raise notes.fail(f"secrets: failed to validate secret with ID: {secret.id}: {problem}")
        if secret.id in seen:
            raise notes.fail(f"secrets: duplicate secret found with ID: {secret.id}")
        seen.add(secret.id)


def _check_volumes(task: Task, notes: _Notes) -> None:
    names: set[str] = set()
    for volume in task.volumes:
        if volume is None:
            continue
        if not volume.name:
            raise notes.fail("volumes: volume name is empty")
        where = f"volume {volume.name!r}"
        if not _VOLUME_NAME.match(volume.name):
            raise notes.fail(f"{where}: volume name is not well formed. Only use alphanumeric and - _")
        if volume.secret is None:
            raise notes.fail(f"{where}: currently only support for source type secret")
        if not volume.secret:
            raise notes.fail(f"{where}: secret is empty")
        for file_name, content in volume.secret.items():
            if not file_name:
                raise notes.fail(f"{where}: secret name provided for value is empty")
            if not _SECRET_FILE.match(file_name):
                raise notes.fail(
                    f"{where}: file name, {file_name}, is not well formed. Only use alphanumeric and - _ ."
                )
            try:
                base64.b64decode(content, validate=True)
            except (binascii.Error, ValueError):
                notes.warnings.append(
                    f"{where}: file {file_name!r} is not base64; acr-builder fails the steps that mount it"
                )
        if volume.name in names:
            raise notes.fail("volumes: volume with duplicate name found")
        names.add(volume.name)
    for step in task.steps:
        if step is None:
            continue
        for mount in step.volume_mounts:
            if mount.name not in names:
                raise notes.fail(f"{notes.who(step)}: mount name, {mount.name}, does not correspond to a volume")


def merge_env(step_env: tuple[str, ...], task_env: tuple[str, ...]) -> tuple[str, ...]:
    """acr-builder's mergeEnvs: the step's entries as written, then each task entry (split on
    commas) whose key the step does not set. ValueError for an entry without `=`."""
    if not task_env:
        return step_env
    task_entries = [part for entry in task_env for part in entry.split(",")]
    keys = set()
    for entry in step_env:
        key, equals, _ = entry.partition("=")
        if not equals:
            raise ValueError(f"cannot parse step environment variable {entry} correctly")
        keys.add(key)
    merged = list(step_env)
    for entry in task_entries:
        key, equals, _ = entry.partition("=")
        if not equals:
            raise ValueError(f"cannot parse task environment variable {entry} correctly")
        if key not in keys:
            merged.append(entry)
    return tuple(merged)


def normalize_image(name: str) -> str:
    """acr-builder's NormalizeImageTag: `:latest` unless the name has a `:` or an `@` anywhere."""
    return name if ("@" in name or ":" in name) else f"{name}:latest"


def normalize_push(images: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for image in images:
        normalized = normalize_image(image)
        if normalized not in out:
            out.append(normalized)
    return tuple(out)


def _plan_task(task: Task, aliases: alias_rules.Aliases | None, notes: _Notes, rendered: str) -> Plan:
    version = task.version or DEFAULT_VERSION
    notes.version = version
    _check_secrets(task, notes)
    _check_volumes(task, notes)
    if version.lower() not in VALID_VERSIONS:
        raise notes.fail(f"invalid version specified: {version!r}, the current version is {DEFAULT_VERSION!r}")
    step_timeout = task.step_timeout if task.step_timeout > 0 else DEFAULT_STEP_TIMEOUT
    if not task.steps:
        notes.warnings.append("the task file has no steps: the run does nothing")

    prepared: list[tuple[Step, str, tuple[str, ...]]] = []
    for index, step in enumerate(task.steps):
        if step is None:
            raise notes.fail(f"step {index + 1} (acb_step_{index}) is empty")
        try:
            env = merge_env(step.env, task.env)
        except ValueError as error:
            raise notes.fail(
                f"{notes.who(step)}: failed to merge task and step environment variables: {error}"
            ) from None
        prepared.append((step, step.id or f"acb_step_{index}", env))

    planned: list[PlannedStep] = []
    ids: set[str] = set()
    previous: str | None = None
    for step, step_id, env in prepared:
        who = notes.who(step, step_id)
        _validate_step(step, step_id, env, who, notes)
        if step_id == ROOT_ID:
            raise notes.fail(f"{who}: {ROOT_ID} is a reserved ID, it can't be used")
        if step_id in ids:
            raise notes.fail(f"{who}: {step_id} already exists as a vertex (step ids must be unique)")
        ids.add(step_id)
        if step.when == (IMMEDIATE,):
            depends: tuple[str, ...] = ()
        elif not step.when:
            depends = (previous,) if previous is not None else ()
        else:
            for dep in step.when:
                if not dep:
                    raise notes.fail(f"{who}: when: from cannot be empty")
                if dep not in ids:
                    raise notes.fail(
                        f"{who}: when: {dep} does not exist as a vertex [from: {dep}, to: {step_id}] "
                        "(a step can only wait for steps defined before it)"
                    )
            duplicates = sorted({d for d in step.when if step.when.count(d) > 1})
            if duplicates:
                raise notes.fail(
                    f"{who}: when lists {', '.join(duplicates)} more than once; acr-builder counts each entry "
                    "as an edge and would never start this step"
                )
            depends = step.when
        previous = step_id
        if step.exited_with or step.exited_without:
            notes.warnings.append(f"{who}: exitedWith/exitedWithout are parsed but never used by acr-builder")
        notes.warnings.extend(f"{who}: {note}" for note in unused_fields(step))
        planned.append(_planned_step(step, step_id, env, depends, step_timeout, task, aliases, notes))
    return Plan(
        version=version,
        steps=tuple(planned),
        warnings=tuple(notes.warnings),
        secrets=tuple(s for s in task.secrets if s is not None),
        volumes=tuple(v for v in task.volumes if v is not None),
        networks=tuple(n for n in task.networks if n is not None),
        rendered=rendered,
    )


_CONTAINER_FIELDS: Final = (
    ("entryPoint", "entry_point"), ("user", "user"), ("network", "network"), ("isolation", "isolation"),
    ("cpus", "cpus"), ("ports", "ports"), ("expose", "expose"), ("keep", "keep"), ("privileged", "privileged"),
    ("workingDirectory", "working_directory"), ("disableWorkingDirectoryOverride", "disable_working_directory_override"),
    ("env", "env"), ("volumeMounts", "volume_mounts"),
)  # fmt: skip
_BUILD_CLI_FIELDS: Final = (
    ("user", "user"), ("network", "network"), ("isolation", "isolation"), ("cpus", "cpus"), ("ports", "ports"),
    ("expose", "expose"), ("keep", "keep"), ("privileged", "privileged"),
)  # fmt: skip


def unused_fields(step: Step) -> list[str]:
    """The keys a step sets that acr-builder takes no notice of for its type (builder/builder.go
    runStep): a push step is `docker push` with its own 3 tries, so only `timeout`, `when`,
    `startDelay` and `ignoreErrors` count; a build step gets no `entryPoint` and no `pull`, and
    its container keys reach the docker CLI container, not the build the daemon runs; `pull`'s
    `cmdDownloadRetries`/`cmdDownloadRetryDelay` count only with `pull: true` on a cmd step;
    `retryOnErrors` only with `retries`."""
    kind = _step_type(step)
    notes: list[str] = []

    def given(names: tuple[tuple[str, str], ...]) -> list[str]:
        return [key for key, attr in names if getattr(step, attr)]

    if kind == "push":
        ignored = given(
            (("retries", "retries"), ("retryDelay", "retry_delay"), ("retryOnErrors", "retry_on_errors"),
             ("repeat", "repeat"), ("detach", "detach"), ("pull", "pull"), ("cache", "cache"),
             ("cmdDownloadRetries", "cmd_download_retries"), ("cmdDownloadRetryDelay", "cmd_download_retry_delay"),
             *_CONTAINER_FIELDS)
        )  # fmt: skip
        if ignored:
            notes.append(
                f"{', '.join(ignored)} {'has' if len(ignored) == 1 else 'have'} no effect on a push step "
                "(acr-builder pushes with its own 3 tries and takes no notice of them; nor does Dockyard)"
            )
        return notes
    if kind == "build":
        ignored = given((("entryPoint", "entry_point"), ("pull", "pull")))
        if ignored:
            notes.append(f"{', '.join(ignored)} {'has' if len(ignored) == 1 else 'have'} no effect on a build step")
        cli = given(_BUILD_CLI_FIELDS)
        if cli:
            notes.append(
                f"{', '.join(cli)} on a build step {'applies' if len(cli) == 1 else 'apply'} on ACR to the docker "
                "CLI container, not to the build the daemon runs: no effect on the image (none in Dockyard either)"
            )
    if kind == "cmd" and step.cache:
        notes.append("cache has no effect on a cmd step (it is a build step's)")
    if (step.cmd_download_retries or step.cmd_download_retry_delay) and not (kind == "cmd" and step.pull):
        notes.append("cmdDownloadRetries/cmdDownloadRetryDelay have no effect without `pull: true` on a cmd step")
    if step.retry_on_errors and step.retries <= 0:
        notes.append("retryOnErrors has no effect without retries")
    return notes


def _step_type(step: Step) -> StepType | None:
    kinds: list[StepType] = []
    if step.cmd:
        kinds.append("cmd")
    if step.build:
        kinds.append("build")
    if step.push:
        kinds.append("push")
    return kinds[0] if len(kinds) == 1 else None


def _validate_step(step: Step, step_id: str, env: tuple[str, ...], who: str, notes: _Notes) -> None:
    """graph/step.go Validate, in its order."""
    if step.retries < 0:
        raise notes.fail(f"{who}: step must specify retries >= 0")
    if step.repeat < 0:
        raise notes.fail(f"{who}: step must specify repeat >= 0")
    if sum(bool(x) for x in (step.cmd, step.build, step.push)) > 1:
        raise notes.fail(f"{who}: step must only contain a single build, cmd, or push property")
    if _has_space(step_id):
        raise notes.fail(f"{who}: step ID cannot contain spaces")
    if _step_type(step) is None:
        raise notes.fail(f"{who}: step is missing a cmd, build, or push property")
    if step.volume_mounts:
        if not (step.cmd or step.build):
            raise notes.fail(
                f"{who}: invalid use of Mounts. Mounts must have unique container paths and only used for cmd or build steps"
            )
        paths: set[str] = set()
        for mount in step.volume_mounts:
            if not mount.name or not mount.mount_path:
                raise notes.fail(f"{who}: mount name or mount path is empty")
            if mount.mount_path in paths:
                raise notes.fail(f"{who}: mount with duplicate container file path found")
            paths.add(mount.mount_path)
    for dep in step.when:
        if dep == IMMEDIATE and len(step.when) > 1:
            raise notes.fail(
                f"{who}: step cannot contain other IDs in when if the immediate execution token is specified"
            )
        if dep == step_id:
            raise notes.fail(f"{who}: Step ID: {step_id} is self-referenced")
    if step.cache and step.cache.lower() not in {"enabled", "disabled"}:
        raise notes.fail(f"{who}: invalid value for cache property. Valid values are 'enabled', 'disabled'")


def _planned_step(
    step: Step,
    step_id: str,
    env: tuple[str, ...],
    depends: tuple[str, ...],
    step_timeout: int,
    task: Task,
    aliases: alias_rules.Aliases | None,
    notes: _Notes,
) -> PlannedStep:
    step_type = _step_type(step)
    assert step_type is not None
    common: dict[str, Any] = {
        "id": step_id,
        "type": step_type,
        "depends_on": depends,
        "line": notes.file_line(step.line),
        "timeout": step.timeout if step.timeout > 0 else step_timeout,
        "retries": step.retries,
        "retry_delay": step.retry_delay if step.retry_delay > 0 else DEFAULT_RETRY_DELAY,
        "repeat": step.repeat,
        "ignore_errors": step.ignore_errors,
        "detach": step.detach,
        "env": env,
        "start_delay": step.start_delay,
        "working_directory": step.working_directory or task.working_directory or None,
        "disable_working_directory_override": step.disable_working_directory_override,
        "entry_point": step.entry_point or None,
        "user": step.user or None,
        "privileged": step.privileged,
        "keep": step.keep,
        "network": step.network or None,
        "isolation": step.isolation or None,
        "cpus": step.cpus or None,
        "ports": step.ports,
        "expose": step.expose,
        "pull": step.pull,
        "retry_on_errors": step.retry_on_errors,
        "volume_mounts": step.volume_mounts,
    }
    who = notes.who(step, step_id)
    for entry in container_env(env)[1]:
        notes.warnings.append(
            f"{who}: env entry {entry!r} is split by the host shell: on ACR the extra words become docker run arguments"
        )
    if step_type == "push":
        return PlannedStep(**common, images=normalize_push(step.push))
    if step_type == "build":
        build = parse_build(step.build)
        for flag in build.unknown_flags:
            notes.warnings.append(f"{who}: build flag {flag} is not a docker build flag known to the planner")
        return PlannedStep(
            **common,
            tags=build.tags,
            dockerfile=build.dockerfile,
            context=build.context,
            build_args=build.build_args,
            target=build.target,
            cache=step.cache.lower() == "enabled",
            build_flags=build.other_flags,
            uses_buildkit=BUILDKIT_ENV in env,
        )
    command = alias_rules.expand_command(step.cmd, aliases) if aliases is not None else step.cmd
    parsed = parse_cmd(command)
    if parsed.error:
        notes.warnings.append(f"{who}: {parsed.error}")
    if parsed.image is None:
        notes.warnings.append(f"{who}: cmd names no image: docker run would fail")
    return PlannedStep(
        **common,
        image=parsed.image,
        args=parsed.args,
        run_flags=parsed.run_flags,
        shell_operators=parsed.operators,
        command=command,
    )
