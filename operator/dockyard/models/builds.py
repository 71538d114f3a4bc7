"""The BuildTask and BuildRun kinds: image builds with Kaniko, ACR Tasks style."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from dockyard.models.base import (
    CONDITIONS_FIELD,
    OBSERVED_GENERATION_FIELD,
    ApiModel,
    Condition,
    KindInfo,
    LocalObjectReference,
    NameFormat,
    PrinterColumn,
    ResourceRequirements,
    SecretKeySelector,
    age_column,
    cel,
    immutable,
    ready_column,
    section,
)
from dockyard.models.cron import CronSchedule
from dockyard.models.formats import (
    ContextPath,
    HttpUrl,
    Identifier,
    ImageReference,
    Platform,
    PushImage,
    Repository,
    RepositoryPath,
    Revision,
    Rule,
    StageName,
    checked,
    pattern_check,
)

RunStatus = Literal["Queued", "Started", "Running", "Succeeded", "Failed", "Canceled", "Error", "Timeout"]
StepState = Literal["Queued", "Running", "Succeeded", "Failed", "Canceled", "Error", "Timeout", "Skipped"]
"""A step's status: Skipped when it never started because the run ended before it."""
TriggerType = Literal["Manual", "Commit", "ImageUpdate", "Timer"]

MAX_TIMERS = 10
TIMER_NAME = r"^[A-Za-z0-9_-]+$"
TIMER_NAME_MESSAGE = "a timer name is letters, digits, '_' and '-'"
TimerName = Annotated[
    str,
    Field(min_length=1, max_length=63),
    Rule(f"self.matches(r'{TIMER_NAME}')", TIMER_NAME_MESSAGE),
    checked(pattern_check(TIMER_NAME, TIMER_NAME_MESSAGE)),
]
GIT_URL_FRAGMENT_MESSAGE = (
    "a git URL cannot carry a '#fragment': set the branch, tag or commit in revision and the directory in "
    "contextSubPath"
)
GIT_URL_NO_FRAGMENT = Rule("!self.contains('#')", GIT_URL_FRAGMENT_MESSAGE)
GitUrl = Annotated[HttpUrl, GIT_URL_NO_FRAGMENT, checked(lambda url: GIT_URL_FRAGMENT_MESSAGE if "#" in url else None)]
TASK_FILE_MESSAGE = "taskFile must be an ACR task file with a steps: list (it is empty or has no steps)"


def default_timer_name(position: int) -> str:
    """The name of an unnamed timer: t1 for the first in the list, t2 for the second, …"""
    return f"t{position + 1}"


UNIQUE_TIMER_NAMES = Rule(
    "self.all(a, !has(a.name) || self.exists_one(b, has(b.name) && b.name == a.name))",
    "timer names must be unique",
)
# A name t<N> given to a timer is taken from the unnamed timer at position N, if there is one.
_POSITION = "int(a.name.substring(1))"
_TAKES_DEFAULT = (
    f"has(a.name) && a.name.matches('^t([1-9]|10)$') && {_POSITION} <= size(self) && !has(self[{_POSITION} - 1].name)"
)
NO_TAKEN_DEFAULT_NAMES = Rule(
    f"!self.exists(a, {_TAKES_DEFAULT})",
    "a timer without a name is called t<N> after its position in the list (t1 for the first); another "
    "timer cannot be named so too: rename it or name the unnamed one",
)


class GitSource(ApiModel):
    """A git repository as build context."""

    url: GitUrl = Field(
        description="Clone URL over http(s), e.g. https://github.com/org/app.git.",
    )
    revision: Revision = Field(
        "main",
        description="Branch, tag or full 40-character commit SHA to build. The operator resolves it to a "
        "commit before the build starts, records it in status.commit, and Kaniko builds exactly that commit.",
    )
    context_sub_path: ContextPath | None = Field(
        None, description="Directory inside the repository used as build context (relative, no '..')."
    )
    auth_secret_ref: LocalObjectReference | None = Field(
        None, description="Secret with `username` and `password` (a token) for private repositories."
    )


class ArchiveSource(ApiModel):
    """A tar.gz archive as build context."""

    url: HttpUrl = Field(
        description="Where Kaniko fetches the archive: an http(s) URL of a .tar.gz (a presigned object-store URL "
        "works).",
    )


