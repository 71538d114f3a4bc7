"""The build pod's init container: fetch a context and unpack it for Kaniko, either an uploaded
one from the run's Registry, a tar.gz at an http(s) URL (`source.archive`) or a git commit
(`source.git`).

    python -m dockyard.builds.fetch --registry HOST --repository REPO --digest sha256:… \\
        --into /workspace --docker-config /kaniko/.docker/config.json [--ca-file /dockyard/ca/ca.crt] \\
        [--plain-http]
    python -m dockyard.builds.fetch --url https://…/ctx.tar.gz --into /workspace [--ca-file …]
    python -m dockyard.builds.fetch --git-url https://…/app.git --git-commit SHA [--git-ref refs/heads/main] \\
        [--git-sub-path DIR] --into /workspace

A git commit is fetched and checked out by `gitfetch.py` (the commit the operator resolved, by id
where the server allows it, else through `--git-ref`), with the credential in the environment
variables `GIT_USERNAME` / `GIT_PASSWORD` (the task's auth Secret, set by the Job from
secretKeyRefs, so it is in no argument), else the URL's user info.

An archive URL is fetched without credentials (a presigned URL carries its own), following
redirects, trusting the system CAs and `--ca-file`; at most `MAX_CONTEXT_BYTES` are downloaded.

The credential is the one Kaniko uses, read from the same docker config: `auths[HOST]` with
`registrytoken` (a token the operator minted, sent as is) or `auth` / `username`+`password`
(exchanged at the token realm); no entry means anonymous. The artifact must be a Dockyard context
(`CONTEXT_ARTIFACT_TYPE`), its layer is checked against its digest, and unpacking never writes
outside `--into`.

With `--dockerfile PATH` (relative to `--into`; `--build-arg K=V`, `--target`, `--platform` as
Kaniko gets them) the fetcher also reports the base image the build will stand on (`baseimage.py`):
the final stage's origin, its tag resolved to a digest with `HEAD` now, just before Kaniko starts
and pulls it, so a base pushed later is always newer than the one recorded (at worst one rebuild
too many, never one missed). The report is the termination message, JSON:
`{"baseImage": {"registry", "repository", "tag", "digest"}}`, or `{"baseImage": null, "reason": …}`
(scratch, a Dockerfile or a registry that cannot tell): a base that cannot be resolved is not
tracked, and the build goes on.

Exit 0 with one line on stdout; on failure exit 1 with one line on stderr, also written to the
termination log (the pod's `state.terminated.message`) when it is writable. No credential is ever
printed.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import json
import os
import ssl
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from dockyard.builds.artifacts import pull_context
from dockyard.builds.baseimage import BASE_REPORT_KEY, DOCKER_HUB, BaseImage, DockerfileError, ImageRef, final_base
from dockyard.builds.context import MAX_CONTEXT_BYTES, ContextError, unpack_context
from dockyard.builds.git import display_url
from dockyard.builds.manifests.job import GIT_PASSWORD_VARIABLE, GIT_USERNAME_VARIABLE
from dockyard.distribution.client import Basic, Bearer, Credentials, DistributionClient
from dockyard.distribution.errors import DistributionError

TERMINATION_LOG = Path("/dev/termination-log")


class DockerConfigError(Exception):
    """A docker config that cannot be read; the message never quotes its content."""


def credentials_for(config: dict[str, Any], host: str) -> Credentials | None:
    """The credential a docker config holds for `host` (also under `https://host` and
    `https://host/v1/`, as `docker login` may write it), or None."""
    auths = config.get("auths")
    if not isinstance(auths, dict):
        return None
    entry = next(
        (auths[key] for key in (host, f"https://{host}", f"https://{host}/", f"https://{host}/v1/") if key in auths),
        None,
    )
    if not isinstance(entry, dict):
        return None
    token = entry.get("registrytoken")
    if isinstance(token, str) and token:
        return Bearer(token)
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        try:
            username, sep, password = base64.b64decode(auth, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise DockerConfigError(f"auths[{host}].auth is not base64 of user:password") from None
        if not sep:
            raise DockerConfigError(f"auths[{host}].auth is not base64 of user:password")
        return Basic(username, password)
    user, secret = entry.get("username"), entry.get("password")
    if isinstance(user, str) and isinstance(secret, str) and user:
        return Basic(user, secret)
    return None


def read_docker_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise DockerConfigError(f"{path}: no such file") from None
    except (OSError, ValueError) as error:
        raise DockerConfigError(f"{path}: not a readable JSON docker config ({type(error).__name__})") from None
    if not isinstance(config, dict):
        raise DockerConfigError(f"{path}: not a JSON object")
    return config


def fetch_context(
    registry: str,
    repository: str,
    digest: str,
    into: Path,
    credentials: Credentials | None,
    *,
    ca_pem: str | None = None,
    connect_to: str | None = None,
    plain_http: bool = False,
) -> list[str]:
    """Pull the context artifact and unpack it into `into`; returns the names unpacked."""
    with DistributionClient(
        registry, connect_to=connect_to, ca_pem=ca_pem, credentials=credentials, plain_http=plain_http
    ) as client:
        packed = pull_context(client, repository, digest)
    return unpack_context(packed, into)


class ArchiveError(Exception):
    """An archive URL that cannot be fetched; the message names the host, never the query (a
    presigned URL's signature is a credential)."""


def download_archive(url: str, *, ca_pem: str | None = None, limit: int = MAX_CONTEXT_BYTES) -> bytes:
    """The body at `url` (http or https), at most `limit` bytes."""
    shown = _without_query(url)
    verify = ssl.create_default_context()
    if ca_pem:
        verify.load_verify_locations(cadata=ca_pem)
    chunks, total = [], 0
    try:
        with (
            httpx.Client(verify=verify, follow_redirects=True, timeout=60) as http,
            http.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise ArchiveError(f"{shown}: answered {response.status_code}")
            for chunk in response.iter_bytes():
                total += len(chunk)
                if total > limit:
                    raise ArchiveError(f"{shown}: larger than {limit} bytes")
                chunks.append(chunk)
    except httpx.HTTPError as error:
        raise ArchiveError(f"{shown}: {type(error).__name__}: {_without_query(str(error))}") from None
    return b"".join(chunks)


def _without_query(text: str) -> str:
    return " ".join(word.split("?", 1)[0] if "://" in word else word for word in text.split(" "))


def fetch_archive(url: str, into: Path, *, ca_pem: str | None = None) -> list[str]:
    """Download a tar.gz context and unpack it into `into`; returns the names unpacked."""
    return unpack_context(download_archive(url, ca_pem=ca_pem), into)


DOCKER_HUB_CONFIG_KEYS = ("docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/")


@dataclass(frozen=True)
class BaseQuery:
    """What the fetcher needs to tell the build's base: the Dockerfile and Kaniko's arguments."""

    dockerfile: str
    build_args: dict[str, str]
    target: str | None = None
    platform: str | None = None


def resolve_base(
    query: BaseQuery,
    workspace: Path,
    config: dict[str, Any],
    *,
    own_registry: str | None = None,
    ca_pem: str | None = None,
    plain_http: bool = False,
    connect_to: str | None = None,
) -> dict[str, Any]:
    """The base report (see the module docstring); never raises for a base that cannot be told."""
    try:
        text = (workspace / query.dockerfile).read_text(errors="replace")
        reference = final_base(text, query.build_args, query.target, query.platform)
        if reference is None:
            return {BASE_REPORT_KEY: None, "reason": "the build starts from scratch"}
        image = ImageRef.parse(reference)
        if image.digest is not None:  # pinned: recorded, never tracked
            return {BASE_REPORT_KEY: BaseImage(image.registry, image.repository, None, image.digest).as_status()}
        own = own_registry is not None and image.registry == own_registry
        keys = DOCKER_HUB_CONFIG_KEYS if image.registry == DOCKER_HUB else (image.registry,)
        credentials = next((c for key in keys if (c := credentials_for(config, key)) is not None), None)
        with DistributionClient(
            image.api_host,
            ca_pem=ca_pem if own else None,
            credentials=credentials,
            plain_http=plain_http and own,
            connect_to=connect_to if own else None,
            timeout=20,
        ) as client:
            assert image.tag is not None
            digest = client.head_manifest(image.repository, image.tag)
        if digest is None:
            return {BASE_REPORT_KEY: None, "reason": f"{reference}: no such tag"}
        return {BASE_REPORT_KEY: BaseImage(image.registry, image.repository, image.tag, digest).as_status()}
    except (OSError, DockerfileError, DockerConfigError, DistributionError) as error:
        return {BASE_REPORT_KEY: None, "reason": " ".join(str(error).split())[:512]}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dockyard.builds.fetch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="an http(s) URL of a tar.gz context, instead of --registry and the rest")
    parser.add_argument("--git-url", help="an http(s) git repository, instead of --registry and the rest")
    parser.add_argument("--git-commit", help="with --git-url: the full SHA of the commit to check out")
    parser.add_argument("--git-ref", help="with --git-url: the ref holding the commit (refs/heads/main, HEAD)")
    parser.add_argument("--git-sub-path", help="with --git-url: the directory of the repository that is the context")
    parser.add_argument(
        "--registry",
        help="the Registry's login server, HOST:PORT (with --url or --git-url: only to resolve a base image there)",
    )
    parser.add_argument("--repository", help="repository of the context, e.g. dockyard/sources")
    parser.add_argument("--digest", help="manifest digest of the context artifact")
    parser.add_argument("--into", required=True, type=Path, help="directory to unpack into")
    parser.add_argument("--docker-config", type=Path, help="docker config.json with the credential")
    parser.add_argument("--ca-file", type=Path, help="CA certificate(s) trusted for the registry or the URL")
    parser.add_argument("--connect-to", help="address to dial instead of resolving HOST (TLS still checks HOST)")
    parser.add_argument("--plain-http", action="store_true", help="the registry speaks plain HTTP (tls.mode Disabled)")
    parser.add_argument("--dockerfile", help="report the base image of this Dockerfile (relative to --into)")
    parser.add_argument("--build-arg", action="append", default=[], help="a build argument, NAME=VALUE")
    parser.add_argument("--target", help="the stage built")
    parser.add_argument("--platform", help="the platform built, os/arch[/variant]")
    parser.add_argument("--termination-log", type=Path, default=TERMINATION_LOG, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Imported here, in the fetch container only: the operator imports this module for its Docker
    # config helpers, and dulwich would cost it ~3 MB of memory it never uses.
    from dockyard.builds.gitfetch import GitFetchError, fetch_commit  # noqa: PLC0415

    parser = _parser()
    args = parser.parse_args(argv)
    registry_args = (args.registry, args.repository, args.digest, args.docker_config)
    sources = [bool(args.url), bool(args.git_url), bool(args.repository or args.digest)]
    if sum(sources) > 1:
        parser.error("give one of --url, --git-url, or --registry, --repository, --digest and --docker-config")
    if not args.url and not args.git_url and not all(registry_args):
        parser.error("give --url, --git-url, or all of --registry, --repository, --digest and --docker-config")
    if args.git_url and not args.git_commit:
        parser.error("--git-url needs --git-commit")
    try:
        ca_pem = args.ca_file.read_text() if args.ca_file else None
        if args.url:
            names = fetch_archive(args.url, args.into, ca_pem=ca_pem)
            source = _without_query(args.url)
        elif args.git_url:
            names = fetch_commit(
                args.git_url,
                args.git_commit,
                args.into,
                ref=args.git_ref,
                sub_path=args.git_sub_path,
                username=os.environ.get(GIT_USERNAME_VARIABLE) or None,
                password=os.environ.get(GIT_PASSWORD_VARIABLE) or None,
            )
            source = f"{display_url(args.git_url)}@{args.git_commit}"
            if args.git_sub_path:
                source += f" ({args.git_sub_path})"
        else:
            credentials = credentials_for(read_docker_config(args.docker_config), args.registry)
            names = fetch_context(
                args.registry,
                args.repository,
                args.digest,
                args.into,
                credentials,
                ca_pem=ca_pem,
                connect_to=args.connect_to,
                plain_http=args.plain_http,
            )
            source = f"{args.registry}/{args.repository}@{args.digest}"
    except (DockerConfigError, DistributionError, ArchiveError, ContextError, GitFetchError, OSError) as error:
        message = "fetching the build context failed: " + " ".join(str(error).split())
        print(message, file=sys.stderr)
        with contextlib.suppress(OSError):
            args.termination_log.write_text(message + "\n")
        return 1
    print(f"fetched {source}: {len(names)} entries in {args.into}")
    if args.dockerfile:
        query = BaseQuery(
            args.dockerfile, dict(arg.partition("=")[::2] for arg in args.build_arg), args.target, args.platform
        )
        try:
            config = read_docker_config(args.docker_config) if args.docker_config else {}
        except DockerConfigError:
            config = {}
        report = resolve_base(
            query,
            args.into,
            config,
            own_registry=args.registry,
            ca_pem=ca_pem,
            plain_http=args.plain_http,
            connect_to=args.connect_to,
        )
        base = report.get(BASE_REPORT_KEY)
        print(
            f"base image {base['registry']}/{base['repository']}:{base.get('tag') or ''}@{base['digest']}"
            if base
            else f"base image not tracked: {report.get('reason')}"
        )
        with contextlib.suppress(OSError):
            args.termination_log.write_text(json.dumps(report, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
