"""The base image a Dockerfile build stands on, and the image references it names. Pure.

`final_base(dockerfile, build_args, target)` is the origin of the stage the build produces, the
*runtime* base ACR tracks by default (acr-builder's `scan/dependencies.go` does the same walk):

- instructions are read as BuildKit reads them: `# escape=` directive, `\\` (or the escape
  character) continues a line, comment lines are dropped, keywords in any case;
- `ARG`s before the first `FROM` are the only variables a `FROM` sees: their default, replaced by
  a build argument of the same name (a build argument nobody declared expands to nothing, as in
  docker); the platform arguments (`TARGETPLATFORM`, `TARGETOS`, `TARGETARCH`, `BUILDPLATFORM`, …)
  are predefined from the build's platform;
  `$X`, `${X}`, `${X:-default}`, `${X-default}`, `${X:+alt}`, `${X+alt}` are expanded, `\\$` is a `$`;
- `FROM [--platform=…] <image> [AS <name>]`: flags are skipped, `<image>` naming an earlier stage
  (case-insensitive) stands for that stage's origin, followed as far as it goes;
- the final stage is the one `target` names, else the last one;
- `scratch` is no image: nothing to track (None).

`ImageRef.parse` qualifies a reference as docker does: no host → `docker.io`, one path component
on Docker Hub → `library/…`, neither tag nor digest → `latest`. A reference with a digest is
pinned: it never changes, so it is recorded but never tracked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

DOCKER_HUB: Final = "docker.io"
DOCKER_HUB_API: Final = "registry-1.docker.io"
"""Where Docker Hub's /v2 API answers (docker.io itself redirects to the website)."""
DEFAULT_PLATFORM: Final = "linux/amd64"
BASE_REPORT_KEY: Final = "baseImage"
"""The key of the fetch container's termination message that holds the base it resolved."""

_VARIABLE = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-+])(?P<word>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
_DIRECTIVE = re.compile(r"^#\s*([A-Za-z]+)\s*=\s*(\S+)\s*$")


class DockerfileError(ValueError):
    """A Dockerfile whose base cannot be told: no FROM, an unknown target, an empty image."""


def _logical_lines(text: str) -> list[str]:
    """The Dockerfile's instructions, one per line, continuations joined and comments dropped."""
    lines = text.splitlines()
    escape = "\\"
    for line in lines:  # parser directives come first and stop at the first other line
        match = _DIRECTIVE.match(line.strip())
        if not match:
            break
        if match.group(1).lower() == "escape" and match.group(2) in ("\\", "`"):
            escape = match.group(2)
    result: list[str] = []
    current = ""
    for raw in lines:
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and current):
            continue  # comments (and empty lines) inside a continued instruction are dropped too
        if stripped.endswith(escape) and not stripped.endswith(escape * 2):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current.strip():
            result.append(current.strip())
        current = ""
    if current.strip():
        result.append(current.strip())
    return result


