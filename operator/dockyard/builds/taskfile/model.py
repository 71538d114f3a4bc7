"""The parsed task file, as acr-builder's Go types hold it (graph/task.go `Task`, graph/step.go `Step`,
secretmgmt `Secret`, pkg/volume `Volume`/`Mount`, graph/network.go `Network`), and a decoder with
go-yaml v2's rules:

- keys match the Go `yaml:` tags exactly (case-sensitive); any other key is ignored — and reported
  here as a warning, since a typo (`continueOnError`, `stepTimeOut`, a top-level `push:`) silently
  does nothing on ACR;
- a scalar goes into a string field as written (`version: 1.10` is "1.10"); an int or bool field
  takes only an int or bool; a list field takes only a list; null is the zero value;
- a mismatch is an error naming the line ("line 7: cannot unmarshal !!str `abc` into int"), and
  only the first YAML document is read.

Defaults are not applied here; `plan` applies them as acr-builder's `initialize` does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict

_T = TypeVar("_T")


class Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Secret(Model):
    id: str = ""
    keyvault: str = ""
    client_id: str = ""
    aad_resource_id: str = ""
    """go-yaml's default key for the untagged Go field: `aadresourceid`."""


class Volume(Model):
    name: str = ""
    secret: dict[str, str] | None = None


class Mount(Model):
    name: str = ""
    mount_path: str = ""


class Network(Model):
    name: str = ""
    driver: str = ""
    ipv6: bool = False
    skip_creation: bool = False
    is_default: bool = False


class Step(Model):
    """A step as written (before defaults); `index` is its position in the file."""

    index: int
    line: int
    id: str = ""
    cmd: str = ""
    build: str = ""
    push: tuple[str, ...] = ()
    working_directory: str = ""
    entry_point: str = ""
    user: str = ""
    network: str = ""
    isolation: str = ""
    cpus: str = ""
    cache: str = ""
    volume_mounts: tuple[Mount, ...] = ()
    env: tuple[str, ...] = ()
    expose: tuple[str, ...] = ()
    ports: tuple[str, ...] = ()
    when: tuple[str, ...] = ()
    exited_with: tuple[int, ...] = ()
    exited_without: tuple[int, ...] = ()
    timeout: int = 0
    cmd_download_retries: int = 0
    cmd_download_retry_delay: int = 0
    start_delay: int = 0
    retry_delay: int = 0
    retries: int = 0
    retry_on_errors: tuple[str, ...] = ()
    repeat: int = 0
    keep: bool = False
    detach: bool = False
    privileged: bool = False
    ignore_errors: bool = False
    disable_working_directory_override: bool = False
    pull: bool = False


class Task(Model):
    steps: tuple[Step | None, ...] = ()
    step_timeout: int = 0
    secrets: tuple[Secret | None, ...] = ()
    networks: tuple[Network | None, ...] = ()
    volumes: tuple[Volume | None, ...] = ()
    env: tuple[str, ...] = ()
    working_directory: str = ""
    version: str = ""


