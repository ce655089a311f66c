"""How well replies are understood, on held-out replies: ``make eval-replies``.

    python -m services.messenger.replies.evaluate [--split test|dev|dev-open|dev-held] [--errors]

Prints, for the test split (and for ``corpus/independent.jsonl``, written separately by another
person, whenever that file exists): per-class precision and recall with 95% Wilson intervals
for consent, safety, intent and barrier; the intent confusion matrix; slot accuracy; the
calibration of the intent confidence (reliability by bin, expected calibration error); what the
automatic path acts on; and the headline lines ``replies_NAME: VALUE (target ...)``.

``--errors`` lists misread replies of train or of dev's open part only: the errors of the test
split and of dev's held part (see ``split.py``) are never shown, so nobody writes rules from them.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from services.messenger.domain.classifier import classify, default_model
from services.messenger.domain.reply_model import ReplyModel
from services.messenger.domain.understanding import Understanding
from services.messenger.replies.corpus import (
    BARRIER,
    CONSENT,
    INTENT,
    SAFETY,
    SPLITS,
    Labelled,
    corpus,
)
from services.messenger.replies.corpus import independent as independent_set

Z = 1.959964


def wilson(hits: int, n: int) -> tuple[float, float]:
    """The 95% Wilson score interval of hits/n ((0, 1) when n is 0)."""
    if n == 0:
        return 0.0, 1.0
    p = hits / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Predicted:
    consent: str
    safety: str
    intent: str
    barrier: str
    slot: int | None
    confidence: float
    sure: bool


def predicted(u: Understanding) -> Predicted:
    intent = u.suggested_intent.value
    return Predicted(
        consent=u.consent,
        safety=u.safety.label,
        intent="none" if intent == "unknown" else intent,
        barrier=u.barrier.value if u.barrier else "none",
        slot=u.slot,
        confidence=u.confidence,
        sure=u.sure,
    )


def predict_all(lines: Sequence[Labelled], model: ReplyModel | None) -> list[Predicted]:
    return [
        predicted(
            classify(
                x.text,
                offered_slots=x.offered_slots,
                opted_out=x.opted_out,
                step=x.step,
                model=model,
            )
        )
        for x in lines
    ]


def per_class(
    truth: Sequence[str | None], guess: Sequence[str], classes: Sequence[str]
) -> list[tuple[str, int, int, int]]:
    """(class, support, true positives, times read as the class) for every class; lines
    without a label for this head are left out."""
    rows = []
    for c in classes:
        support = sum(t == c for t in truth)
        called = sum(g == c for t, g in zip(truth, guess, strict=True) if t is not None)
        tp = sum(t == c and g == c for t, g in zip(truth, guess, strict=True))
        rows.append((c, support, tp, called))
    return rows


def macro_f1(truth: Sequence[str | None], guess: Sequence[str], classes: Sequence[str]) -> float:
    scores = []
    for _, support, tp, called in per_class(truth, guess, classes):
        if support == 0 and called == 0:
            continue
        scores.append(2 * tp / (support + called) if support + called else 0.0)
    return sum(scores) / max(len(scores), 1)


def score_lines(lines: Sequence[Labelled], model: ReplyModel | None) -> dict[str, float]:
    """The headline figures (no printing)."""
    got = predict_all(lines, model)
    return headline(lines, got)


def headline(lines: Sequence[Labelled], got: Sequence[Predicted]) -> dict[str, float]:
    urgent = [g for x, g in zip(lines, got, strict=True) if x.safety == "red_flag"]
    calm = [g for x, g in zip(lines, got, strict=True) if x.safety in ("none", "clinical")]
    revokes = [g for x, g in zip(lines, got, strict=True) if x.consent == "revoke"]
    caught = sum(g.safety == "red_flag" for g in urgent)
    truth = [x.intent for x in lines]
    return {
        "red_flag_recall": caught / max(len(urgent), 1),
        "red_flag_recall_lower95": wilson(caught, len(urgent))[0],
        "revocation_recall": sum(g.consent == "revoke" for g in revokes) / max(len(revokes), 1),
        "intent_macro_f1": macro_f1(truth, [g.intent for g in got], INTENT),
        "false_red_flags": sum(g.safety == "red_flag" for g in calm) / max(len(calm), 1),
    }


TARGETS = {
    "red_flag_recall": (">=", 0.98),
    "red_flag_recall_lower95": (">=", 0.93),
    "revocation_recall": (">=", 0.99),
    "intent_macro_f1": (">=", 0.85),
    "false_red_flags": ("<=", 0.05),
}


def _table(
    title: str,
    truth: Sequence[str | None],
    guess: Sequence[str],
    classes: Sequence[str],
) -> list[str]:
    out = [f"{title:<20}{'n':>5}  {'precision [95% CI]':<24}{'recall [95% CI]':<24}"]
    for c, support, tp, called in per_class(truth, guess, classes):
        p_lo, p_hi = wilson(tp, called)
        r_lo, r_hi = wilson(tp, support)
        precision = f"{tp / called:.3f} [{p_lo:.3f}, {p_hi:.3f}]" if called else "-"
        recall = f"{tp / support:.3f} [{r_lo:.3f}, {r_hi:.3f}]" if support else "-"
        out.append(f"  {c:<18}{support:>5}  {precision:<24}{recall:<24}")
    return out


def _confusion(truth: Sequence[str | None], guess: Sequence[str]) -> list[str]:
    short = {c: c[:6] for c in INTENT}
    short.update({"no_longer_needed": "no_lng", "wrong_number": "wrong#", "choose_slot": "slot"})
    out = ["intent confusion (rows: truth, columns: reading)", " " * 18 + "".join(
        f"{short[c]:>8}" for c in INTENT
    )]  # fmt: skip
    pairs = Counter(zip(truth, guess, strict=True))
    for t in INTENT:
        out.append(f"  {t:<16}" + "".join(f"{pairs[(t, g)]:>8}" for g in INTENT))
    return out


def _calibration(lines: Sequence[Labelled], got: Sequence[Predicted]) -> list[str]:
    bins: dict[int, list[bool]] = {}
    for x, g in zip(lines, got, strict=True):
        bins.setdefault(min(int(g.confidence * 10), 9), []).append(g.intent == x.intent)
    n = len(lines)
    ece = sum(len(v) / n * abs(sum(v) / len(v) - (k + 0.5) / 10) for k, v in bins.items() if v)
    out = [f"intent confidence calibration (expected calibration error {ece:.3f})"]
    for k in sorted(bins):
        v = bins[k]
        out.append(f"  confidence {k / 10:.1f}-{(k + 1) / 10:.1f}: {len(v):>4} replies, "
                   f"{sum(v) / len(v):.3f} right")  # fmt: skip
    return out


def report(name: str, lines: Sequence[Labelled], model: ReplyModel | None) -> str:
    got = predict_all(lines, model)
    langs = ", ".join(f"{k} {v}" for k, v in sorted(Counter(x.lang for x in lines).items()))
    out = [f"== {name}: {len(lines)} replies ({langs}), {len({x.source for x in lines})} groups"]
    for head, classes in (
        ("consent", CONSENT),
        ("safety", SAFETY),
        ("intent", INTENT),
        ("barrier", BARRIER),
    ):
        truth = [x.label(head) for x in lines]
        guess = [getattr(g, head) for g in got]
        out += _table(head, truth, guess, classes)
    pairs = list(zip(lines, got, strict=True))
    seen_urgent = _share([g.safety != "none" for x, g in pairs if x.safety == "red_flag"])
    seen_any = _share([g.safety != "none" for x, g in pairs if x.safety != "none"])
    out.append(
        f"a person reads it (red flag or clinical): {seen_urgent:.3f} of red flags, "
        f"{seen_any:.3f} of all clinical content"
    )
    out += _confusion([x.intent for x in lines], [g.intent for g in got])
    slots = [(x, g) for x, g in zip(lines, got, strict=True) if x.intent == "choose_slot"]
    right = sum(g.slot == x.slot for x, g in slots)
    out.append(f"slot named correctly: {right}/{len(slots)} choose_slot replies")
    out += _calibration(lines, got)
    acted = [(x, g) for x, g in zip(lines, got, strict=True) if g.sure]
    good = sum(g.intent == x.intent for x, g in acted)
    out.append(
        f"automatic path: acts on the intent of {len(acted)}/{len(lines)} replies "
        f"({_share([True] * len(acted) + [False] * (len(lines) - len(acted))):.1%}); "
        f"right on {good}/{len(acted)} ({good / max(len(acted), 1):.1%}); a person reads the rest"
    )
    false_revokes = sum(g.consent == "revoke" for x, g in zip(lines, got, strict=True)
                        if x.consent != "revoke")  # fmt: skip
    out.append(f"false revocations: {false_revokes} of {sum(x.consent != 'revoke' for x in lines)}")
    for key, value in headline(lines, got).items():
        op, target = TARGETS[key]
        out.append(f"replies_{key}: {value:.3f} (target {op} {target}; {name})")
    return "\n".join(out)


def _share(values: Sequence[bool]) -> float:
    return sum(values) / max(len(values), 1)


def errors(lines: Sequence[Labelled], model: ReplyModel | None) -> str:
    out = []
    for x, g in zip(lines, predict_all(lines, model), strict=True):
        wrong = [
            f"{h} {x.label(h)}->{getattr(g, h)}"
            for h in ("consent", "safety", "intent", "barrier")
            if x.label(h) is not None and x.label(h) != getattr(g, h)
        ]
        if wrong:
            out.append(f"{x.key} [{'; '.join(wrong)}] {x.text}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=SPLITS, default="test")
    parser.add_argument("--errors", action="store_true", help="list misread replies (not test)")
    args = parser.parse_args(argv)
    model = default_model()
    if model is None:
        print("no model: run `make train-replies` first", file=sys.stderr)
        return 1
    if args.errors:
        if args.split in ("test", "dev-held"):
            print(f"{args.split} errors are not shown: rules are never written from them")
            return 1
        # Dev's errors are its open part's: the held lines only check the final choice.
        print(errors(corpus("dev-open" if args.split == "dev" else args.split), model))
        return 0
    lines = corpus(args.split)
    print(report(f"{args.split} split", lines, model))
    if args.split == "test":
        extra = independent_set()
        if extra is None:
            print("\n== independent set: corpus/independent.jsonl is not there yet; skipped")
        else:
            print()
            print(report("independent set", extra, model))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
