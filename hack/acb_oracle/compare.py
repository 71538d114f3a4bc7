"""Compare Dockyard's planner with acr-builder itself on task files (a development check, not a test).

    # once: an acr-builder checkout with the oracle built inside it (Go; vendored, no network)
    git clone https://github.com/Azure/acr-builder /tmp/acb && mkdir -p /tmp/acb/cmd/plandump
    cp hack/acb_oracle/main.go /tmp/acb/cmd/plandump/ && (cd /tmp/acb && go build -mod=vendor -o /tmp/plandump ./cmd/plandump)
    .venv/bin/python hack/acb_oracle/compare.py FILE.yaml…   # FILE.yaml.json may hold {"values": …, "secrets": …}

Prints each difference in validity, version, ids, types, dependencies, tags, build args, images,
the cmd text after aliases and rendering, env, timeouts and retries. Known, deliberate differences:
build-step tags/args/Dockerfile/context follow docker's reading of the text where acr-builder's own
field scan differs (quotes, `--tag=x`, a context after a boolean flag), and a `when` that names a
step twice is refused (acr-builder accepts it and never starts the step).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from dockyard.builds.taskfile.plan import PlanError, plan
from dockyard.builds.template import RunVariables

ORACLE = os.environ.get("ACB_PLANDUMP", "/tmp/plandump")
RUN = RunVariables(ID="ca1", Registry="reg.example", Date="20261201-060405z", Commit="c0ffee", Branch="main")
BUILD_KEYS = ("tags", "buildArgs", "dockerfile", "context", "target")


def acr_builder(path: Path, values: dict[str, Any], secrets: dict[str, str]) -> dict[str, Any]:
    values_file = ""
    if values:
        values_file = "/tmp/acb-oracle-values.yaml"
        Path(values_file).write_text(json.dumps(values))  # JSON is YAML with every string quoted
    completed = subprocess.run(
        [ORACLE, path.name, values_file, json.dumps(secrets)],
        capture_output=True,
        text=True,
        cwd=path.parent,
        timeout=60,
    )
    try:
        result: dict[str, Any] = json.loads(completed.stdout)
    except json.JSONDecodeError:
        return {"valid": False, "error": "oracle crashed: " + completed.stderr[-300:]}
    for step in result.get("steps") or []:
        for key in BUILD_KEYS:
            if step["type"] == "build":
                step.setdefault(key, [] if key in ("tags", "buildArgs") else "")
        if step["type"] != "cmd":
            step.pop("cmd", None)
    return result


def dockyard(path: Path, values: dict[str, Any], secrets: dict[str, str]) -> dict[str, Any]:
    try:
        result = plan(path.read_text(), RUN, values, secrets, read_alias_source=lambda f: (path.parent / f).read_text())
    except PlanError as error:
        return {"valid": False, "error": str(error)}
    steps = []
    for step in result.steps:
        data: dict[str, Any] = {
            "id": step.id,
            "type": step.type,
            "dependsOn": sorted(step.depends_on),
            "timeout": step.timeout,
            "retries": step.retries,
            "retryDelay": step.retry_delay,
            "repeat": step.repeat,
            "ignoreErrors": step.ignore_errors,
            "detach": step.detach,
            "env": list(step.env),
            "workingDirectory": step.working_directory or "",
        }
        if step.type == "build":
            data |= {"tags": list(step.tags), "buildArgs": list(step.build_args), "dockerfile": step.dockerfile or ""}
            data |= {"context": step.context, "target": step.target or ""}
        elif step.type == "push":
            data["images"] = list(step.images)
        else:
            data["cmd"] = step.command
        steps.append(data)
    return {"valid": True, "version": result.version, "steps": steps}


def compare(path: Path) -> list[str]:
    spec_file = path.with_name(path.name + ".json")
    spec = json.loads(spec_file.read_text()) if spec_file.exists() else {}
    theirs = acr_builder(path, spec.get("values") or {}, spec.get("secrets") or {})
    ours = dockyard(path, spec.get("values") or {}, spec.get("secrets") or {})
    if theirs["valid"] != ours["valid"]:
        return [
            f"{path}: valid acr-builder={theirs['valid']} ({theirs.get('error')}) dockyard={ours['valid']} ({ours.get('error')})"
        ]
    if not theirs["valid"]:
        return []
    out = [] if theirs["version"] == ours["version"] else [f"{path}: version {theirs['version']} != {ours['version']}"]
    their_steps, our_steps = theirs.get("steps") or [], ours["steps"]
    if len(their_steps) != len(our_steps):
        return [*out, f"{path}: {len(their_steps)} steps != {len(our_steps)}"]
    for their, our in zip(their_steps, our_steps, strict=True):
        out += [
            f"{path}: step {their['id']}: {key} acr-builder={their[key]!r} dockyard={our.get(key)!r}"
            for key in their
            if their[key] != our.get(key)
        ]
    return out


def main(paths: list[str]) -> int:
    differences = [line for name in paths for line in compare(Path(name))]
    print("\n".join(differences))
    print(f"{len(paths)} files, {len(differences)} differences")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