class OciSource(ApiModel):
    """A context uploaded into the task's Registry as an OCI artifact (what `dockyard build` does):
    one gzip'd tar layer, fetched by the build pod before Kaniko starts."""

    repository: RepositoryPath = Field(description="Repository in the task's Registry, e.g. dockyard/sources.")
    digest: str = Field(description="Manifest digest of the artifact.", pattern=r"^sha256:[a-f0-9]{64}$")


class BuildSource(ApiModel):
    """The build context: at most one of git, archive or oci. None for a task file whose steps need
    no context (ACR's `--context /dev/null`, e.g. a cmd-only task on a timer)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "(has(self.git) ? 1 : 0) + (has(self.archive) ? 1 : 0) + (has(self.oci) ? 1 : 0) <= 1",
                    "set at most one build source: git, archive or oci",
                ),
            ]
        }
    )

    git: GitSource | None = Field(None, description="A git repository.")
    archive: ArchiveSource | None = Field(None, description="A tar.gz archive.")
    oci: OciSource | None = Field(None, description="A context uploaded into the Registry (quick build).")


class BuildArg(ApiModel):
    """A `--build-arg` for the Dockerfile."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.value) != has(self.valueFrom)",
                    "set exactly one of value or valueFrom for a build argument",
                )
            ]
        }
    )

    name: Identifier = Field(description="ARG name.")
    value: str | None = Field(None, description="Literal value.", max_length=4096)
    value_from: SecretKeySelector | None = Field(None, description="Value read from a Secret.")


class CacheSpec(ApiModel):
    """Kaniko layer cache."""

    enabled: bool = Field(True, description="Cache layers in a repository (`--cache`).")
    repository: Repository | None = Field(
        None, description="Cache repository, [host[:port]/]path without tag; defaults to <image repository>/cache."
    )


