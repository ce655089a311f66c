"""Per-process ingest state built in the composition root: settings, mapping context, key cache.

Kept on ``runtime.extras["ingest"]`` so routes, the MLLP listener and replay share it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from services.ingest import handlers
from services.ingest.batching import Batcher
from services.ingest.domain import MappingContext
from services.ingest.keys import KeyCache, api_key_lookup
from services.ingest.mapping.service_lines import ServiceLineTable
from services.ingest.settings import IngestSettings
from shared.runtime import Runtime


@dataclass
class Ingestion:
    settings: IngestSettings
    zone: ZoneInfo
    service_lines: ServiceLineTable
    keys: KeyCache
    batcher: Batcher
    extras: dict[str, Any] = field(default_factory=dict)
    clinic_zones: dict[str, ZoneInfo] = field(default_factory=dict)

    @classmethod
    def build(cls, runtime: Runtime, settings: IngestSettings) -> Ingestion:
        zone = ZoneInfo(settings.hl7_time_zone or runtime.settings.revisit_default_time_zone)
        return cls(
            settings=settings,
            zone=zone,
            service_lines=ServiceLineTable(settings.service_line_codes),
            keys=KeyCache(api_key_lookup(runtime.sessions), settings.api_key_cache_seconds),
            batcher=Batcher(
                lambda groups: handlers.accept_groups(runtime, groups),
                settings.mllp_batch_max,
                keep=lambda group, outcomes: handlers.keep_unstorable(runtime, group, outcomes),
            ),
            clinic_zones={c: ZoneInfo(z) for c, z in settings.hl7_clinic_time_zones.items()},
        )

    def context(self, received_at: datetime, clinic_id: str | None = None) -> MappingContext:
        """What mapping may depend on; HL7 times without an offset are read in the clinic's
        own zone when it has one (``REVISIT_HL7_CLINIC_TIME_ZONES``), else the default."""
        zone = self.clinic_zones.get(clinic_id or "", self.zone)
        return MappingContext(
            received_at=received_at,
            local_zone=zone,
            service_lines=self.service_lines,
            processing_ids=self.settings.processing_ids,
        )


def ingestion_of(runtime: Runtime) -> Ingestion:
    found = runtime.extras.get("ingest")
    if not isinstance(found, Ingestion):
        raise RuntimeError("ingest is not started (runtime.extras['ingest'] missing)")
    return found
