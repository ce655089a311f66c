"""Who is signed in, and what their role and clinic scope let them see and do.

The console decides what to show and offer from these rules; every action still goes through
the owning service's API with the user's own credential, and that service enforces the same
rules again (a console that shows too much would still be refused by the service).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

ROLES = ("viewer", "operator", "admin")
ALL_CLINICS = "*"


class Act(StrEnum):
    """What a person does in the console, each needing a role (``NEEDS``)."""

    read = "read"
    acknowledge = "acknowledge"
    add_note = "add_note"
    resolve = "resolve"
    reply = "reply"
    assign = "assign"
    mark_handled = "mark_handled"
    pause_outreach = "pause_outreach"
    stop_outreach = "stop_outreach"
    draft_words = "draft_words"
    approve_words = "approve_words"
    edit_segments = "edit_segments"
    decide_pilot = "decide_pilot"  # record a week's decision (launch and stop: steer_pilot)
    steer_pilot = "steer_pilot"  # define, start, launch, stop and close a pilot


NEEDS: dict[Act, str] = {
    Act.read: "viewer",
    Act.acknowledge: "operator",
    Act.add_note: "operator",
    Act.resolve: "operator",
    Act.reply: "operator",
    Act.assign: "operator",
    Act.mark_handled: "operator",
    Act.pause_outreach: "operator",
    Act.stop_outreach: "operator",
    Act.draft_words: "operator",
    Act.approve_words: "admin",
    Act.edit_segments: "admin",
    Act.decide_pilot: "operator",
    Act.steer_pilot: "admin",
}


@dataclass(frozen=True)
class Staff:
    subject: str  # an opaque staff id, never a patient's
    role: str
    clinics: frozenset[str] | None  # None: every clinic (admins only)
    via: str = "dev"  # dev | oidc

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}")
        if self.clinics is None and self.role != "admin":
            raise ValueError("only an admin may be scoped to every clinic")
        if self.clinics is not None and not self.clinics:
            raise ValueError("a member of staff works for at least one clinic")

    def may(self, act: Act) -> bool:
        return ROLES.index(self.role) >= ROLES.index(NEEDS[act])

    def covers(self, clinic_id: str) -> bool:
        return self.clinics is None or clinic_id in self.clinics

    def may_in(self, act: Act, clinic_id: str) -> bool:
        return self.covers(clinic_id) and self.may(act)

    @property
    def clinic_list(self) -> list[str]:
        return sorted(self.clinics) if self.clinics is not None else []


def parse_clinics(role: str, text: str) -> frozenset[str] | None:
    """The scope typed on the dev sign-in page: ids separated by commas or spaces, or ``*``."""
    ids = [part for part in text.replace(",", " ").split() if part]
    if ids == [ALL_CLINICS]:
        if role != "admin":
            raise ValueError("only an admin may be scoped to every clinic (*)")
        return None
    if not ids:
        raise ValueError("name at least one clinic")
    for clinic in ids:
        if clinic == ALL_CLINICS or ":" in clinic or len(clinic) > 64:
            raise ValueError("clinic ids are short names without ':' (or * alone, for admins)")
    return frozenset(ids)


def clinic_in_view(staff: Staff, asked: str | None, default: str = "") -> str | None:
    """The clinic a page shows: the one asked for if the person covers it, else their first."""
    if asked and staff.covers(asked):
        return asked
    if staff.clinics is None:
        return default or None
    return staff.clinic_list[0]


def staff_from_claims(
    claims: dict[str, object], role_claim: str, clinics_claim: str, via: str = "oidc"
) -> Staff:
    """The person an identity provider vouched for: its subject, and the role and clinics the
    practice gave them there (a list, or ids separated by spaces or commas). ValueError says
    what is missing, never the claim's value."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise ValueError("the identity token names nobody (no sub)")
    role = claims.get(role_claim)
    if not isinstance(role, str) or role not in ROLES:
        raise ValueError(f"the identity token gives no Revisit role ({role_claim})")
    raw = claims.get(clinics_claim)
    if isinstance(raw, list) and all(isinstance(c, str) for c in raw):
        text = " ".join(str(c) for c in raw)
    elif isinstance(raw, str):
        text = raw
    else:
        raise ValueError(f"the identity token gives no clinics ({clinics_claim})")
    return Staff(subject, role, parse_clinics(role, text), via=via)
