"""Horizontal bar charts as shapes for an inline SVG: bars, intervals as whiskers, a zero line,
labels. Pure geometry; the page draws the shapes, gives the chart a title and a text
alternative, and puts the same figures in a table beside it (a chart alone is not accessible).
Colours come from the stylesheet through each shape's ``kind`` (the console allows no inline
style)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

LABEL_WIDTH = 230  # the rows' names, right-aligned before the bars
PLOT_X = 240
PLOT_WIDTH = 300
VALUE_X = PLOT_X + PLOT_WIDTH + 10
WIDTH = VALUE_X + 190
ROW = 26
BAR = 16
HEADING = 26
AXIS = 30


@dataclass(frozen=True)
class Row:
    label: str
    value: float | None  # None: no figure (nobody to count); nothing is drawn
    shown: str  # the value as words, written after the bar
    kind: str  # the bar's class (its colour)
    low: float | None = None  # the interval, when there is one
    high: float | None = None


@dataclass(frozen=True)
class Group:
    heading: str
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    kind: str


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    kind: str


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    words: str
    anchor: str  # start | middle | end
    kind: str


@dataclass(frozen=True)
class Chart:
    slug: str  # the chart's id on the page
    title: str
    summary: str  # the text alternative: every figure the chart shows, in words
    width: int
    height: int
    rects: tuple[Rect, ...]
    lines: tuple[Line, ...]
    texts: tuple[Text, ...]


def nice_top(value: float, step: float) -> float:
    """The smallest multiple of ``step`` at or above ``value`` (at least one step)."""
    return max(step, round(math.ceil(round(value / step, 9)) * step, 9))


def count_ticks(top: float) -> list[tuple[float, str]]:
    """Ticks of a count axis from 0 to ``top``: whole numbers only."""
    half = top / 2
    middle = [(half, f"{half:g}")] if half == int(half) else []
    return [(0.0, "0"), *middle, (top, f"{top:g}")]


def bar_chart(
    slug: str,
    title: str,
    summary: str,
    groups: Sequence[Group],
    span: tuple[float, float],
    ticks: Sequence[tuple[float, str]],
) -> Chart:
    """Groups of horizontal bars on one axis from ``span[0]`` to ``span[1]``; a bar starts at
    zero (or the axis' start when zero is off it); an interval is a whisker with end caps."""
    low, high = span
    if high <= low:
        raise ValueError("a chart's axis needs its end above its start")

    def x(value: float) -> float:
        clamped = min(max(value, low), high)
        return round(PLOT_X + (clamped - low) / (high - low) * PLOT_WIDTH, 1)

    rects: list[Rect] = []
    lines: list[Line] = []
    texts: list[Text] = []
    y = 0.0
    origin = x(0.0 if low <= 0.0 <= high else low)
    for group in groups:
        texts.append(Text(0, y + 18, group.heading, "start", "heading"))
        y += HEADING
        for row in group.rows:
            middle = y + ROW / 2
            texts.append(Text(LABEL_WIDTH, middle + 5, row.label, "end", "label"))
            if row.value is not None:
                end = x(row.value)
                left = min(origin, end)
                rects.append(Rect(left, middle - BAR / 2, abs(end - origin), BAR, row.kind))
            if row.low is not None and row.high is not None:
                a, b = x(row.low), x(row.high)
                lines.append(Line(a, middle, b, middle, "interval"))
                lines.append(Line(a, middle - 6, a, middle + 6, "interval"))
                lines.append(Line(b, middle - 6, b, middle + 6, "interval"))
            texts.append(Text(VALUE_X, middle + 5, row.shown, "start", "value"))
            y += ROW
    plot_top, plot_bottom = HEADING - 4, y + 4
    lines.append(Line(PLOT_X, plot_bottom, PLOT_X + PLOT_WIDTH, plot_bottom, "axis"))
    for value, words in ticks:
        at = x(value)
        lines.append(Line(at, plot_bottom, at, plot_bottom + 5, "axis"))
        texts.append(Text(at, plot_bottom + 20, words, "middle", "tick"))
    if low < 0.0 < high:
        lines.append(Line(origin, plot_top, origin, plot_bottom, "zero"))
    return Chart(
        slug,
        title,
        summary,
        WIDTH,
        math.ceil(plot_bottom + AXIS),
        tuple(rects),
        tuple(lines),
        tuple(texts),
    )
