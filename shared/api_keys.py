"""Integration API keys: ``rvk_<key_id>_<secret>``, one clinic each, stored only as a hash."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from shared.principal import AuthError

#
# The secret is 32 random bytes, so a plain SHA-256 of it cannot be brute-forced: slow password
# hashes (bcrypt, argon2) exist to protect low-entropy human passwords, and here they would only
# add tens of milliseconds to every ingest request. The "sha256:" prefix leaves room to change
# the scheme later without guessing what a stored hash is.

_KEY_PREFIX = "rvk"
_KEY_ID_BYTES = 8  # 16 hex characters: hex has no "_", so the key splits unambiguously
_SECRET_BYTES = 32
_API_KEY_SHAPE = re.compile(r"rvk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_HASH_SCHEME = "sha256:"


def hash_api_key_secret(secret: str) -> str:
    return _HASH_SCHEME + hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_api_key() -> tuple[str, str, str]:
    """A fresh key as (plaintext to hand over once, key_id to store, hash to store)."""
    key_id = secrets.token_hex(_KEY_ID_BYTES)
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    return f"{_KEY_PREFIX}_{key_id}_{secret}", key_id, hash_api_key_secret(secret)


def parse_api_key(plaintext: str) -> tuple[str, str]:
    """Split a presented key into (key_id, secret); 401 if it is not shaped like one of ours."""
    match = _API_KEY_SHAPE.fullmatch(plaintext.strip())
    if match is None:
        raise AuthError(401, "malformed API key")
    return match.group(1), match.group(2)


def verify_api_key_secret(secret: str, stored_hash: str) -> bool:
    """Constant-time comparison, so response timing says nothing about the stored hash."""
    presented = hash_api_key_secret(secret).encode("utf-8")
    return hmac.compare_digest(presented, stored_hash.encode("utf-8"))


# Compared against when a key_id is unknown, so unknown and wrong keys cost the same time.
_UNKNOWN_KEY_HASH = hash_api_key_secret(secrets.token_urlsafe(_SECRET_BYTES))
