"""Where a clinic's urgent and high cases would really be paged.

The sandbox notifier only writes a row. That is what a new clinic starts with (``defaults.py``)
and right for the dev stack, but in production a red flag "paged" into a table while the
patient is told the care team was alerted is a lie; the production profile refuses it
(``services/escalation/live_routes.py``). A route counts as live when each rotation it reaches,
its fallbacks included, pages at least one notifier that is not a sandbox.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from services.escalation.domain.rotations import Rotation
from services.escalation.domain.routing import RoutingRule
from shared.events.escalations import Severity

PAGED_AT_ONCE = (Severity.urgent, Severity.high)


def sandbox_routes(
    rules: Iterable[RoutingRule],
    rotations: Mapping[str, Rotation],
    default_notifiers: Collection[str],
    real_notifiers: Collection[str],
) -> list[str]:
    """Each urgent or high route that reaches a rotation paging no real notifier, described
    by its rule, severities and rotation (ids only: no person, no secret)."""
    found: list[str] = []
    for rule in sorted(rules, key=lambda r: (r.priority, r.rule_id)):
        severities = [s for s in PAGED_AT_ONCE if not rule.severities or s in rule.severities]
        if not severities:
            continue
        rotation_id: str | None = rule.rotation_id
        seen: set[str] = set()
        while rotation_id is not None and rotation_id not in seen:
            seen.add(rotation_id)
            rotation = rotations.get(rotation_id)
            ids = (rotation.notifier_ids if rotation else ()) or tuple(default_notifiers)
            if not any(n in real_notifiers for n in ids):
                found.append(
                    f"rule {rule.rule_id} ({'/'.join(severities)}) -> rotation {rotation_id} "
                    f"pages only {', '.join(ids) or 'nothing'}"
                )
            rotation_id = rotation.fallback_rotation_id if rotation else None
    return found
