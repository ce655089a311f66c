"""A pilot's id: chosen by the clinic (``spring``) or made up (``pilot-<random hex>``).

Pilot ids share one table with every clinic's, so a chosen id is stored in the clinic's own
namespace: ``<chosen>.<clinic tag>``, the tag being the first hex digits of the clinic id's
SHA-256. Two clinics choosing ``spring`` get two different pilots, and whether the id is free
depends only on the caller's own clinic: defining a pilot never tells one clinic which ids
another uses. The form is a function of the clinic and the chosen id alone (never of what is
already stored), for the same reason. A chosen id already in the clinic's form is kept as it
is, so the id a definition answered can be given again. Made-up ids hold no ``.`` and so never
meet a chosen one.

Routes take either form: the chosen one is looked up in the caller's clinics.
"""

from __future__ import annotations

import hashlib
import secrets

TAG_LENGTH = 8


def clinic_tag(clinic_id: str) -> str:
    return hashlib.sha256(clinic_id.encode()).hexdigest()[:TAG_LENGTH]


def in_clinic(clinic_id: str, chosen: str) -> str:
    """The stored id of the pilot ``clinic_id`` chose to call ``chosen``."""
    suffix = f".{clinic_tag(clinic_id)}"
    return chosen if chosen.endswith(suffix) else f"{chosen}{suffix}"


def made_up() -> str:
    return f"pilot-{secrets.token_hex(6)}"
