"""Which steps would go out in the next days, when, to whom (patient keys only) and why.

The projection assumes nothing changes: no reply, no booking, no opt-out. It applies the same
rules the state machine applies (allowed hours in the patient's zone, caps across sequences), so
what it shows is what the timers would do if left alone. Each step carries the SendStep the
timer would command then, so the messenger can say the exact words (its preview API); the
messenger still checks at send time.
"""

from __future__ import annotations

from collections.abc import Sequence as Listed
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.sequencer.domain.model import Patient, Sequence
from services.sequencer.domain.rules import add_local, plan
from services.sequencer.domain.steps import Context, channels_for, command_for
from shared.events.outreach import SendStep


@dataclass(frozen=True)
class PreviewStep:
    patient_key: str
    sequence_id: str
    workflow_key: str
    segment: str
    step: int
    at: datetime | None  # None: waiting for a pause to lift
    channel: str | None
    template_key: str
    why: str
    command: SendStep | None = None  # what the timer would command (None: it would not)

    def as_dict(self) -> dict[str, object]:
        return {
            "patient_key": self.patient_key,
            "sequence_id": self.sequence_id,
            "workflow_key": self.workflow_key,
            "segment": self.segment,
            "step": self.step,
            "at": self.at.isoformat() if self.at else None,
            "channel": self.channel,
            "template_key": self.template_key,
            "why": self.why,
        }


def project(patient: Patient, seq: Sequence, ctx: Context, horizon: timedelta) -> list[PreviewStep]:
    """The steps of ``seq`` due before ``ctx.now + horizon`` if nothing else happens."""
    wf = ctx.workflow(seq)
    if wf is None or not seq.is_active or seq.next_step is None or seq.next_due is None:
        return []
    until = ctx.now + horizon
    zone = ctx.rules.tz(seq.time_zone or patient.time_zone)
    out: list[PreviewStep] = []
    if patient.paused_for(seq):
        why = "paused by staff" if patient.operator_paused else "paused: an escalation is open"
        wstep = wf.step(seq.next_step)
        return [
            PreviewStep(
                seq.patient_key,
                seq.sequence_id,
                seq.workflow_key,
                seq.segment.value,
                seq.next_step,
                None,
                None,
                wstep.template_key,
                why,
            )
        ]
    sends = patient.send_times()
    step, at = seq.next_step, max(seq.next_due, ctx.now)
    limit = min(seq.steps_planned, len(wf.steps))
    while step <= limit and at < until:
        wstep = wf.step(step)
        chosen = channels_for(patient, seq, wstep)
        notes = [f"step {step} of {wf.key}: {wf.playbook.get(step, '')}", seq.reason]
        if chosen is None:
            notes.append("no channel the patient has not opted out of: the sequence would stop")
        local = at.astimezone(zone)
        notes.append(f"{local:%a %H:%M} in {zone.key}")
        out.append(
            PreviewStep(
                seq.patient_key,
                seq.sequence_id,
                seq.workflow_key,
                seq.segment.value,
                step,
                at,
                chosen[0].value if chosen else None,
                wstep.template_key,
                "; ".join(n for n in notes if n),
                command_for(patient, seq, wstep, chosen, at, ctx) if chosen else None,
            )
        )
        if chosen is None:
            break
        sends = [*sends, at]
        step += 1
        if step <= limit:
            at = plan(
                add_local(at, wf.step(step).delay, zone),
                zone,
                ctx.rules,
                sends,
                state=seq.home_state or patient.home_state,
            )
    return out


def first_known(times: Listed[datetime], limit: int, floor: datetime) -> bool:
    """Whether the earliest ``limit`` of ``times`` are final: every sequence not yet projected
    sends at ``floor`` or later (its pending step goes at its due moment or later, the next
    ones after it), so none comes before them, nor ties with them (ties are ordered by
    patient, and the unread one might sort first)."""
    return len(times) >= limit and sorted(times)[limit - 1] < floor
