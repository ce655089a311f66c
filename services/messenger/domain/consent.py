"""The consent layer: does a reply withdraw from messages, ask to be messaged again, or ask
for HELP?

Revocation follows the FCC's 2024 TCPA order: a patient may revoke "by any reasonable means",
so any reply that uses stop, quit, end, revoke, opt out, cancel, unsubscribe or an equivalent
(English or Spanish) anywhere in the message revokes, bare or undirected uses included ("stop",
"end this", "cancel"). What does NOT revoke is the same word with another object or sense:

- a negation: "please don't stop the reminders" (but "why don't you stop" does revoke);
- another object: "stop the minocycline?", "cancel my appointment on Friday", "quit smoking",
  "stop by the office", "it ended up healing", "the end of March";
- the patient as the one who stops something: "should I stop the cream before my visit";
- a symptom: "it won't stop bleeding".

Unless the object is messages themselves ("how do I stop these texts?"), which revokes again.
Everything here works on ``normalise``d text; the result says which rule decided, never words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from services.messenger.domain import consent_words as w
from services.messenger.domain.keywords import Keyword, keyword
from services.messenger.domain.reply_words import normalise
from shared.events.common import Channel

_CARRIER = re.compile(
    r"\b(STOP|STOPALL|UNSUBSCRIBE|CANCEL|END|QUIT|REVOKE|PARAR|ALTO|BAJA|CANCELAR|DETENER)\b"
)


@dataclass(frozen=True)
class ConsentReading:
    """What a reply says about receiving messages. A revocation outranks an opt-in."""

    revoke: bool = False
    opt_in: bool = False
    help: bool = False
    keyword: Keyword | None = None  # the whole reply is a carrier keyword
    channels: frozenset[Channel] = frozenset()  # channels the revocation names
    every_channel: bool = False  # STOPALL, or a revocation of every channel
    rule: str | None = None  # which rule decided (for the reading a person sees)
    other_sense: bool = False  # a revoking word was there, in another sense ("won't stop")


def tokens(folded: str) -> list[str]:
    return [w.ALIASES.get(t, t) for t in w.TOKEN.findall(folded)]


def _clause(words: list[str], i: int) -> tuple[list[str], list[str]]:
    """The words of the clause before and after ``words[i]``."""
    start = i
    while start > 0 and words[start - 1] not in w.PUNCT:
        start -= 1
    end = i + 1
    while end < len(words) and words[end] not in w.PUNCT:
        end += 1
    return words[start:i], words[i + 1 : end]


def _is_verb(word: str) -> bool:
    return word in w.VERBS or word.startswith(("unsub", "unsus"))


def revoking_use(words: list[str], i: int) -> bool:
    """Whether the verb at ``words[i]`` is used to withdraw from messages."""
    verb = words[i]
    before, after = _clause(words, i)
    near = before[-4:]
    if verb in w.BARE_ONLY:
        return all(x in w.FILLER for x in before + after)
    if any(x in w.MENTION for x in before[-2:]):
        return False  # "I texted stop by mistake": a mention, not a command
    # "don't stop", "don't ever stop", "do not just stop"; not "not interested stop".
    negated = near and (
        near[-1] in w.NEGATIONS
        or (len(near) > 1 and near[-2] in w.NEGATIONS and near[-1] in w.BETWEEN_NEGATION)
    )
    # "why don't you stop", "can't you just stop": the patient asks us to stop.
    if negated and not (any(x in w.YOU for x in near[-3:] + after[:1]) or "why" in near):
        return False
    if verb in w.SPANISH_VERBS and "no" in near[-2:]:
        return False  # "no paren los mensajes"
    if "if" in near[-3:] or ("si" in near[-3:] and verb in w.SPANISH_VERBS):
        return False  # "if I cancel my membership...": a hypothetical
    if (
        verb in ("parar", "detener")
        and after[:1] == ["de"]
        and not any(x in w.MESSAGING for x in after[1:3])
    ):
        return False  # "parar de ponerle la pomada"
    if verb.startswith(("unsub", "unsus")) or verb in ("optout", "revoke"):
        return True  # about messages by its meaning
    if verb in ("end", "ends") and (
        (near and near[-1] in ("the", "at", "by", "in", "weekend", "week"))
        or (after and after[0] in ("of", "up", "date", "result"))
    ):
        return False
    if near and near[-1] in ("the", "a", "my", "late", "that", "this", "la", "una"):
        return False  # "the late cancel": a noun
    if near and near[-1] in ("por", "for", "about", "after", "before"):
        return False  # "perdón por cancelar", "sorry for cancelling": said about the past
    if verb in ("end", "ends") and near and near[-1] in w.END_NOUN:
        return False  # "on one end", "at the far end": a noun
    if after[:1] and after[0] in w.TREATMENT_USE and not _about_contact(after[1:5]):
        return False  # "stop taking it?", "quit using the cream": a treatment, not our number
    messaging = any(x in w.MESSAGING for x in after[:4]) or any(x in w.MESSAGING for x in near)
    if messaging:
        return True
    content = [x for x in after if x not in w.DETERMINERS]
    obj = content[0] if content else None
    if (
        near
        and (
            near[-1] in w.OWN_ACTION
            or (near[-1] == "to" and len(near) > 1 and near[-2] in w.OWN_ACTION)
        )
    ) or any(x in w.CLITICS for x in near[-2:]):
        return False  # "had to cancel", "la tengo que cancelar": the patient's own plans
    wide = before[-6:]
    if any(x in w.SELF for x in wide) and any(x in w.SELF_MODALS for x in wide):
        # "should I stop (it)?" asks about stopping a treatment; "how do I stop these" does not.
        return after[:1] in (["these"], ["those"], ["them"])
    if obj is None or obj in w.FILLER or obj in w.UNDIRECTED:
        return True
    if obj in w.SENSE_AFTER or obj.endswith("ing") or not obj.isalpha():
        return False  # "stop by", "quit smoking", "cancel my 2nd session"
    return len(obj) <= 1


def _about_contact(words: list[str]) -> bool:
    return any(x in w.MESSAGING or x in w.CONTACT_DETAILS for x in words)


def _shouted(text: str) -> bool:
    """A carrier keyword in capitals inside an otherwise lower-case reply ("BAJA. y tengo..."),
    not mentioned as something sent ("me equivoqué al mandar STOP")."""
    found = _CARRIER.search(text)
    if not found:
        return False
    before = tokens(normalise(text[: found.start()]))
    if any(x in w.MENTION for x in before[-2:]):
        return False
    letters = [c for c in text if c.isalpha()]
    return sum(c.isupper() for c in letters) < 0.6 * len(letters)


@lru_cache(maxsize=4096)
def read_consent(text: str, *, opted_out: bool = False) -> ConsentReading:
    """The consent reading of a reply (``opted_out``: the patient had already opted out)."""
    kw = keyword(text)
    folded = normalise(text)
    channels = _named_channels(folded)
    every = bool(w.EVERY.search(folded))
    if kw in (Keyword.opt_out, Keyword.opt_out_all):
        every = every or kw is Keyword.opt_out_all
        return ConsentReading(revoke=True, keyword=kw, every_channel=every, channels=channels,
                              rule="keyword")  # fmt: skip
    opt_in = bool(
        w.OPT_IN.search(folded) or w.START_FIRST.search(folded) or re.search(r"\bSTART\b", text)
    )
    mistake = opt_in and bool(w.MISTAKE.search(folded))
    words = tokens(folded)
    rule = None
    if _shouted(text):
        rule = "keyword"
    elif w.PHRASES.search(folded):
        rule = "phrase"
    elif any(_is_verb(x) and revoking_use(words, i) for i, x in enumerate(words)) or any(
        x == "opt" and words[i + 1 : i + 2] == ["out"] for i, x in enumerate(words)
    ):
        rule = "word"
    if rule is not None and not mistake:
        return ConsentReading(revoke=True, channels=channels, every_channel=every, rule=rule)
    other_sense = mistake or any(_is_verb(x) for x in words)
    if kw is Keyword.help or w.HELP.search(folded) or re.match(r"\W*(?:HELP|AYUDA|INFO)\b", text):
        return ConsentReading(
            help=True, keyword=Keyword.help, rule="keyword", other_sense=other_sense
        )
    if kw is Keyword.opt_in and not opted_out and folded.strip(" .!") not in ("start", "unstop"):
        return ConsentReading()  # a bare YES from a patient who never left is not an opt-in
    if kw is Keyword.opt_in or opt_in or (opted_out and w.YES.search(folded)):
        rule = "keyword" if kw else "phrase"
        return ConsentReading(opt_in=True, keyword=kw, rule=rule, other_sense=other_sense)
    return ConsentReading(other_sense=other_sense)


def _named_channels(folded: str) -> frozenset[Channel]:
    named = set()
    if w.EMAIL.search(folded):
        named.add(Channel.email)
    if w.TEXT.search(folded):
        named.add(Channel.sms)
    return frozenset(named)
