"""The auth policy file the operator writes and the token service reads."""

from __future__ import annotations

import hashlib

import bcrypt
from pydantic import BaseModel, ConfigDict, Field

from .grants import Grant


class Credential(BaseModel):
    """A user: one or more bcrypt password hashes (any one works) and what it may do."""

    model_config = ConfigDict(frozen=True)

    username: str = Field(min_length=1)
    password_hashes: tuple[str, ...]
    grants: tuple[Grant, ...]


class AuthPolicy(BaseModel):
    model_config = ConfigDict(frozen=True)

    service: str
    issuer: str
    token_ttl_seconds: int = 300
    anonymous: tuple[Grant, ...] = ()
    users: tuple[Credential, ...] = ()

    def authenticate(self, username: str, password: str) -> Credential | None:
        for user in self.users:
            if user.username == username and any(_password_matches(h, password) for h in user.password_hashes):
                return user
        return None


def hash_password(password: str, rounds: int = 10) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


_VERIFIED: dict[tuple[str, str], bool] = {}


def _password_matches(password_hash: str, password: str) -> bool:
    """bcrypt is slow by design; remember answers per (hash, sha256(password)) so a client that asks
    for a token per layer does not pay it every time. No plaintext is kept."""
    key = (password_hash, hashlib.sha256(password.encode()).hexdigest())
    if key not in _VERIFIED:
        if len(_VERIFIED) >= 4096:
            _VERIFIED.clear()
        _VERIFIED[key] = bcrypt.checkpw(password.encode(), password_hash.encode())
    return _VERIFIED[key]
