"""`dockyard`: quick builds from a directory, and the runs, logs and cancel commands.

    dockyard build -r REGISTRY -t IMAGE [-t IMAGE]… [-f Dockerfile] [--build-arg K=V]… DIR
    dockyard runs [-r REGISTRY]
    dockyard logs RUN
    dockyard cancel RUN

Exit codes: 0 when the run succeeded (or the command did what it says), 1 when the run failed,
was canceled or timed out, 2 for usage and access errors, 130 after Ctrl-C (the run goes on).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from kubernetes import client, config

from dockyard.builds.artifacts import SOURCES_REPOSITORY, push_context
from dockyard.builds.context import ContextError, pack_context
from dockyard.builds.logstore import read_log
from dockyard.cli.follow import RunFollower, RunGone, secret_values
from dockyard.cli.plan import main as plan_command
from dockyard.cli.registry_access import (
    USERNAME_ENV,
    AccessError,
    open_client,
    read_registry,
    registry_endpoint,
    upload_credentials,
)
from dockyard.cli.runs import (
    BUILD_RUN_KIND,
    EXIT_DETACHED,
    EXIT_FAILED,
    EXIT_SUCCEEDED,
    EXIT_USAGE,
    BuildArgError,
    build_quick_run,
    find_run,
    format_runs_table,
    has_run_id,
    is_finished,
    outcome,
    registry_of,
    task_registries,
)
from dockyard.core.apiserver import ApiError, ApiServer, Credentials, CredentialsError
from dockyard.core.kube import Kube
from dockyard.distribution.client import Basic
from dockyard.distribution.errors import DistributionError
from dockyard.models.base import API_VERSION

DEFAULT_NAMESPACE = "default"
OPERATOR_NOTICE_SECONDS = 30
"""How long a new run may wait for its run ID before the CLI says it is still waiting."""


class UsageError(Exception):
    """A command that cannot run as given; the message says why."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dockyard", description="Build images in a Dockyard Registry, and follow the runs."
    )
    namespace_help = "namespace (default: the kubeconfig context's, else default)"
    parser.add_argument("-n", "--namespace", help=namespace_help)
    # `-n` is accepted after the command too; SUPPRESS keeps a value given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namespace", default=argparse.SUPPRESS, help=namespace_help)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    build = commands.add_parser(
        "build",
        parents=[common],
        help="build a directory with its Dockerfile and push the image (like `az acr build`)",
    )
    build.add_argument("directory", metavar="DIR", type=Path, help="the build context")
    build.add_argument("-r", "--registry", required=True, help="the Registry to build in and push to")
    build.add_argument(
        "-t",
        "--image",
        dest="images",
        metavar="IMAGE",
        action="append",
        default=[],
        help="image name, e.g. app:v1 (repeatable)",
    )
    build.add_argument("-f", "--file", dest="dockerfile", default="Dockerfile", help="Dockerfile, relative to DIR")
    build.add_argument(
        "--build-arg", dest="build_args", action="append", default=[], metavar="NAME=VALUE", help="(repeatable)"
    )
    build.add_argument("--target", help="stage of a multi-stage Dockerfile")
    build.add_argument("--platform", help="target platform, e.g. linux/arm64")
    build.add_argument("--no-push", action="store_true", help="build only, push nothing")
    build.add_argument("--timeout", type=int, metavar="SECONDS", help="time limit of the run (60-28800)")
    build.add_argument("--no-wait", action="store_true", help="print the run's name and return at once")
    build.add_argument(
        "--registry-address", metavar="ADDRESS", help="address to dial for the registry (TLS still checks its name)"
    )
    build.add_argument("--username", help=f"user for the upload (or {USERNAME_ENV})")
    build.add_argument("--password-stdin", action="store_true", help="read the password from standard input")

    runs = commands.add_parser("runs", parents=[common], help="list BuildRuns")
    runs.add_argument("-r", "--registry", help="only runs of this Registry")

    logs = commands.add_parser("logs", parents=[common], help="show a run's log (streamed while it runs)")
    logs.add_argument("run", metavar="RUN", help="BuildRun name or run ID")
    logs.add_argument("--registry-address", metavar="ADDRESS", help="address to dial for the registry")

    commands.add_parser("plan", help="show the plan of an ACR task file (see `dockyard plan --help`)", add_help=False)
    cancel = commands.add_parser("cancel", parents=[common], help="cancel a run")
    cancel.add_argument("run", metavar="RUN", help="BuildRun name or run ID")
    return parser


