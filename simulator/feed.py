"""The simulated EHR's outbound interface: what it records, sent to ingest as a real EHR would.

Appointments go as HL7 v2 SIU over one persistent MLLP connection; everything else as FHIR R4
Bundles to ``POST /fhir/r4``, several records per Bundle; a question's triage as a native JSON
event (FHIR cannot say "review recommended"). A patient's demographics (and marketing consent)
go the first time the patient appears.

Counts are per EHR record: a patient, an appointment version, a visit, a question, its triage,
a survey answer. A refused Bundle of several records is re-sent one record at a time, so one
broken record is refused alone and the rest still go through. Network failures and ingest's
"temporarily unavailable" are retried with backoff, then raised as ``FeedError``. Logs carry
counts only; refusal reasons name record ids and field paths, never values.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from simulator import fhir_out, hl7_out
from simulator.model import (
    AppointmentRecord,
    Clinic,
    FeedbackRecord,
    Happening,
    Patient,
    QuestionRecord,
    VisitRecord,
)

log = logging.getLogger(__name__)
START, END = b"\x0b", b"\x1c\x0d"
MAX_ENTRIES = 50  # per Bundle: big enough to batch, small enough to re-send one by one
MLLP_WINDOW = 32  # pipelined messages before reading their ACKs (ingest pauses at 64)
MAX_REASONS = 10
FHIR_JSON = "application/fhir+json"


class FeedError(RuntimeError):
    """Ingest could not be reached, or would not take the feed's credentials."""


@dataclass
class FeedReport:
    """What ingest said about one ``send``. Over MLLP an AA does not tell a first receipt from a
    resend (ingest de-duplicates silently), so MLLP resends count as accepted."""

    accepted: int = 0
    duplicates: int = 0
    refused: int = 0
    reasons: list[str] = field(default_factory=list)

    def refuse(self, label: str, reason: str) -> None:
        self.refused += 1
        if len(self.reasons) < MAX_REASONS:
            self.reasons.append(f"{label}: {reason}")


@dataclass(frozen=True)
class _Unit:
    """One EHR record as ingest takes it, with an opaque label (kind and id) for refusal reasons."""

    label: str
    body: dict[str, Any]  # a Bundle, or a native event

    @property
    def urls(self) -> set[str]:
        return {e["fullUrl"] for e in self.body["entry"]}


_Route = tuple[str, str, Callable[[Sequence[_Unit]], dict[str, Any]]]
_FHIR: _Route = ("/fhir/r4", FHIR_JSON, lambda units: fhir_out.combined([u.body for u in units]))
_EVENTS: _Route = ("/events", "application/json", lambda units: {"events": [u.body for u in units]})


