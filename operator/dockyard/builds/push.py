"""A task run's push step: images that earlier build steps wrote as OCI layouts, pushed to their
destinations.

    python -m dockyard.builds.push --docker-config /kaniko/.docker/config.json \\
        [--registry-certificate HOST=/dockyard/ca/ca.crt] [--insecure-registry HOST] [--connect-to HOST=ADDR] \\
        --layout /dockyard/oci/step-build --destination HOST/repo:tag [--destination …] \\
        [--layout … --destination …]

Each `--destination` takes the image of the `--layout` before it (the layout's last manifest: Kaniko
writes one). Blobs the repository has are not sent again; the manifest is put under the tag as it
is in the layout, so the digest pushed is the digest built. Credentials per registry host come from
the docker config, as `fetch.py` reads them (the run's delegated token for its own registry).

Exit 0 with one `HOST/repo:tag@sha256:…` line per destination on stdout and in the termination log
(what Kaniko's `--image-name-tag-with-digest-file` writes, so the operator reads both alike); on
failure exit 1 with one line on stderr and in the termination log. No credential is ever printed.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from dockyard.builds.fetch import DockerConfigError, credentials_for, read_docker_config
from dockyard.distribution.client import DistributionClient
from dockyard.distribution.errors import DistributionError

TERMINATION_LOG = Path("/dev/termination-log")
INDEX_TYPES = frozenset(
    {"application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"}
)


class PushError(Exception):
    """A layout or an argument that cannot be pushed; the message names it."""


@dataclass(frozen=True)
class Arguments:
    docker_config: Path
    images: tuple[tuple[Path, str], ...]
    certificates: dict[str, Path]
    insecure: frozenset[str]
    connect_to: dict[str, str]
    """Addresses to dial instead of resolving a host (TLS still checks the host's name)."""
    termination_log: Path = TERMINATION_LOG


def parse_arguments(argv: Sequence[str]) -> Arguments:
    """The flags in order, `--flag=value` or `--flag value`: a destination pairs with the last layout."""
    docker_config: Path | None = None
    layout: Path | None = None
    images: list[tuple[Path, str]] = []
    certificates: dict[str, Path] = {}
    insecure: set[str] = set()
    connect_to: dict[str, str] = {}
    termination_log = TERMINATION_LOG
    words = list(argv)
    while words:
        word = words.pop(0)
        flag, eq, value = word.partition("=")
        if not eq:
            if not words:
                raise PushError(f"{flag} needs a value")
            value = words.pop(0)
        if flag == "--docker-config":
            docker_config = Path(value)
        elif flag == "--layout":
            layout = Path(value)
        elif flag == "--destination":
            if layout is None:
                raise PushError(f"--destination {value}: no --layout before it")
            images.append((layout, value))
        elif flag == "--registry-certificate":
            host, sep, path = value.partition("=")
            if not sep:
                raise PushError(f"--registry-certificate {value}: expected HOST=PATH")
            certificates[host] = Path(path)
        elif flag == "--connect-to":
            host, sep, address = value.partition("=")
            if not sep:
                raise PushError(f"--connect-to {value}: expected HOST=ADDRESS")
            connect_to[host] = address
        elif flag == "--insecure-registry":
            insecure.add(value)
        elif flag == "--termination-log":
            termination_log = Path(value)
        else:
            raise PushError(f"unknown flag {flag}")
    if docker_config is None:
        raise PushError("--docker-config is required")
    if not images:
        raise PushError("nothing to push: no --destination")
    return Arguments(docker_config, tuple(images), certificates, frozenset(insecure), connect_to, termination_log)


def _blob(layout: Path, digest: str) -> Path:
    algorithm, _, hex_ = digest.partition(":")
    return layout / "blobs" / algorithm / hex_


def read_layout(layout: Path) -> tuple[bytes, str, list[str]]:
    """(manifest, media type, digests of its config and layers) of the layout's last image."""
    try:
        index = json.loads((layout / "index.json").read_text())
    except FileNotFoundError:
        raise PushError(f"{layout}: no OCI layout (no index.json): did the build step run?") from None
    except (OSError, ValueError) as error:
        raise PushError(f"{layout}/index.json: unreadable ({type(error).__name__})") from None
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not manifests:
        raise PushError(f"{layout}: the layout holds no image")
    descriptor: dict[str, Any] = manifests[-1]
    media_type = str(descriptor.get("mediaType") or "")
    if media_type in INDEX_TYPES:
        raise PushError(f"{layout}: multi-platform images are not pushed by this step yet")
    body = _blob(layout, str(descriptor.get("digest"))).read_bytes()
    manifest = json.loads(body)
    media_type = media_type or str(manifest.get("mediaType") or "application/vnd.oci.image.manifest.v1+json")
    blobs = [str(manifest["config"]["digest"]), *(str(layer["digest"]) for layer in manifest.get("layers") or [])]
    return body, media_type, blobs


def split_destination(reference: str) -> tuple[str, str, str]:
    host, slash, rest = reference.partition("/")
    if not slash:
        raise PushError(f"{reference}: not HOST/REPOSITORY:TAG")
    repository, colon, tag = rest.rpartition(":")
    if not colon or "/" in tag:
        return host, rest, "latest"
    return host, repository, tag


def push(arguments: Arguments) -> list[str]:
    config = read_docker_config(arguments.docker_config)
    lines = []
    clients: dict[str, DistributionClient] = {}
    try:
        for layout, destination in arguments.images:
            host, repository, tag = split_destination(destination)
            if host not in clients:
                certificate = arguments.certificates.get(host)
                clients[host] = DistributionClient(
                    host,
                    connect_to=arguments.connect_to.get(host),
                    ca_pem=certificate.read_text() if certificate else None,
                    credentials=credentials_for(config, host),
                    plain_http=host in arguments.insecure,
                    timeout=300,
                )
            client = clients[host]
            body, media_type, blobs = read_layout(layout)
            for digest in blobs:
                if not client.blob_exists(repository, digest):
                    client.push_blob(repository, _blob(layout, digest).read_bytes())
            digest = client.put_manifest(repository, tag, body, media_type)
            lines.append(f"{host}/{repository}:{tag}@{digest}")
            print(f"pushed {host}/{repository}:{tag}@{digest}", file=sys.stderr)
    finally:
        for client in clients.values():
            client.close()
    return lines


class _Pushing(Protocol):
    @property
    def termination_log(self) -> Path: ...


_A = TypeVar("_A", bound=_Pushing)


def run_pusher(argv: Sequence[str] | None, parse: Callable[[Sequence[str]], _A], act: Callable[[_A], list[str]]) -> int:
    """A push container's process: `act` on the parsed arguments; its `repo:tag@digest` lines on
    stdout and in the termination log, or one line saying why it failed (exit 1)."""
    termination_log = TERMINATION_LOG
    try:
        arguments = parse(sys.argv[1:] if argv is None else argv)
        termination_log = arguments.termination_log
        lines = act(arguments)
    except (PushError, DockerConfigError, DistributionError, OSError, ValueError, KeyError) as error:
        message = "pushing failed: " + " ".join(str(error).split())
        print(message, file=sys.stderr)
        with contextlib.suppress(OSError):
            termination_log.write_text(message + "\n")
        return 1
    text = "".join(f"{line}\n" for line in lines)
    print(text, end="")
    with contextlib.suppress(OSError):
        termination_log.write_text(text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_pusher(argv, parse_arguments, push)


if __name__ == "__main__":
    sys.exit(main())
