"""What a reply means: each layer's reading, and the merge that can only add.

Every layer (consent rules, safety rules, the model, the intent rules, an optional model-backed
reader) reads the same reply and returns a ``Reading``. ``merge`` combines them with operations
that can only raise what any one of them said: a revocation, a red flag, clinical content or a
HELP request, once read by any layer, is in the result whatever the others said. (Commutative,
associative and monotone: a property test checks it.) The intent is not a safety decision: the
most confident intent reading wins, and below the model's threshold the automatic path does
nothing with it and a person reads the reply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import reduce

from services.messenger.domain.keywords import Keyword
from services.messenger.domain.red_flags import RedFlag, Safety
from shared.events.common import Channel
from shared.events.messages import Barrier, ReplyIntent

# The intents a reading may carry (the corpus's intent labels; "none" is ReplyIntent.unknown).
INTENTS = frozenset(
    {
        ReplyIntent.book,
        ReplyIntent.choose_slot,
        ReplyIntent.later,
        ReplyIntent.decline,
        ReplyIntent.no_longer_needed,
        ReplyIntent.question,
        ReplyIntent.wrong_number,
        ReplyIntent.unknown,
    }
)
_SOURCES = ("rules", "keyword", "slot", "model", "reader")  # tie-break order for intents


@dataclass(frozen=True)
class Reading:
    """One layer's reading of a reply. Unset fields say nothing (never "no")."""

    source: str
    revoke: bool = False
    every_channel: bool = False
    channels: frozenset[Channel] = frozenset()
    opt_in: bool = False
    help: bool = False
    keyword: Keyword | None = None
    safety: Safety = Safety.none
    red_flags: frozenset[RedFlag] = frozenset()
    intent: ReplyIntent | None = None
    intent_confidence: float = 0.0
    intent_source: str = ""  # the layer the intent came from (after a merge)
    slot: int | None = None
    barrier: Barrier | None = None


def _rank(r: Reading) -> tuple[float, int, str, int]:
    name = r.intent_source or r.source
    source = -_SOURCES.index(name) if name in _SOURCES else -len(_SOURCES)
    return (r.intent_confidence, source, str(r.intent), r.slot or 0)


def _stronger_intent(a: Reading, b: Reading) -> Reading:
    if a.intent is None:
        return b
    if b.intent is None:
        return a
    return a if _rank(a) >= _rank(b) else b


def _barrier(a: Barrier | None, b: Barrier | None) -> Barrier | None:
    if a is None or a == b:
        return b
    if b is None:
        return a
    return min(a, b, key=list(Barrier).index)


def combine(a: Reading, b: Reading) -> Reading:
    """Two readings as one: every consent and safety signal of either is kept."""
    intent = _stronger_intent(a, b)
    keywords = [k for k in (a.keyword, b.keyword) if k is not None]
    keyword = min(keywords, key=list(Keyword).index) if keywords else None
    return Reading(
        source="+".join(sorted({*a.source.split("+"), *b.source.split("+")})),
        revoke=a.revoke or b.revoke,
        every_channel=a.every_channel or b.every_channel,
        channels=a.channels | b.channels,
        opt_in=a.opt_in or b.opt_in,
        help=a.help or b.help,
        keyword=keyword,
        safety=max(a.safety, b.safety),
        red_flags=a.red_flags | b.red_flags,
        intent=intent.intent,
        intent_confidence=intent.intent_confidence,
        intent_source=(intent.intent_source or intent.source) if intent.intent else "",
        slot=intent.slot,
        barrier=_barrier(a.barrier, b.barrier),
    )


def merge(readings: tuple[Reading, ...] | list[Reading]) -> Reading:
    return reduce(combine, readings, Reading(source="merge"))


@dataclass(frozen=True)
class Understanding:
    """The merged reading of a reply, and what the automatic path may act on."""

    reading: Reading
    sure: bool  # the intent reading is confident enough to act on without a person
    snooze_until: date | None = None
    readings: tuple[Reading, ...] = field(default=(), compare=False)
    probabilities: dict[str, dict[str, float]] = field(default_factory=dict, compare=False)

    # --- the merged facts ------------------------------------------------------------------

    @property
    def revocation(self) -> bool:
        return self.reading.revoke

    @property
    def opt_in(self) -> bool:
        return self.reading.opt_in and not self.reading.revoke

    @property
    def help(self) -> bool:
        return self.reading.help

    @property
    def consent(self) -> str:
        """The consent reading in one word, as the corpus labels it."""
        if self.revocation:
            return "revoke"
        return "opt_in" if self.opt_in else "help" if self.help else "none"

    @property
    def keyword(self) -> Keyword | None:
        return self.reading.keyword

    @property
    def safety(self) -> Safety:
        return self.reading.safety

    @property
    def red_flags(self) -> frozenset[RedFlag]:
        return self.reading.red_flags

    @property
    def barrier(self) -> Barrier | None:
        return self.reading.barrier

    @property
    def slot(self) -> int | None:
        return self.reading.slot if self.intent is ReplyIntent.choose_slot else None

    @property
    def confidence(self) -> float:
        return round(self.reading.intent_confidence, 3)

    @property
    def suggested_intent(self) -> ReplyIntent:
        """The intent the reading suggests, sure or not (for the person who reads it)."""
        return self.reading.intent or ReplyIntent.unknown

    @property
    def intent(self) -> ReplyIntent:
        """The intent the automatic path acts on: ``unknown`` when not sure."""
        return self.suggested_intent if self.sure else ReplyIntent.unknown

    @property
    def primary(self) -> ReplyIntent:
        """The one intent ``ReplyReceived`` carries: a red flag first, then what the patient
        asked for, then clinical content, then a question."""
        if self.safety is Safety.red_flag:
            return ReplyIntent.red_flag
        intent = self.intent
        if intent in (ReplyIntent.unknown, ReplyIntent.question):
            if self.safety is Safety.clinical:
                return ReplyIntent.clinical_concern
            if intent is ReplyIntent.unknown and self.help:
                return ReplyIntent.help
        return intent

    @property
    def label(self) -> str:
        """One word for the reply as stored and shown: the primary intent, or opt_out/opt_in
        for a consent change (a red flag still comes first)."""
        if self.safety is Safety.red_flag:
            return "red_flag"
        if self.revocation:
            return "opt_out"
        if self.opt_in:
            return "opt_in"
        return self.primary.value

    @property
    def needs_person(self) -> bool:
        """A person reads it: clinical content, or an intent the model was not sure of."""
        return self.safety is not Safety.none or (
            not self.sure and self.suggested_intent is not ReplyIntent.unknown
        )