def expand(word: str, variables: Mapping[str, str]) -> str:
    """`word` with `$X` / `${X…}` replaced as a Dockerfile does; unknown variables are empty."""

    def replace(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bare")
        value = variables.get(name)
        op = match.group("op")
        if op is None:
            return value or ""
        word_value = expand(match.group("word") or "", variables)
        if op == ":-":
            return value if value else word_value
        if op == "-":
            return value if value is not None else word_value
        if op == ":+":
            return word_value if value else ""
        return word_value if value is not None else ""  # "+"

    parts = word.split("\\$")  # an escaped dollar is a literal one
    return "$".join(_VARIABLE.sub(replace, part) for part in parts)


def _args(rest: str) -> dict[str, str | None]:
    """`ARG A=1 B` → {A: "1", B: None}; quotes around a default are removed."""
    declared: dict[str, str | None] = {}
    for item in re.findall(r'(?:[^\s"\']+|"[^"]*"|\'[^\']*\')+', rest):
        name, equals, value = item.partition("=")
        declared[name] = value.replace('"', "").replace("'", "") if equals else None
    return declared


def platform_args(platform: str | None) -> dict[str, str]:
    target = platform or DEFAULT_PLATFORM
    os_, _, arch_variant = target.partition("/")
    arch, _, variant = arch_variant.partition("/")
    build_os, _, build_arch = DEFAULT_PLATFORM.partition("/")
    return {
        "TARGETPLATFORM": target,
        "TARGETOS": os_,
        "TARGETARCH": arch,
        "TARGETVARIANT": variant,
        "BUILDPLATFORM": DEFAULT_PLATFORM,
        "BUILDOS": build_os,
        "BUILDARCH": build_arch,
        "BUILDVARIANT": "",
    }


@dataclass(frozen=True)
class Stage:
    origin: str
    """The image or earlier stage FROM names, variables expanded."""
    name: str | None


def stages(dockerfile: str, build_args: Mapping[str, str], platform: str | None = None) -> list[Stage]:
    variables: dict[str, str] = platform_args(platform)
    found: list[Stage] = []
    for line in _logical_lines(dockerfile):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "ARG" and not found:
            for name, default in _args(rest).items():
                if name in build_args:
                    variables[name] = build_args[name]
                elif default is not None:
                    variables[name] = expand(default, variables)
                else:
                    variables.setdefault(name, "")
        elif keyword == "FROM":
            words = [word for word in rest.split() if not word.startswith("--")]
            if not words:
                raise DockerfileError(f"line {line!r}: FROM names no image")
            origin = expand(words[0], variables)
            if not origin:
                raise DockerfileError(f"FROM {words[0]} expands to nothing: give the build argument")
            alias = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            found.append(Stage(origin, alias.lower() if alias else None))
    return found


def final_base(
    dockerfile: str, build_args: Mapping[str, str], target: str | None = None, platform: str | None = None
) -> str | None:
    """The image the built stage stands on (None: `scratch`); raises DockerfileError."""
    all_stages = stages(dockerfile, build_args, platform)
    if not all_stages:
        raise DockerfileError("the Dockerfile has no FROM")
    if target is not None:
        index = next((i for i, s in enumerate(all_stages) if s.name == target.lower()), None)
        if index is None:
            raise DockerfileError(f"target stage {target!r} is not in the Dockerfile")
    else:
        index = len(all_stages) - 1
    origin = all_stages[index].origin
    # a stage may only name an earlier one; following them backwards always ends
    for earlier in range(index - 1, -1, -1):
        stage = all_stages[earlier]
        if stage.name is not None and stage.name == origin.lower():
            origin = stage.origin
    return None if origin.lower() == "scratch" else origin


@dataclass(frozen=True)
class ImageRef:
    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, reference: str) -> ImageRef:
        name, _, digest = reference.partition("@")
        first, slash, rest = name.partition("/")
        if slash and ("." in first or ":" in first or first == "localhost"):
            registry, path = first, rest
        else:
            registry, path = DOCKER_HUB, name
        repository, colon, tag = path.rpartition(":")
        if not colon or "/" in tag:
            repository, tag = path, ""
        if registry == DOCKER_HUB and "/" not in repository:
            repository = f"library/{repository}"
        if not repository or repository != repository.lower():
            raise DockerfileError(f"{reference!r} is not an image reference")
        return cls(registry, repository, tag or (None if digest else "latest"), digest or None)

    @property
    def pinned(self) -> bool:
        """Named by digest: it never changes, so there is nothing to track."""
        return self.digest is not None

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


@dataclass(frozen=True)
class BaseImage:
    """A base as a run recorded it: where, which tag, the digest the tag named when it started."""

    registry: str
    repository: str
    tag: str | None
    digest: str

    def as_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {"registry": self.registry, "repository": self.repository, "digest": self.digest}
        if self.tag:
            status["tag"] = self.tag
        return status

    @classmethod
    def from_status(cls, status: Mapping[str, Any] | None) -> BaseImage | None:
        if not status or not status.get("registry") or not status.get("repository") or not status.get("digest"):
            return None
        return cls(str(status["registry"]), str(status["repository"]), status.get("tag") or None, str(status["digest"]))

    @property
    def key(self) -> tuple[str, str, str]:
        """What is watched: one tag of one repository; a pinned base (no tag) has no key."""
        return (self.registry, self.repository, self.tag or "")

    def reference(self) -> str:
        return f"{self.registry}/{self.repository}:{self.tag}" if self.tag else f"{self.registry}/{self.repository}"


def reported_base(pod: Mapping[str, Any] | None, container: str) -> dict[str, Any] | None:
    """The base the fetch container resolved (its termination message), as run status; None
    when it reported none (or has not finished)."""
    for entry in ((pod or {}).get("status") or {}).get("initContainerStatuses") or ():
        if entry.get("name") != container:
            continue
        terminated = (entry.get("state") or {}).get("terminated") or {}
        if terminated.get("exitCode") != 0:
            return None
        try:
            report = json.loads(terminated.get("message") or "")
        except ValueError:
            return None
        base = BaseImage.from_status(report.get(BASE_REPORT_KEY) if isinstance(report, dict) else None)
        return base.as_status() if base is not None else None
    return None
