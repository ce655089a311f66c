"""The sandbox pager that ships with Revisit: pages are stored, nobody's phone rings.

The embedded stack, the simulator and the tests use it; ``GET /sandbox/pages`` shows what a
responder would have received. One row per delivery (the delivery id is unique), so a retry
of the same delivery is recorded once.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.escalation.notifiers.base import DeliveryResult, Notifier, PageNotice

SCHEMA = "escalation"


class SandboxNotifier(Notifier):
    kind = "sandbox"

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def deliver(self, notice: PageNotice) -> DeliveryResult:
        async with self._sessions() as session, session.begin():
            row = (
                await session.execute(
                    text(
                        f"INSERT INTO {SCHEMA}.sandbox_pages (page_id, clinic_id, escalation_id, "
                        "action, attempt, rotation_id, responder_id, severity, case_type, "
                        "summary, case_url) VALUES (:page_id, :clinic, :esc, :action, :attempt, "
                        ":rotation, :responder, :severity, :case_type, :summary, :url) "
                        "ON CONFLICT (page_id) DO NOTHING RETURNING id"
                    ),
                    {
                        "page_id": notice.page_id,
                        "clinic": notice.clinic_id,
                        "esc": notice.escalation_id,
                        "action": notice.action.value,
                        "attempt": notice.attempt,
                        "rotation": notice.rotation_id,
                        "responder": notice.responder_id,
                        "severity": notice.severity,
                        "case_type": notice.case_type,
                        "summary": notice.summary,
                        "url": notice.case_url,
                    },
                )
            ).first()
        detail = "" if row is not None else "duplicate"
        return DeliveryResult.delivered(f"sandbox:{notice.page_id}", detail)
