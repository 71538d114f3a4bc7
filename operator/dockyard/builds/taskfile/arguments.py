"""The text of `build` and `cmd` steps read as the host shell and docker read it.

acr-builder runs both through `/bin/sh -c "docker build|run … <text>"`, so quoting and operators
are the host shell's (parsed here with POSIX rules, `shlex`). For a build step it records tags,
build args, Dockerfile, target and context with its own `strings.Fields` scan (no quote removal for
tags, no `--tag=x`, and a positional argument after any flag is skipped); the values here are what
docker itself builds instead — the same for ordinary files, right for `--tag=x`, quoted values and
`--no-cache ./dir` — because the plan drives the build.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass
from typing import Final

WORKSPACE: Final = "/workspace"
HOME_ENV: Final = "HOME=/acb/home"

# docker build / buildx build flags that take no value; every other flag takes the next token
_BUILD_BOOLEAN_FLAGS: Final = frozenset(
    {
        "--no-cache", "--pull", "-q", "--quiet", "--rm", "--force-rm", "--compress", "--squash", "--stream",
        "--disable-content-trust", "--load", "--push", "--check", "--debug", "-D",
    }
)  # fmt: skip
_BUILD_VALUE_FLAGS: Final = frozenset(
    {
        "--add-host", "--allow", "--annotation", "--attest", "--build-arg", "--build-context", "--builder",
        "--cache-from", "--cache-to", "--call", "--cgroup-parent", "--cpu-period", "--cpu-quota", "-c",
        "--cpu-shares", "--cpuset-cpus", "--cpuset-mems", "-f", "--file", "--iidfile", "--isolation", "--label",
        "-m", "--memory", "--memory-swap", "--metadata-file", "--network", "-o", "--output", "--platform",
        "--progress", "--provenance", "--sbom", "--secret", "--security-opt", "--shm-size", "--ssh", "-t", "--tag",
        "--target", "--ulimit", "--no-cache-filter",
    }
)  # fmt: skip


@dataclass(frozen=True)
class BuildArguments:
    tags: tuple[str, ...]
    dockerfile: str | None
    context: str
    build_args: tuple[str, ...]
    target: str | None
    other_flags: tuple[str, ...]
    unknown_flags: tuple[str, ...]


def _split_shell(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def parse_build(text: str) -> BuildArguments:
    """A build step's `docker build` arguments: tags (`-t`/`--tag`, also `--tag=x`), build args,
    `-f`, `--target`, and the context (the positional argument; `.` when there is none)."""
    tokens = _split_shell(text)
    tags: list[str] = []
    build_args: list[str] = []
    other: list[str] = []
    unknown: list[str] = []
    dockerfile: str | None = None
    target: str | None = None
    context = "."
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "-" or not token.startswith("-"):
            context = token
            i += 1
            continue
        name, equals, value = token.partition("=")
        if not equals and name in _BUILD_BOOLEAN_FLAGS:
            other.append(token)
            i += 1
            continue
        if not equals:
            if name not in _BUILD_VALUE_FLAGS:
                unknown.append(name)
            value = tokens[i + 1] if i + 1 < len(tokens) else ""
            i += 2
        else:
            i += 1
        if name in {"-t", "--tag"}:
            tags.append(value)
        elif name == "--build-arg":
            build_args.append(value)
        elif name in {"-f", "--file"}:
            dockerfile = value
        elif name == "--target":
            target = value
        else:
            other.extend([token] if equals else [name, value])
    return BuildArguments(tuple(tags), dockerfile, context, tuple(build_args), target, tuple(other), tuple(unknown))


# docker run flags that take no value; every other flag takes the next token
_RUN_BOOLEAN_FLAGS: Final = frozenset(
    {
        "-d", "--detach", "-i", "--interactive", "-t", "--tty", "--rm", "--privileged", "--init", "--read-only",
        "-P", "--publish-all", "--sig-proxy", "--no-healthcheck", "--oom-kill-disable", "-it", "-ti", "-itd",
        "-dit", "-td", "-dt", "-id", "-di", "-q", "--quiet",
    }
)  # fmt: skip
_OPERATOR = re.compile(r"\A[;&|<>()\n]+\Z")


@dataclass(frozen=True)
class CmdArguments:
    run_flags: tuple[str, ...]
    image: str | None
    args: tuple[str, ...]
    operators: tuple[str, ...]
    error: str | None = None


def parse_cmd(text: str) -> CmdArguments:
    """A cmd step's text as `docker run [flags] IMAGE [args]` after the host shell's word splitting:
    flags before the image, the image, its arguments up to the first shell operator, and each
    operator the host shell would act on with the words after it (`|| true`, `> /dev/null`,
    `; echo done`, a newline)."""
    # a newline ends a command for the host shell as `;` does
    lexer = shlex.shlex(text.strip(), posix=True, punctuation_chars=";&|<>()\n")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    error = None
    try:
        tokens = list(lexer)
    except ValueError:
        tokens = text.split()
        error = "cmd has an unclosed quote: the host shell would fail this step"
    tokens = [token for i, token in enumerate(tokens) if token != "\n" or (i and tokens[i - 1] != "\n")]
    groups: list[list[str]] = []
    words: list[str] = []
    for token in tokens:
        if _OPERATOR.match(token):
            groups.append([token])
        elif groups:
            groups[-1].append(token)
        else:
            words.append(token)
    operators = [" ".join(group) for group in groups]
    flags: list[str] = []
    i = 0
    while i < len(words) and words[i].startswith("-") and words[i] != "-":
        token = words[i]
        flags.append(token)
        i += 1
        if "=" not in token and token not in _RUN_BOOLEAN_FLAGS and i < len(words):
            flags.append(words[i])
            i += 1
    image = words[i] if i < len(words) else None
    return CmdArguments(tuple(flags), image, tuple(words[i + 1 :]), tuple(operators), error)


def container_working_directory(working_directory: str | None) -> str:
    """`--workdir` as acr-builder passes it: absolute paths cleaned, others under /workspace."""
    directory = working_directory or ""
    if directory.startswith("/"):
        return posixpath.normpath(directory)
    return posixpath.normpath(posixpath.join(WORKSPACE, directory))


def container_env(entries: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The container's environment as acr-builder's `docker run --env HOME=/acb/home --env <entry>…`
    gives it after the host shell's word splitting, and the entries that split into more than
    one word (the extra words become `docker run` arguments on ACR)."""
    env = [HOME_ENV]
    broken: list[str] = []
    for entry in entries:
        try:
            words = shlex.split(entry)
        except ValueError:
            words = entry.split()
            broken.append(entry)
        else:
            if len(words) != 1:
                broken.append(entry)
        env.extend(words[:1])
    return tuple(env), tuple(broken)
