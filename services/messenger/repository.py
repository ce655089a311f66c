"""Contacts, practices and the consent ledger (who changed what, when, from which message).

The card's consent flags are a cache of the ledger: every change is a ledger row written in the
same transaction. An EHR consent change applies only when it is newer than the last change for
that channel, so an old EHR record replayed after a patient's STOP never re-subscribes them.
And an EHR opt-in never undoes an opt-out the patient made (a STOP, a carrier STOP, or one staff
recorded for them), however new: only the patient's own START or staff giving a reason undo it.
The EHR's change is still written to the ledger, not applied, with a note, and staff see it in
``held_consent``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger.domain.checks import ContactCard
from shared.events.common import Channel, ContactKind, ContactUse, Purpose
from shared.events.ehr import ConsentChanged, ConsentStatus, PatientUpserted

SCHEMA = "messenger"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _best(payload: PatientUpserted, kind: ContactKind) -> str | None:
    usable = [c for c in payload.contacts if c.kind is kind and c.use is not ContactUse.old]
    if kind is ContactKind.phone:
        # Texts go to a mobile number when there is one.
        usable.sort(key=lambda c: (c.use is not ContactUse.mobile, c.rank))
    else:
        usable.sort(key=lambda c: c.rank)
    return usable[0].value if usable else None


_UPSERT_CONTACT = text(
    f"INSERT INTO {SCHEMA}.contacts (patient_key, clinic_id, given_name, phone, email, "
    "language, time_zone, home_state, deceased, active, source_updated_at) VALUES (:pk, :c, "
    ":g, :ph, :em, :lang, :tz, :st, :dec, :act, :at) ON CONFLICT (patient_key) DO UPDATE SET "
    "given_name = EXCLUDED.given_name, phone = EXCLUDED.phone, email = EXCLUDED.email, "
    "language = EXCLUDED.language, time_zone = EXCLUDED.time_zone, "
    "home_state = EXCLUDED.home_state, "
    "deceased = EXCLUDED.deceased, active = EXCLUDED.active, "
    "source_updated_at = EXCLUDED.source_updated_at "
    f"WHERE {SCHEMA}.contacts.source_updated_at <= EXCLUDED.source_updated_at"
)


def _contact_row(clinic_id: str, patient_key: str, p: PatientUpserted) -> dict[str, Any]:
    return {
        "pk": patient_key,
        "c": clinic_id,
        "g": p.given_name,
        "ph": _best(p, ContactKind.phone),
        "em": _best(p, ContactKind.email),
        "lang": p.preferred_language or "en",
        "tz": p.time_zone,
        "st": p.home_state,
        "dec": p.deceased,
        "act": p.active,
        "at": p.source.source_updated_at,
    }


async def upsert_contact(
    session: AsyncSession, clinic_id: str, patient_key: str, p: PatientUpserted
) -> None:
    """Keep the newest version of the patient's contact card (older updates never win)."""
    await upsert_contacts(session, [(clinic_id, patient_key, p)])


async def upsert_contacts(
    session: AsyncSession, cards: Sequence[tuple[str, str, PatientUpserted]]
) -> None:
    """Many at once, in order (one prepared statement executed for each: a batch costs one
    round of the driver, not one statement per patient)."""
    if cards:
        await session.execute(_UPSERT_CONTACT, [_contact_row(c, pk, p) for c, pk, p in cards])


_KEEP_ERASED_OPT_OUTS = text(
    f"UPDATE {SCHEMA}.contacts c SET opted_out_sms = c.opted_out_sms OR e.opted_out_sms, "
    "opted_out_email = c.opted_out_email OR e.opted_out_email "
    f"FROM {SCHEMA}.erased_opt_outs e WHERE c.patient_key = ANY(:keys) "
    "AND e.key_hash = encode(sha256(convert_to(c.patient_key, 'UTF8')), 'hex') "
    "AND (e.opted_out_sms > c.opted_out_sms OR e.opted_out_email > c.opted_out_email)"
)


async def keep_erased_opt_outs(session: AsyncSession, patient_keys: Sequence[str]) -> None:
    """A card made again for a patient erased after opting out is opted out again."""
    if patient_keys:
        await session.execute(_KEEP_ERASED_OPT_OUTS, {"keys": list(patient_keys)})


async def _ensure_contact(session: AsyncSession, clinic_id: str, patient_key: str) -> None:
    # Consent can arrive before demographics; the card exists so the ledger has a home.
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.contacts (patient_key, clinic_id, source_updated_at) "
            "VALUES (:pk, :c, :at) ON CONFLICT (patient_key) DO NOTHING"
        ),
        {"pk": patient_key, "c": clinic_id, "at": EPOCH},
    )


HELD_NOTE = (
    "held: the patient opted out themselves (STOP); only their START or staff with a reason undo it"
)
# Opt-outs that came from the patient (directly, through the carrier, or told to staff).
_PATIENT_OPT_OUTS = ("reply_keyword", "reply_classified", "provider", "staff")


