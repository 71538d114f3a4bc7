"""`kubectl dockyard`: the daily work with Dockyard, as a kubectl plugin (`kubectl-dockyard` on the
PATH, installed with the package).

    kubectl dockyard login REGISTRY [--for docker|podman] [--server HOST] [--username U --password-stdin]
    kubectl dockyard build | logs | cancel | plan …     the `dockyard` build CLI, unchanged
    kubectl dockyard runs [-r REGISTRY] [-A] [-o json|yaml|wide]
    kubectl dockyard deliveries WEBHOOK [--state STATE] [--all] [-o json|yaml|wide]
    kubectl dockyard redeliver WEBHOOK DELIVERY_ID…
    kubectl dockyard ping WEBHOOK [--timeout SECONDS]
    kubectl dockyard status [-A] [-o json|yaml]

Deliveries: the newest 10 are in the Webhook's status (`status.recentDeliveries`), read through
the API with the user's own rights. Older ones (`--all`) and `redeliver` need the operator's
delivery store, reached with `kubectl exec` into the operator pod (`python -m dockyard.webhooks`),
so they need `pods/exec` in the operator's namespace: the store is the operator's, and exec is the
one door the API server already guards for it.

Exit codes: 0 done, 1 the thing asked about failed (a run, a ping, a redelivery), 2 usage and
access errors, 130 after Ctrl-C. Errors are one sentence on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from dockyard.cli import main as build_cli
from dockyard.cli.login import CLIENTS, auth_file, write_login
from dockyard.cli.output import OUTPUTS, format_objects, format_table
from dockyard.cli.registry_access import AccessError, read_registry, upload_credentials
from dockyard.cli.runs import BUILD_RUN_KIND, EXIT_DETACHED, EXIT_FAILED, EXIT_SUCCEEDED, EXIT_USAGE
from dockyard.cli.views import delivery_rows, run_registry, run_rows, status_screen, status_summary
from dockyard.core.apiserver import ApiError
from dockyard.core.kube import Kube
from dockyard.models.base import API_VERSION
from dockyard.webhooks.reconcile import PING_ANNOTATION

PROG = "kubectl dockyard"
DELEGATED = ("build", "logs", "cancel", "plan")
"""Commands of the `dockyard` build CLI, run by it unchanged (same flags, same output)."""
OPERATOR_SELECTOR = "app.kubernetes.io/name=dockyard,app.kubernetes.io/component=operator"
STATES = ("pending", "delivered", "failed", "canceled")


class UsageError(Exception):
    """A command that cannot run as given; the message is one sentence saying why."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Dockyard registries, webhooks and builds.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig context's)")
    formatted = argparse.ArgumentParser(add_help=False, parents=[common])
    formatted.add_argument("-o", "--output", choices=OUTPUTS, help="json, yaml or wide")
    listing = argparse.ArgumentParser(add_help=False, parents=[formatted])
    listing.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    login = commands.add_parser("login", parents=[common], help="write a Registry's credentials for docker or podman")
    login.add_argument("registry", metavar="REGISTRY")
    login.add_argument(
        "--for", dest="client", choices=CLIENTS, default="docker", help="whose auth file (default docker)"
    )
    login.add_argument("--server", help="the host to log in to (default: status.externalLoginServer, else loginServer)")
    login.add_argument("--username", help="a token's or user's name (default: the admin user's Secret)")
    login.add_argument("--password-stdin", action="store_true", help="read the password or token from stdin")

    for name in DELEGATED:
        commands.add_parser(name, add_help=False, help=f"as `dockyard {name}` (see `{PROG} {name} --help`)")

    runs = commands.add_parser("runs", parents=[listing], help="list BuildRuns, newest first")
    runs.add_argument("-r", "--registry", help="only runs of this Registry")

    deliveries = commands.add_parser("deliveries", parents=[formatted], help="a webhook's deliveries, newest first")
    deliveries.add_argument("webhook", metavar="WEBHOOK")
    deliveries.add_argument("--state", choices=STATES)
    deliveries.add_argument("--all", action="store_true", help="beyond the newest 10: the operator's store (exec)")
    deliveries.add_argument("--limit", type=int, default=50, help="with --all: how many (default 50)")

    redeliver = commands.add_parser("redeliver", parents=[common], help="send deliveries again (same id and body)")
    redeliver.add_argument("webhook", metavar="WEBHOOK")
    redeliver.add_argument("ids", nargs="+", metavar="DELIVERY_ID")

    ping = commands.add_parser("ping", parents=[common], help="send a ping and wait for its result")
    ping.add_argument("webhook", metavar="WEBHOOK")
    ping.add_argument("--timeout", type=float, default=60, help="seconds to wait (default 60)")

    commands.add_parser("status", parents=[listing], help="registries, failing webhooks, running builds")
    return parser


