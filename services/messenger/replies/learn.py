"""Fitting the reply model: multinomial logistic regression per head on hashed features, with
numpy only (no training library at run time or at training time).

Full-batch Adam on an L2-regularised cross-entropy, from zero weights, in a fixed order of
operations: the same corpus and settings give bit-for-bit the same weights. Each head learns
only from the lines that carry its label (the legacy corpus leaves some unlabelled).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from services.messenger.domain.reply_model import (
    FeatureConfig,
    Head,
    ReplyModel,
    feature_names,
    hashed,
)
from services.messenger.replies.corpus import HEADS, Labelled


@dataclass(frozen=True)
class Settings:
    l2: float = 1e-4
    epochs: int = 250
    learning_rate: float = 0.05
    balance: float = 1.0  # class weight = (share of the class) ** -balance, normalised


@dataclass
class Matrix:
    """A sparse binary design matrix (CSR) with rows scaled to unit length."""

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    rows: int

    @property
    def row_of(self) -> np.ndarray:
        return np.repeat(np.arange(self.rows), np.diff(self.indptr))


def design(lines: Sequence[Labelled], config: FeatureConfig) -> Matrix:
    ids = [
        hashed(
            feature_names(
                x.text,
                offered_slots=x.offered_slots,
                opted_out=x.opted_out,
                step=x.step,
                config=config,
            ),
            config.buckets,
        )
        for x in lines
    ]
    indptr = np.zeros(len(ids) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(i) for i in ids])
    indices = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)
    values = np.concatenate(
        [np.full(len(i), 1.0 / np.sqrt(max(len(i), 1)), dtype=np.float32) for i in ids]
    )
    return Matrix(indptr, indices, values, len(ids))


def targets(lines: Sequence[Labelled]) -> dict[str, np.ndarray]:
    """Per head, the class index of each line (-1: not labelled)."""
    out = {}
    for head, classes in HEADS.items():
        index = {c: i for i, c in enumerate(classes)}
        out[head] = np.array(
            [index[v] if (v := x.label(head)) is not None else -1 for x in lines], dtype=np.int64
        )
    return out


def layout() -> list[Head]:
    heads, start = [], 0
    for name, classes in HEADS.items():
        heads.append(Head(name, classes, start))
        start += len(classes)
    return heads


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def _class_weights(labels: np.ndarray, classes: int, balance: float) -> np.ndarray:
    """Per line, the weight of its class ((share of the class) ** -balance, mean 1 over the
    labelled lines; 0 for an unlabelled line)."""
    known = labels >= 0
    counts = np.bincount(labels[known], minlength=classes).astype(np.float64)
    share = np.where(counts > 0, counts / max(counts.sum(), 1.0), 1.0)
    w = share**-balance
    w /= (w[labels[known]]).mean() if known.any() else 1.0
    return np.where(known, w[np.clip(labels, 0, None)], 0.0).astype(np.float32)


def fit(
    lines: Sequence[Labelled], config: FeatureConfig, settings: Settings
) -> tuple[np.ndarray, np.ndarray]:
    """Weights (buckets x classes) and biases of every head.

    Every row's features share one value (1/sqrt(count)), so a row's logits are the sum of its
    features' weights times that value: one gather and one segment sum each way per epoch."""
    x = design(lines, config)
    y = targets(lines)
    heads = layout()
    width = heads[-1].stop
    scale = x.values[x.indptr[:-1].clip(max=max(len(x.values) - 1, 0))].astype(np.float32)
    scale[np.diff(x.indptr) == 0] = 0.0
    order = np.argsort(x.indices, kind="stable")
    sorted_idx = x.indices[order]
    starts = np.flatnonzero(np.r_[True, sorted_idx[1:] != sorted_idx[:-1]])
    touched = sorted_idx[starts]
    # Each nonzero's position among the touched buckets (for the forward gather), and the row
    # of each nonzero in bucket order (for the backward one).
    position = np.empty(len(x.indices), dtype=np.int64)
    position[order] = np.repeat(np.arange(len(touched)), np.diff(np.r_[starts, len(order)]))
    row_sorted = x.row_of[order]
    row_starts = x.indptr[:-1]
    weight_rows = {h.name: _class_weights(y[h.name], len(h.classes), settings.balance)
                   for h in heads}  # fmt: skip
    onehots, counts = {}, {}
    for head in heads:
        labels = y[head.name]
        known = labels >= 0
        onehot = np.zeros((x.rows, len(head.classes)), dtype=np.float32)
        onehot[np.flatnonzero(known), labels[known]] = 1.0
        onehots[head.name] = onehot
        counts[head.name] = np.float32(max(float(known.sum()), 1.0))
    weights = np.zeros((len(touched), width), dtype=np.float32)
    bias = np.zeros(width, dtype=np.float32)
    m_w, v_w = np.zeros_like(weights), np.zeros_like(weights)
    m_b, v_b = np.zeros_like(bias), np.zeros_like(bias)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    buffer = np.empty((len(x.indices), width), dtype=np.float32)
    l2 = np.float32(settings.l2)
    for epoch in range(1, settings.epochs + 1):
        np.take(weights, position, axis=0, out=buffer)
        z = np.add.reduceat(buffer, row_starts, axis=0) * scale[:, None] + bias
        grad_z = np.empty_like(z)
        for head in heads:
            p = _softmax(z[:, head.start : head.stop])
            rw = weight_rows[head.name] / counts[head.name]
            grad_z[:, head.start : head.stop] = (p - onehots[head.name]) * rw[:, None]
        grad_b = grad_z.sum(axis=0)
        np.take(grad_z * scale[:, None], row_sorted, axis=0, out=buffer)
        grad_w = np.add.reduceat(buffer, starts, axis=0)
        grad_w += l2 * weights
        m_w *= beta1
        m_w += (1 - beta1) * grad_w
        v_w *= beta2
        v_w += (1 - beta2) * grad_w**2
        m_b = beta1 * m_b + (1 - beta1) * grad_b
        v_b = beta2 * v_b + (1 - beta2) * grad_b**2
        step = np.float32(settings.learning_rate * np.sqrt(1 - beta2**epoch) / (1 - beta1**epoch))
        weights -= step * m_w / (np.sqrt(v_w) + eps)
        bias -= step * m_b / (np.sqrt(v_b) + eps)
    full = np.zeros((config.buckets, width), dtype=np.float32)
    full[touched] = weights
    return full, bias.astype(np.float32)


def temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood on held-out lines."""
    known = labels >= 0
    if not known.any():
        return 1.0
    z, y = logits[known], labels[known]
    best, best_t = np.inf, 1.0
    for t in np.round(np.arange(0.3, 4.01, 0.05), 2):
        p = _softmax(z / t)
        nll = -np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean()
        if nll < best - 1e-12:
            best, best_t = nll, float(t)
    return best_t


def build(
    train: Sequence[Labelled],
    dev: Sequence[Labelled],
    config: FeatureConfig,
    settings: Settings,
    meta: dict[str, object],
) -> ReplyModel:
    """Fit on train, calibrate each head's temperature on dev (thresholds come later)."""
    weights, bias = fit(train, config, settings)
    model = ReplyModel(weights, bias, layout(), config, {}, meta)
    # Calibrate on the weights as shipped (float16), so dev sees exactly what runs.
    model = ReplyModel.from_bytes(model.to_bytes())
    raw = raw_logits(model, dev)
    y = targets(dev)
    heads = [
        Head(h.name, h.classes, h.start, temperature(raw[:, h.start : h.stop], y[h.name]))
        for h in model.heads.values()
    ]
    return ReplyModel(model.weights, model.bias, heads, config, {}, meta)


def raw_logits(model: ReplyModel, lines: Sequence[Labelled]) -> np.ndarray:
    return np.stack(
        [
            model.logits(
                model.features(
                    x.text, offered_slots=x.offered_slots, opted_out=x.opted_out, step=x.step
                )
            )
            for x in lines
        ]
    )