def validate_build_args(args: argparse.Namespace) -> None:
    """What argparse cannot check; raises UsageError."""
    if not args.images and not args.no_push:
        raise UsageError("give at least one -t IMAGE, or --no-push")
    if args.timeout is not None and not 60 <= args.timeout <= 28800:
        raise UsageError("--timeout must be between 60 and 28800 seconds")
    if args.password_stdin and not args.username:
        raise UsageError("--password-stdin needs --username")
    if not args.directory.is_dir():
        raise UsageError(f"{args.directory}: not a directory")


def default_namespace() -> str:
    """The kubeconfig's current context namespace, the pod's own namespace, or `default`."""
    try:
        _, active = config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
        namespace = (active or {}).get("context", {}).get("namespace")
        if namespace:
            return str(namespace)
    except (config.ConfigException, OSError, KeyError, TypeError, AttributeError):
        pass  # no kubeconfig: in a pod, or nothing configured
    in_pod = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    if in_pod.is_file():
        return in_pod.read_text().strip() or DEFAULT_NAMESPACE
    return DEFAULT_NAMESPACE


class Cli:
    """The commands, given a Kube client and the terminal's streams."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        *,
        out: TextIO = sys.stdout,
        err: TextIO = sys.stderr,
        stdin: TextIO = sys.stdin,
        environment: Mapping[str, str] = os.environ,
    ) -> None:
        self.kube, self.namespace = kube, namespace
        self.out, self.err, self.stdin, self.environment = out, err, stdin, environment

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def warn(self, line: str) -> None:
        print(line, file=self.err, flush=True)

    def write(self, chunk: str) -> None:
        self.out.write(chunk)
        self.out.flush()

    # -- build -----------------------------------------------------------------------------------

    def build(self, args: argparse.Namespace) -> int:
        password = self.stdin.readline().rstrip("\r\n") if args.password_stdin else None
        registry = read_registry(self.kube, self.namespace, args.registry)
        endpoint = registry_endpoint(self.kube, registry, override=args.registry_address)
        credentials = upload_credentials(
            self.kube, registry, username=args.username, password=password, environment=self.environment
        )
        try:
            packed = pack_context(args.directory, args.dockerfile)
        except ContextError as error:
            raise UsageError(str(error)) from error
        via = f" via {endpoint.connect_to}" if endpoint.connect_to else ""
        self.say(f"Uploading context ({format_size(len(packed))}) to {endpoint.login_server}/{SOURCES_REPOSITORY}{via}")
        with open_client(endpoint, credentials) as client:
            digest = push_context(client, packed)
        body = build_quick_run(
            namespace=self.namespace,
            registry=args.registry,
            source_repository=SOURCES_REPOSITORY,
            source_digest=digest,
            images=args.images,
            dockerfile=Path(args.dockerfile).as_posix(),
            build_args=args.build_args,
            target=args.target,
            platform=args.platform,
            no_push=args.no_push,
            timeout_seconds=args.timeout,
        )
        created = self.kube.create(body)
        if created is None:  # generateName never collides; a 409 here means the API refused it
            raise AccessError("the BuildRun could not be created (name conflict); try again")
        name = created["metadata"]["name"]
        self.say(f"Queued BuildRun {name}")
        if args.no_wait:
            self.say(f"Follow it with: dockyard logs {name} -n {self.namespace}")
            return EXIT_SUCCEEDED
        return self.follow(name, wait_run_id=True, address=args.registry_address)

    def follow(
        self, name: str, *, wait_run_id: bool = False, show_outcome: bool = True, address: str | None = None
    ) -> int:
        """Stream a run's log while it runs, then end with its outcome. Ctrl-C detaches."""
        follower = RunFollower(self.kube, self.namespace, name)
        try:
            if wait_run_id:
                run = follower.wait_for(has_run_id, deadline_s=OPERATOR_NOTICE_SECONDS)
                if not has_run_id(run) and not is_finished(run):
                    self.warn("Waiting for the operator to start the run (is the Dockyard operator running?)")
                    run = follower.wait_for(has_run_id)
                run_id = (run.get("status") or {}).get("runId")
                if run_id:
                    self.say(f"Run ID: {run_id}")
            secrets = secret_values(self.kube, self.namespace, follower.get())
            if secrets is None:
                self.warn(
                    "The live log is not shown: this run takes values from Secrets you cannot read. "
                    "Its kept log, with those values hidden, follows when the run ends."
                )
                streamed = 0
            else:
                streamed = follower.stream(self.write, secrets)
            run = follower.wait_for(lambda r: False)
        except KeyboardInterrupt:
            self.warn(
                f"\nDetached; BuildRun {name} goes on. Cancel it with: dockyard cancel {name} -n {self.namespace}"
            )
            return EXIT_DETACHED
        except RunGone as gone:
            self.warn(str(gone))
            return EXIT_FAILED
        if not streamed:
            self._print_stored_log(run, address=address)
        if not show_outcome:
            return EXIT_SUCCEEDED
        result = outcome(run)
        for line in result.out:
            self.say(line)
        for line in result.err:
            self.warn(line)
        return result.exit_code

    # -- runs, logs, cancel ----------------------------------------------------------------------

    def runs(self, args: argparse.Namespace) -> int:
        items = self.kube.list(API_VERSION, BUILD_RUN_KIND, self.namespace)
        if args.registry:
            tasks = task_registries(self.kube.list(API_VERSION, "BuildTask", self.namespace))
            items = [run for run in items if registry_of(run, tasks) == args.registry]
        if not items:
            self.say(f"No BuildRuns in namespace {self.namespace}.")
            return EXIT_SUCCEEDED
        self.say(format_runs_table(items))
        return EXIT_SUCCEEDED

    def find(self, name_or_id: str) -> dict[str, Any]:
        run = self.kube.get(API_VERSION, BUILD_RUN_KIND, self.namespace, name_or_id)
        if run is not None:
            return dict(run)
        matches = find_run(self.kube.list(API_VERSION, BUILD_RUN_KIND, self.namespace), name_or_id)
        if not matches:
            raise UsageError(f"no BuildRun named or with run ID {name_or_id} in namespace {self.namespace}")
        if len(matches) > 1:
            names = ", ".join(sorted(m["metadata"]["name"] for m in matches))
            raise UsageError(f"run ID {name_or_id} names several BuildRuns ({names}): give the name")
        return dict(matches[0])

    def logs(self, args: argparse.Namespace) -> int:
        run = self.find(args.run)
        name = run["metadata"]["name"]
        if not is_finished(run):
            return self.follow(name, show_outcome=False, address=args.registry_address)
        self._print_stored_log(run, address=args.registry_address)
        return EXIT_SUCCEEDED

    def cancel(self, args: argparse.Namespace) -> int:
        run = self.find(args.run)
        name = run["metadata"]["name"]
        if is_finished(run):
            self.say(f"BuildRun {name} has already ended ({(run.get('status') or {}).get('status')}).")
            return EXIT_SUCCEEDED
        if self.kube.patch(API_VERSION, BUILD_RUN_KIND, self.namespace, name, {"spec": {"cancel": True}}) is None:
            raise UsageError(f"BuildRun {name} is gone")
        self.say(f"Canceling BuildRun {name}.")
        return EXIT_SUCCEEDED

    def _print_stored_log(self, run: Mapping[str, Any], *, address: str | None = None) -> None:
        """A finished run's log from the registry (status.logReference), else its log tail."""
        status = run.get("status") or {}
        reference, tail = status.get("logReference"), status.get("logTail")
        registry = self._registry_of(run)
        if reference and registry:
            try:
                self.write(self._read_stored_log(registry, str(reference), address))
                return
            except (AccessError, DistributionError) as error:
                self.warn(f"Cannot read the stored log {reference}: {error}")
        if tail:
            self.warn("The last lines of the log (status.logTail):")
            self.write(str(tail) if str(tail).endswith("\n") else f"{tail}\n")
        elif not reference:
            self.warn("No log is kept for this run.")

    def _registry_of(self, run: Mapping[str, Any]) -> str | None:
        """The run's Registry; a task's run needs its BuildTask read."""
        task_name = ((run.get("spec") or {}).get("taskRef") or {}).get("name")
        task = self.kube.get(API_VERSION, "BuildTask", self.namespace, task_name) if task_name else None
        return registry_of(run, task_registries([task] if task else []))

    def _read_stored_log(self, registry_name: str, reference: str, address: str | None) -> str:
        registry = read_registry(self.kube, self.namespace, registry_name)
        endpoint = registry_endpoint(self.kube, registry, override=address)
        credentials: Basic | None
        try:
            credentials = upload_credentials(
                self.kube, registry, username=None, password=None, environment=self.environment
            )
        except AccessError:
            credentials = None  # anonymous pull may be enabled
        with open_client(endpoint, credentials) as client:
            return read_log(client, reference)


