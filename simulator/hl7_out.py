"""The simulated EHR's scheduling feed: one appointment version as an HL7 v2.5.1 SIU message.

Pure. The trigger says what happened, as ingest reads it (services/ingest/hl7v2/scheduling.py):
S12 a new booking, S14 a changed one (ingest itself tells a reschedule from the start moving),
S15 a cancellation with SCH-6 coded like FHIR's cancellation reasons (``pat``, ``prov``), S26 a
no-show, and S12/S14 with SCH-25 ``Complete`` for a visit that happened (AppointmentKept).

The message is a function of the record version and ``sent_at`` only, and its control id of the
version alone, so a resend is byte-for-byte the same message and ingest answers it as a
duplicate instead of publishing it twice or refusing a reused id.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from simulator.fhir_shapes import find_service
from simulator.model import AppointmentRecord, AppointmentStatus, Clinic, Patient

SENDING_APPLICATION = "SIMEHR"
_ESCAPES = {"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\"}
_CANCELLED_BY = {"patient": "pat^Patient request", "practice": "prov^Provider request"}
_FILLER = {
    AppointmentStatus.booked: "Booked",
    AppointmentStatus.fulfilled: "Complete",
    AppointmentStatus.cancelled: "Cancelled",
    AppointmentStatus.noshow: "Noshow",
}
_LANGUAGE = {"en": "eng", "es": "spa"}  # PID-15 is ISO 639-2 (HL7 table 0296)


def control_id_for(appt: AppointmentRecord) -> str:
    """MSH-10: unique per appointment version, the same for every resend of that version."""
    return f"{appt.appointment_id}-v{appt.version}"[:199]


def siu_message(
    appt: AppointmentRecord,
    patient: Patient,
    clinic: Clinic,
    *,
    control_id: str,
    sent_at: datetime,
    api_key: str = "",
) -> str:
    """The SIU message (segments separated by CR) for one version of an appointment."""
    zone = ZoneInfo(clinic.time_zone)
    start, end = appt.start, appt.start + timedelta(minutes=appt.minutes)
    service = find_service(clinic, appt.service_code)
    reason = _escape(appt.service_code) + "^" + _escape(service.name if service else "") + "^L"
    facility = _escape(clinic.clinic_id)
    msh = [
        "MSH",
        "^~\\&",
        SENDING_APPLICATION,
        facility,
        "REVISIT",
        "REVISIT",
        _stamp(sent_at, zone),
        _escape(api_key),
        f"SIU^{_trigger(appt)}^SIU_S12",
        _escape(control_id),
        "P",
        "2.5.1",
    ]
    sch = ["SCH", "", _escape(appt.appointment_id), "", "", "", _cancel_reason(appt), reason]
    sch += ["", str(appt.minutes), "min"] + [""] * 14 + [_FILLER[appt.status]]
    segments = [
        msh,
        sch,
        ["TQ1", "1", "", "", "", "", "", _stamp(start, zone), _stamp(end, zone)],
        _pid(patient, clinic),
        ["RGS", "1"],
        ["AIS", "1", "", reason, _stamp(start, zone), "", "", str(appt.minutes), "min"],
        ["AIL", "1", "", f"{_escape(appt.location_id)}^^^{facility}"],
        ["AIP", "1", "", _escape(appt.provider_id)],
    ]
    return "\r".join("|".join(fields) for fields in segments) + "\r"


def _trigger(appt: AppointmentRecord) -> str:
    if appt.status is AppointmentStatus.cancelled:
        return "S15"
    if appt.status is AppointmentStatus.noshow:
        return "S26"
    return "S12" if appt.version <= 1 else "S14"


def _cancel_reason(appt: AppointmentRecord) -> str:
    if appt.status is not AppointmentStatus.cancelled:
        return ""
    return _CANCELLED_BY.get(appt.cancelled_by or "", "")


def _pid(patient: Patient, clinic: Clinic) -> list[str]:
    phone = patient.phone
    if phone.startswith("+1") and len(phone) == 12:  # North American: area code and number
        xtn = f"({phone[2:5]}){phone[5:8]}-{phone[8:]}^PRN^CP^^1^{phone[2:5]}^{phone[5:]}"
    else:
        xtn = f"^PRN^CP^^^^^^^^^{_escape(phone)}"  # XTN-12: the unformatted number
    email = f"^NET^Internet^{_escape(patient.email)}"
    return [
        "PID",
        "1",
        "",
        f"{_escape(patient.patient_id)}^^^{_escape(clinic.clinic_id)}^MR",
        "",
        f"{_escape(patient.family_name)}^{_escape(patient.given_name)}^^^^^L",
        "",
        patient.birth_date.strftime("%Y%m%d"),
        {"female": "F", "male": "M"}.get(patient.sex, "U"),
        "",
        "",
        f"^^^{_escape(clinic.state)}^^US",
        "",
        f"{xtn}~{email}",
        "",
        _LANGUAGE.get(patient.language, ""),
    ]


def _stamp(at: datetime, zone: ZoneInfo) -> str:
    """An HL7 DTM with the clinic's offset, so no receiver has to guess the zone."""
    aware = at if at.tzinfo is not None else at.replace(tzinfo=zone)
    return aware.astimezone(zone).strftime("%Y%m%d%H%M%S%z")


def _escape(value: str) -> str:
    """A value with HL7's delimiters escaped (service names such as "Psoriasis & eczema")."""
    text = value.replace("\r", " ").replace("\n", " ")
    return "".join(_ESCAPES.get(c, c) for c in text)
