"""Run variables in image names: `{{.Run.ID}}`, `{{.Run.Registry}}`, `{{.Values.x}}`, … as ACR
renders them (acr-builder's templating, Go text/template with `missingkey=zero`).

Only field references are rendered here, which is all a Dockerfile build's image names use; a
missing field renders as the empty string, as in ACR. Anything else between `{{ }}` (functions,
pipelines) is refused with the expression in the message rather than pushed as a literal name;
multi-step task files get the full template engine of their own planner.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Final

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")
_FIELD = re.compile(r"^\.(Run|Build|Values)\.([A-Za-z_][A-Za-z0-9_]*)$")
DATE_LAYOUT: Final = "%Y%m%d-%H%M%Sz"
"""Go's `20060102-150405z`: the `z` is a literal lower-case letter, not a zone."""


class TemplateError(ValueError):
    """An image name uses template syntax that is not supported."""


@dataclass(frozen=True)
class RunVariables:
    """`.Run.*` as acr-builder defines them (names kept, Go-style)."""

    ID: str
    Registry: str
    Date: str
    Commit: str = ""
    Branch: str = ""
    TaskName: str = ""
    TriggeredBy: str = ""
    Repository: str = ""
    GitTag: str = ""
    OS: str = "linux"
    Architecture: str = "amd64"
    SharedVolume: str = ""
    OSVersion: str = ""

    @property
    def RegistryName(self) -> str:
        return self.Registry.split(".", 1)[0].split(":", 1)[0]

    def lookup(self, name: str) -> str:
        if name == "RegistryName":
            return self.RegistryName
        return str(getattr(self, name)) if name in _RUN_FIELDS else ""


_RUN_FIELDS: Final = frozenset(f.name for f in fields(RunVariables))


def run_date(started: datetime) -> str:
    return started.strftime(DATE_LAYOUT)


def render(text: str, run: RunVariables, values: Mapping[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        expression = match.group(1)
        field = _FIELD.match(expression)
        if field is None:
            raise TemplateError(
                f"unsupported template expression {{{{{expression}}}}} in {text!r}: image names support "
                "{{.Run.<field>}} and {{.Values.<name>}}"
            )
        scope, name = field.groups()
        if scope == "Values":
            return values.get(name, "")
        if scope == "Build":  # acr-builder's legacy alias: only .Build.ID exists
            return run.ID if name == "ID" else ""
        return run.lookup(name)

    return _ACTION.sub(substitute, text)