class DockerBuild(ApiModel):
    """A single Dockerfile build (ACR quick build)."""

    dockerfile: ContextPath = Field(
        "Dockerfile", description="Path of the Dockerfile relative to the context (no leading '/', no '..')."
    )
    images: list[PushImage] = Field(
        default_factory=list,
        description="Image names to push, relative to the registry unless they name a host, e.g. "
        "`app:{{.Run.ID}}` or `app:latest`. Empty with noPush only.",
        max_length=20,
    )
    build_args: list[BuildArg] = Field(
        default_factory=list,
        description="Build arguments.",
        max_length=64,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    target: StageName | None = Field(None, description="Stage of a multi-stage Dockerfile to build (FROM … AS name).")
    platform: Platform | None = Field(None, description="Target platform, e.g. linux/arm64.")
    no_push: bool = Field(False, description="Build without pushing (a check).")
    cache: CacheSpec | None = Field(None, description="Layer cache.")


class Value(ApiModel):
    """A task value, available as {{.Values.<name>}}."""

    name: Identifier = Field(description="Value name.")
    value: str = Field(description="Value.", max_length=4096)


_DEFINITION_RULES: list[Any] = [
    cel(
        "has(self.dockerBuild) != has(self.taskFile)",
        "set exactly one of dockerBuild (a single Dockerfile build) or taskFile (multi-step task YAML)",
    ),
    cel(
        "!has(self.dockerBuild) || self.dockerBuild.noPush"
        " || (has(self.dockerBuild.images) && size(self.dockerBuild.images) > 0)",
        "dockerBuild.images needs at least one image unless dockerBuild.noPush is true",
        field_path=".dockerBuild.images",
    ),
    # a source-less definition (task file without context): see BuildSource
    cel(
        "!has(self.dockerBuild) || (has(self.source) && (has(self.source.git) || has(self.source.archive)"
        " || has(self.source.oci)))",
        "dockerBuild needs a build context: set source.git, source.archive or source.oci",
        field_path=".source",
    ),
]


class BuildDefinition(ApiModel):
    """What to build: a context and either a Dockerfile build or a multi-step task file."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _DEFINITION_RULES})

    registry_ref: LocalObjectReference = Field(
        description="The Registry that images are pushed to and that {{.Run.Registry}} names."
    )
    source: BuildSource = section(
        BuildSource,
        "The build context; empty for a task file that needs none (ACR's `--context /dev/null`).",
    )
    docker_build: DockerBuild | None = Field(None, description="A single Dockerfile build.")
    task_file: str | None = Field(
        None,
        description="Contents of an ACR multi-step task file (acr-task.yaml: version, steps with build, "
        "push or cmd, when, env, …), run unchanged where the feature maps to Kubernetes.",
        max_length=65536,
        json_schema_extra={"x-kubernetes-validations": [cel("self.contains('steps')", TASK_FILE_MESSAGE)]},
    )
    values: list[Value] = Field(
        default_factory=list,
        description="Values for {{.Values.x}} in images and the task file.",
        max_length=64,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    pull_secrets: list[LocalObjectReference] = Field(
        default_factory=list,
        description="kubernetes.io/dockerconfigjson Secrets with credentials for other registries (private "
        "base images, destinations elsewhere). The run's own Registry needs none: each run gets a token "
        "for exactly its repositories.",
        max_length=16,
    )
    timeout_seconds: int = Field(3600, description="Time limit of a run.", ge=60, le=28800)
    resources: ResourceRequirements | None = Field(None, description="Resources of the build container.")
    builder_image: ImageReference | None = Field(
        None, description="Kaniko image, [host[:port]/]repository[:tag][@digest]; defaults to the operator's setting."
    )

    @model_validator(mode="after")
    def _task_file_has_steps(self) -> BuildDefinition:
        if self.task_file is not None and "steps" not in self.task_file:
            raise ValueError(TASK_FILE_MESSAGE)
        return self


class SourceCommitTrigger(ApiModel):
    """Run when a commit lands on the source branch (`source.git.revision`): one run per new head
    commit, building exactly that commit. The head seen when the trigger starts is a baseline, not a
    new commit."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.mode != 'Webhook' || has(self.webhookSecretRef)",
                    "mode Webhook needs webhookSecretRef: push webhooks are accepted only when signed",
                    field_path=".webhookSecretRef",
                )
            ]
        }
    )

    enabled: bool = Field(True, description="Whether the trigger fires.")
    mode: Literal["Poll", "Webhook"] = Field(
        "Poll",
        description="Poll the git remote (the branch head, with jitter), or receive push webhooks from GitHub, "
        "GitLab or Gitea/Forgejo at the URL in status.webhookUrl, verified with the shared secret.",
    )
    poll_interval_seconds: int = Field(300, description="Polling period (mode Poll), ±20 % jitter.", ge=60, le=86400)
    webhook_secret_ref: SecretKeySelector | None = Field(
        None,
        description="Secret key with the shared secret of push webhooks (mode Webhook): GitHub's and Gitea's "
        "webhook secret (HMAC-SHA256 signature), GitLab's secret token.",
    )


class BaseImageTrigger(ApiModel):
    """Run when the base image (the final stage's FROM origin) changes digest: needs one earlier run
    that resolved it (a dockerBuild on source.oci or source.archive); not for the task's own images,
    never twice for one digest, a burst of pushes is one run."""

    enabled: bool = Field(True, description="Whether the trigger fires.")
    poll_interval_seconds: int = Field(
        600,
        description="Polling period for base images outside Dockyard (bases in a Dockyard registry trigger on push).",
        ge=60,
        le=86400,
    )


def _name_optional(schema: dict[str, Any]) -> None:
    """`name` may be left out on the wire; `Triggers` gives an unnamed timer its positional name
    when parsing, so the operator always sees one (it never writes spec)."""
    schema["required"] = [field for field in schema.get("required", []) if field != "name"]


class TimerTrigger(ApiModel):
    """Run on a schedule."""

    model_config = ConfigDict(json_schema_extra=_name_optional)

    name: TimerName = Field(
        description="Timer name, unique in the task. Optional: a timer without one is called t<N> after its "
        "position in the list (t1 for the first), as in ACR.",
    )
    schedule: CronSchedule = Field(
        description="Cron schedule in UTC with 5 fields (minute hour day-of-month month day-of-week), "
        "e.g. `0 */6 * * *` or `30 9 * * Mon-Fri`. At most one run a minute.",
    )
    enabled: bool = Field(True, description="Whether the timer fires.")