class DecodeError(ValueError):
    """The YAML does not fit acr-builder's types (go-yaml's "cannot unmarshal …"); `warnings` are
    the ignored keys found on the way."""

    def __init__(self, message: str, warnings: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.warnings = warnings


# ---------------------------------------------------------------------------------------- decoding

_TAG = "tag:yaml.org,2002:"


@dataclass
class _Decoder:
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def mismatch(self, node: yaml.Node, into: str) -> None:
        if isinstance(node, yaml.ScalarNode):
            shown = f"!!{node.tag.removeprefix(_TAG)} `{node.value}`"
        else:
            shown = "!!" + ("seq" if isinstance(node, yaml.SequenceNode) else "map")
        self.errors.append(f"line {node.start_mark.line + 1}: cannot unmarshal {shown} into {into}")

    def string(self, node: yaml.Node) -> str:
        if isinstance(node, yaml.ScalarNode):
            return "" if node.tag == _TAG + "null" else str(node.value)
        self.mismatch(node, "string")
        return ""

    def integer(self, node: yaml.Node) -> int:
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _TAG + "null":
                return 0
            if node.tag == _TAG + "int":
                return int(yaml.SafeLoader("").construct_yaml_int(node))
            if node.tag == _TAG + "float":  # go-yaml v2 truncates a float into an int field
                number = float(yaml.SafeLoader("").construct_yaml_float(node))
                if not math.isnan(number) and abs(number) < 2**63:
                    return int(number)
        self.mismatch(node, "int")
        return 0

    def boolean(self, node: yaml.Node) -> bool:
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _TAG + "null":
                return False
            if node.tag == _TAG + "bool":
                return bool(yaml.SafeLoader("").construct_yaml_bool(node))
            if node.style is None and node.value in {"y", "Y", "n", "N"}:  # YAML 1.1 bools to go-yaml v2
                return node.value in {"y", "Y"}
        self.mismatch(node, "bool")
        return False

    def items(self, node: yaml.Node, decode: Callable[[yaml.Node], _T], into: str) -> tuple[_T, ...]:
        if isinstance(node, yaml.ScalarNode) and node.tag == _TAG + "null":
            return ()
        if not isinstance(node, yaml.SequenceNode):
            self.mismatch(node, into)
            return ()
        return tuple(decode(item) for item in node.value)

    def strings(self, node: yaml.Node) -> tuple[str, ...]:
        return self.items(node, self.string, "[]string")

    def ints(self, node: yaml.Node) -> tuple[int, ...]:
        return self.items(node, self.integer, "[]int")

    def string_map(self, node: yaml.Node) -> dict[str, str] | None:
        if isinstance(node, yaml.ScalarNode) and node.tag == _TAG + "null":
            return None
        if not isinstance(node, yaml.MappingNode):
            self.mismatch(node, "map[string]string")
            return None
        return {self.string(key): self.string(value) for key, value in _pairs(node)}

    def fields(self, node: yaml.Node, known: Mapping[str, str], where: str, into: str) -> dict[str, yaml.Node] | None:
        """The known keys of a mapping (by Go tag → Python name); unknown ones become warnings."""
        if isinstance(node, yaml.ScalarNode) and node.tag == _TAG + "null":
            return None
        if not isinstance(node, yaml.MappingNode):
            self.mismatch(node, into)
            return None
        found: dict[str, yaml.Node] = {}
        for key, value in _pairs(node):
            name = str(key.value) if isinstance(key, yaml.ScalarNode) else None
            if name is not None and name in known:
                found[known[name]] = value
            else:
                shown = name if name is not None else "(a non-scalar key)"
                self.warnings.append(
                    f"line {key.start_mark.line + 1}: {where}: unknown key {shown!r} is ignored (as acr-builder ignores it)"
                )
        return found


def _pairs(node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node]]:
    """Mapping pairs with YAML merge keys (`<<`) applied, as go-yaml does."""
    pairs: list[tuple[yaml.Node, yaml.Node]] = []
    merged: list[tuple[yaml.Node, yaml.Node]] = []
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and key.tag == _TAG + "merge":
            sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
            for source in sources:
                if isinstance(source, yaml.MappingNode):
                    merged.extend(_pairs(source))
        else:
            pairs.append((key, value))
    own = {k.value for k, _ in pairs if isinstance(k, yaml.ScalarNode)}
    return pairs + [(k, v) for k, v in merged if not (isinstance(k, yaml.ScalarNode) and k.value in own)]


_STRING_STEP_FIELDS = {
    "id": "id",
    "cmd": "cmd",
    "build": "build",
    "workingDirectory": "working_directory",
    "entryPoint": "entry_point",
    "user": "user",
    "network": "network",
    "isolation": "isolation",
    "cpus": "cpus",
    "cache": "cache",
}
_LIST_STEP_FIELDS = {
    "push": "push",
    "env": "env",
    "expose": "expose",
    "ports": "ports",
    "when": "when",
    "retryOnErrors": "retry_on_errors",
}
_INT_LIST_STEP_FIELDS = {"exitedWith": "exited_with", "exitedWithout": "exited_without"}
_INT_STEP_FIELDS = {
    "timeout": "timeout",
    "cmdDownloadRetries": "cmd_download_retries",
    "cmdDownloadRetryDelay": "cmd_download_retry_delay",
    "startDelay": "start_delay",
    "retryDelay": "retry_delay",
    "retries": "retries",
    "repeat": "repeat",
}
_BOOL_STEP_FIELDS = {
    "keep": "keep",
    "detach": "detach",
    "privileged": "privileged",
    "ignoreErrors": "ignore_errors",
    "disableWorkingDirectoryOverride": "disable_working_directory_override",
    "pull": "pull",
}
_STEP_FIELDS = (
    _STRING_STEP_FIELDS
    | _LIST_STEP_FIELDS
    | _INT_LIST_STEP_FIELDS
    | _INT_STEP_FIELDS
    | _BOOL_STEP_FIELDS
    | {"volumeMounts": "volume_mounts"}
)
STEP_KEYS = frozenset(_STEP_FIELDS)
TASK_KEYS = frozenset({"steps", "stepTimeout", "secrets", "networks", "volumes", "env", "workingDirectory", "version"})


