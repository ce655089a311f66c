"""The reply corpus, its frozen split, the shipped model and the evaluation (pure, no database)."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from services.messenger.domain.classifier import MODEL_FILE, classify, default_model
from services.messenger.domain.dates import snooze_date
from services.messenger.domain.keywords import Keyword, keyword
from services.messenger.domain.reply_model import FeatureConfig, ReplyModel
from services.messenger.replies import evaluate
from services.messenger.replies.corpus import (
    ADDED,
    CORPUS_DIR,
    HEADS,
    WRITERS,
    CorpusError,
    corpus,
    independent,
    load_file,
    load_split,
)
from services.messenger.replies.learn import Settings, build
from services.messenger.replies.split import make_split
from shared.events.messages import Barrier, ReplyIntent

TODAY = date(2026, 3, 2)  # a Monday


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("STOP", Keyword.opt_out),
        (" Stop. ", Keyword.opt_out),
        ("STOPALL", Keyword.opt_out_all),
        ("stop all", Keyword.opt_out_all),
        ("UNSUBSCRIBE", Keyword.opt_out),
        ("quit 🛑", Keyword.opt_out),
        ("PARAR", Keyword.opt_out),
        ("START", Keyword.opt_in),
        ("YES", Keyword.opt_in),
        ("ayuda", Keyword.help),
        ("please stop texting me", None),
        ("cancel my appointment", None),
    ],
)
def test_carrier_keywords_are_whole_messages(body: str, expected: Keyword | None) -> None:
    assert keyword(body) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("in 2 weeks", date(2026, 3, 16)),
        ("next month", date(2026, 4, 2)),
        ("el mes que viene", date(2026, 4, 2)),
        ("after march", date(2026, 4, 1)),
        ("en enero", date(2027, 1, 1)),
        ("after the holidays", date(2027, 1, 5)),
        ("i may come", None),
    ],
)
def test_snooze_dates(text: str, expected: date | None) -> None:
    assert snooze_date(text, TODAY) == expected


# --- the corpus and its split -----------------------------------------------------------------


def test_each_writers_file_is_whole_and_valid() -> None:
    for name in WRITERS:
        loaded = load_file(CORPUS_DIR / name)
        assert loaded.errors == [] and len(loaded.lines) == 750, name
    for name in ADDED:
        loaded = load_file(CORPUS_DIR / name)
        assert loaded.errors == [] and len(loaded.lines) == 700, name
    lines = corpus()
    assert len([x for x in lines if not x.key.startswith("legacy:")]) == 2250 + 2100
    assert Counter(x.lang for x in lines)["es"] >= 700


def test_a_bad_line_is_refused_with_its_place_and_field_never_its_words(tmp_path: Path) -> None:
    good = json.loads((CORPUS_DIR / WRITERS[0]).read_text().splitlines()[0])
    bad = {**good, "id": "X-2", "intent": "choose_slot", "slot": 7, "text": "secret words"}
    path = tmp_path / "x.jsonl"
    path.write_text("\n".join([json.dumps(good), json.dumps(bad), "{not json"]) + "\n")
    loaded = load_file(path)
    assert len(loaded.lines) == 1
    assert loaded.errors[0].startswith("x.jsonl:2: slot must be 1 to offered_slots")
    assert loaded.errors[1].startswith("x.jsonl:3: not JSON")
    assert all("secret" not in e for e in loaded.errors)
    with pytest.raises(CorpusError, match=r"x\.jsonl:2"):
        load_file(path, strict=True)


def test_the_split_is_frozen_by_source_group_and_is_what_the_seeded_procedure_gives() -> None:
    groups = load_split()
    assert groups == make_split()["groups"]  # the committed file is reproducible
    lines = corpus()
    writers = [x for x in lines if not x.key.startswith("legacy:")]
    sides: dict[str, set[str]] = {}
    for x in writers:
        sides.setdefault(x.source, set()).add(groups[x.source])
    assert all(len(s) == 1 for s in sides.values())  # no group straddles the split
    first = [x for x in writers if x.key.split(":")[0] + ".jsonl" in WRITERS]
    shares = Counter(groups[x.source] for x in first)
    assert 0.57 < shares["train"] / len(first) < 0.63
    assert 0.17 < shares["test"] / len(first) < 0.23
    added = [x for x in writers if x.key.split(":")[0] + ".jsonl" in ADDED]
    added_shares = Counter(groups[x.source] for x in added)
    assert 0.72 < added_shares["train"] / len(added) < 0.78 and added_shares["test"] == 0
    for split in ("train", "dev", "test"):
        assert {x.key.split(":")[0] for x in corpus(split)} >= {w.removesuffix(".jsonl")
                                                              for w in WRITERS}  # fmt: skip
    assert not any(x.key.startswith("legacy:") for x in corpus("test") + corpus("dev"))


# The sorted keys of the test split's lines, as first frozen: lines added later go to train and
# dev only, so the test split (and every figure measured on it) stays comparable.
TEST_KEYS_SHA256 = "0bbe7c3e9ce38db2fcc0a359728048fd6bc570fa3cd6d338b311e66a6694fd18"


def test_the_test_split_holds_exactly_the_lines_it_was_frozen_with() -> None:
    keys = sorted(x.key for x in corpus("test"))
    assert len(keys) == 449
    assert hashlib.sha256("\n".join(keys).encode()).hexdigest() == TEST_KEYS_SHA256


def test_dev_is_open_and_held_without_overlap() -> None:
    dev, open_, held = corpus("dev"), corpus("dev-open"), corpus("dev-held")
    assert {x.key for x in open_} | {x.key for x in held} == {x.key for x in dev}
    assert not {x.key for x in open_} & {x.key for x in held} and held and open_
    assert all(x.key.split(":")[0] + ".jsonl" in ADDED for x in held)
    with pytest.raises(CorpusError, match="no split 'validation'"):
        corpus("validation")


def test_a_writers_file_that_changed_after_the_split_is_refused(tmp_path: Path) -> None:
    for name in (*WRITERS, *ADDED, "split.json"):
        shutil.copy(CORPUS_DIR / name, tmp_path / name)
    with (tmp_path / WRITERS[0]).open("a") as f:
        f.write("\n")
    with pytest.raises(CorpusError, match="changed since the split was frozen"):
        corpus("test", tmp_path)


def test_the_independent_set_is_read_only_when_it_is_there(tmp_path: Path) -> None:
    assert independent(tmp_path) is None
    shutil.copy(CORPUS_DIR / WRITERS[0], tmp_path / "independent.jsonl")
    found = independent(tmp_path)
    assert found is not None and len(found) == 750


# --- the model ---------------------------------------------------------------------------------


def test_the_shipped_model_is_small_and_speaks_the_corpus_schema() -> None:
    assert MODEL_FILE.stat().st_size < 4_000_000
    model = default_model()
    assert model is not None
    assert {h: model.heads[h].classes for h in HEADS} == HEADS
    assert set(model.thresholds) >= {"red_flag", "clinical", "revoke", "intent", "barrier"}
    assert all(0 < model.heads[h].temperature < 5 for h in HEADS)
    for head in model.predict("yes book me").values():
        assert abs(sum(head.values()) - 1.0) < 1e-5


def test_training_is_reproducible_to_the_byte() -> None:
    train, dev = corpus("train")[:120], corpus("dev")[:40]
    config = FeatureConfig(buckets=1 << 12, rules=False)
    settings = replace(Settings(), epochs=15)
    first = build(train, dev, config, settings, {"n": 1}).to_bytes()
    second = build(train, dev, config, settings, {"n": 1}).to_bytes()
    assert first == second
    again = ReplyModel.from_bytes(first)
    assert again.to_bytes() == first
    assert np.allclose(again.weights, ReplyModel.from_bytes(second).weights)


@pytest.mark.parametrize(
    "text",
    [
        "I'd like to schedule. btw the stitches came open",
        "la herida está sangrando mucho, also quiero una cita",
        "can you schedule me in? the mole turned black",
    ],
)
def test_a_clause_that_only_asks_to_book_books_beside_a_red_flag(text: str) -> None:
    u = classify(text)
    assert u.intent is ReplyIntent.book and u.sure and u.label == "red_flag", text


@pytest.mark.parametrize(
    ("text", "until"),
    [
        ("can you text me in 2 weeks?", date(2026, 3, 16)),
        ("dentro de 3 semanas", date(2026, 3, 23)),
    ],
)
def test_a_clause_that_only_asks_to_be_reached_later_snoozes_to_its_date(
    text: str, until: date
) -> None:
    u = classify(text, today=TODAY)
    assert u.intent is ReplyIntent.later and u.sure and u.snooze_until == until, text


def test_the_classifier_reads_every_layer_of_one_reply() -> None:
    u = classify("STOP, and the spot is bleeding")
    assert u.revocation and u.label == "red_flag" and u.red_flags
    u = classify("2 please", offered_slots=3)
    assert u.intent is ReplyIntent.choose_slot and u.slot == 2
    u = classify("too expensive for me right now, maybe in the spring", today=TODAY)
    assert u.barrier is Barrier.cost


# --- the evaluation ----------------------------------------------------------------------------


def test_wilson_intervals_match_known_values() -> None:
    low, high = evaluate.wilson(95, 100)
    assert round(low, 3) == 0.888 and round(high, 3) == 0.978
    assert evaluate.wilson(0, 0) == (0.0, 1.0)
    assert evaluate.wilson(10, 10)[1] > 0.999999


def test_the_report_prints_every_class_the_confusion_matrix_and_the_target_lines() -> None:
    lines = corpus("dev")[:80]
    text = evaluate.report("dev sample", lines, default_model())
    for name in evaluate.TARGETS:
        assert f"replies_{name}: " in text
    assert "intent confusion" in text and "precision [95% CI]" in text
    for classes in HEADS.values():
        assert all(f"  {c} " in text for c in classes)


def test_test_errors_are_never_listed(capsys: pytest.CaptureFixture[str]) -> None:
    assert evaluate.main(["--split", "test", "--errors"]) == 1
    assert "never written from them" in capsys.readouterr().out
    assert evaluate.main(["--split", "dev-held", "--errors"]) == 1
    assert "never written from them" in capsys.readouterr().out
