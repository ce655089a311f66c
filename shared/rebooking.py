"""Which bookings meet a care need: one rule, used by the segmenter and by metrics.

The segmenter closes a need when a booking (or a visit) for one of these service lines comes in;
metrics counts an episode as *rebooked* when such a booking is made within the attribution
window. Both call :func:`closing_lines`, so "rebooked" means what closes the need, nothing
else. The segmenter also stamps the answer on every eligibility (``rebooked_by``), so metrics
follows a clinic's own ``covered_by`` parameters without reading the segmenter's settings.

- A **lapsed patient** comes back with any booking: the need is the patient, not a service.
- A **question** whose review names no service closes on any booking too.
- **Cosmetic upkeep** closes only on that very treatment (a skin check is not a neurotoxin top-up).
- Every other need closes on its own service line or on one that covers it (``covered_by``: a
  Mohs booking meets a biopsy follow-up).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from shared.events.common import Segment, ServiceLine

# A booking or visit for any of these services also meets a need for the key service.
DEFAULT_COVERED_BY: Mapping[ServiceLine, tuple[ServiceLine, ...]] = {
    ServiceLine.biopsy_follow_up: (ServiceLine.skin_cancer_surgery, ServiceLine.mohs),
    ServiceLine.skin_cancer_surgery: (ServiceLine.mohs,),
    ServiceLine.mohs: (ServiceLine.skin_cancer_surgery,),
}

ANY_SERVICE = None  # what closing_lines answers when any booking meets the need


def closing_lines(
    segment: Segment,
    line: ServiceLine,
    covered_by: Mapping[ServiceLine, Iterable[ServiceLine]] = DEFAULT_COVERED_BY,
    *,
    line_documented: bool = True,
) -> frozenset[ServiceLine] | None:
    """The service lines whose booking meets a need of ``segment`` for ``line``; None: any.

    ``line_documented`` is False when the record named no service and ``line`` is a stand-in
    (a portal question's review defaults to general dermatology).
    """
    if segment is Segment.lapsed_patient:
        return ANY_SERVICE
    if segment is Segment.question_no_review and not line_documented:
        return ANY_SERVICE
    if segment is Segment.cosmetic_maintenance_due:
        return frozenset({line})
    return frozenset((line, *covered_by.get(line, ())))


def closes(lines: frozenset[ServiceLine] | None, booked: ServiceLine) -> bool:
    """Whether a booking for ``booked`` meets a need closed by ``lines``."""
    return lines is None or booked in lines