class Triggers(ApiModel):
    """Automatic runs."""

    source_commit: SourceCommitTrigger | None = Field(None, description="On a commit to the git source.")
    base_image_update: BaseImageTrigger | None = Field(None, description="On a base image update.")
    timers: list[TimerTrigger] = Field(
        default_factory=list,
        description="On schedules; names unique (an unnamed timer is t<N> after its position).",
        max_length=MAX_TIMERS,
        json_schema_extra={
            "x-kubernetes-list-type": "atomic",
            "x-kubernetes-validations": [UNIQUE_TIMER_NAMES.entry(), NO_TAKEN_DEFAULT_NAMES.entry()],
        },
    )

    @model_validator(mode="before")
    @classmethod
    def _name_timers(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("timers"), list):
            return data
        timers = [
            {**timer, "name": default_timer_name(position)}
            if isinstance(timer, dict) and not timer.get("name")
            else timer
            for position, timer in enumerate(data["timers"])
        ]
        return {**data, "timers": timers}

    @model_validator(mode="after")
    def _unique_timer_names(self) -> Triggers:
        names = [timer.name for timer in self.timers]
        if len(set(names)) != len(names):
            raise ValueError(f"{UNIQUE_TIMER_NAMES.message} (unnamed timers are t1, t2, … by position)")
        return self