def format_size(count: int) -> str:
    """`512 B`, `3.4 KiB`, `12.0 MiB`."""
    if count < 1024:
        return f"{count} B"
    if count < 1024**2:
        return f"{count / 1024:.1f} KiB"
    return f"{count / 1024**2:.1f} MiB"


def api_error_message(error: ApiError) -> str:
    """The API server's own message (e.g. a CRD validation rule's), else status and reason."""
    return error.message


def main(argv: Sequence[str] | None = None, *, kube_factory: Callable[[], Kube] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["plan"]:  # the task-file dry run needs no cluster (dockyard.cli.plan)
        return plan_command(arguments[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    namespace = args.namespace or default_namespace()
    cli: Cli | None = None
    try:
        if args.command == "build":
            validate_build_args(args)  # before any cluster access: usage errors come first
        kube = kube_factory() if kube_factory else _kube()
        cli = Cli(kube, namespace)
        handlers: dict[str, Callable[[argparse.Namespace], int]] = {
            "build": cli.build,
            "runs": cli.runs,
            "logs": cli.logs,
            "cancel": cli.cancel,
        }
        return handlers[args.command](args)
    except (UsageError, AccessError, BuildArgError) as error:
        print(f"dockyard: {error}", file=sys.stderr)
        return EXIT_USAGE
    except DistributionError as error:
        print(f"dockyard: the registry: {error}", file=sys.stderr)
        return EXIT_FAILED
    except ApiError as error:
        print(f"dockyard: the Kubernetes API: {api_error_message(error)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_DETACHED


def _kube() -> Kube:
    try:
        return Kube(ApiServer(cluster_credentials(), user_agent="dockyard-cli"))
    except (config.ConfigException, CredentialsError, OSError) as error:  # no kubeconfig, no in-cluster credentials
        raise UsageError(f"no cluster configured: {error}") from error


def cluster_credentials() -> Credentials:
    """The credentials as the kubernetes package reads them: in a pod, its service account; else
    every kubeconfig form kubectl takes, exec plugins and auth providers included (the operator's
    own reader, `core.apiserver.load_credentials`, takes only certificates and tokens)."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    # Since kubernetes 36 the token is under `BearerToken`, before under `authorization`.
    header = configuration.get_api_key_with_prefix("BearerToken") or configuration.get_api_key_with_prefix(
        "authorization"
    )
    return Credentials(
        server=str(configuration.host),
        ca_file=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        cert_file=configuration.cert_file,
        key_file=configuration.key_file,
        token=str(header).split(" ", 1)[-1] if header else None,
    )
