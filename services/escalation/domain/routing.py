"""Routing: which rotation answers a case, and whether it is paged now or at opening time.

Rules are tried in ``priority`` order (then ``rule_id``); the first that matches the case type,
severity and time of day (the clinic's business hours) wins. A rule may hold non-urgent pages
until the clinic opens (``page = in_hours``); an urgent case is never held.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from shared.events.escalations import CaseType, Severity


class Hours(StrEnum):
    any = "any"
    in_hours = "in_hours"
    after_hours = "after_hours"


class PageWhen(StrEnum):
    now = "now"
    in_hours = "in_hours"  # outside business hours, wait for the next opening


@dataclass(frozen=True)
class BusinessHours:
    time_zone: str
    opens: time
    closes: time
    days: frozenset[int]  # 0 = Monday ... 6 = Sunday

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(ZoneInfo(self.time_zone))
        clock = local.time().replace(tzinfo=None)
        return local.weekday() in self.days and self.opens <= clock < self.closes

    def next_opening(self, at: datetime) -> datetime:
        """``at`` itself when open, else the next opening instant (within two weeks)."""
        if self.is_open(at):
            return at
        tz = ZoneInfo(self.time_zone)
        local = at.astimezone(tz)
        for offset in range(15):
            day = local.date() + timedelta(days=offset)
            opening = datetime.combine(day, self.opens, tzinfo=tz)
            if day.weekday() in self.days and opening > local:
                return opening.astimezone(UTC)
        return at  # no open day configured: do not hold the case at all


@dataclass(frozen=True)
class RoutingRule:
    rule_id: str
    priority: int
    rotation_id: str
    case_types: frozenset[CaseType] = frozenset()  # empty: any type
    severities: frozenset[Severity] = frozenset()  # empty: any severity
    hours: Hours = Hours.any
    page: PageWhen = PageWhen.now

    def matches(self, case_type: CaseType, severity: Severity, open_now: bool) -> bool:
        if self.case_types and case_type not in self.case_types:
            return False
        if self.severities and severity not in self.severities:
            return False
        if self.hours is Hours.in_hours:
            return open_now
        if self.hours is Hours.after_hours:
            return not open_now
        return True


@dataclass(frozen=True)
class Route:
    rule_id: str
    rotation_id: str
    page_at: datetime  # now, or the next opening when the page is held for business hours

    def deferred(self, now: datetime) -> bool:
        return self.page_at > now


def route(
    rules: Iterable[RoutingRule],
    case_type: CaseType,
    severity: Severity,
    hours: BusinessHours,
    now: datetime,
) -> Route | None:
    open_now = hours.is_open(now)
    for rule in sorted(rules, key=lambda r: (r.priority, r.rule_id)):
        if rule.matches(case_type, severity, open_now):
            hold = rule.page is PageWhen.in_hours and severity is not Severity.urgent
            page_at = hours.next_opening(now) if hold else now
            return Route(rule.rule_id, rule.rotation_id, page_at)
    return None
