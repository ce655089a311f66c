"""A clinic's EHR connection: where its FHIR API is, how Revisit authenticates, what it may do,
and how the practice's own codes map to Revisit's service lines and back.

Secrets are never stored: a connection names environment variables (``REVISIT_EHR_<CLINIC>_…``,
the clinic's own namespace, filled from the deployment's secret store), and those names are
the only secret-related thing an API response or a log line can show.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from services.messenger.ehr.domain.capabilities import Capabilities
from shared.events.common import ServiceLine, TimeZoneName

EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{2,127}$")]
FhirId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9\-.]{1,64}$")]
RevisitId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^\S+$")]
Uri = Annotated[str, StringConstraints(min_length=3, max_length=255, pattern=r"^\S+$")]


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AuthKind(StrEnum):
    none = "none"  # an EHR behind the practice's own network controls (tests, sandboxes)
    static = "static"  # a long-lived bearer token the EHR issued
    client_credentials = "client_credentials"  # OAuth2 with a client secret
    smart_backend = "smart_backend"  # SMART Backend Services: a signed JWT assertion


class Algorithm(StrEnum):
    RS384 = "RS384"
    ES384 = "ES384"


class AuthSettings(Strict):
    kind: AuthKind = AuthKind.none
    token_env: EnvName | None = None  # static: the variable holding the token
    client_id: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    secret_env: EnvName | None = None  # client_credentials: the variable holding the secret
    key_env: EnvName | None = None  # smart_backend: the variable holding the private key (PEM)
    algorithm: Algorithm = Algorithm.RS384
    key_id: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    scope: Annotated[str, StringConstraints(max_length=1000)] = (
        "system/Patient.read system/Slot.read system/Schedule.read system/Appointment.write "
        "system/Communication.write"
    )
    # Where tokens come from; for SMART it is discovered from .well-known when left out.
    token_url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$")] | None = None

    @model_validator(mode="after")
    def _complete(self) -> AuthSettings:
        needs = {
            AuthKind.static: ("token_env",),
            AuthKind.client_credentials: ("client_id", "secret_env", "token_url"),
            AuthKind.smart_backend: ("client_id", "key_env"),
        }.get(self.kind, ())
        missing = [name for name in needs if getattr(self, name) is None]
        if missing:
            raise ValueError(f"{self.kind.value} auth needs {', '.join(missing)}")
        return self

    def secret_names(self) -> list[str]:
        return [n for n in (self.token_env, self.secret_env, self.key_env) if n]


class Coding(Strict):
    system: Uri
    code: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^\S+$")]
    display: Annotated[str, StringConstraints(max_length=120)] | None = None

    @property
    def token(self) -> str:
        return f"{self.system}|{self.code}"


class CodeMappings(Strict):
    """The practice's own codes and ids, each mapped to Revisit's and back."""

    # Revisit's service line -> the EHR's service types (Slot/Schedule/Appointment.serviceType).
    service_types: dict[ServiceLine, list[Coding]] = Field(default_factory=dict)
    # Optional Appointment.appointmentType per service line (the practice's visit type).
    appointment_types: dict[ServiceLine, Coding] = Field(default_factory=dict)
    # Revisit's provider / location ids (as the EHR feed names them) -> FHIR resource ids.
    # Unmapped ids are used as they are: right when the feed is the same FHIR server.
    practitioners: dict[RevisitId, FhirId] = Field(default_factory=dict)
    locations: dict[RevisitId, FhirId] = Field(default_factory=dict)
    # HL7 assigning authority (CX-4.1) or source system -> the EHR's Patient.identifier system.
    identifier_systems: dict[Annotated[str, StringConstraints(max_length=255)], Uri] = Field(
        default_factory=dict
    )

    def codings_for(self, line: ServiceLine) -> list[Coding]:
        return list(self.service_types.get(line, []))

    def service_line_of(self, tokens: set[str]) -> ServiceLine | None:
        for line, codings in self.service_types.items():
            if any(c.token in tokens for c in codings):
                return line
        return None

    def practitioner(self, provider_id: str) -> str:
        return self.practitioners.get(provider_id, provider_id)

    def location(self, location_id: str) -> str:
        return self.locations.get(location_id, location_id)

    def provider_of(self, practitioner_id: str) -> str:
        back = {v: k for k, v in self.practitioners.items()}
        return back.get(practitioner_id, practitioner_id)

    def location_of(self, fhir_location_id: str) -> str:
        back = {v: k for k, v in self.locations.items()}
        return back.get(fhir_location_id, fhir_location_id)


class WriteMode(StrEnum):
    auto = "auto"  # book in the EHR when its CapabilityStatement allows Appointment create
    staff = "staff"  # never write: every chosen time becomes a staff task


class PatientIds(StrEnum):
    identifier = "identifier"  # find the patient by record number (HL7 feeds, other servers)
    fhir_id = "fhir_id"  # Revisit's patient id is the EHR's FHIR id (its FHIR feed is this API)


class ConnectionSettings(Strict):
    """What an admin sets for a clinic (the API body and the stored row, secrets excluded)."""

    base_url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=500)]
    auth: AuthSettings = Field(default_factory=AuthSettings)
    time_zone: TimeZoneName | None = None
    mappings: CodeMappings = Field(default_factory=CodeMappings)
    write_mode: WriteMode = WriteMode.auto
    patient_ids: PatientIds = PatientIds.identifier
    chart_messages: bool = False  # write each message and reply to the chart (Communication)
    enabled: bool = True


class Connection(Strict):
    clinic_id: str
    settings: ConnectionSettings
    capabilities: Capabilities | None = None

    @property
    def base_url(self) -> str:
        return self.settings.base_url.rstrip("/")

    @property
    def mappings(self) -> CodeMappings:
        return self.settings.mappings

    def can_write_appointments(self) -> bool:
        if self.settings.write_mode is WriteMode.staff:
            return False
        return self.capabilities is not None and self.capabilities.appointment_create

    def can_write_communications(self) -> bool:
        return self.capabilities is not None and self.capabilities.communication_create


def secret_prefix(clinic_id: str) -> str:
    """``REVISIT_EHR_<CLINIC>_``: the only variables a clinic's connection may name."""
    return "REVISIT_EHR_" + re.sub(r"[^A-Z0-9]", "_", clinic_id.upper()) + "_"


def secret_problems(clinic_id: str, auth: AuthSettings) -> list[str]:
    """Where a connection names a variable outside its clinic's namespace (field, not value)."""
    prefix = secret_prefix(clinic_id)
    return [
        f"auth.{field}: must start with {prefix}"
        for field in ("token_env", "secret_env", "key_env")
        if (name := getattr(auth, field)) and not name.startswith(prefix)
    ]