class Plugin:
    """The plugin's own commands, given a Kube client and the terminal's streams."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        *,
        out: TextIO = sys.stdout,
        err: TextIO = sys.stderr,
        stdin: TextIO = sys.stdin,
        environment: Mapping[str, str] = os.environ,
        run_command: Callable[[Sequence[str]], subprocess.CompletedProcess[str]] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.kube, self.namespace = kube, namespace
        self.out, self.err, self.stdin, self.environment = out, err, stdin, environment
        self.run_command = run_command or _run
        self.sleep = sleep

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def progress(self, text: str) -> None:
        print(text, file=self.err, flush=True)

    # -- login -----------------------------------------------------------------------------------

    def login(self, args: argparse.Namespace) -> int:
        password = self.stdin.readline().rstrip("\r\n") if args.password_stdin else None
        if args.password_stdin and not args.username:
            raise UsageError("--password-stdin needs --username")
        registry = read_registry(self.kube, self.namespace, args.registry)
        status = registry.get("status") or {}
        server = args.server or status.get("externalLoginServer") or status.get("loginServer")
        if not server:
            raise UsageError(f"Registry {args.registry} has no login server yet (is it Ready?)")
        credentials = upload_credentials(
            self.kube, registry, username=args.username, password=password, environment=self.environment
        )
        path = auth_file(args.client, self.environment, Path(self.environment.get("HOME") or Path.home()))
        try:
            write_login(path, server, credentials.username, credentials.password)
        except (OSError, ValueError) as error:
            raise UsageError(f"cannot write {path}: {error}") from error
        self.say(f"Credentials for {server} written to {path} ({args.client}).")
        ca = (status.get("credentials") or {}).get("caConfigMapName")
        if ca:
            self.progress(
                f"The registry's certificate is signed by its own CA: trust ca.crt from ConfigMap {ca} "
                f"(kubectl get configmap {ca} -n {self.namespace} -o jsonpath='{{.data.ca\\.crt}}')."
            )
        return EXIT_SUCCEEDED

    # -- runs ------------------------------------------------------------------------------------

    def runs(self, args: argparse.Namespace) -> int:
        namespace = None if args.all_namespaces else self.namespace
        items = self.kube.list(API_VERSION, BUILD_RUN_KIND, namespace)
        tasks = self.kube.list(API_VERSION, "BuildTask", namespace)
        if args.registry:
            items = [run for run in items if run_registry(run, tasks) == args.registry]
        if args.output in ("json", "yaml"):
            self.say(format_objects(items, args.output))
            return EXIT_SUCCEEDED
        if not items:
            where = "any namespace" if args.all_namespaces else f"namespace {self.namespace}"
            self.progress(f"No BuildRuns found in {where}.")
            return EXIT_SUCCEEDED
        rows, headers = run_rows(items, tasks, wide=args.output == "wide", all_namespaces=args.all_namespaces)
        self.say(format_table(rows, headers))
        return EXIT_SUCCEEDED

    # -- webhooks --------------------------------------------------------------------------------

    def _webhook(self, name: str) -> dict[str, Any]:
        webhook = self.kube.get(API_VERSION, "Webhook", self.namespace, name)
        if webhook is None:
            raise UsageError(f"no Webhook {name} in namespace {self.namespace}")
        return dict(webhook)

    def deliveries(self, args: argparse.Namespace) -> int:
        webhook = self._webhook(args.webhook)
        if args.all:
            command = ["deliveries", f"{self.namespace}/{args.webhook}", "--json", "--limit", str(args.limit)]
            if args.state:
                command += ["--state", args.state]
            records = [json.loads(line) for line in self._in_operator(command).splitlines() if line.strip()]
        else:
            records = list((webhook.get("status") or {}).get("recentDeliveries") or [])
            if args.state:
                records = [r for r in records if r.get("state") == args.state]
        if args.output in ("json", "yaml"):
            self.say(format_objects(records, args.output))
            return EXIT_SUCCEEDED
        if not records:
            self.progress(f"Webhook {args.webhook} has no deliveries{' in state ' + args.state if args.state else ''}.")
            return EXIT_SUCCEEDED
        self.say(format_table(*delivery_rows(records, wide=args.output == "wide")))
        return EXIT_SUCCEEDED

    def redeliver(self, args: argparse.Namespace) -> int:
        self._webhook(args.webhook)
        text = self._in_operator(
            ["redeliver", *args.ids], check=False, progress=f"Queueing {len(args.ids)} deliveries again in pod {{pod}}…"
        )
        self.say(text.strip())
        return EXIT_SUCCEEDED if text.startswith(f"{len(args.ids)} of ") else EXIT_FAILED

    def _in_operator(self, command: Sequence[str], *, check: bool = True, progress: str | None = None) -> str:
        """`python -m dockyard.webhooks COMMAND` in the running operator pod, through kubectl exec."""
        pods = [
            p
            for p in self.kube.list("v1", "Pod", None, OPERATOR_SELECTOR)
            if (p.get("status") or {}).get("phase") == "Running"
        ]
        if not pods:
            raise UsageError("no running Dockyard operator pod found (label app.kubernetes.io/name=dockyard)")
        pod = pods[0]["metadata"]
        if progress:
            self.progress(progress.format(pod=f"{pod['namespace']}/{pod['name']}"))
        kubectl = shutil.which("kubectl", path=self.environment.get("PATH")) or "kubectl"
        argv = [kubectl, "exec", "-n", pod["namespace"], pod["name"], "-c", "operator", "--"]
        argv += ["python", "-m", "dockyard.webhooks", *command]
        result = self.run_command(argv)
        if result.returncode != 0 and (check or not result.stdout):
            last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise UsageError(f"the operator's delivery store could not be read: {last[0]}")
        return result.stdout

    def ping(self, args: argparse.Namespace) -> int:
        self._webhook(args.webhook)
        value = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        patch = {"metadata": {"annotations": {PING_ANNOTATION: value}}}
        if self.kube.patch(API_VERSION, "Webhook", self.namespace, args.webhook, patch) is None:
            raise UsageError(f"Webhook {args.webhook} is gone")
        self.progress(f"Pinging webhook {args.webhook}…")
        deadline = time.monotonic() + args.timeout
        record: Mapping[str, Any] | None = None
        while time.monotonic() < deadline:
            webhook = self._webhook(args.webhook)
            last = (webhook.get("status") or {}).get("lastPing") or {}
            if last.get("request") == value and last.get("state") != "pending":
                record = last
                break
            self.sleep(0.5)
        if record is None:
            self.progress(f"No answer within {args.timeout:g}s: is the Dockyard operator running?")
            return EXIT_FAILED
        http = f"HTTP {record['httpStatus']}" if record.get("httpStatus") is not None else "no HTTP answer"
        latency = f" in {record['latencyMs']} ms" if record.get("latencyMs") is not None else ""
        if record.get("state") == "delivered":
            self.say(f"Ping delivered: {http}{latency}.")
            return EXIT_SUCCEEDED
        error = f": {record['error']}" if record.get("error") else ""
        self.say(f"Ping failed: {http}{latency}{error}.")
        return EXIT_FAILED

    # -- status ----------------------------------------------------------------------------------

    def status(self, args: argparse.Namespace) -> int:
        namespace = None if args.all_namespaces else self.namespace
        registries = self.kube.list(API_VERSION, "Registry", namespace)
        webhooks = self.kube.list(API_VERSION, "Webhook", namespace)
        runs = self.kube.list(API_VERSION, BUILD_RUN_KIND, namespace)
        if args.output in ("json", "yaml"):
            self.say(format_objects([status_summary(registries, webhooks, runs)], args.output, single=True))
            return EXIT_SUCCEEDED
        self.say(status_screen(registries, webhooks, runs, all_namespaces=args.all_namespaces))
        return EXIT_SUCCEEDED


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), check=False, capture_output=True, text=True, timeout=120)


def main(argv: Sequence[str] | None = None, *, kube_factory: Callable[[], Kube] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] and arguments[0] in DELEGATED:
        return build_cli.main(arguments, kube_factory=kube_factory)
    args = build_parser().parse_args(arguments)
    namespace = args.namespace or build_cli.default_namespace()
    try:
        kube = kube_factory() if kube_factory else build_cli._kube()
        plugin = Plugin(kube, namespace)
        handlers: dict[str, Callable[[argparse.Namespace], int]] = {
            "login": plugin.login,
            "runs": plugin.runs,
            "deliveries": plugin.deliveries,
            "redeliver": plugin.redeliver,
            "ping": plugin.ping,
            "status": plugin.status,
        }
        return handlers[args.command](args)
    except (UsageError, AccessError, build_cli.UsageError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ApiError as error:
        print(f"error: the Kubernetes API: {build_cli.api_error_message(error)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_DETACHED
