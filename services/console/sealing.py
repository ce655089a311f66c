"""Sealed values: what the console hands the browser and must get back unread and unchanged.

- ``Sealer``: authenticated encryption (AES-256-GCM, a random nonce each time) with an expiry,
  for the session cookie and the short-lived sign-in cookies. A cookie that was changed, is
  expired, or was sealed for another purpose opens to nothing.
- ``PatientRefs``: the opaque reference to a patient in a URL. A patient key is
  ``<clinic>:<EHR id>``, itself sensitive, so URLs carry a deterministic AES-SIV encryption of it
  instead: the same patient always has the same reference (links can be shared between
  colleagues), nobody can read or forge one, and the console opens it to call the services'
  APIs with the signed-in user's credentials, which decide whether they may see it.

Both keys come from the console's one secret through HKDF, one per use.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def derive_key(secret: str, purpose: str, length: int = 32) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=purpose.encode())
    return hkdf.derive(secret.encode("utf-8"))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


class Sealer:
    def __init__(self, secret: str, purpose: str) -> None:
        self._aead = AESGCM(derive_key(secret, f"revisit-console:{purpose}"))
        self._purpose = purpose.encode()

    def seal(self, value: dict[str, Any], ttl_s: float, now: float | None = None) -> str:
        doc = {"v": value, "exp": int((now or time.time()) + ttl_s)}
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, json.dumps(doc).encode(), self._purpose)
        return _b64(nonce + sealed)

    def open(self, token: str | None, now: float | None = None) -> dict[str, Any] | None:
        raw = _unb64(token) if token and len(token) < 8192 else None
        if raw is None or len(raw) < 29:
            return None
        try:
            doc = json.loads(self._aead.decrypt(raw[:12], raw[12:], self._purpose))
        except (InvalidTag, ValueError):
            return None
        if not isinstance(doc, dict) or doc.get("exp", 0) < (now or time.time()):
            return None
        value = doc.get("v")
        return value if isinstance(value, dict) else None


class PatientRefs:
    """patient key <-> opaque, stable reference (see the module's docstring)."""

    _LABEL = [b"revisit-console:patient"]

    def __init__(self, secret: str) -> None:
        self._siv = AESSIV(derive_key(secret, "revisit-console:patient-ref", 64))

    def ref(self, patient_key: str) -> str:
        return _b64(self._siv.encrypt(patient_key.encode("utf-8"), self._LABEL))

    def key(self, ref: str) -> str | None:
        raw = _unb64(ref) if 0 < len(ref) <= 400 else None
        if raw is None or len(raw) <= 16:
            return None
        try:
            return self._siv.decrypt(raw, self._LABEL).decode("utf-8")
        except (InvalidTag, UnicodeDecodeError, ValueError):
            return None
