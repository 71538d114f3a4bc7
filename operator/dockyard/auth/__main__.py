"""`python -m dockyard.auth`: run the token service (a container of the Dockyard image in each
registry pod)."""

from __future__ import annotations

import argparse
import logging
import ssl
from pathlib import Path

from aiohttp import web

from dockyard.auth.server import TokenService, build_app


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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    context = None
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_3 if args.tls_min_version == "tls1.3" else ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(args.tls_cert, args.tls_key)
    service = TokenService(args.policy, args.signing_key, args.signing_cert)
    service.policy()
    web.run_app(build_app(service), host=args.host, port=args.port, ssl_context=context, print=None, access_log=None)


if __name__ == "__main__":
    main()
