"""The build pod's init container: fetch an uploaded context from the run's Registry and unpack
it for Kaniko.

    python -m dockyard.builds.fetch --registry HOST --repository REPO --digest sha256:… \\
        --into /workspace --docker-config /kaniko/.docker/config.json [--ca-file /dockyard/ca/ca.crt]

The credential is the one Kaniko uses, read from the same docker config: `auths[HOST]` with
`registrytoken` (a token the operator minted, sent as is) or `auth` / `username`+`password`
(exchanged at the token realm); no entry means anonymous. The artifact must be a Dockyard context
(`CONTEXT_ARTIFACT_TYPE`), its layer is checked against its digest, and unpacking never writes
outside `--into`.

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
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dockyard.builds.artifacts import pull_context
from dockyard.builds.context import ContextError, unpack_context
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
) -> list[str]:
    """Pull the context artifact and unpack it into `into`; returns the names unpacked."""
    with DistributionClient(registry, connect_to=connect_to, ca_pem=ca_pem, credentials=credentials) as client:
        packed = pull_context(client, repository, digest)
    return unpack_context(packed, into)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dockyard.builds.fetch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--registry", required=True, help="the Registry's login server, HOST:PORT")
    parser.add_argument("--repository", required=True, help="repository of the context, e.g. dockyard/sources")
    parser.add_argument("--digest", required=True, help="manifest digest of the context artifact")
    parser.add_argument("--into", required=True, type=Path, help="directory to unpack into")
    parser.add_argument("--docker-config", required=True, type=Path, help="docker config.json with the credential")
    parser.add_argument("--ca-file", type=Path, help="CA certificate(s) trusted for the registry")
    parser.add_argument("--connect-to", help="address to dial instead of resolving HOST (TLS still checks HOST)")
    parser.add_argument("--termination-log", type=Path, default=TERMINATION_LOG, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        credentials = credentials_for(read_docker_config(args.docker_config), args.registry)
        ca_pem = args.ca_file.read_text() if args.ca_file else None
        names = fetch_context(
            args.registry,
            args.repository,
            args.digest,
            args.into,
            credentials,
            ca_pem=ca_pem,
            connect_to=args.connect_to,
        )
    except (DockerConfigError, DistributionError, ContextError, OSError) as error:
        message = "fetching the build context failed: " + " ".join(str(error).split())
        print(message, file=sys.stderr)
        with contextlib.suppress(OSError):
            args.termination_log.write_text(message + "\n")
        return 1
    print(f"fetched {args.registry}/{args.repository}@{args.digest}: {len(names)} entries in {args.into}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
