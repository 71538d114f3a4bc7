"""Comment stripping, the version sniff, and `$` aliases, as acr-builder does them before rendering
(templating/template.go NewTemplate; graph/preprocessor.go).

- Comment lines (first non-blank character `#`) are dropped before anything else, so template syntax
  inside a comment is never executed.
- Aliases apply only when the `version:` line's value is `>= "v1.1.0"` as a **string** comparison
  (so `V1.1.0` does not enable them, `v2` does).
- The `alias:` block (from its top-level line to the next top-level `key:` line) is cut out of the
  text and rendered on its own; `values` must be alphanumeric names; `src` lists alias files (later
  ones win over earlier ones, `values` over all, and the built-in aliases below come last);
  `directive` replaces `$` with one non-alphanumeric character.
- In the rest of the text `$name` (ASCII letters and digits) becomes its value, `$$` a literal `$`,
  and an unknown `$name` stays as it is.
- After parsing, the first word of each `cmd` is replaced when it is an alias name (`bash`, `az`, …
  — and, as in acr-builder, any other alias name).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import yaml

ALIAS_VERSION: Final = "v1.1.0"
DEFAULT_DIRECTIVE: Final = "$"

RUN_ALIASES: Final[dict[str, str]] = {
    "ID": "{{.Run.ID}}",
    "SharedVolume": "{{.Run.SharedVolume}}",
    "Registry": "{{.Run.Registry}}",
    "RegistryName": "{{.Run.RegistryName}}",
    "Date": "{{.Run.Date}}",
    "OS": "{{.Run.OS}}",
    "Architecture": "{{.Run.Architecture}}",
    "Commit": "{{.Run.Commit}}",
    "Branch": "{{.Run.Branch}}",
}
"""acr-builder's native aliases (graph/global-defaults-linux.go), rendered with the rest of the file."""

IMAGE_ALIASES: Final[dict[str, str]] = {
    "acr": "mcr.microsoft.com/acr/acr-cli:0.19",
    "az": "mcr.microsoft.com/acr/azure-cli:2ff604c",
    "bash": "mcr.microsoft.com/acr/bash:2ff604c",
    "curl": "mcr.microsoft.com/acr/curl:2ff604c",
    "cssc": "mcr.microsoft.com/acr/cssc:2ff604c",
}
"""Default image aliases for the first word of a `cmd` (Linux defaults of acr-builder @ 90b22f3)."""

_ALIAS_NAME = re.compile(r"\A[a-zA-Z0-9]+\Z")
_ALIAS_LINE = re.compile(r"\Aalias\s*:.*\Z")
_TOP_LEVEL_LINE = re.compile(r"\A[^\s:]+[^:]*:.*\Z")
_COMMENT_LINE = re.compile(r"\A\s*#")

AliasSourceReader = Callable[[str], str]
"""Reads an alias `src` file by the path written in the task file (relative to the source root)."""


class AliasError(ValueError):
    """The alias block cannot be used; the message says why."""


def strip_comments(text: str) -> str:
    return "\n".join(line for line in text.split("\n") if not is_comment_line(line))


def is_comment_line(line: str) -> bool:
    return line.strip().startswith("#")


def find_version(text: str) -> str:
    """The `version:` value as acr-builder sniffs it from the raw text (graph/preprocessor.go FindVersion)."""
    for line in text.split("\n"):
        trimmed = line.strip()
        if not trimmed or trimmed.startswith("#"):
            continue
        if line.lstrip("'\"").startswith("version"):
            key, colon, value = line.partition(":")
            if colon and key.strip().strip("'\"") == "version":
                return value.strip().strip("'\"")
    return ""


def uses_aliases(version: str) -> bool:
    return version >= ALIAS_VERSION


def separate_alias_block(text: str) -> tuple[str, str]:
    """(the `alias:` block, the rest), each line ending in a newline (SeparateAliasFromRest)."""
    block, rest, _ = split_alias_block(text)
    return block, rest


