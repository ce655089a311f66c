"""Ingest's own settings (MLLP listener, raw-message retention, HL7 defaults).

Read from the environment in the composition root only (``IngestSettings()``), never at import.
The variables share the ``REVISIT_`` prefix of the platform settings in ``shared/config.py``.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REVISIT_", extra="ignore")

    # HL7 v2 over MLLP. Port 0 picks a free port (tests); the bound port is on runtime.extras.
    mllp_enabled: bool = True
    mllp_host: str = "127.0.0.1"
    mllp_port: int = Field(default=2575, ge=0, le=65535)
    # A listener bound to one clinic (a per-practice VPN or tunnel) needs no key in MSH-8.
    # Without it every message must carry the clinic's API key in MSH-8 (Security).
    mllp_clinic_id: str = ""
    mllp_max_message_bytes: int = Field(default=1_048_576, ge=1024, le=16 * 1_048_576)
    # Messages a sender may pipeline on one connection before we stop reading (backpressure).
    mllp_max_in_flight: int = Field(default=64, ge=1, le=1000)
    # Messages from every connection are committed together, at most this many per transaction.
    mllp_batch_max: int = Field(default=250, ge=1, le=2000)
    mllp_idle_timeout_seconds: float = Field(default=600.0, gt=0)
    # TLS on the listener (PEM files): the server's certificate and key; with a client CA, every
    # sender must present a certificate that CA signed (mutual TLS).
    mllp_tls_certfile: str = ""
    mllp_tls_keyfile: str = ""
    mllp_tls_client_cafile: str = ""
    # Peers allowed to connect (comma-separated addresses or CIDR ranges; empty: any). A
    # listener bound to one clinic trusts its network, so in production it needs this list or
    # mutual TLS.
    mllp_allowed_peers: str = ""

    # MSH-11 processing ids taken in: P (production) only by default, so a sender's training or
    # debug traffic can never reach a real patient. Tests and go-live rehearsals add T.
    hl7_processing_ids: str = "P"
    # HL7 timestamps without an offset are read in this zone; empty: REVISIT_DEFAULT_TIME_ZONE.
    hl7_time_zone: str = ""
    # Per clinic, as JSON: {"clinic-a": "America/Chicago"}. A practice's HL7 feed stamps times
    # in its own zone; a deployment serving practices in several zones names each one here.
    hl7_clinic_time_zones: dict[str, str] = Field(default_factory=dict)

    # Raw source messages are kept this long for replay after a mapping fix, then purged
    # (the de-duplication record without the raw bytes stays).
    raw_retention_days: int = Field(default=30, ge=1, le=3650)
    retention_sweep_seconds: float = Field(default=3600.0, ge=1.0)

    # How long a verified MLLP API key is trusted before it is looked up again; a revoked key
    # stops working on MLLP within this many seconds (at once in the process that revoked it).
    api_key_cache_seconds: float = Field(default=30.0, ge=0.0, le=3600.0)

    # Extra service-line codes for this deployment, as JSON: {"local|BOTOX-20": "neurotoxin",
    # "cpt|17000": "general_dermatology"}. Merged over the shipped table (mapping/service_lines).
    service_line_codes: dict[str, str] = Field(default_factory=dict)

    @field_validator("hl7_processing_ids")
    @classmethod
    def _known_processing_ids(cls, value: str) -> str:
        ids = {part.strip().upper() for part in value.split(",") if part.strip()}
        if not ids or not ids <= {"P", "T", "D"}:
            raise ValueError("REVISIT_HL7_PROCESSING_IDS: a comma list of P, T, D")
        return ",".join(sorted(ids))

    @field_validator("hl7_clinic_time_zones")
    @classmethod
    def _known_zones(cls, value: dict[str, str]) -> dict[str, str]:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        for clinic, zone in value.items():
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"REVISIT_HL7_CLINIC_TIME_ZONES[{clinic}]: not an IANA time zone"
                ) from None
        return value

    @field_validator("service_line_codes")
    @classmethod
    def _known_codes(cls, value: dict[str, str]) -> dict[str, str]:
        from shared.events.common import CodeSystem, ServiceLine

        for key, line in value.items():
            system, sep, code = key.partition("|")
            if not sep or not code.strip() or system.strip().lower() not in CodeSystem.__members__:
                raise ValueError(
                    'REVISIT_SERVICE_LINE_CODES keys are "system|code" (cpt, hcpcs, '
                    "snomed_ct or local)"
                )
            if line not in ServiceLine.__members__:
                raise ValueError("REVISIT_SERVICE_LINE_CODES values must be service lines")
        return value

    @field_validator("mllp_allowed_peers")
    @classmethod
    def _peer_ranges(cls, value: str) -> str:
        import ipaddress

        for part in filter(None, (p.strip() for p in value.split(","))):
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise ValueError(
                    "REVISIT_MLLP_ALLOWED_PEERS: a comma list of IP addresses or CIDR ranges"
                ) from None
        return value

    @model_validator(mode="after")
    def _tls_pairs(self) -> IngestSettings:
        if bool(self.mllp_tls_certfile) != bool(self.mllp_tls_keyfile):
            raise ValueError("REVISIT_MLLP_TLS_CERTFILE and REVISIT_MLLP_TLS_KEYFILE go together")
        if self.mllp_tls_client_cafile and not self.mllp_tls_certfile:
            raise ValueError("REVISIT_MLLP_TLS_CLIENT_CAFILE needs the listener's own certificate")
        return self

    @property
    def peer_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        import ipaddress

        parts = (p.strip() for p in self.mllp_allowed_peers.split(","))
        return tuple(ipaddress.ip_network(p, strict=False) for p in parts if p)

    def refuse_untrusted_clinic_listener(self, profile: str) -> None:
        """A clinic-bound listener takes messages without a key: in production only from
        known peers or senders holding a certificate of the clinic's CA."""
        if (
            profile == "production"
            and self.mllp_enabled
            and self.mllp_clinic_id
            and not (self.mllp_allowed_peers or self.mllp_tls_client_cafile)
        ):
            raise ValueError(
                "REVISIT_MLLP_CLINIC_ID binds the MLLP listener to one clinic without keys: "
                "production needs REVISIT_MLLP_ALLOWED_PEERS or REVISIT_MLLP_TLS_CLIENT_CAFILE"
            )

    @property
    def processing_ids(self) -> frozenset[str]:
        return frozenset(self.hl7_processing_ids.split(","))
