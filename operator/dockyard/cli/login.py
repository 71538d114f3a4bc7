"""`kubectl dockyard login`: a Registry's credentials into the auth file docker or podman reads.

Pure parts (where the file is, how an entry is merged) are separate from the one write. The file
is written with mode 0600 and replaced atomically; other registries' entries and every other key
(credsStore, proxies, …) are kept. The password never goes to the terminal.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

CLIENTS: Final = ("docker", "podman")


def auth_file(client: str, environment: Mapping[str, str], home: Path) -> Path:
    """Where `client` reads credentials: docker's `$DOCKER_CONFIG/config.json` (default
    `~/.docker`); podman's `$REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers/auth.json`, else
    `~/.config/containers/auth.json` (what podman itself falls back to)."""
    if client == "docker":
        return Path(environment.get("DOCKER_CONFIG") or home / ".docker") / "config.json"
    if environment.get("REGISTRY_AUTH_FILE"):
        return Path(environment["REGISTRY_AUTH_FILE"])
    if environment.get("XDG_RUNTIME_DIR"):
        return Path(environment["XDG_RUNTIME_DIR"]) / "containers" / "auth.json"
    return home / ".config" / "containers" / "auth.json"


def merged_auths(current: Mapping[str, Any], server: str, username: str, password: str) -> dict[str, Any]:
    """`current` with `auths[server]` set to the basic credentials (docker's and podman's format)."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    auths = dict(current.get("auths") or {})
    auths[server] = {"auth": token}
    return {**current, "auths": auths}


def write_login(path: Path, server: str, username: str, password: str) -> None:
    """Merge the entry into `path` (created with its directory if missing), atomically, mode 0600."""
    try:
        current = json.loads(path.read_text()) if path.exists() else {}
    except ValueError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); fix or remove it") from error
    document = merged_auths(current if isinstance(current, dict) else {}, server, username, password)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".auth-")
    try:
        with os.fdopen(handle, "w") as out:
            json.dump(document, out, indent=2)
            out.write("\n")
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
