"""One line for the person who reads a reply: what the patient needs or what stands in the way.

Built only from the patient's own words and the reading of them: the reading in a few fixed
words ("wants to book", "red flag: bleeding"), then the patient's words quoted where they
name a barrier, the time they asked for, and their question. Nothing is invented or
paraphrased; long quotes are cut with an ellipsis; anything that looks like a phone number or
an e-mail address is masked. The line holds the patient's words, so it is stored with the
reply in the messenger and shown by its API to staff, never put in an event or a log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from services.messenger.domain.dates import snooze_date
from services.messenger.domain.red_flags import Safety
from services.messenger.domain.reply_words import normalise
from services.messenger.domain.understanding import Understanding
from shared.events.messages import Barrier, ReplyIntent

QUOTE_CHARS = 70
_CLAUSE = re.compile(r"[^.!?\n;]+[.!?]*")
_QUESTION_START = re.compile(
    r"^\W*(?:how|what|when|where|who|whom|why|which|can|could|do|does|did|is|are|will|would|"
    r"should|may|cuanto|cuando|donde|que|como|quien|puedo|pueden|tienen|hay|es|aceptan)\b(?!')"
)
_CONTACT = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+|\+?\d[\d\s().-]{6,}\d")
BARRIER_CUES: dict[Barrier, re.Pattern[str]] = {
    Barrier.cost: re.compile(
        r"afford|cost|price|pric|expens|money|insur|copay|co-pay|deductible|pay|paid|bill|cash|"
        r"\$|caro|dinero|seguro|pagar|precio|cuesta|cobr|medicaid|medicare|budget|broke"
    ),
    Barrier.timing: re.compile(
        r"busy|work|job|schedule|shift|travel|trip|time|kids|school|vacation|out of town|"
        r"moving|trabajo|ocupad|viaje|tiempo|horario|ninos|escuela|chamba"
    ),
    Barrier.uncertainty: re.compile(
        r"not sure|unsure|necessary|need it|worth|really need|point|no se si|necesari|vale la "
        r"pena|hace falta|no creo"
    ),
    Barrier.unresolved_concern: re.compile(
        r"still|didn'?t work|not work|not better|worse|same|worried|concern|sigue|no funciono|"
        r"no mejor|preocup|igual"
    ),
    Barrier.poor_experience: re.compile(
        r"rude|wait|waited|hours|experience|ignored|billing|charged|unprofessional|never called|"
        r"grosero|grosera|espere|mala|trataron|nadie|ignor"
    ),
}
_READING: dict[ReplyIntent, str] = {
    ReplyIntent.book: "wants to book",
    ReplyIntent.choose_slot: "chose a time",
    ReplyIntent.later: "asks to be reminded later",
    ReplyIntent.decline: "declines",
    ReplyIntent.no_longer_needed: "says it is no longer needed",
    ReplyIntent.question: "asks a question",
    ReplyIntent.wrong_number: "says wrong number",
}


@dataclass(frozen=True)
class ReplySummary:
    reading: str  # fixed words: what the reply was read as
    barrier: str | None = None  # the barrier's name
    barrier_words: str | None = None  # the patient's words that name it
    time_words: str | None = None  # the patient's words that name when
    question: str | None = None  # the patient's question, as asked

    def line(self) -> str:
        parts = [self.reading]
        if self.barrier:
            parts.append(
                f"barrier {self.barrier.replace('_', ' ')}"
                + (f': "{self.barrier_words}"' if self.barrier_words else "")
            )
        if self.time_words:
            parts.append(f'asked for: "{self.time_words}"')
        if self.question:
            parts.append(f'question: "{self.question}"')
        return "; ".join(parts)

    def as_dict(self) -> dict[str, str | None]:
        return {
            "reading": self.reading,
            "barrier": self.barrier,
            "barrier_words": self.barrier_words,
            "time_words": self.time_words,
            "question": self.question,
        }


def _quote(clause: str) -> str:
    text = _CONTACT.sub("[…]", " ".join(clause.split()))
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1].rstrip() + "…"


def clauses(text: str) -> list[str]:
    return [c.strip() for c in _CLAUSE.findall(text) if c.strip(" .!?")]


def reading_words(u: Understanding) -> str:
    words = []
    if u.safety is Safety.red_flag:
        kinds = sorted(f.value.replace("_", " ") for f in u.red_flags if f.value != "other")
        words.append("red flag" + (f": {', '.join(kinds)}" if kinds else ""))
    elif u.safety is Safety.clinical:
        words.append("clinical content")
    if u.revocation:
        words.append("opts out")
    elif u.opt_in:
        words.append("opts back in")
    if u.help:
        words.append("asks for HELP")
    intent = u.suggested_intent
    if intent in _READING:
        words.append(_READING[intent] + ("" if u.sure else " (unsure)"))
    return ", ".join(words) or "no request"


def summarise(text: str, u: Understanding, *, today: date | None = None) -> ReplySummary:
    """The summary of one reply (``today`` lets the time asked for be found)."""
    parts = clauses(text)
    folded = [normalise(c) for c in parts]
    when = None
    if today is not None:
        when = next(
            (p for p, f in zip(parts, folded, strict=True) if snooze_date(f, today) is not None),
            None,
        )
    # The question: one asked with "?" (other than the time asked for), else one that starts
    # like a question when the reply was read as asking something.
    asked = u.suggested_intent is ReplyIntent.question or u.safety is not Safety.none
    questions = [p for p in parts if "?" in p]
    question = next((p for p in questions if p != when), None) or next(
        (p for p, f in zip(parts, folded, strict=True) if asked and _QUESTION_START.search(f)),
        questions[0] if questions else None,
    )
    barrier_words = None
    if u.barrier is not None:
        cue = BARRIER_CUES[u.barrier]
        barrier_words = next((p for p, f in zip(parts, folded, strict=True) if cue.search(f)), None)
    return ReplySummary(
        reading=reading_words(u),
        barrier=u.barrier.value if u.barrier else None,
        barrier_words=_quote(barrier_words) if barrier_words else None,
        time_words=_quote(when) if when else None,
        question=_quote(question) if question else None,
    )


def conversation_line(summaries: list[ReplySummary]) -> str | None:
    """One line for a conversation: the latest reading, with the latest barrier, time asked
    for and question said in any of its replies (oldest first in ``summaries``)."""
    if not summaries:
        return None
    latest = summaries[-1]
    barrier = next((s for s in reversed(summaries) if s.barrier), None)
    when = next((s.time_words for s in reversed(summaries) if s.time_words), None)
    question = next((s.question for s in reversed(summaries) if s.question), None)
    return ReplySummary(
        reading=latest.reading,
        barrier=barrier.barrier if barrier else None,
        barrier_words=barrier.barrier_words if barrier else None,
        time_words=when,
        question=question,
    ).line()
