"""A Token's Secrets: its credentials and the kubernetes.io/dockerconfigjson companion. Pure;
generated passwords come in as arguments."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any, Final

from dockyard.core.meta import Owner, metadata
from dockyard.core.names import TokenNames

COMPONENT: Final = "token"
CREATED_ANNOTATION: Final = "dockyard.dev/{name}-created"
"""When each password was generated (RFC 3339), on the credentials Secret."""


def _data(values: Mapping[str, str]) -> dict[str, str]:
    return {key: base64.b64encode(value.encode()).decode() for key, value in values.items()}


def build_credentials_secret(
    owner: Owner,
    passwords: Mapping[str, str],
    created: Mapping[str, str],
    handled_regeneration: tuple[str, str] | None,
) -> dict[str, Any]:
    """`username` (the Token's name) and each existing password; `handled_regeneration` is the
    (annotation, value) of the last regeneration request carried out."""
    annotations = {CREATED_ANNOTATION.format(name=name): created[name] for name in sorted(passwords)}
    if handled_regeneration is not None:
        annotations[handled_regeneration[0]] = handled_regeneration[1]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(owner, TokenNames(owner.name).credentials, COMPONENT, annotations=annotations),
        "type": "Opaque",
        "data": _data({"username": owner.name, **{name: passwords[name] for name in sorted(passwords)}}),
    }


def build_token_pull_secret(owner: Owner, password: str, servers: list[str]) -> dict[str, Any]:
    auth = base64.b64encode(f"{owner.name}:{password}".encode()).decode()
    entry = {"username": owner.name, "password": password, "auth": auth}
    config = {"auths": dict.fromkeys(servers, entry)}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(owner, TokenNames(owner.name).pull, COMPONENT),
        "type": "kubernetes.io/dockerconfigjson",
        "data": _data({".dockerconfigjson": json.dumps(config, sort_keys=True)}),
    }
