"""The live terminal view of a running simulation, drawn from a ``Snapshot`` (pure rendering).

The view is a natural-height grid, not a full-screen ``rich.layout.Layout``: a Layout takes the
console's height and crops what does not fit without a sign, while a grid lets ``rich.live``
cut the bottom with an ellipsis on a small terminal. It lays the funnel across the top, the
escalations next to the last conversations, and the services' URLs below; under ``WIDE``
columns everything stacks. Every value from a service or a message goes in as ``Text``, never as
markup, so a body containing ``[bold]`` is shown as written.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from simulator.snapshot import EscalationBoard, FunnelRow, Snapshot

WIDE = 110  # columns from which escalations and conversations sit side by side
SEVERITY_STYLES = {"urgent": "bold red", "high": "dark_orange", "normal": "", "low": "dim"}
SEVERITIES = ("urgent", "high", "normal", "low")
CONVERSATION_LINES = 6


def render(snapshot: Snapshot) -> RenderableType:
    """Everything the snapshot knows, laid out for the console it is printed on."""
    return _Dashboard(snapshot)


class _Dashboard:
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        s = self.snapshot
        parts: list[RenderableType] = [_header(s), _funnel(s)]
        if options.max_width >= WIDE:
            middle = Table.grid(expand=True, padding=(0, 1))
            middle.add_column(ratio=2)
            middle.add_column(ratio=3)
            middle.add_row(_escalations(s), _conversations(s))
            parts.append(middle)
        else:
            parts += [_escalations(s), _conversations(s)]
        parts.append(_links(s))
        if s.notes:
            notes = Text("\n").join(Text(f"\u2022 {n}") for n in s.notes)
            parts.append(Panel(notes, title="Notes", title_align="left", border_style="yellow"))
        yield Group(*parts)


def _header(s: Snapshot) -> Panel:
    when = f"{s.sim_now:%a %d %b %Y %H:%M}" if s.sim_now else "starting\u2026"
    practice = (
        f"{s.practice.clinic_name} \u00b7 {s.practice.patients:,} synthetic patients"
        if s.practice
        else "a synthetic practice"
    )
    line = Table.grid(expand=True, padding=(0, 1))
    line.add_column(ratio=1, overflow="ellipsis", no_wrap=True)
    line.add_column(justify="right", no_wrap=True)
    clock = Text.assemble(("simulated ", "dim"), (when, "bold cyan"))
    line.add_row(Text("Revisit simulator", style="bold"), clock)
    speed = Text(f"speed {s.speed}" if s.speed else "", style="dim")
    line.add_row(Text(practice), speed)
    if s.activity:
        line.add_row(Text(s.activity, style="green"), Text(""))
    return Panel(line, border_style="cyan")


def _money(cents: int) -> str:
    return f"${cents / 100:,.0f}"


def _cells(row: FunnelRow) -> list[Text]:
    numbers = (row.eligible, row.reached, row.replied, row.rebooked, row.completed)
    return [Text(f"{n:,}") for n in numbers] + [Text(_money(row.revenue_cents))]


def _funnel(s: Snapshot) -> Panel:
    table = Table(expand=True, box=None, header_style="bold", pad_edge=False)
    table.add_column("Segment", ratio=1, overflow="ellipsis", no_wrap=True)
    for name in ("Eligible", "Reached", "Replied", "Rebooked", "Completed", "Revenue"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in s.funnel:
        table.add_row(Text(row.segment.replace("_", " ")), *_cells(row))
    if s.totals is not None:
        table.add_section()
        table.add_row(Text("All segments", style="bold"), *_cells(s.totals), style="bold")
    if not s.funnel:
        empty = Text("no eligible patients yet", style="dim")
        return Panel(Group(table, empty), title="Recall funnel", title_align="left")
    return Panel(table, title="Recall funnel", title_align="left")


def _counts(counts: Mapping[str, int], order: tuple[str, ...] = ()) -> Text:
    names = [n for n in order if counts.get(n)] + sorted(n for n in counts if n not in order)
    out = Text()
    for i, name in enumerate(names):
        out.append(" \u00b7 " if i else "")
        out.append(f"{counts[name]} {name.replace('_', ' ')}", SEVERITY_STYLES.get(name, ""))
    return out


def _escalations(s: Snapshot) -> Panel:
    title = "Open escalations"
    board: EscalationBoard | None = s.escalations
    if board is None:
        return Panel(Text("escalation service not answering", style="yellow"), title=title)
    count = f"{board.open_cases}+" if board.more else str(board.open_cases)
    summary = Text(f"{count} open", style="bold")
    if board.raised is not None:
        summary.append(f"  \u00b7  {board.raised} raised", style="dim")
    if board.minutes_to_ack_median is not None:
        median = board.minutes_to_ack_median
        shown = f"{median:.1f}" if median < 10 else f"{median:.0f}"
        summary.append(f", median {shown} min to ack", style="dim")
    lines = [summary]
    if board.open_cases:
        lines += [_counts(board.by_severity, SEVERITIES), _counts(board.by_type)]
    newest = Table.grid(padding=(0, 1))
    newest.add_column(justify="right", no_wrap=True, min_width=6)
    newest.add_column(no_wrap=True, min_width=6)
    newest.add_column(overflow="ellipsis", no_wrap=True)
    for case in board.newest:
        age = f"{case.age_minutes} min" if case.age_minutes < 120 else f"{case.age_minutes // 60} h"
        severity = Text(case.severity, SEVERITY_STYLES.get(case.severity, ""))
        newest.add_row(
            Text(age), severity, Text(f"{case.case_type.replace('_', ' ')} ({case.state})")
        )
    for line in lines:
        line.no_wrap, line.overflow = True, "ellipsis"
    return Panel(Group(*lines, newest), title=title, title_align="left")


def _conversations(s: Snapshot) -> Panel:
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True, style="dim", min_width=12)
    table.add_column(no_wrap=True, min_width=10)
    table.add_column(overflow="ellipsis", no_wrap=True)
    lines = list(s.conversations)[-CONVERSATION_LINES:]
    for line in lines:
        inbound = line.direction == "inbound"
        arrow = Text("\u2190 " if inbound else "\u2192 ", style="yellow" if inbound else "cyan")
        table.add_row(
            Text(f"{line.at:%d %b %H:%M}"),
            # One practice: the clinic part of the key is the same on every line.
            arrow + Text(line.patient_key.partition(":")[2] or line.patient_key),
            Text(line.body, style="" if inbound else "dim"),
        )
    if not lines:
        table.add_row(Text("no messages yet"), Text(), Text())
    return Panel(
        table, title="Last conversations (\u2192 to patient, \u2190 reply)", title_align="left"
    )


def _links(s: Snapshot) -> Panel:
    table = Table(box=None, expand=True, header_style="bold", pad_edge=False)
    table.add_column("Service", no_wrap=True)
    table.add_column("API docs", overflow="fold")
    table.add_column("Prometheus", overflow="fold")
    for link in s.links:
        table.add_row(Text(link.name), Text(link.docs), Text(link.metrics))
    return Panel(table, title="Services", title_align="left")
