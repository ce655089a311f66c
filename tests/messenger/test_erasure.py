"""An erased patient who had said STOP stays opted out when the EHR sends their record again."""

from __future__ import annotations

from shared.erasure import erase_patient
from tests.messenger.conftest import Messenger, envelope, patient_upserted

WHO = {"service": "test", "subject": "privacy-officer"}


async def card(messenger: Messenger, patient_key: str) -> dict[str, object] | None:
    rows = await messenger.rows(
        "SELECT opted_out_sms, opted_out_email FROM messenger.contacts WHERE patient_key = :k",
        k=patient_key,
    )
    return rows[0] if rows else None


async def test_an_opt_out_outlives_the_erasure_but_nothing_else_does(messenger: Messenger) -> None:
    stopped, stopped_phone = await messenger.new_patient()
    kept, kept_phone = await messenger.new_patient()
    await messenger.reply(stopped, "STOP")
    assert await card(messenger, stopped) == {"opted_out_sms": True, "opted_out_email": False}

    for key in (stopped, kept):
        clinic, patient_id = key.split(":", 1)
        await erase_patient(messenger.runtime.engine, clinic, patient_id, who=WHO)
        assert await card(messenger, key) is None
    hashes = await messenger.rows("SELECT key_hash FROM messenger.erased_opt_outs")
    assert all(stopped not in str(h) for h in hashes)

    # The EHR sends both records again.
    await messenger.handle(
        "contacts", envelope(patient_upserted(phone_number=stopped_phone), stopped)
    )
    await messenger.handle("contacts", envelope(patient_upserted(phone_number=kept_phone), kept))
    assert await card(messenger, stopped) == {"opted_out_sms": True, "opted_out_email": False}
    assert await card(messenger, kept) == {"opted_out_sms": False, "opted_out_email": False}
