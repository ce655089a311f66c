"""The topic registry: every topic Revisit uses, each with a dead-letter twin.

Topic names end in the schema's major version. Every topic is keyed by ``patient_key`` so one
patient's events stay in order on one partition.
"""

from __future__ import annotations

from dataclasses import dataclass

DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True)
class Topic:
    name: str
    purpose: str

    @property
    def dlq(self) -> str:
        return self.name + DLQ_SUFFIX


EHR_EVENTS = Topic("ehr.events.v1", "what the EHR recorded: patients, appointments, visits, plans")
ELIGIBILITY = Topic("recall.eligibility.v1", "patients entering and leaving recall segments")
COMMANDS = Topic("outreach.commands.v1", "send a step / cancel pending sends")
SEQUENCES = Topic("outreach.sequences.v1", "outreach sequence lifecycle")
MESSAGES = Topic("outreach.messages.v1", "messages sent, delivered, failed or blocked")
REPLIES = Topic("outreach.replies.v1", "what patients answered, opt-outs, bookings, snoozes")
ESCALATIONS = Topic("escalations.v1", "clinical questions and concerns routed to people")

ALL: tuple[Topic, ...] = (
    EHR_EVENTS,
    ELIGIBILITY,
    COMMANDS,
    SEQUENCES,
    MESSAGES,
    REPLIES,
    ESCALATIONS,
)


def all_topic_names(include_dlq: bool = True) -> list[str]:
    names = [t.name for t in ALL]
    if include_dlq:
        names += [t.dlq for t in ALL]
    return names


def by_name(name: str) -> Topic:
    for topic in ALL:
        if name in (topic.name, topic.dlq):
            return topic
    raise KeyError(f"unknown topic {name!r}; known: {', '.join(t.name for t in ALL)}")