async def stopped_by_patient(
    session: AsyncSession, patient_key: str, channels: Sequence[Channel]
) -> set[Channel]:
    """The channels whose care consent stands revoked by the patient's own opt-out now."""
    found: set[Channel] = set()
    for channel in channels:
        last = (
            await session.execute(
                text(
                    f"SELECT change, via FROM {SCHEMA}.consent_ledger WHERE patient_key = :pk "
                    "AND purpose = 'care' AND applied AND (channel = :ch OR channel IS NULL) "
                    "ORDER BY id DESC LIMIT 1"
                ),
                {"pk": patient_key, "ch": channel.value},
            )
        ).first()
        if last is not None and last[0] == "opted_out" and last[1] in _PATIENT_OPT_OUTS:
            found.add(channel)
    return found


_CONSENT_COLUMNS = {
    Channel.sms: ("opted_out_sms", "sms_consent_at"),
    Channel.email: ("opted_out_email", "email_consent_at"),
}
# Marketing consent is given or withdrawn per channel (offers by e-mail, not by text, say).
_MARKETING_COLUMNS = {
    Channel.sms: ("marketing_sms", "marketing_sms_at"),
    Channel.email: ("marketing_email", "marketing_email_at"),
}


async def record_consent(
    session: AsyncSession,
    *,
    clinic_id: str,
    patient_key: str,
    channel: Channel | None,
    purpose: Purpose,
    granted: bool,
    via: str,
    actor: str,
    at: datetime,
    source_message_id: str | None = None,
    only_if_newer: bool = False,
    ensure_contact: bool = True,
    note: str | None = None,
    keep_patient_stop: bool = False,
) -> bool:
    """Write the ledger row and update the card; False when an older change was ignored.

    ``keep_patient_stop``: an opt-in is held (recorded, not applied, with a note) on every
    channel the patient opted out of themselves (an EHR update may not undo a STOP)."""
    if ensure_contact:
        await _ensure_contact(session, clinic_id, patient_key)
    channels = [channel] if channel else [Channel.sms, Channel.email]
    if purpose is Purpose.marketing:
        targets = [(ch, *_MARKETING_COLUMNS[ch], granted) for ch in channels]
        change = "granted" if granted else "revoked"
    else:
        targets = [(ch, *_CONSENT_COLUMNS[ch], not granted) for ch in channels]
        change = "opted_in" if granted else "opted_out"
    held: set[Channel] = set()
    if keep_patient_stop and granted and purpose is not Purpose.marketing:
        held = await stopped_by_patient(session, patient_key, [t[0] for t in targets if t[0]])
    any_applied = False
    # One ledger row per channel it touches, each saying whether it changed the card; the card
    # and its ledger row are written by one statement.
    for target, flag, stamp, value in targets:
        guard = f" AND ({stamp} IS NULL OR {stamp} <= :at)" if only_if_newer else ""
        if target in held:
            guard += " AND false"
        applied = (
            await session.execute(
                text(
                    f"WITH card AS (UPDATE {SCHEMA}.contacts SET {flag} = :v, {stamp} = :at "
                    f"WHERE patient_key = :pk{guard} RETURNING 1) "
                    f"INSERT INTO {SCHEMA}.consent_ledger (clinic_id, patient_key, channel, "
                    "purpose, change, via, actor, source_message_id, applied, at, note) VALUES "
                    "(:c, :pk, :ch, :pu, :change, :via, :actor, :src, "
                    "EXISTS (SELECT 1 FROM card), :at, :note) RETURNING applied"
                ),
                {
                    "v": value,
                    "at": at,
                    "pk": patient_key,
                    "c": clinic_id,
                    "ch": target.value if target else None,
                    "pu": purpose.value,
                    "change": change,
                    "via": via,
                    "actor": actor,
                    "src": source_message_id,
                    "note": HELD_NOTE if target in held else note,
                },
            )
        ).scalar_one()
        any_applied = any_applied or bool(applied)
    return any_applied


async def apply_consent(
    session: AsyncSession, clinic_id: str, patient_key: str, c: ConsentChanged
) -> bool:
    """An EHR consent change, applied only if newer than the last change it would override."""
    return await record_consent(
        session,
        clinic_id=clinic_id,
        patient_key=patient_key,
        channel=c.channel,
        purpose=c.purpose,
        granted=c.status is ConsentStatus.granted,
        via="ehr",
        actor=f"ehr:{c.source.record_id}",
        at=c.source.source_updated_at,
        only_if_newer=True,
        keep_patient_stop=True,
    )


async def mark_wrong_number(session: AsyncSession, patient_key: str) -> None:
    await session.execute(
        text(f"UPDATE {SCHEMA}.contacts SET wrong_number_phone = phone WHERE patient_key = :pk"),
        {"pk": patient_key},
    )


def card_from_row(m: Any) -> ContactCard:
    return ContactCard(
        patient_key=m["patient_key"],
        given_name=m["given_name"],
        phone=m["phone"],
        email=m["email"],
        language=m["language"],
        time_zone=m["time_zone"],
        deceased=m["deceased"],
        active=m["active"],
        opted_out_sms=m["opted_out_sms"],
        opted_out_email=m["opted_out_email"],
        marketing_sms=m["marketing_sms"],
        marketing_email=m["marketing_email"],
        wrong_number_phone=m["wrong_number_phone"],
        home_state=m["home_state"],
    )


