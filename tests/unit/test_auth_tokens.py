import base64
import hashlib
import re

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from dockyard.auth.grants import Grant, Scope
from dockyard.auth.policy import AuthPolicy, Credential, generate_password, password_digest
from dockyard.auth.tokens import SigningKey, issue_token, libtrust_key_id
from dockyard.core.pki import issue_signing_key

KEY = issue_signing_key("test signer")
SIGNING = SigningKey(KEY.key_pem, KEY.cert_pem)


def _decode(token: str) -> tuple[dict, dict]:
    cert = x509.load_pem_x509_certificate(KEY.cert_pem)
    claims = jwt.decode(
        token,
        cert.public_key(),
        algorithms=["ES256"],
        audience="svc",
        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
    )
    return jwt.get_unverified_header(token), claims


def test_token_claims_are_what_distribution_expects() -> None:
    grants = (Grant(repositories="team/*", actions=("pull",)),)
    token, access = issue_token(
        SIGNING,
        issuer="dockyard",
        service="svc",
        subject="alice",
        grants=grants,
        scopes=[Scope("repository", "team/app", ("pull", "push"))],
        ttl_seconds=300,
        now=1_000_000,
    )
    header, claims = _decode(token)
    assert claims["aud"] == "svc" and isinstance(claims["aud"], str)
    assert claims["iss"] == "dockyard" and claims["sub"] == "alice"
    assert claims["exp"] - claims["iat"] == 300 and claims["nbf"] <= claims["iat"]
    assert claims["access"] == [{"type": "repository", "name": "team/app", "actions": ["pull"]}] == access
    assert header["alg"] == "ES256"


def test_token_verifies_with_the_certificate() -> None:
    token, _ = issue_token(SIGNING, issuer="i", service="svc", subject="", grants=(), scopes=[], ttl_seconds=60)
    header, claims = _decode(token)
    assert claims["access"] == []
    der = base64.b64decode(header["x5c"][0])
    assert der == x509.load_pem_x509_certificate(KEY.cert_pem).public_bytes(serialization.Encoding.DER)


def test_libtrust_key_id_format() -> None:
    public_key = x509.load_pem_x509_certificate(KEY.cert_pem).public_key()
    kid = libtrust_key_id(public_key)
    assert re.fullmatch(r"([A-Z2-7]{4}:){11}[A-Z2-7]{4}", kid)
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert kid.replace(":", "") == base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()


def test_policy_authenticates_either_password() -> None:
    user = Credential(username="reg", password_digests=(password_digest("one"), password_digest("two")), grants=())
    policy = AuthPolicy(service="s", issuer="i", users=(user,))
    assert policy.authenticate("reg", "one") == user
    assert policy.authenticate("reg", "two") == user
    assert policy.authenticate("reg", "three") is None
    assert policy.authenticate("other", "one") is None


def test_generated_passwords_are_long_and_distinct() -> None:
    first, second = generate_password(), generate_password()
    assert len(first) >= 40 and first != second
