"""Keys and certificates for one local cluster, made with the `openssl` CLI."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import LocalClusterError

SERVING_SANS = (
    "IP:127.0.0.1",
    "IP:10.0.0.1",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
)


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    service_account_key: Path
    token_file: Path
    admin_token: str


def create_pki(directory: Path) -> Pki:
    """Write a CA, an API-server serving certificate, a service-account key and a token file."""
    if shutil.which("openssl") is None:
        raise LocalClusterError("the `openssl` command is needed to create the cluster's certificates")
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        service_account_key=directory / "sa.key",
        token_file=directory / "tokens.csv",
        admin_token=secrets.token_hex(24),
    )
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        pki.ca_key,
        "-out",
        pki.ca_cert,
        "-days",
        "3650",
        "-subj",
        "/CN=dockyard-local-ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    issue_certificate(
        pki,
        pki.serving_key,
        pki.serving_cert,
        "/CN=kube-apiserver",
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName={','.join(SERVING_SANS)}\n",
    )
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", pki.service_account_key)
    pki.token_file.write_text(f'{pki.admin_token},admin,admin-uid,"system:masters"\n')
    for secret in (pki.ca_key, pki.serving_key, pki.service_account_key, pki.token_file):
        secret.chmod(0o600)
    return pki


def issue_certificate(pki: Pki, key: Path, cert: Path, subject: str, extensions: str) -> None:
    """A new P-256 key at `key` and a certificate for it at `cert`, signed by the cluster's CA, with
    the given subject and x509v3 extensions (one per line)."""
    csr, extfile = cert.with_suffix(".csr"), cert.with_suffix(".ext")
    _openssl(
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        key,
        "-out",
        csr,
        "-subj",
        subject,
    )
    extfile.write_text(extensions)
    _openssl(
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        pki.ca_cert,
        "-CAkey",
        pki.ca_key,
        "-CAcreateserial",
        "-days",
        "3650",
        "-out",
        cert,
        "-extfile",
        extfile,
    )
    key.chmod(0o600)


def _openssl(*args: str | Path) -> None:
    result = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True)
    if result.returncode != 0:
        raise LocalClusterError(f"openssl {args[0]} failed: {result.stderr.strip()}")
