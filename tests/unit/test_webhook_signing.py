import hashlib
import hmac

import pytest

from dockyard.webhooks.signing import SIGNATURE_HEADER, sign, verify

KEY = b"0f3c9a7e5d1b2c4a6e8f0a1b3c5d7e9f"
BODY = b'{"id":"e1","timestamp":"2026-11-29T09:06:05Z","action":"push","target":{"repository":"team/app","tag":"v1"}}'


def test_header_name() -> None:
    assert SIGNATURE_HEADER == "X-Dockyard-Signature-256"


def test_known_answer_matches_hmac_sha256_of_the_body() -> None:
    expected = "sha256=" + hmac.new(KEY, BODY, hashlib.sha256).hexdigest()
    assert sign(KEY, BODY) == expected


def test_known_answer_rfc4231_case_2() -> None:
    # RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?"
    assert sign(b"Jefe", b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_signature_is_lowercase_hex_of_256_bits() -> None:
    digest = sign(KEY, BODY).removeprefix("sha256=")
    assert len(digest) == 64
    assert digest == digest.lower()
    int(digest, 16)


def test_roundtrip() -> None:
    assert verify(KEY, BODY, sign(KEY, BODY))


def test_empty_body_roundtrip() -> None:
    assert verify(KEY, b"", sign(KEY, b""))


def test_tampered_body_fails() -> None:
    header = sign(KEY, BODY)
    assert not verify(KEY, BODY.replace(b"v1", b"v2"), header)
    assert not verify(KEY, BODY + b"\n", header)


def test_wrong_key_fails() -> None:
    assert not verify(b"another key", BODY, sign(KEY, BODY))


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        "sha1=" + hmac.new(KEY, BODY, hashlib.sha1).hexdigest(),
        hmac.new(KEY, BODY, hashlib.sha256).hexdigest(),  # no prefix
        "SHA256=" + hmac.new(KEY, BODY, hashlib.sha256).hexdigest(),
        "sha256=" + hmac.new(KEY, BODY, hashlib.sha256).hexdigest().upper(),
        "sha256=" + hmac.new(KEY, BODY, hashlib.sha256).hexdigest()[:-1],
        "sha256=not-hex",
    ],
)
def test_missing_or_malformed_header_fails(header: str | None) -> None:
    assert not verify(KEY, BODY, header)


def test_non_ascii_header_fails_instead_of_raising() -> None:
    assert verify(KEY, BODY, "sha256=\u00e9") is False
