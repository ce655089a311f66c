"""The conversation Revisit writes to the chart can come back through the EHR's feed: ingest
must not take the patient's own texts for new portal questions (a loop that would put every
patient who replied into ``question_no_review``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from services.ingest import submissions
from services.ingest.domain import MappingContext
from services.ingest.mapping.drafts import finalize
from services.messenger.ehr.domain import chart

CTX = MappingContext(received_at=datetime(2026, 12, 7, tzinfo=UTC), local_zone=ZoneInfo("UTC"))


def through_ingest(resource: dict[str, object]) -> tuple[list[str], list[str]]:
    raw = json.dumps(resource).encode()
    sub = submissions.fhir(raw, "clinic-1", None, CTX, None)
    assert sub.mapped is not None, sub.refused and sub.refused.problems
    facts, _ = finalize(sub.mapped, {})
    return [f.payload.event_type for f in facts], [n.msg for n in sub.mapped.notes]


def test_a_reply_revisit_wrote_to_the_chart_is_not_a_new_question() -> None:
    entry = chart.ChartEntry(
        "m-9", chart.Direction.inbound, "p-1", "sms", "Can I come earlier?", CTX.received_at
    )
    written = {**chart.communication(entry), "id": "c-1"}
    events, notes = through_ingest(written)
    assert events == [] and notes == ["written by Revisit: not a new question"]
    # The same message sent through the portal (no Revisit identifier) is a question.
    portal = {k: v for k, v in written.items() if k != "identifier"}
    assert through_ingest(portal)[0] == ["PatientQuestionReceived"]
