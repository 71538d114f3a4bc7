"""`python -m dockyard.auth`: run the token service (a container of the Dockyard image in each
registry pod)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from dockyard.auth.directory import AccessDirectory
from dockyard.auth.server import TokenService, build_app
from dockyard.auth.watch import Snapshot, in_cluster_access, kubeconfig_access, watch_access

log = logging.getLogger("dockyard.auth")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dockyard.auth", description=__doc__)
    parser.add_argument("--policy", type=Path, required=True, help="auth policy JSON (from the registry's auth Secret)")
    parser.add_argument("--signing-key", type=Path, required=True, help="PEM private key that signs tokens")
    parser.add_argument("--signing-cert", type=Path, required=True, help="PEM certificate of the signing key")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--tls-cert", type=Path, help="serve HTTPS with this certificate")
    parser.add_argument("--tls-key", type=Path)
    parser.add_argument("--tls-min-version", choices=["tls1.2", "tls1.3"], default="tls1.2")
    parser.add_argument("--registry", help="serve the Tokens and ScopeMaps of this Registry (watched in --namespace)")
    parser.add_argument("--namespace", help="namespace of the Registry, its Tokens and ScopeMaps")
    parser.add_argument("--kubeconfig", type=Path, help="API access outside a pod (default: the pod's ServiceAccount)")
    parser.add_argument("--snapshot", type=Path, help="local copy of the tokens, for logins while the API is down")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    context = None
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_3 if args.tls_min_version == "tls1.3" else ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(args.tls_cert, args.tls_key)
    directory = AccessDirectory(args.registry) if args.registry else None
    service = TokenService(args.policy, args.signing_key, args.signing_cert, directory=directory)
    service.policy()
    app = build_app(service)
    if directory is not None:
        if not args.namespace:
            parser.error("--registry needs --namespace")
        access = kubeconfig_access(args.kubeconfig) if args.kubeconfig else in_cluster_access()
        if access is None:
            parser.error("--registry needs API access: run in a pod with a ServiceAccount token, or pass --kubeconfig")
        snapshot = Snapshot(directory, args.snapshot) if args.snapshot else None
        if snapshot is not None:
            snapshot.load()

        async def watching(_: web.Application) -> AsyncIterator[None]:
            tasks = await watch_access(directory, access, args.namespace, snapshot)
            yield
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

        app.cleanup_ctx.append(watching)
    web.run_app(app, host=args.host, port=args.port, ssl_context=context, print=None, access_log=None)


if __name__ == "__main__":
    main()
