"""The practice's words for the codes the services use, shown on every page."""

from __future__ import annotations

CASE_TYPES = {
    "red_flag": "Red flag",
    "clinical_question": "Clinical question",
    "unresolved_concern": "Unresolved concern",
    "poor_experience": "Poor experience",
    "booking_failed": "Booking failed",
    "unclassified_reply": "Reply nobody could read",
    "delivery_failures": "Messages not delivered",
}
OUTCOMES = {
    "answered": "Answered the patient",
    "booked": "Booked a visit",
    "no_action": "No action needed",
    "referred": "Referred on",
}
STATES = {
    "queued": "Waiting",
    "paging": "Paging",
    "acknowledged": "Taken",
    "resolved": "Resolved",
}
INTENTS = {
    "book": "Wants to book",
    "choose_slot": "Chose a time",
    "later": "Later",
    "decline": "Declined",
    "no_longer_needed": "No longer needed",
    "question": "Question",
    "clinical_concern": "Clinical words",
    "red_flag": "Red flag",
    "wrong_number": "Wrong number",
    "help": "Asked for help",
    "unknown": "Not understood",
    "opt_out": "Opted out",
    "opt_in": "Opted in",
}
BARRIERS = {
    "timing": "Timing",
    "cost": "Cost",
    "uncertainty": "Unsure it is needed",
    "unresolved_concern": "Unresolved concern",
    "poor_experience": "Poor experience",
}
SEGMENTS = {
    "follow_up_not_booked": "Follow-up not booked",
    "series_incomplete": "Treatment series incomplete",
    "cancelled_not_rescheduled": "Cancelled, not rescheduled",
    "cosmetic_maintenance_due": "Cosmetic maintenance due",
    "chronic_review_overdue": "Chronic review overdue",
    "question_no_review": "Question, no review booked",
    "lapsed_patient": "Lapsed patient",
    "consult_no_treatment": "Consult, treatment not started",
}
ACTION_REASONS = {
    "patient_asked": "The patient asked (phone or desk)",
    "booked_elsewhere": "Booked by other means",
    "clinical_hold": "A clinician asked to hold messages",
    "wrong_contact": "Wrong contact details",
    "deceased_or_moved": "Deceased or moved away",
    "concern_in_progress": "A concern is being handled",
    "other": "Other (say why in the note)",
}


def say(table: dict[str, str], code: str | None, empty: str = "—") -> str:
    """The words for ``code``; an unknown code is shown as itself, never hidden."""
    if not code:
        return empty
    return table.get(code, code.replace("_", " ").capitalize())


def duration(minutes: int) -> str:
    """12 min, 3 h 5 min, 2 d 4 h."""
    minutes = max(0, minutes)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