class EhrFeed:
    def __init__(
        self,
        ingest_url: str,
        api_key: str,
        mllp_host: str,
        mllp_port: int,
        clinic: Clinic,
        patients: Mapping[str, Patient],
        *,
        attempts: int = 5,
        backoff_seconds: float = 0.2,
    ) -> None:
        self.clinic = clinic
        self.patients = patients
        self._api_key = api_key
        self._mllp_address = (mllp_host, mllp_port)
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._http = httpx.AsyncClient(
            base_url=ingest_url.rstrip("/"),
            trust_env=False,
            timeout=30.0,
            headers={"X-API-Key": api_key, "Accept": "application/json"},
        )
        self._mllp: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._introduced: set[str] = set()

    async def send(self, happenings: Sequence[Happening]) -> FeedReport:
        report = FeedReport()
        patients: list[_Unit] = []
        records: list[_Unit] = []
        messages: list[tuple[str, str]] = []
        triage: list[_Unit] = []
        introducing: set[str] = set()
        for happening in happenings:
            record = happening.record
            label = _label(record)
            patient = self.patients.get(record.patient_id)
            if patient is None:
                report.refuse(label, "not sent: the patient is not in the practice")
                continue
            if patient.patient_id not in self._introduced and patient.patient_id not in introducing:
                introducing.add(patient.patient_id)
                patients.append(self._patient_unit(patient, happening.at))
            try:
                if isinstance(record, AppointmentRecord) and happening.via == "hl7":
                    messages.append((label, self._siu(record, patient, happening.at)))
                    continue
                records.append(_Unit(label, self._bundle(record, patient, happening.at)))
                if isinstance(record, QuestionRecord):
                    event = fhir_out.question_triage_event(record, patient, self.clinic)
                    triage.append(_Unit(f"triage {record.question_id}", event))
            except (KeyError, ValueError, StopIteration) as exc:  # a record the EHR cannot render
                report.refuse(label, f"not rendered ({type(exc).__name__})")
        for batch in _batches(patients):
            await self._post_all(_FHIR, batch, report)
        self._introduced |= introducing  # only once ingest has answered for them
        await self._send_hl7(messages, report)
        for batch in _batches(records):
            await self._post_all(_FHIR, batch, report)
        if triage:
            await self._post_all(_EVENTS, triage, report)
        log.info(
            "ehr feed sent",
            extra={
                "records": len(happenings),
                "accepted": report.accepted,
                "duplicates": report.duplicates,
                "refused": report.refused,
            },
        )
        return report

    async def close(self) -> None:
        await self._drop_mllp()
        await self._http.aclose()

    # --- rendering ----------------------------------------------------------------------------

    def _patient_unit(self, patient: Patient, at: datetime) -> _Unit:
        resources = [fhir_out.patient_resource(patient, self.clinic, 1, at)]
        if patient.marketing_consent:  # the practice records opt-ins; no record means no consent
            resources.append(fhir_out.consent_resource(patient, self.clinic, at))
        return _Unit(f"patient {patient.patient_id}", fhir_out.transaction(resources))

    def _siu(self, appt: AppointmentRecord, patient: Patient, at: datetime) -> str:
        control = hl7_out.control_id_for(appt)
        return hl7_out.siu_message(
            appt, patient, self.clinic, control_id=control, sent_at=at, api_key=self._api_key
        )

    def _bundle(self, record: Any, patient: Patient, at: datetime) -> dict[str, Any]:
        if isinstance(record, VisitRecord):
            return fhir_out.visit_bundle(record, self.clinic, at)
        if isinstance(record, QuestionRecord):
            return fhir_out.question_bundle(record, patient, self.clinic)
        if isinstance(record, FeedbackRecord):
            return fhir_out.feedback_bundle(record, self.clinic)
        resource = fhir_out.appointment_resource(record, self.clinic, at)
        return fhir_out.transaction([resource])

    # --- FHIR and native JSON over HTTP ------------------------------------------------------

    async def _post_all(self, route: _Route, units: Sequence[_Unit], report: FeedReport) -> None:
        path, content_type, body = route
        response = await self._post(path, body(units), content_type)
        if _settle(response, len(units), report):
            return
        if len(units) > 1:  # whole or nothing: find the broken record by sending them alone
            for unit in units:
                await self._post_all(route, [unit], report)
            return
        report.refuse(units[0].label, _problems(response))

    async def _post(self, path: str, body: dict[str, Any], content_type: str) -> httpx.Response:
        content = json.dumps(body, separators=(",", ":")).encode()
        failure: Exception | None = None
        for attempt in range(self._attempts):
            try:
                response = await self._http.post(
                    path, content=content, headers={"content-type": content_type}
                )
            except httpx.TransportError as exc:
                failure = exc
            else:
                if response.status_code in (401, 403, 404):
                    raise FeedError(f"ingest answered {response.status_code} to {path}")
                if response.status_code < 500 and response.status_code != 429:
                    return response
                failure = FeedError(f"ingest answered {response.status_code} to {path}")
            await asyncio.sleep(self._backoff * 2**attempt)
        raise FeedError(f"ingest unreachable after {self._attempts} attempts") from failure

    # --- HL7 v2 over MLLP --------------------------------------------------------------------

    async def _send_hl7(self, messages: list[tuple[str, str]], report: FeedReport) -> None:
        """Pipelined in windows; what has no ACK when the connection fails is sent again (its
        control id makes a resend a duplicate), and so is what ingest could not commit yet."""
        pending = list(messages)
        failures = 0
        while pending:
            window, retry, answered = pending[:MLLP_WINDOW], [], 0
            try:
                reader, writer = await self._connection()
                for _, text in window:
                    writer.write(START + text.encode("utf-8") + END)
                await writer.drain()
                for label, text in window:
                    frame = await asyncio.wait_for(reader.readuntil(END), timeout=60)
                    answered += 1
                    code, reason = _ack(frame)
                    if code == "AA":
                        report.accepted += 1
                    elif "temporary failure" in reason:
                        retry.append((label, text))
                    else:
                        report.refuse(label, reason)
                failures = failures + 1 if retry else 0
            except (OSError, EOFError, TimeoutError, asyncio.LimitOverrunError) as exc:
                await self._drop_mllp()
                failures += 1
                if failures >= self._attempts:
                    raise FeedError(f"MLLP failed {failures} times in a row") from exc
            if failures >= self._attempts:
                raise FeedError("ingest kept answering 'temporary failure' over MLLP")
            pending = retry + pending[answered:]
            if failures:
                await asyncio.sleep(self._backoff * 2 ** (failures - 1))

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._mllp is not None and (self._mllp[0].at_eof() or self._mllp[1].is_closing()):
            await self._drop_mllp()  # ingest closes idle connections; open a fresh one
        if self._mllp is None:
            self._mllp = await asyncio.open_connection(*self._mllp_address)
        return self._mllp

    async def _drop_mllp(self) -> None:
        if self._mllp is not None:
            writer = self._mllp[1]
            self._mllp = None
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def _label(record: Any) -> str:
    if isinstance(record, AppointmentRecord):
        return f"appointment {record.appointment_id} v{record.version}"
    if isinstance(record, VisitRecord):
        return f"visit {record.visit_id}"
    if isinstance(record, QuestionRecord):
        return f"question {record.question_id}"
    if isinstance(record, FeedbackRecord):
        return f"feedback {record.feedback_id}"
    return type(record).__name__