def split_alias_block(text: str) -> tuple[str, str, list[int]]:
    """`separate_alias_block`, and the 0-based indexes in text of the rest's lines."""
    alias_lines: list[str] = []
    rest_lines: list[str] = []
    rest_indexes: list[int] = []
    inside = False
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for index, raw in enumerate(lines):
        line = raw.removesuffix("\r")
        if _COMMENT_LINE.match(line):
            continue
        if _ALIAS_LINE.match(line) and not inside:
            inside = True
        elif _TOP_LEVEL_LINE.match(line) and inside:
            inside = False
        if inside:
            alias_lines.append(line + "\n")
        else:
            rest_lines.append(line + "\n")
            rest_indexes.append(index)
    return "".join(alias_lines), "".join(rest_lines), rest_indexes


@dataclass(frozen=True)
class Aliases:
    values: Mapping[str, str]
    directive: str = DEFAULT_DIRECTIVE


def _string_map(data: Any, where: str) -> dict[str, str]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise AliasError(f"{where}: expected a map of alias names to values")
    out: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, (Mapping, list)):
            raise AliasError(f"{where}: the value of {key!r} must be a string")
        out[_scalar_text(key)] = "" if value is None else _scalar_text(value)
    return out


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def load_aliases(rendered_block: str, read_source: AliasSourceReader | None) -> Aliases:
    """The alias definitions of a rendered `alias:` block, with its `src` files and the built-ins."""
    try:
        data = yaml.safe_load(rendered_block) if rendered_block.strip() else None
    except yaml.YAMLError as error:
        raise AliasError(f"error during alias unmarshaling: {error}") from None
    block = data.get("alias") if isinstance(data, Mapping) else None
    if block is not None and not isinstance(block, Mapping):
        raise AliasError("error during alias unmarshaling: alias must be a map with values, src and directive")
    block = block or {}
    values = _string_map(block.get("values"), "alias.values")
    sources = block.get("src") or []
    if isinstance(sources, str) or not isinstance(sources, list):
        raise AliasError("error during alias unmarshaling: alias.src must be a list of files")
    for source in reversed([_scalar_text(s) for s in sources]):
        if source.startswith(("http://", "https://")):
            raise AliasError(
                f"alias.src {source!r}: Dockyard does not download alias files; "
                "copy the file into the build context and list its path instead"
            )
        if read_source is None:
            raise AliasError(f"alias.src {source!r}: alias files are read from the source, which this plan has none of")
        try:
            loaded = yaml.safe_load(read_source(source))
        except OSError as error:
            raise AliasError(f"alias.src {source!r}: {error.strerror or error}") from None
        except yaml.YAMLError as error:
            raise AliasError(f"alias.src {source!r}: {error}") from None
        for key, value in _string_map(loaded, f"alias.src {source!r}").items():
            values.setdefault(key, value)
    for key, value in (RUN_ALIASES | IMAGE_ALIASES).items():
        values.setdefault(key, value)
    directive = _scalar_text(block.get("directive") or DEFAULT_DIRECTIVE)
    if len(directive) != 1:
        raise AliasError("$ directive can only be overwritten by a single character")
    if _ALIAS_NAME.match(directive):
        raise AliasError("overwritten directives may not be alphanumeric characters")
    if any(not _ALIAS_NAME.match(key) for key in values):
        raise AliasError("alias key names only support alphanumeric characters")
    return Aliases(values, directive)


def _is_alphanumeric(char: str) -> bool:
    return ("a" <= char <= "z") or ("A" <= char <= "Z") or ("0" <= char <= "9")


def expand(text: str, aliases: Aliases) -> str:
    """Replace `$name` aliases in text, exactly as acr-builder's state machine does."""
    directive = aliases.directive
    out: list[str] = []
    command: list[str] = []
    ongoing = False
    for char in text + " ":
        if ongoing:
            if char == directive and not command:  # `$$` → `$`
                out.append(directive)
                ongoing = False
            elif not _is_alphanumeric(char):
                name = "".join(command)
                command.clear()
                if name not in aliases.values:
                    out.append(directive + name + char)
                    ongoing = False
                else:
                    out.append(aliases.values[name])
                    if char != directive:
                        ongoing = False
                        out.append(char)
            else:
                command.append(char)
        elif char == directive:
            ongoing = True
        else:
            out.append(char)
    return "".join(out).removesuffix(" ")


def expand_command(cmd: str, aliases: Aliases) -> str:
    """The first word of a cmd replaced when it is an alias name (ExpandCommandAliases)."""
    parts = cmd.strip().split(" ")
    if parts[0] in aliases.values:
        parts[0] = aliases.values[parts[0]]
        return " ".join(parts)
    return cmd
