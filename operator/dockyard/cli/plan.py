"""`python -m dockyard plan FILE`: the dry run of an ACR task file — what acr-builder would run, in
which order and what in parallel, or why it would refuse the file. No cluster is needed.

    python -m dockyard plan FILE [--registry HOST] [--run-id ID] [--date YYYYMMDD-HHMMSSz]
        [--commit SHA] [--branch NAME] [--set NAME=VALUE]… [--secret ID=VALUE]… [--json]

Exit codes: 0 for a valid file, 1 when acr-builder would refuse it (the message names the step and
the cause), 2 for usage errors (an unreadable file, a malformed `--set`). `--json` prints exactly
one object: {"valid", "error", "version", "warnings", "steps"}. Alias `src` files are read
relative to the current directory, as acr-builder reads them from the source root.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from dockyard.builds.taskfile.plan import Plan, PlanError, PlannedStep, plan
from dockyard.builds.template import RunVariables, run_date

EXIT_VALID = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
DEFAULT_REGISTRY = "registry.example"
DEFAULT_RUN_ID = "dy1"
_DATE = re.compile(r"\A\d{8}-\d{6}z\Z")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dockyard plan",
        description="Show what an ACR task file runs (steps, dependencies, parallelism), as acr-builder plans it.",
    )
    parser.add_argument("file", help="the task file (acb.yaml)")
    parser.add_argument(
        "--registry", default=DEFAULT_REGISTRY, help=f"{{{{.Run.Registry}}}} (default {DEFAULT_REGISTRY})"
    )
    parser.add_argument("--run-id", default=DEFAULT_RUN_ID, help=f"{{{{.Run.ID}}}} (default {DEFAULT_RUN_ID})")
    parser.add_argument("--date", help="{{.Run.Date}} as YYYYMMDD-HHMMSSz (default: now, UTC)")
    parser.add_argument("--commit", default="", help="{{.Run.Commit}}")
    parser.add_argument("--branch", default="", help="{{.Run.Branch}}")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a value ({{.Values.NAME}})")
    parser.add_argument(
        "--secret", action="append", default=[], metavar="ID=VALUE", help="a declared secret's value ({{.Secrets.ID}})"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _pairs(items: Sequence[str], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, equals, value = item.partition("=")
        if not equals or not name:
            raise ValueError(f"{option} {item!r}: expected NAME=VALUE")
        out[name] = value
    return out


def _depends(step: PlannedStep) -> str:
    return ", ".join(step.depends_on) if step.depends_on else "(start)"


def _describe(step: PlannedStep) -> str:
    if step.type == "build":
        text = "build " + " ".join(f"-t {t}" for t in step.tags)
        text += f" -f {step.dockerfile}" if step.dockerfile else ""
        text += "".join(f" --build-arg {a}" for a in step.build_args)
        text += f" --target {step.target}" if step.target else ""
        return f"{text} {step.context}".replace("build  ", "build ")
    if step.type == "push":
        return "push " + " ".join(step.images)
    return "run " + " ".join([*step.run_flags, step.image or "?", *step.args])


def _options(step: PlannedStep) -> str:
    parts = [f"timeout {step.timeout}s"]
    if step.retries:
        parts.append(f"retries {step.retries} every {step.retry_delay}s")
    if step.repeat:
        parts.append(f"repeat {step.repeat}")
    for flag, label in ((step.detach, "detach"), (step.ignore_errors, "ignoreErrors"), (step.privileged, "privileged")):
        if flag:
            parts.append(label)
    if step.start_delay:
        parts.append(f"startDelay {step.start_delay}s")
    if step.shell_operators:
        parts.append("host shell: " + " ".join(step.shell_operators))
    return ", ".join(parts)


def format_plan(result: Plan) -> str:
    lines = [f"version {result.version}: {len(result.steps)} step(s)", ""]
    width = max((len(s.id) for s in result.steps), default=0)
    for step in result.steps:
        lines.append(f"  {step.id:<{width}}  {step.type:<5}  after {_depends(step)}")
        lines.append(f"  {'':<{width}}         {_describe(step)}")
        lines.append(f"  {'':<{width}}         {_options(step)}")
        if step.env:
            lines.append(f"  {'':<{width}}         env {' '.join(step.env)}")
    if result.steps:
        lines += ["", "order (steps on one line may run in parallel):"]
        lines += [f"  {i + 1}. {' | '.join(stage)}" for i, stage in enumerate(result.stages)]
    if result.warnings:
        lines += ["", "warnings:"] + [f"  - {w}" for w in result.warnings]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = build_parser().parse_args(argv)
    try:
        text = Path(args.file).read_text(encoding="utf-8")
        values = _pairs(args.set, "--set")
        secrets = _pairs(args.secret, "--secret")
        if args.date is not None and not _DATE.match(args.date):
            raise ValueError(f"--date {args.date!r}: expected YYYYMMDD-HHMMSSz, e.g. 20261201-060405z")
    except (OSError, ValueError) as error:
        print(f"dockyard plan: {error}", file=err)
        return EXIT_USAGE
    run = RunVariables(
        ID=args.run_id,
        Registry=args.registry,
        Date=args.date or run_date(datetime.now(UTC)),
        Commit=args.commit,
        Branch=args.branch,
    )
    try:
        result = plan(text, run, values, secrets, read_alias_source=lambda path: Path(path).read_text(encoding="utf-8"))
    except PlanError as error:
        if args.json:
            refused: dict[str, Any] = {
                "valid": False,
                "error": str(error),
                "version": error.version,
                "warnings": list(error.warnings),
                "steps": [],
            }
            print(json.dumps(refused, indent=2), file=out)
        else:
            print(f"{args.file}: refused: {error}", file=out)
            for warning in error.warnings:
                print(f"  warning: {warning}", file=out)
        return EXIT_REFUSED
    print(json.dumps(result.as_json(), indent=2) if args.json else format_plan(result), file=out)
    return EXIT_VALID
