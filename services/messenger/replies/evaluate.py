"""Precision and recall of the reply classifier on the labelled corpus.

    python -m services.messenger.replies.evaluate [--errors]

The corpus (``corpus.jsonl``, one reply per line) is synthetic: English and Spanish, typos,
emoji and replies that say two things at once. Each line carries the label a careful person
would give it (an intent, or ``opt_out`` / ``opt_in`` for consent changes), the barrier when the
reply names one, and its context: how many slots had just been offered, and whether the patient
had opted out (a bare "YES" means opt-in only then).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from services.messenger.domain.classifier import classify

CORPUS = Path(__file__).with_name("corpus.jsonl")
TODAY = date(2026, 3, 2)


@dataclass(frozen=True)
class Example:
    id: str
    lang: str
    text: str
    intent: str
    barrier: str | None
    offered_slots: int
    opted_out: bool


@dataclass(frozen=True)
class Scores:
    label: str
    support: int
    precision: float
    recall: float


def load(path: Path = CORPUS) -> list[Example]:
    with path.open(encoding="utf-8") as f:
        return [Example(**json.loads(line)) for line in f if line.strip()]


def predict(example: Example) -> tuple[str, str | None]:
    understood = classify(
        example.text,
        offered_slots=example.offered_slots,
        opted_out=example.opted_out,
        today=TODAY,
    )
    return understood.label, understood.barrier.value if understood.barrier else None


def scores(pairs: Iterable[tuple[str | None, str | None]]) -> list[Scores]:
    """Per-label precision and recall from (truth, predicted) pairs; None is "no label"."""
    truth_n: Counter[str] = Counter()
    predicted_n: Counter[str] = Counter()
    hits: Counter[str] = Counter()
    for truth, predicted in pairs:
        if truth is not None:
            truth_n[truth] += 1
        if predicted is not None:
            predicted_n[predicted] += 1
        if truth is not None and truth == predicted:
            hits[truth] += 1
    labels = sorted(set(truth_n) | set(predicted_n))
    return [
        Scores(
            label,
            truth_n[label],
            hits[label] / predicted_n[label] if predicted_n[label] else 1.0,
            hits[label] / truth_n[label] if truth_n[label] else 1.0,
        )
        for label in labels
    ]


def evaluate(examples: list[Example]) -> tuple[list[Scores], list[Scores], float]:
    predictions = [predict(e) for e in examples]
    intents = scores((e.intent, p[0]) for e, p in zip(examples, predictions, strict=True))
    barriers = scores((e.barrier, p[1]) for e, p in zip(examples, predictions, strict=True))
    accuracy = sum(e.intent == p[0] for e, p in zip(examples, predictions, strict=True)) / len(
        examples
    )
    return intents, barriers, accuracy


def report(examples: list[Example], show_errors: bool = False) -> str:
    intents, barriers, accuracy = evaluate(examples)
    languages = Counter(e.lang for e in examples)
    lines = [
        f"reply corpus: {len(examples)} replies "
        f"({', '.join(f'{k} {v}' for k, v in sorted(languages.items()))}); "
        f"intent accuracy {accuracy:.1%}",
        f"{'intent':<18}{'n':>5}{'precision':>11}{'recall':>8}",
    ]
    lines += [f"{s.label:<18}{s.support:>5}{s.precision:>11.1%}{s.recall:>8.1%}" for s in intents]
    lines += ["", f"{'barrier':<18}{'n':>5}{'precision':>11}{'recall':>8}"]
    lines += [f"{s.label:<18}{s.support:>5}{s.precision:>11.1%}{s.recall:>8.1%}" for s in barriers]
    if show_errors:
        lines.append("")
        for e in examples:
            label, barrier = predict(e)
            if label != e.intent or barrier != e.barrier:
                lines.append(f"{e.id} [{e.intent}/{e.barrier} -> {label}/{barrier}] {e.text}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--errors", action="store_true", help="list every misclassified reply")
    args = parser.parse_args()
    print(report(load(), show_errors=args.errors))


if __name__ == "__main__":
    main()
