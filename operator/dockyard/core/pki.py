"""Keys and certificates the operator issues: a registry's self-signed CA and serving
certificate, and the token-signing key. Pure apart from randomness; no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = timedelta(days=3650)
LEAF_VALIDITY = timedelta(days=365)
RENEW_BEFORE = timedelta(days=30)


@dataclass(frozen=True)
class KeyPair:
    key_pem: bytes
    cert_pem: bytes


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Dockyard"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def issue_ca(common_name: str, now: datetime | None = None) -> KeyPair:
    now = now or datetime.now(UTC)
    key = _new_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(_pem(key), cert.public_bytes(serialization.Encoding.PEM))


def issue_serving_cert(ca: KeyPair, hosts: list[str], now: datetime | None = None) -> KeyPair:
    now = now or datetime.now(UTC)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    key = _new_key()
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(_common_name(hosts)))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + LEAF_VALIDITY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return KeyPair(_pem(key), cert.public_bytes(serialization.Encoding.PEM))


COMMON_NAME_LIMIT = 64
"""X.509's upper bound on a common name (RFC 5280 ub-common-name)."""


def _common_name(hosts: list[str]) -> str:
    """The first host that fits a common name (clients match the SANs, which hold every host):
    `<name>.<namespace>.svc` passes 64 characters with a long namespace, `<name>` never does."""
    return next((host for host in hosts if len(host) <= COMMON_NAME_LIMIT), hosts[0][:COMMON_NAME_LIMIT])


def issue_signing_key(common_name: str, now: datetime | None = None) -> KeyPair:
    """A self-signed certificate whose key signs tokens; the certificate is the registry's
    `rootcertbundle`, so it is a (path-length 0) root like a CA's."""
    return issue_ca(common_name, now)


def certificate_covers(cert_pem: bytes, hosts: list[str], now: datetime | None = None) -> bool:
    """Whether a serving certificate names every host and is not due for renewal."""
    now = now or datetime.now(UTC)
    cert = x509.load_pem_x509_certificate(cert_pem)
    if cert.not_valid_after_utc - RENEW_BEFORE < now:
        return False
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    present = {str(v) for v in san.get_values_for_type(x509.DNSName)} | {
        str(v) for v in san.get_values_for_type(x509.IPAddress)
    }
    return set(hosts) <= present


def _name_matches(pattern: str, host: str) -> bool:
    """RFC 6125 §6.4.3 as browsers apply it: a wildcard only as the whole leftmost label, standing
    for exactly one label (`*.team.svc` names `hub.team.svc`, not `team.svc` nor `a.hub.team.svc`)."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if not pattern.startswith("*."):
        return pattern == host
    first, _, rest = host.partition(".")
    return bool(first) and rest == pattern[2:]


def uncovered_hosts(cert_pem: bytes, hosts: list[str]) -> list[str]:
    """The hosts a serving certificate does not name (wildcards matched as TLS clients do), in
    the order given. Validity is not judged here: a certificate someone else renews is theirs.
    Raises ValueError when `cert_pem` holds no PEM certificate."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return list(hosts)  # clients ignore the common name
    dns = [str(v) for v in san.get_values_for_type(x509.DNSName)]
    ips = {str(v) for v in san.get_values_for_type(x509.IPAddress)}
    return [host for host in hosts if host not in ips and not any(_name_matches(p, host) for p in dns)]
