"""The dev stack's start banner says where things are and how to get a credential, and prints
none: a banner ends up in terminals' scrollback and CI logs."""

from __future__ import annotations

from pathlib import Path

from revisit.dev import ready_banner
from revisit.stack import Backing


def test_the_banner_prints_no_token_secret_or_key_and_says_how_to_get_one() -> None:
    creds = {
        "admin_token": "eyJhbGciOiJIUzI1NiJ9.admin-token-body.signature",
        "jwt_secret": "jwt-secret-value-0123456789",
        "api_key": "rvk_0123456789abcdef_secret-part-of-the-key",
        "console_secret": "console-secret-value",
    }
    base = {"ingest": "http://127.0.0.1:8001", "escalation": "http://127.0.0.1:8005"}
    base |= {"metrics": "http://127.0.0.1:8006"}
    banner = ready_banner(
        base,
        2575,
        Backing(dsn="postgresql://x", shown_dsn="postgresql://x", bootstrap="127.0.0.1:9092"),
        Path(".revisit/dev-credentials.json"),
        creds,
        "http://127.0.0.1:8008",
    )
    for value in creds.values():
        assert value not in banner
    assert "eyJ" not in banner and "rvk_" not in banner
    assert "sign in at the console" in banner and "revisit token --role" in banner
