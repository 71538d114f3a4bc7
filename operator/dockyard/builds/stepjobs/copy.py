"""A push step on the Job-per-step path: images staged by earlier build steps, copied to their tags.

    python -m dockyard.builds.stepjobs.copy --docker-config /kaniko/.docker/config.json \\
        [--registry-certificate HOST=/dockyard/ca/ca.crt] [--insecure-registry HOST] \\
        --source HOST/dockyard/staging/ca7/build-web:built --destination HOST/web:ca7 [--source … --destination …]

The manifest is copied as stored, so the digest pushed is the digest built; blobs the destination
repository has are not sent again. Output as `push.py`'s (and Kaniko's digest file): exit 0 with one
`HOST/repo:tag@sha256:…` line per destination on stdout and in the termination log; on failure exit 1
with one line. No credential is ever printed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dockyard.builds.fetch import credentials_for, read_docker_config
from dockyard.builds.push import INDEX_TYPES, TERMINATION_LOG, PushError, run_pusher, split_destination
from dockyard.distribution.client import DistributionClient


@dataclass(frozen=True)
class Arguments:
    docker_config: Path
    images: tuple[tuple[str, str], ...]
    """(source, destination) pairs."""
    certificates: dict[str, Path]
    insecure: frozenset[str]
    termination_log: Path = TERMINATION_LOG


def parse_arguments(argv: Sequence[str]) -> Arguments:
    docker_config: Path | None = None
    source: str | None = None
    images: list[tuple[str, str]] = []
    certificates: dict[str, Path] = {}
    insecure: set[str] = set()
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
        elif flag == "--source":
            source = value
        elif flag == "--destination":
            if source is None:
                raise PushError(f"--destination {value}: no --source before it")
            images.append((source, value))
        elif flag == "--registry-certificate":
            host, sep, path = value.partition("=")
            if not sep:
                raise PushError(f"--registry-certificate {value}: expected HOST=PATH")
            certificates[host] = Path(path)
        elif flag == "--insecure-registry":
            insecure.add(value)
        elif flag == "--termination-log":
            termination_log = Path(value)
        else:
            raise PushError(f"unknown flag {flag}")
    if docker_config is None:
        raise PushError("--docker-config is required")
    if not images:
        raise PushError("nothing to copy: no --destination")
    return Arguments(docker_config, tuple(images), certificates, frozenset(insecure), termination_log)


def blobs_of(manifest: bytes, media_type: str, what: str) -> list[str]:
    if media_type in INDEX_TYPES:
        raise PushError(f"{what}: multi-platform images are not copied by this step yet")
    parsed = json.loads(manifest)
    return [str(parsed["config"]["digest"]), *(str(layer["digest"]) for layer in parsed.get("layers") or [])]


def copy_images(arguments: Arguments) -> list[str]:
    config = read_docker_config(arguments.docker_config)
    clients: dict[str, DistributionClient] = {}

    def client(host: str) -> DistributionClient:
        if host not in clients:
            certificate = arguments.certificates.get(host)
            clients[host] = DistributionClient(
                host,
                ca_pem=certificate.read_text() if certificate else None,
                credentials=credentials_for(config, host),
                plain_http=host in arguments.insecure,
                timeout=300,
            )
        return clients[host]

    lines = []
    try:
        for source, destination in arguments.images:
            source_host, source_repository, source_tag = split_destination(source)
            host, repository, tag = split_destination(destination)
            origin, target = client(source_host), client(host)
            body, media_type, _ = origin.get_manifest(source_repository, source_tag)
            for digest in blobs_of(body, media_type, source):
                if not target.blob_exists(repository, digest):
                    target.push_blob(repository, origin.get_blob(source_repository, digest))
            digest = target.put_manifest(repository, tag, body, media_type)
            lines.append(f"{host}/{repository}:{tag}@{digest}")
            print(f"pushed {host}/{repository}:{tag}@{digest}", file=sys.stderr)
    finally:
        for each in clients.values():
            each.close()
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    return run_pusher(argv, parse_arguments, copy_images)


if __name__ == "__main__":
    sys.exit(main())