def _batches(units: Sequence[_Unit]) -> list[list[_Unit]]:
    """Consecutive records, up to MAX_ENTRIES entries per Bundle; a record whose resources are
    already in the batch (a plan's earlier sessions) starts a new one, so no Bundle PUTs one
    resource twice."""
    batches: list[list[_Unit]] = []
    current: list[_Unit] = []
    urls: set[str] = set()
    for unit in units:
        size = sum(len(u.body["entry"]) for u in current) + len(unit.body["entry"])
        if current and (size > MAX_ENTRIES or urls & unit.urls):
            batches.append(current)
            current, urls = [], set()
        current.append(unit)
        urls |= unit.urls
    return batches + ([current] if current else [])


def _settle(response: httpx.Response, count: int, report: FeedReport) -> bool:
    """Count an accepted (202) or already-accepted (200) body; False when it was refused."""
    if response.status_code not in (200, 202):
        return False
    if response.json().get("duplicate"):
        report.duplicates += count
    else:
        report.accepted += count
    return True


def _problems(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = {}
    detail, issues = body.get("detail"), body.get("issues")
    if isinstance(issues, list) and issues:
        return "; ".join(f"{p.get('where')}: {p.get('problem')}" for p in issues[:3])
    if isinstance(detail, list) and detail:
        return "; ".join(f"{p.get('loc')}: {p.get('msg')}" for p in detail[:3])
    return f"HTTP {response.status_code}"


def _ack(frame: bytes) -> tuple[str, str]:
    """MSA-1 and the first problem (ERR-8, else MSA-3) of an ACK frame."""
    lines = frame.strip(b"\x0b\x1c\r").decode("utf-8", "replace").split("\r")
    msa = next((line.split("|") for line in lines if line.startswith("MSA|")), ["MSA", "AR"])
    err = next((line.split("|") for line in lines if line.startswith("ERR|")), [])
    reason = err[8] if len(err) > 8 and err[8] else (msa[3] if len(msa) > 3 else "")
    return msa[1], reason or f"MSA {msa[1]}"
