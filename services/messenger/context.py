"""What the messenger's handlers, workers and API share at run time (built in app.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.messenger.domain.phrases import PhraseBook
from services.messenger.domain.rewriter import Rewriter
from services.messenger.domain.second_reading import Reader
from services.messenger.providers.base import MessageProvider
from services.messenger.scheduling.base import SchedulingAdapter
from services.messenger.settings import MessengerSettings
from shared.events.common import Channel


@dataclass
class MessengerContext:
    settings: MessengerSettings
    providers: dict[str, MessageProvider]  # by name: sandbox, twilio, smtp
    scheduling: SchedulingAdapter
    rewriter: Rewriter | None = None
    reader: Reader | None = None  # the optional outside reader of replies (off by default)
    phrases: PhraseBook | None = None  # each practice's own phrases, if a file is given
    routes: dict[Channel, str] = field(default_factory=dict)  # channel -> provider name

    def provider_for(self, channel: Channel) -> MessageProvider:
        return self.providers[self.routes.get(channel, "sandbox")]

    @property
    def rates(self) -> dict[str, float]:
        s = self.settings
        return {
            "sandbox": s.sandbox_rate_per_second,
            "twilio": s.sms_rate_per_second,
            "smtp": s.email_rate_per_second,
        }
