"""The labelled reply corpus: its schema (corpus/LABELS.md), loading with precise errors, and the
frozen train/dev/test split.

Every line is one patient reply with every label that applies to it: ``consent`` (revoke,
opt_in, help, none), ``safety`` (red_flag, clinical, none), ``intent`` (one main intent),
``slot`` (for choose_slot), ``barrier``, a ``source`` group (variants of one situation share
it, so they never straddle the split) and the context the reply answered (workflow, step,
offered slots, whether the patient had already opted out).

A label may be missing (``None``) only in the converted legacy corpus, whose single label did
not say everything; a head is trained and measured only on the lines that carry its label.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CORPUS_DIR = Path(__file__).with_name("corpus")
SPLIT_FILE = CORPUS_DIR / "split.json"
INDEPENDENT = CORPUS_DIR / "independent.jsonl"  # written by another person; added when it exists
WRITERS = ("train_a.jsonl", "train_b.jsonl", "train_d.jsonl")
# Written later, by three more writers, to the first pass's weak spots: train and dev only.
ADDED = ("train_e.jsonl", "train_f.jsonl", "train_g.jsonl")
LEGACY = "legacy.jsonl"  # the first, rule-tuned corpus, converted: train only, never measured
EXTRA = "extra"  # a practice's own labelled replies (same schema): train only

CONSENT = ("none", "revoke", "opt_in", "help")
SAFETY = ("none", "clinical", "red_flag")
INTENT = (
    "none",
    "book",
    "choose_slot",
    "later",
    "decline",
    "no_longer_needed",
    "question",
    "wrong_number",
)
BARRIER = ("none", "timing", "cost", "uncertainty", "unresolved_concern", "poor_experience")
HEADS: dict[str, tuple[str, ...]] = {
    "consent": CONSENT,
    "safety": SAFETY,
    "intent": INTENT,
    "barrier": BARRIER,
}
WORKFLOWS = frozenset(
    {
        "surveillance",
        "chronic_review",
        "follow_up",
        "series",
        "acne_follow_up",
        "cosmetic_maintenance",
        "consult_not_started",
        "cancellation_recovery",
        "lapsed",
        "service_recovery",
    }
)


class CorpusError(ValueError):
    """A line that does not follow the schema: says which file, line and field."""


@dataclass(frozen=True)
class Labelled:
    key: str  # "<file stem>:<id>": unique across files
    source: str  # "<file stem>:<source>": the group that stays on one side of the split
    lang: str
    text: str
    workflow: str | None
    step: int | None
    offered_slots: int
    opted_out: bool
    consent: str | None
    safety: str | None
    intent: str | None
    slot: int | None
    barrier: str | None

    def label(self, head: str) -> str | None:
        value: str | None = getattr(self, head)
        return value


def _choice(raw: dict[str, Any], name: str, allowed: Sequence[str], where: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or value not in allowed:
        raise CorpusError(f"{where}: {name} must be one of {', '.join(allowed)}")
    return str(value)


def parse_line(raw: Any, stem: str, where: str) -> Labelled:
    """One corpus line, or a CorpusError naming the field (never the reply's words)."""
    if not isinstance(raw, dict):
        raise CorpusError(f"{where}: a line must be a JSON object")
    for name in ("id", "source", "text"):
        if not isinstance(raw.get(name), str) or not raw[name].strip():
            raise CorpusError(f"{where}: {name} must be a non-empty string")
    lang = _choice(raw, "lang", ("en", "es"), where)
    context = raw.get("context")
    if not isinstance(context, dict):
        raise CorpusError(f"{where}: context must be an object")
    workflow = context.get("workflow")
    if workflow is not None and workflow not in WORKFLOWS:
        raise CorpusError(f"{where}: context.workflow is not one of the workflows")
    step = context.get("step")
    if step is not None and (not isinstance(step, int) or not 1 <= step <= 4):
        raise CorpusError(f"{where}: context.step must be 1 to 4")
    offered = context.get("offered_slots", 0)
    if not isinstance(offered, int) or not 0 <= offered <= 3:
        raise CorpusError(f"{where}: context.offered_slots must be 0 to 3")
    opted_out = context.get("opted_out", False)
    if not isinstance(opted_out, bool):
        raise CorpusError(f"{where}: context.opted_out must be true or false")
    intent = _choice(raw, "intent", INTENT, where)
    slot = raw.get("slot")
    if intent == "choose_slot":
        if not isinstance(slot, int) or not 1 <= slot <= max(offered, 1):
            raise CorpusError(f"{where}: slot must be 1 to offered_slots for choose_slot")
        if offered == 0:
            raise CorpusError(f"{where}: choose_slot needs offered_slots > 0")
    elif slot is not None:
        raise CorpusError(f"{where}: slot is only for choose_slot")
    return Labelled(
        key=f"{stem}:{raw['id']}",
        source=f"{stem}:{raw['source']}",
        lang=lang,
        text=raw["text"],
        workflow=workflow,
        step=step,
        offered_slots=offered,
        opted_out=opted_out,
        consent=_choice(raw, "consent", CONSENT, where),
        safety=_choice(raw, "safety", SAFETY, where),
        intent=intent,
        slot=slot,
        barrier=_choice(raw, "barrier", BARRIER, where),
    )


@dataclass(frozen=True)
class Loaded:
    lines: list[Labelled]
    errors: list[str]  # "file:line: field ..." for every refused line


def load_file(path: Path, *, strict: bool = False) -> Loaded:
    """Every valid line of one file; refused lines are listed (or raised with ``strict``)."""
    lines: list[Labelled] = []
    errors: list[str] = []
    seen: set[str] = set()
    stem = path.stem
    with path.open(encoding="utf-8") as f:
        for number, text in enumerate(f, 1):
            if not text.strip():
                continue
            where = f"{path.name}:{number}"
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as exc:
                error = CorpusError(f"{where}: not JSON ({exc.msg} at column {exc.colno})")
            else:
                try:
                    item = parse_line(raw, stem, where)
                except CorpusError as exc:
                    error = exc
                else:
                    if item.key in seen:
                        error = CorpusError(f"{where}: id repeats an earlier line")
                    else:
                        seen.add(item.key)
                        lines.append(item)
                        continue
            if strict:
                raise error
            errors.append(str(error))
    return Loaded(lines, errors)


def load_legacy(path: Path) -> list[Labelled]:
    """The first corpus (one label per reply, rule-tuned) in the new schema.

    Its single label said only the strongest reading, so a head gets a label only where that
    one label determines it: ``red_flag`` says safety but not the intent beside it; an
    ``opt_out`` says consent only; any other label says consent none and, since red flags and
    revocations ranked first, no red flag."""
    lines = []
    with path.open(encoding="utf-8") as f:
        for text in f:
            if not text.strip():
                continue
            raw = json.loads(text)
            label, offered = raw["intent"], raw["offered_slots"]
            consent: str | None = "none"
            safety: str | None = "none"
            intent: str | None = label
            if label == "red_flag":
                consent, safety, intent = None, "red_flag", None
            elif label == "opt_out":
                consent, safety, intent = "revoke", None, None
            elif label in ("opt_in", "help"):
                consent, intent = label, "none"
            elif label == "clinical_concern":
                safety, intent = "clinical", None
            elif label == "unknown":
                intent = "none"
            slot = _legacy_slot(raw["text"], offered) if label == "choose_slot" else None
            lines.append(
                Labelled(
                    key=f"legacy:{raw['id']}",
                    source=f"legacy:{raw['id']}",
                    lang=raw["lang"],
                    text=raw["text"],
                    workflow=None,
                    step=None,
                    offered_slots=offered,
                    opted_out=raw["opted_out"],
                    consent=consent,
                    safety=safety,
                    intent=intent,
                    slot=slot,
                    barrier=raw["barrier"] or "none",
                )
            )
    return lines


def _legacy_slot(text: str, offered: int) -> int | None:
    digits = [int(d) for d in re.findall(r"\b([1-3])\b", text) if int(d) <= offered]
    return digits[0] if len(digits) == 1 else None


def load_split(path: Path = SPLIT_FILE) -> dict[str, str]:
    """source group -> train | dev | test, as frozen in the repository (refused if a writer's
    file changed since: a changed file would silently move lines between splits)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    files = {**data["files"], **data.get("added", {}).get("files", {})}
    for name, digest in files.items():
        if hashlib.sha256((path.parent / name).read_bytes()).hexdigest() != digest:
            raise CorpusError(f"{name} changed since the split was frozen")
    groups: dict[str, str] = data["groups"]
    return groups


def held(x: Labelled) -> bool:
    """A dev line of the files added later: never shown as an error, never written from; only
    the final choice of temperatures and thresholds sees it (see ``split.py``)."""
    return x.source.split(":")[0] + ".jsonl" in ADDED


# "dev-open": the dev lines whose errors may be read; "dev-held": the others.
SPLITS = ("train", "dev", "test", "dev-open", "dev-held")


def corpus(split: str | None = None, directory: Path = CORPUS_DIR) -> list[Labelled]:
    """The writers' lines (and, for training, the legacy ones) of one split (None: all)."""
    if split is not None and split not in SPLITS:
        raise CorpusError(f"no split {split!r}: one of {', '.join(SPLITS)}")
    groups = load_split(directory / SPLIT_FILE.name)
    lines: list[Labelled] = []
    for name in WRITERS + ADDED:
        if (directory / name).exists() or name in WRITERS:
            lines += load_file(directory / name).lines
    side = {"dev-open": "dev", "dev-held": "dev"}.get(split or "", split)
    chosen = [x for x in lines if side is None or groups.get(x.source) == side]
    if split == "dev-open":
        chosen = [x for x in chosen if not held(x)]
    elif split == "dev-held":
        chosen = [x for x in chosen if held(x)]
    unknown = [x.source for x in lines if x.source not in groups]
    if unknown:
        raise CorpusError(f"{len(unknown)} lines belong to no split group: re-run the split")
    if split in (None, "train") and (directory / LEGACY).exists():
        chosen += load_legacy(directory / LEGACY)
    if split in (None, "train"):
        for path in sorted((directory / EXTRA).glob("*.jsonl")):
            chosen += load_file(path, strict=True).lines
    return chosen


def independent(directory: Path = CORPUS_DIR) -> list[Labelled] | None:
    path = directory / INDEPENDENT.name
    return load_file(path, strict=True).lines if path.exists() else None
