"""The onboarding backfill under load: a synthetic practice's years of history through
`revisit backfill` (``revisit.backfill.run``), outreach held, then released.

The practice is the simulator's, widened to ``providers`` clinicians (the eight of the demo
practice, repeated under new ids) and ``patients`` patients (default 1,000 per provider's worth
of history: ~23 EHR records each over five years), written as an EHR export would be: patients
(and their consent) as FHIR Bundles, every appointment version as HL7 v2 SIU, visits, questions
and feedback as FHIR Bundles. Two figures: ingest's rate over the load
(``pipeline_backfill_ingest``, the target) and the rate until the history is all in (read by the
segmenter and the messenger, the hold lifted and every patient re-evaluated).
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench._harness import detail, figure, load_average, rate, say
from bench.pipeline_phases import Stack
from revisit import backfill
from simulator import fhir_out, hl7_out
from simulator.catalogue import PROVIDERS, default_clinic
from simulator.model import (
    AppointmentRecord,
    Clinic,
    FeedbackRecord,
    QuestionRecord,
    VisitRecord,
)
from simulator.practice import build_practice

CLINIC = "bench-practice"
TARGET = 3000.0  # EHR events/s


def practice_clinic(providers: int) -> Clinic:
    base = default_clinic(CLINIC)
    widened = tuple(
        replace(p, provider_id=f"{p.provider_id}-{i // len(PROVIDERS) + 1}")
        for i, p in enumerate(PROVIDERS * (providers // len(PROVIDERS) + 1))
    )[:providers]
    return replace(base, providers=widened)


def write_history(folder: Path, patients: int, providers: int, years: int, now: datetime) -> int:
    """The export, in ``folder``; returns how many EHR records it holds."""
    clinic = practice_clinic(providers)
    practice = build_practice(
        11, patients, now, history_days=365 * years, horizon_days=0, clinic=clinic
    )
    by_id = {p.patient_id: p for p in practice.patients}
    people = []
    for p in practice.patients:
        people.append(fhir_out.patient_resource(p, clinic, 1, now - timedelta(days=365 * years)))
        if p.marketing_consent:
            people.append(fhir_out.consent_resource(p, clinic, now - timedelta(days=365 * years)))
    for n, start in enumerate(range(0, len(people), 200)):
        _bundle_file(folder / f"patients-{n:05d}.json", people[start : start + 200])
    siu: list[str] = []
    records: list[dict[str, Any]] = []
    for happening in practice.timeline:
        record, at = happening.record, happening.at
        if isinstance(record, AppointmentRecord):
            patient = by_id[record.patient_id]
            control = hl7_out.control_id_for(record)
            siu.append(hl7_out.siu_message(record, patient, clinic, control_id=control, sent_at=at))
        elif isinstance(record, VisitRecord):
            records.append(fhir_out.visit_bundle(record, clinic, at))
        elif isinstance(record, QuestionRecord):
            records.append(fhir_out.question_bundle(record, by_id[record.patient_id], clinic))
        elif isinstance(record, FeedbackRecord):
            records.append(fhir_out.feedback_bundle(record, clinic))
    for n, start in enumerate(range(0, len(siu), 500)):
        (folder / f"appointments-{n:05d}.hl7").write_text("\r".join(siu[start : start + 500]))
    for n, start in enumerate(range(0, len(records), 25)):
        entries = [e for b in records[start : start + 25] for e in b.get("entry", [])]
        (folder / f"records-{n:05d}.json").write_text(
            json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries})
        )
    return len(practice.timeline) + len(practice.patients)


def _bundle_file(path: Path, resources: list[dict[str, Any]]) -> None:
    path.write_text(json.dumps(fhir_out.transaction(resources)))


async def _api_key(stack: Stack) -> str:
    async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
        response = await client.post(
            f"{stack.started.base['ingest']}/admin/api-keys",
            json={"clinic_id": CLINIC, "label": "bench backfill"},
            headers={"Authorization": f"Bearer {stack.started.creds['admin_token']}"},
        )
        response.raise_for_status()
        key: str = response.json()["api_key"]
        return key


async def backfill_phase(stack: Stack, years: int, providers: int, patients: int = 0) -> None:
    assert stack.now is not None
    patients = patients or 500 * providers
    with tempfile.TemporaryDirectory(prefix="revisit-bench-history-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        records = write_history(folder, patients, providers, years, stack.now)
        detail(
            f"backfill: {years}-year history of a {providers}-provider practice: {patients} "
            f"patients, {records} EHR records, written in {time.perf_counter() - started:.0f} s"
        )
        base = stack.started.base
        options = backfill.Options(
            folder=folder,
            clinic_id=CLINIC,
            ingest_url=base["ingest"],
            segmenter_url=base["segmenter"],
            metrics_url=base["metrics"],
            api_key=await _api_key(stack),
            token=stack.started.creds["admin_token"],
            checkpoint=folder / ".checkpoint.json",
            show_progress=False,
        )
        detail(f"backfill: loading; load average {load_average()}")
        started = time.perf_counter()
        report = await backfill.run(options)
        total = time.perf_counter() - started
    for line in backfill.render(report):
        detail(f"backfill report | {line}")
    ingest_rate = report.events_per_second
    say(
        figure(
            "pipeline_backfill_ingest",
            ingest_rate,
            "events/s",
            f"target >= {TARGET:.0f}; {report.accepted_events} EHR events accepted by ingest",
        )
    )
    say(
        figure(
            "pipeline_backfill_history_in",
            rate(report.accepted_events, total),
            "events/s",
            f"until read by every consumer, released and re-evaluated: {total:.0f} s",
        )
    )
    say(figure("pipeline_backfill_refused", float(report.refused_records), "records", "target 0"))
    if ingest_rate < TARGET:
        say(f"BELOW TARGET: pipeline_backfill_ingest {ingest_rate:.0f} < {TARGET:.0f} events/s")
