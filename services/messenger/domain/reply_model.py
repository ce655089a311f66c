"""The learned part of reply understanding: hashed character and word n-grams into linear heads.

A reply becomes a set of hashed features (character 1-4-grams of the folded text, words and
word pairs, a few facts of its context: whether slots were just offered and which numbers the
reply names, whether the patient had opted out, the step it answers). Each head (consent,
safety, intent, barrier) is a multinomial logistic regression over those features, trained by
``services/messenger/replies/train.py`` and shipped as one small ``.npz`` file. A temperature
per head, fitted on the dev split, calibrates the probabilities; the thresholds the
classifier uses were chosen on dev too and travel in the same file.

Scoring a reply is a gather and a sum: well under a millisecond. Hashing uses CRC-32, which is
stable across processes (Python's ``hash`` is salted).
"""

from __future__ import annotations

import io
import json
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

import numpy as np

from services.messenger.domain.reply_features import asking_text, rule_features
from services.messenger.domain.reply_words import normalise

_WORD = re.compile(r"[a-z]+|\d+|[?!]")
_STEP_WORDS = frozenset({"1", "2", "3", "uno", "dos", "tres", "one", "two", "three"})


@dataclass(frozen=True)
class FeatureConfig:
    buckets: int = 1 << 16
    char_min: int = 1
    char_max: int = 4
    word_pairs: bool = True
    rules: bool = True  # the rules' findings as features
    asking: bool = True  # the words of the clauses that neither revoke nor raise a red flag

    def as_dict(self) -> dict[str, int | bool]:
        return {
            "buckets": self.buckets,
            "char_min": self.char_min,
            "char_max": self.char_max,
            "word_pairs": self.word_pairs,
            "rules": self.rules,
            "asking": self.asking,
        }


def _text_features(folded: str, prefix: str, config: FeatureConfig) -> set[str]:
    names: set[str] = set()
    padded = f" {folded} "
    for n in range(config.char_min, config.char_max + 1):
        for i in range(len(padded) - n + 1):
            names.add(prefix + "c" + padded[i : i + n])
    words = _WORD.findall(folded)
    names.update(prefix + "w" + w for w in words)
    if config.word_pairs:
        names.update(f"{prefix}p{a} {b}" for a, b in pairwise(words))
    return names


def feature_names(
    text: str, *, offered_slots: int, opted_out: bool, step: int | None, config: FeatureConfig
) -> set[str]:
    """The named features of one reply and its context (before hashing)."""
    folded = normalise(text)
    names = _text_features(folded, "", config)
    if config.rules:
        names |= rule_features(text, folded, offered_slots=offered_slots, opted_out=opted_out)
    if config.asking:
        names |= _text_features(asking_text(text), "i", config)
    words = _WORD.findall(folded)
    if words:
        names.add("first " + words[0])
        names.add("last " + words[-1])
    names.add(f"len {min(len(words), 12) // 3}")
    if offered_slots:
        names.add("ctx offered")
        for w in words:
            if w in _STEP_WORDS:
                names.add("ctx offered names " + w)
        if len(words) <= 3:
            names.add("ctx offered short")
    if opted_out:
        names.add("ctx opted out")
        names.update("ctx opted out w" + w for w in words[:3])
    if step is not None:
        names.add(f"ctx step {step}")
    return names


@lru_cache(maxsize=262_144)
def _crc(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def hashed(names: Sequence[str] | set[str], buckets: int) -> np.ndarray:
    """Unique bucket ids of the named features, sorted (the same set gives the same array)."""
    ids = {_crc(name) % buckets for name in names}
    return np.fromiter(sorted(ids), dtype=np.int64, count=len(ids))


@dataclass(frozen=True)
class Head:
    name: str
    classes: tuple[str, ...]
    start: int  # first column of this head in the weight matrix
    temperature: float = 1.0

    @property
    def stop(self) -> int:
        return self.start + len(self.classes)


class ReplyModel:
    """Linear heads over hashed features, with per-head temperatures and tuned thresholds."""

    def __init__(
        self,
        weights: np.ndarray,
        bias: np.ndarray,
        heads: Sequence[Head],
        config: FeatureConfig,
        thresholds: Mapping[str, float],
        meta: Mapping[str, object] | None = None,
    ) -> None:
        self.weights = weights.astype(np.float32, copy=False)
        self.bias = bias.astype(np.float32, copy=False)
        self.heads = {h.name: h for h in heads}
        self.config = config
        self.thresholds = dict(thresholds)
        self.meta = dict(meta or {})

    def features(
        self, text: str, *, offered_slots: int = 0, opted_out: bool = False, step: int | None = None
    ) -> np.ndarray:
        names = feature_names(
            text,
            offered_slots=offered_slots,
            opted_out=opted_out,
            step=step,
            config=self.config,
        )
        return hashed(names, self.config.buckets)

    def logits(self, ids: np.ndarray) -> np.ndarray:
        scale = 1.0 / np.sqrt(max(len(ids), 1))
        out: np.ndarray = self.weights[ids].sum(axis=0) * scale + self.bias
        return out

    def probabilities(self, ids: np.ndarray) -> dict[str, dict[str, float]]:
        """Calibrated probabilities of every class of every head."""
        z = self.logits(ids)
        result: dict[str, dict[str, float]] = {}
        for head in self.heads.values():
            part = z[head.start : head.stop] / head.temperature
            p = np.exp(part - part.max())
            p /= p.sum()
            result[head.name] = {c: float(v) for c, v in zip(head.classes, p, strict=True)}
        return result

    def predict(
        self, text: str, *, offered_slots: int = 0, opted_out: bool = False, step: int | None = None
    ) -> dict[str, dict[str, float]]:
        ids = self.features(text, offered_slots=offered_slots, opted_out=opted_out, step=step)
        return self.probabilities(ids)

    # --- the file --------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The model as a deterministic ``.npz`` (fixed zip timestamps: same model, same bytes)."""
        import zipfile

        meta = {
            "config": self.config.as_dict(),
            "heads": [
                {"name": h.name, "classes": list(h.classes), "start": h.start, "t": h.temperature}
                for h in self.heads.values()
            ],
            "thresholds": self.thresholds,
            "meta": self.meta,
        }
        arrays: dict[str, np.ndarray] = {
            "weights": self.weights.astype(np.float16),
            "bias": self.bias.astype(np.float32),
            "meta": np.array(json.dumps(meta, sort_keys=True)),
        }
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, array in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                raw = io.BytesIO()
                np.lib.format.write_array(raw, array, allow_pickle=False)
                archive.writestr(info, raw.getvalue())
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ReplyModel:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            meta = json.loads(str(archive["meta"]))
            weights = archive["weights"].astype(np.float32)
            bias = archive["bias"]
        heads = [Head(h["name"], tuple(h["classes"]), h["start"], h["t"]) for h in meta["heads"]]
        return cls(
            weights, bias, heads, FeatureConfig(**meta["config"]), meta["thresholds"], meta["meta"]
        )

    @classmethod
    def load(cls, path: Path) -> ReplyModel:
        return cls.from_bytes(path.read_bytes())
