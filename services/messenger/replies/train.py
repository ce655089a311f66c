"""Train the reply model from the repository's corpus: ``make train-replies``.

    python -m services.messenger.replies.train [--out PATH] [--search]

Fits the heads on the train split (plus the legacy corpus), calibrates each head's temperature
on dev's held part, then chooses the classifier's thresholds on it, each by a fixed rule (held:
lines nobody read errors of or wrote rules from, see ``split.py``; the open part of dev, whose
errors the rules were written from, would flatter the rules and pull the thresholds up):

- ``red_flag``: the lowest model threshold whose dev false-red-flag share stays within 3% of
  non-urgent replies (recall first: the model adds what the lexicon misses, within that budget);
- ``clinical``: the lowest threshold at which at most 10% of dev replies without clinical
  content are read as clinical (every one of those is a person's time);
- ``revoke``: the lowest threshold at which the revocations the model adds to the rules' are
  false for at most 1% of dev's non-revoking replies (a missed revocation is a TCPA failure, a
  false one costs a START; the rules' own false revocations are not the model's to trade
  against, so they do not count against it);
- ``intent``: the lowest confidence at which the intents acted on automatically are right at
  least 95% of the time on dev (below it a person reads the reply);
- ``barrier``, ``slot``: the best dev macro-F1 / choose_slot F1.

Deterministic: the same corpus and code give the same file, byte for byte. The test split is
never read here. ``--search`` prints dev scores for a small grid of model settings instead.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from services.messenger.domain.classifier import MODEL_FILE, classify
from services.messenger.domain.red_flags import Safety
from services.messenger.domain.reply_model import FeatureConfig, ReplyModel
from services.messenger.domain.understanding import Understanding
from services.messenger.replies.corpus import Labelled, corpus
from services.messenger.replies.learn import Settings, build

CONFIG = FeatureConfig()
SETTINGS = Settings()
GRID = [x / 100 for x in range(2, 96, 2)]
# The dev share of non-urgent replies the model may add as false red flags (target: <= 5% on
# held-out replies; the margin is for the difference between dev and what comes later).
FALSE_RED_FLAG_BUDGET = 0.03
# The dev share of non-revoking replies the model may add as false revocations.
FALSE_REVOCATION_BUDGET = 0.01
# The dev share of replies without clinical content that a person is asked to read as clinical.
CLINICAL_BUDGET = 0.10


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def _sweep(
    model: ReplyModel,
    dev: Sequence[Labelled],
    name: str,
    score: Callable[[list[tuple[Labelled, Understanding]]], float | None],
    prefer_low: bool = True,
) -> float:
    """The grid value with the best score (None: not allowed); ties to the lower threshold."""
    best: tuple[float, float] | None = None
    for value in GRID if prefer_low else reversed(GRID):
        model.thresholds[name] = value
        got = score([(x, _classify(model, x)) for x in dev])
        if got is not None and (best is None or got > best[0] + 1e-12):
            best = (got, value)
    chosen = best[1] if best else GRID[-1]
    model.thresholds[name] = chosen
    return chosen


class _Remembering(ReplyModel):
    """The model, with each reply's probabilities kept while thresholds are swept."""

    def __init__(self, model: ReplyModel) -> None:
        super().__init__(
            model.weights, model.bias, list(model.heads.values()), model.config,
            model.thresholds, model.meta,
        )  # fmt: skip
        self.seen: dict[tuple[str, int, bool, int | None], dict[str, dict[str, float]]] = {}

    def predict(
        self, text: str, *, offered_slots: int = 0, opted_out: bool = False, step: int | None = None
    ) -> dict[str, dict[str, float]]:
        key = (text, offered_slots, opted_out, step)
        if key not in self.seen:
            self.seen[key] = super().predict(
                text, offered_slots=offered_slots, opted_out=opted_out, step=step
            )
        return self.seen[key]


def _classify(model: ReplyModel, x: Labelled) -> Understanding:
    return classify(
        x.text, offered_slots=x.offered_slots, opted_out=x.opted_out, step=x.step, model=model
    )