async def contact_card(session: AsyncSession, patient_key: str) -> ContactCard | None:
    cards = await contact_cards(session, [patient_key])
    return cards.get(patient_key)


async def contact_cards(
    session: AsyncSession, patient_keys: Iterable[str], *, lock: bool = False
) -> dict[str, ContactCard]:
    """Cards by patient key. ``lock`` takes a share lock, so an opt-out committing now waits
    for this transaction (the send decision and the opt-out are strictly ordered)."""
    keys = sorted(set(patient_keys))
    if not keys:
        return {}
    suffix = " ORDER BY patient_key FOR SHARE" if lock else ""
    rows = (
        await session.execute(
            text(f"SELECT * FROM {SCHEMA}.contacts WHERE patient_key = ANY(:pks){suffix}"),
            {"pks": keys},
        )
    ).all()
    return {r._mapping["patient_key"]: card_from_row(r._mapping) for r in rows}


async def contact_row(session: AsyncSession, patient_key: str) -> dict[str, Any] | None:
    row = (
        await session.execute(
            text(f"SELECT * FROM {SCHEMA}.contacts WHERE patient_key = :pk"), {"pk": patient_key}
        )
    ).first()
    return dict(row._mapping) if row else None


async def consent_ledger(session: AsyncSession, patient_key: str) -> list[dict[str, Any]]:
    rows = (
        await session.execute(
            text(
                f"SELECT id, channel, purpose, change, via, actor, source_message_id, applied, at, "
                f"note FROM {SCHEMA}.consent_ledger WHERE patient_key = :pk ORDER BY id"
            ),
            {"pk": patient_key},
        )
    ).all()
    return [dict(r._mapping) for r in rows]


async def held_consent(
    session: AsyncSession, clinic_id: str, limit: int = 200
) -> list[dict[str, Any]]:
    """EHR opt-ins held back by a patient's own opt-out, newest first, for staff to review."""
    rows = (
        await session.execute(
            text(
                f"SELECT id, patient_key, channel, actor, at FROM {SCHEMA}.consent_ledger "
                "WHERE clinic_id = :c AND via = 'ehr' AND NOT applied AND note = :held "
                "ORDER BY id DESC LIMIT :n"
            ),
            {"c": clinic_id, "held": HELD_NOTE, "n": limit},
        )
    ).all()
    return [dict(r._mapping) for r in rows]


# --- escalations the messenger knows to be open -------------------------------------------------


async def open_escalation(session: AsyncSession, escalation_id: str, patient_key: str) -> None:
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.open_escalations (escalation_id, patient_key) "
            "VALUES (:e, :pk) ON CONFLICT DO NOTHING"
        ),
        {"e": escalation_id, "pk": patient_key},
    )


async def close_escalation(session: AsyncSession, escalation_id: str) -> None:
    await session.execute(
        text(f"DELETE FROM {SCHEMA}.open_escalations WHERE escalation_id = :e"),
        {"e": escalation_id},
    )


async def with_open_escalations(session: AsyncSession, patient_keys: Sequence[str]) -> set[str]:
    if not patient_keys:
        return set()
    rows = (
        await session.execute(
            text(
                f"SELECT DISTINCT patient_key FROM {SCHEMA}.open_escalations "
                "WHERE patient_key = ANY(:pks)"
            ),
            {"pks": list(patient_keys)},
        )
    ).all()
    return {r[0] for r in rows}


async def cancelled_sequences(session: AsyncSession, sequence_ids: Sequence[str]) -> set[str]:
    if not sequence_ids:
        return set()
    rows = (
        await session.execute(
            text(
                f"SELECT sequence_id FROM {SCHEMA}.cancelled_sequences WHERE sequence_id = ANY(:s)"
            ),
            {"s": list(set(sequence_ids))},
        )
    ).all()
    return {r[0] for r in rows}


async def end_sequence(session: AsyncSession, sequence_id: str, reason: str) -> None:
    """Nothing more of this sequence goes out, on any channel: the send-time check and the
    dispatcher's re-check both read ``cancelled_sequences``. Queued steps are cancelled now,
    except one a dispatcher has locked this instant: its re-check (which waits for this
    transaction's lock on the patient's card) refuses it, so this never waits on it."""
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.cancelled_sequences (sequence_id, reason) VALUES (:s, :r) "
            "ON CONFLICT DO NOTHING"
        ),
        {"s": sequence_id, "r": reason},
    )
    await session.execute(
        text(
            f"UPDATE {SCHEMA}.outgoing SET status = 'cancelled', failure = :r, updated_at = now() "
            f"WHERE message_id IN (SELECT message_id FROM {SCHEMA}.outgoing WHERE sequence_id = :s "
            "AND kind = 'step' AND status = 'queued' FOR UPDATE SKIP LOCKED)"
        ),
        {"s": sequence_id, "r": reason},
    )