class BuildTaskSpec(BuildDefinition):
    """Desired state of a BuildTask."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                *_DEFINITION_RULES,
                cel(
                    "!has(self.triggers.sourceCommit) || has(self.source.git)",
                    "triggers.sourceCommit needs a git source (source.git)",
                    field_path=".triggers.sourceCommit",
                ),
            ]
        }
    )

    enabled: bool = Field(True, description="Whether triggers create runs (manual runs always work).")
    triggers: Triggers = section(Triggers, "What starts runs automatically.")
    successful_runs_history_limit: int = Field(10, description="Succeeded BuildRuns kept.", ge=0, le=1000)
    failed_runs_history_limit: int = Field(10, description="Failed BuildRuns kept.", ge=0, le=1000)
    log_retention_days: int = Field(30, description="Days a run's logs are kept after its pod is gone.", ge=1, le=365)


class RunReference(ApiModel):
    """A BuildRun of this task."""

    name: str = Field(description="BuildRun name.")
    run_id: str | None = Field(None, description="Run ID.")
    status: RunStatus | None = Field(None, description="Run status.")
    trigger: TriggerType | None = Field(None, description="What started it.")
    start_time: str | None = Field(None, description="When it started.")


# -- base-image tracking (triggers.baseImageUpdate) -----------------------------------------------


class BaseImageStatus(ApiModel):
    """The base image a run stood on: the final stage's origin, its tag resolved to a digest when
    the build started."""

    registry: str = Field(description="Registry host, e.g. docker.io or the Registry's login server.")
    repository: str = Field(description="Repository, e.g. library/python.")
    tag: str | None = Field(None, description="Tag; none when the Dockerfile pins the base by digest (not tracked).")
    digest: str = Field(description="Manifest digest the tag named (the index for a multi-arch image).")


# -- end base-image tracking ----------------------------------------------------------------------


class TimerStatus(ApiModel):
    """Schedule state of one timer."""

    name: str = Field(description="Timer name.")
    last_schedule_time: str | None = Field(None, description="When it last created a run.")
    next_schedule_time: str | None = Field(None, description="When it fires next.")


class BuildTaskStatus(ApiModel):
    """Observed state of a BuildTask."""

    last_run: RunReference | None = Field(None, description="The newest run.")
    last_successful_run: RunReference | None = Field(None, description="The newest succeeded run.")
    last_commit: str | None = Field(None, description="Commit of the source branch last seen.")
    triggered_commits: list[str] = Field(
        default_factory=list,
        description="Commits that started runs, newest first (the last 50): one of them pushed or "
        "delivered again starts nothing, also once its run is gone from the history.",
        max_length=50,
    )
    base_image_digest: str | None = Field(None, description="Digest of the base image last built on.")
    base_image: BaseImageStatus | None = Field(
        None,
        description="The base image the newest run that resolved one stood on: what triggers.baseImageUpdate "
        "watches (a push of another digest to this tag starts a run).",
    )
    timers: list[TimerStatus] = Field(default_factory=list, description="Timer schedule state.", max_length=10)
    webhook_url: str | None = Field(
        None,
        description="Where the git host posts push webhooks (triggers.sourceCommit mode Webhook): paste it "
        "into the repository's webhook settings with content type application/json and the shared secret.",
    )
    conditions: list[Condition] = CONDITIONS_FIELD
    observed_generation: int | None = OBSERVED_GENERATION_FIELD


class TriggerCause(ApiModel):
    """What started an automatic run, recorded by the operator (ACR's sourceTrigger/timerTrigger)."""

    commit: str | None = Field(
        None,
        description="Commit run: the commit pushed; the run builds exactly this commit, whatever the branch "
        "head is by the time it starts.",
        pattern=r"^[0-9a-f]{40}$",
    )
    branch: str | None = Field(None, description="Commit run: the branch the commit was pushed to.", max_length=255)
    delivery: str | None = Field(
        None, description="Commit run from a webhook: the git host and its delivery id.", max_length=255
    )
    timer_name: str | None = Field(None, description="Timer run: the timer.", max_length=63)
    schedule_occurrence: str | None = Field(
        None, description="Timer run: the scheduled time it runs for (UTC, to the minute)."
    )
    base_image: str | None = Field(
        None, description="Image-update run: the base image updated, registry/repository:tag.", max_length=512
    )
    base_image_digest: str | None = Field(
        None, description="Image-update run: the base image's new digest.", max_length=128
    )


class BuildRunSpec(ApiModel):
    """Desired state of a BuildRun: a run of a BuildTask, or a one-off quick build."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("has(self.taskRef) != has(self.build)", "set exactly one of taskRef or build"),
                cel(
                    "has(self.taskRef) == has(oldSelf.taskRef)",
                    "a run cannot switch between taskRef and build; create a new BuildRun",
                    reason="FieldValueForbidden",
                ),
                cel(
                    "self.?timeoutSeconds.orValue(0) == oldSelf.?timeoutSeconds.orValue(0)",
                    "timeoutSeconds is immutable: the run's Job deadline and credentials are set when it starts",
                    field_path=".timeoutSeconds",
                    reason="FieldValueForbidden",
                ),
                cel(
                    "has(self.values) == has(oldSelf.values)",
                    "values are immutable: a run renders them when it starts",
                    field_path=".values",
                    reason="FieldValueForbidden",
                ),
                cel(
                    "!has(self.values) || has(self.taskRef)",
                    "values override a task's values; with an inline build put them in build.values",
                    field_path=".values",
                ),
            ]
        }
    )

    task_ref: LocalObjectReference | None = Field(
        None,
        description="The BuildTask to run. Immutable.",
        json_schema_extra={"x-kubernetes-validations": [immutable("taskRef")]},
    )
    build: BuildDefinition | None = Field(
        None,
        description="An inline build (ACR quick build/run). Immutable.",
        json_schema_extra={"x-kubernetes-validations": [immutable("build")]},
    )
    trigger: TriggerType = Field(
        "Manual",
        description="What started the run; the operator sets it on runs it creates. Immutable.",
        json_schema_extra={"x-kubernetes-validations": [immutable("trigger")]},
    )
    triggered_by: TriggerCause | None = Field(
        None,
        description="The cause of an automatic run (set by the operator). Immutable.",
        json_schema_extra={"x-kubernetes-validations": [immutable("triggeredBy")]},
    )
    values: list[Value] | None = Field(
        None,
        description="Values overriding the task's. Immutable.",
        max_length=64,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "x-kubernetes-validations": [immutable("values")],
        },
    )
    timeout_seconds: int | None = Field(None, description="Time limit overriding the task's.", ge=60, le=28800)
    cancel: bool = Field(
        False,
        description="Set to true to cancel the run; a canceled run stays canceled.",
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self || !oldSelf",
                    "a canceled run cannot be resumed (cancel cannot go back to false); create a new BuildRun",
                    reason="FieldValueForbidden",
                )
            ]
        },
    )


class OutputImage(ApiModel):
    """An image the run pushed."""

    registry: str = Field(description="Registry host.")
    repository: str = Field(description="Repository.")
    tag: str | None = Field(None, description="Tag.")
    digest: str | None = Field(None, description="Manifest digest.")


class StepStatus(ApiModel):
    """One step of a multi-step run."""

    id: str = Field(description="Step id.")
    type: Literal["build", "push", "cmd"] | None = Field(None, description="What the step does.")
    status: StepState = Field(description="Step status; Skipped: never started, the run ended before it.")
    start_time: str | None = Field(None, description="When it started.")
    finish_time: str | None = Field(None, description="When it ended.")
    exit_code: int | None = Field(None, description="Exit code of the step's container.")
    message: str | None = Field(None, description="Why it failed.")
    attempts: int | None = Field(
        None, description="Attempts made (Job-per-step runs: retries and repeats each make one).", ge=0
    )


class BuildRunStatus(ApiModel):
    """Observed state of a BuildRun."""

    run_id: str | None = Field(None, description="Short ID unique in the registry, e.g. ca12.")
    status: RunStatus | None = Field(None, description="Run status.")
    run_type: Literal["QuickBuild", "QuickRun", "AutoBuild", "AutoRun"] | None = Field(
        None, description="Kind of run, as ACR names it."
    )
    task_name: str | None = Field(None, description="The task, when the run belongs to one.")
    job_name: str | None = Field(None, description="The Job that runs the build.")
    execution_shape: Literal["Pod", "JobPerStep"] | None = Field(
        None,
        description="How a task file runs: Pod (one pod, steps in order) or JobPerStep (a Job per step "
        "attempt, for parallel, detached, retried or delayed steps).",
    )
    start_time: str | None = Field(None, description="When the run started.")
    finish_time: str | None = Field(None, description="When the run ended.")
    duration: str | None = Field(None, description="How long the run took, start to end, e.g. 1m23s.")
    output_images: list[OutputImage] = Field(default_factory=list, description="Images pushed.", max_length=20)
    steps: list[StepStatus] = Field(default_factory=list, description="Steps of a multi-step run.", max_length=64)
    message: str | None = Field(None, description="Why the run failed: the failing build line and its error.")
    commit: str | None = Field(None, description="The commit built (git sources).")
    base_image: BaseImageStatus | None = Field(
        None, description="The base image of a Dockerfile build, resolved to a digest when the build started."
    )
    ref: str | None = Field(None, description="The git ref the revision resolved to, e.g. refs/heads/main.")
    log_reference: str | None = Field(
        None,
        description="Where the full log is kept once the pod is gone: an OCI artifact in the Registry "
        "(`dockyard logs <run>` or `oras pull` read it).",
    )
    log_tail: str | None = Field(None, description="The last lines of the log.")
    conditions: list[Condition] = CONDITIONS_FIELD
    observed_generation: int | None = OBSERVED_GENERATION_FIELD


BUILD_TASK = KindInfo(
    kind="BuildTask",
    plural="buildtasks",
    short_names=("bt", "dytask"),
    description="An image build with Kaniko, run on demand, on commit, on base image update or on a timer.",
    spec=BuildTaskSpec,
    status=BuildTaskStatus,
    name_format=NameFormat(
        63,
        "a BuildTask's name labels its runs (dockyard.dev/build-task): at most 63 lowercase letters, "
        "digits, '-' and '.', starting and ending with a letter or digit",
    ),
    columns=(
        PrinterColumn("Registry", "string", ".spec.registryRef.name", "Registry images are pushed to."),
        PrinterColumn("Enabled", "boolean", ".spec.enabled", "Whether triggers create runs."),
        PrinterColumn("Last Run", "string", ".status.lastRun.runId", "ID of the newest run."),
        PrinterColumn("Last Status", "string", ".status.lastRun.status", "Status of the newest run."),
        ready_column(),
        age_column(),
    ),
)

BUILD_RUN = KindInfo(
    kind="BuildRun",
    plural="buildruns",
    short_names=("br", "dyrun"),
    description="One run of a BuildTask, or a one-off quick build.",
    spec=BuildRunSpec,
    status=BuildRunStatus,
    columns=(
        PrinterColumn("Task", "string", ".spec.taskRef.name", "The task run."),
        PrinterColumn("Run ID", "string", ".status.runId", "Run ID."),
        PrinterColumn("Status", "string", ".status.status", "Run status."),
        PrinterColumn("Trigger", "string", ".spec.trigger", "What started the run."),
        PrinterColumn("Started", "date", ".status.startTime", "When the run started."),
        PrinterColumn("Duration", "string", ".status.duration", "How long the run took."),
        PrinterColumn(
            "Succeeded", "string", '.status.conditions[?(@.type=="Succeeded")].status', "Outcome.", priority=1
        ),
        age_column(),
    ),
)