def _step(decoder: _Decoder, node: yaml.Node, index: int) -> Step | None:
    where = f"step {index + 1} (acb_step_{index})"
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if (
                isinstance(key, yaml.ScalarNode)
                and key.value == "id"
                and isinstance(value, yaml.ScalarNode)
                and value.value
            ):
                where = f"step {value.value!r}"
    found = decoder.fields(node, _STEP_FIELDS, where, "graph.Step")
    if found is None:
        return None
    values: dict[str, Any] = {}
    for name, value in found.items():
        if name in _STRING_STEP_FIELDS.values():
            values[name] = decoder.string(value)
        elif name in _LIST_STEP_FIELDS.values():
            values[name] = decoder.strings(value)
        elif name in _INT_LIST_STEP_FIELDS.values():
            values[name] = decoder.ints(value)
        elif name in _INT_STEP_FIELDS.values():
            values[name] = decoder.integer(value)
        elif name in _BOOL_STEP_FIELDS.values():
            values[name] = decoder.boolean(value)
        else:
            values[name] = decoder.items(value, lambda n: _mount(decoder, n, where), "[]*volume.Mount")
    return Step(index=index, line=node.start_mark.line + 1, **values)


def _mount(decoder: _Decoder, node: yaml.Node, where: str) -> Mount:
    found = decoder.fields(node, {"name": "name", "mountPath": "mount_path"}, f"{where} volumeMounts", "volume.Mount")
    return Mount(**{k: decoder.string(v) for k, v in (found or {}).items()})


def _secret(decoder: _Decoder, node: yaml.Node) -> Secret | None:
    found = decoder.fields(
        node, {"id": "id", "keyvault": "keyvault", "clientID": "client_id"}, "secrets", "secretmgmt.Secret"
    )
    return None if found is None else Secret(**{k: decoder.string(v) for k, v in found.items()})


def _volume(decoder: _Decoder, node: yaml.Node) -> Volume | None:
    found = decoder.fields(node, {"name": "name", "secret": "secret"}, "volumes", "volume.Volume")
    if found is None:
        return None
    name = decoder.string(found["name"]) if "name" in found else ""
    secret = decoder.string_map(found["secret"]) if "secret" in found else None
    return Volume(name=name, secret=secret)


def _network(decoder: _Decoder, node: yaml.Node) -> Network | None:
    known = {
        "name": "name",
        "driver": "driver",
        "ipv6": "ipv6",
        "skipCreation": "skip_creation",
        "isDefault": "is_default",
    }
    found = decoder.fields(node, known, "networks", "graph.Network")
    if found is None:
        return None
    values: dict[str, Any] = {
        k: decoder.string(v) if k in {"name", "driver"} else decoder.boolean(v) for k, v in found.items()
    }
    return Network(**values)


def decode_task(text: str) -> tuple[Task, list[str]]:
    """The task in the (rendered) YAML text and the warnings for ignored keys; DecodeError when the
    YAML is invalid or does not fit the types."""
    try:
        node = next(iter(yaml.compose_all(text, Loader=yaml.SafeLoader)), None)
    except yaml.YAMLError as error:
        raise DecodeError(f"yaml: {error}") from None
    decoder = _Decoder()
    if node is None:
        return Task(), []
    found = decoder.fields(node, {k: k for k in TASK_KEYS}, "task", "graph.Task")
    values: dict[str, Any] = {}
    for key, value in (found or {}).items():
        if key == "steps":
            if isinstance(value, yaml.SequenceNode):
                values["steps"] = tuple(_step(decoder, item, i) for i, item in enumerate(value.value))
            else:
                decoder.items(value, decoder.string, "[]*graph.Step")
        elif key == "stepTimeout":
            values["step_timeout"] = decoder.integer(value)
        elif key == "secrets":
            values["secrets"] = decoder.items(value, lambda n: _secret(decoder, n), "[]*secretmgmt.Secret")
        elif key == "networks":
            values["networks"] = decoder.items(value, lambda n: _network(decoder, n), "[]*graph.Network")
        elif key == "volumes":
            values["volumes"] = decoder.items(value, lambda n: _volume(decoder, n), "[]*volume.Volume")
        elif key == "env":
            values["env"] = decoder.strings(value)
        elif key == "workingDirectory":
            values["working_directory"] = decoder.string(value)
        else:
            values["version"] = decoder.string(value)
    if decoder.errors:
        raise DecodeError("yaml: unmarshal errors:\n  " + "\n  ".join(decoder.errors), tuple(decoder.warnings))
    return Task(**values), decoder.warnings