def tune(model: ReplyModel, dev: Sequence[Labelled]) -> dict[str, float]:
    def red_flag(pairs: list[tuple[Labelled, Understanding]]) -> float | None:
        urgent = [u for x, u in pairs if x.safety == "red_flag"]
        calm = [u for x, u in pairs if x.safety in ("none", "clinical")]
        false = sum(u.safety is Safety.red_flag for u in calm) / max(len(calm), 1)
        if false > FALSE_RED_FLAG_BUDGET:
            return None
        return sum(u.safety is Safety.red_flag for u in urgent) / max(len(urgent), 1)

    def clinical(pairs: list[tuple[Labelled, Understanding]]) -> float | None:
        calm = [u for x, u in pairs if x.safety == "none"]
        if sum(u.safety > Safety.none for u in calm) > CLINICAL_BUDGET * len(calm):
            return None
        return sum(x.safety != "none" and u.safety > Safety.none for x, u in pairs)

    def revoke(pairs: list[tuple[Labelled, Understanding]]) -> float | None:
        tp = sum(x.consent == "revoke" and u.revocation for x, u in pairs)
        calm = [u for x, u in pairs if x.consent != "revoke"]
        by_rules = [any(r.source == "rules" and r.revoke for r in u.readings) for u in calm]
        added = sum(u.revocation and not rules for u, rules in zip(calm, by_rules, strict=True))
        if added > FALSE_REVOCATION_BUDGET * len(calm):
            return None
        return tp

    def intent(pairs: list[tuple[Labelled, Understanding]]) -> float | None:
        acted = [(x, u) for x, u in pairs if u.sure]
        right = sum(_intent_label(u) == x.intent for x, u in acted)
        if not acted or right / len(acted) < 0.95:
            return None
        return len(acted)

    def barrier(pairs: list[tuple[Labelled, Understanding]]) -> float:
        classes = {x.barrier for x, _ in pairs} - {"none", None}
        scores = []
        for c in classes:
            tp = sum(x.barrier == c and _barrier(u) == c for x, u in pairs)
            fp = sum(x.barrier != c and _barrier(u) == c for x, u in pairs)
            fn = sum(x.barrier == c and _barrier(u) != c for x, u in pairs)
            scores.append(_f1(tp, fp, fn))
        return sum(scores) / max(len(scores), 1)

    def slot(pairs: list[tuple[Labelled, Understanding]]) -> float:
        tp = sum(x.intent == "choose_slot" and u.slot == x.slot for x, u in pairs)
        fp = sum(x.intent != "choose_slot" and u.slot is not None for x, u in pairs)
        fn = sum(x.intent == "choose_slot" and u.slot != x.slot for x, u in pairs)
        return _f1(tp, fp, fn)

    remembering = _Remembering(model)
    _sweep(remembering, dev, "clinical", clinical, prefer_low=False)
    _sweep(remembering, dev, "red_flag", red_flag)
    _sweep(remembering, dev, "revoke", revoke)
    _sweep(remembering, dev, "barrier", barrier)
    _sweep(remembering, dev, "slot", slot)
    _sweep(remembering, dev, "intent", intent, prefer_low=False)
    model.thresholds.update(remembering.thresholds)
    return dict(model.thresholds)


def _intent_label(u: Understanding) -> str:
    value: str = u.suggested_intent.value
    return "none" if value == "unknown" else value


def _barrier(u: Understanding) -> str:
    b = u.barrier
    return b.value if b is not None else "none"


def train(
    config: FeatureConfig = CONFIG, settings: Settings = SETTINGS, *, tune_thresholds: bool = True
) -> ReplyModel:
    train_lines, dev = corpus("train"), corpus("dev-held")
    meta = {
        "train_lines": len(train_lines),
        "dev_lines": len(dev),
        "dev": "dev-held",
        "settings": {k: getattr(settings, k) for k in ("l2", "epochs", "learning_rate", "balance")},
    }
    model = build(train_lines, dev, config, settings, meta)
    if tune_thresholds:
        tune(model, dev)
    return model


def search() -> None:
    """Dev scores (its open part) for a small grid of settings (what the defaults above were
    chosen by). The thresholds are not tuned here: the intent and barrier macro-F1 do not
    depend on them."""
    from services.messenger.replies.corpus import BARRIER, INTENT
    from services.messenger.replies.evaluate import macro_f1, predict_all

    dev = corpus("dev-open")
    grid = [
        (CONFIG, SETTINGS),
        (CONFIG, replace(SETTINGS, balance=1.0)),
        (CONFIG, replace(SETTINGS, balance=0.0)),
        (CONFIG, replace(SETTINGS, l2=1e-3)),
        (CONFIG, replace(SETTINGS, l2=1e-5)),
        (CONFIG, replace(SETTINGS, epochs=500)),
        (replace(CONFIG, asking=False), SETTINGS),
        (replace(CONFIG, rules=False), SETTINGS),
        (replace(CONFIG, char_min=2, char_max=5), SETTINGS),
    ]
    for config, settings in grid:
        started = time.monotonic()
        model = train(config, settings, tune_thresholds=False)
        got = predict_all(dev, model)
        intent = macro_f1([x.intent for x in dev], [g.intent for g in got], INTENT)
        classes = [c for c in BARRIER if c != "none"]
        barrier = macro_f1([x.barrier for x in dev], [g.barrier for g in got], classes)
        took = time.monotonic() - started
        print(f"{config} {settings} ({took:.0f} s): intent macro-F1 {intent:.3f}, "
              f"barrier macro-F1 {barrier:.3f}", flush=True)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(MODEL_FILE))
    parser.add_argument("--search", action="store_true")
    args = parser.parse_args(argv)
    if args.search:
        search()
        return 0
    started = time.monotonic()
    model = train()
    data = model.to_bytes()
    with open(args.out, "wb") as f:
        f.write(data)
    thresholds = ", ".join(f"{k} {v:.2f}" for k, v in sorted(model.thresholds.items()))
    print(
        f"wrote {args.out} ({len(data) / 1e6:.2f} MB) in {time.monotonic() - started:.0f} s; "
        f"temperatures {', '.join(f'{h.name} {h.temperature:.2f}' for h in model.heads.values())}; "
        f"thresholds {thresholds}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
