"""The demo practice: what it offers, at what price, and who does what where.

Every ``Service.code`` is one of the practice's own appointment-type keys that ingest ships in
its service-line table (``services/ingest/mapping/service_lines.py``), so the same code maps to
the same service line whether it arrives in an HL7 SCH-7 or a FHIR coding. CPT codes are the
ones a claim would carry; where ingest knows a procedure code for the line it is that one, and
otherwise an office-visit (E/M) code, which ingest reads as general dermatology.
"""

from __future__ import annotations

from shared.events.common import ServiceLine
from simulator.model import Clinic, Location, Provider, Service

SL = ServiceLine

# Ordered so that the first service of a line is the one a patient books when a message brings
# them back for that line (Mohs surgery before the Mohs consultation, say).
CATALOGUE: tuple[Service, ...] = (
    Service("SKINCHECK", "96904", "Full-body skin check", SL.skin_check, 150_00, 30,
            review_days=365),
    Service("BIOPSYFU", "11102", "Biopsy follow-up", SL.biopsy_follow_up, 130_00, 20),
    Service("MOHSSURGERY", "17311", "Mohs surgery", SL.mohs, 1_500_00, 120),
    Service("MOHS", "99204", "Mohs surgery consultation", SL.mohs, 250_00, 30),
    Service("GENDERM", "99213", "Dermatology visit", SL.general_dermatology, 120_00, 20),
    Service("ACNE", "99213", "Acne visit", SL.acne, 120_00, 20, review_days=90),
    Service("ISOTRETINOIN", "99213", "Isotretinoin monthly visit", SL.isotretinoin, 110_00, 20,
            review_days=30),
    Service("ROSACEA", "99213", "Rosacea visit", SL.rosacea, 120_00, 20, review_days=180),
    Service("PSORIASIS", "99214", "Psoriasis & eczema review", SL.psoriasis_eczema, 140_00, 25,
            review_days=180),
    # Narrowband UVB: two or three sessions a week for about eight weeks.
    Service("PHOTOTHERAPY", "96910", "Phototherapy session", SL.phototherapy, 90_00, 15,
            sessions=24, interval_days=3),
    Service("PATCHTEST", "95044", "Patch testing", SL.patch_testing, 350_00, 30),
    Service("COSCONSULT", "99202", "Cosmetic consultation", SL.cosmetic_consult, 100_00, 30,
            cosmetic=True),
    Service("BOTOX", "64612", "Botox (neurotoxin)", SL.neurotoxin, 450_00, 30,
            maintenance_days=90, cosmetic=True),
    Service("FILLER", "11950", "Dermal filler", SL.filler, 750_00, 45,
            maintenance_days=270, cosmetic=True),
    Service("LASER", "0479T", "Laser resurfacing session", SL.laser, 400_00, 45,
            sessions=5, interval_days=35, maintenance_days=365, cosmetic=True),
    Service("CHEMPEEL", "15788", "Chemical peel", SL.chemical_peel, 150_00, 30,
            sessions=4, interval_days=28, maintenance_days=90, cosmetic=True),
)  # fmt: skip

LOCATIONS: tuple[Location, ...] = (
    Location("loc-downtown", "Downtown"),
    Location("loc-northside", "Northside"),
    Location("loc-lakeview", "Lakeview"),
)

_MEDICAL = ("SKINCHECK", "BIOPSYFU", "GENDERM")
_AESTHETIC = ("COSCONSULT", "BOTOX", "FILLER", "LASER", "CHEMPEEL")

PROVIDERS: tuple[Provider, ...] = (
    Provider("dr-rivera", "Dr. Elena Rivera", "loc-downtown", ("MOHS", "MOHSSURGERY", *_MEDICAL)),
    Provider("dr-okafor", "Dr. Marcus Okafor", "loc-downtown",
             (*_MEDICAL, "PSORIASIS", "PHOTOTHERAPY", "PATCHTEST")),
    Provider("np-marchetti", "Sofia Marchetti, NP", "loc-downtown", _AESTHETIC),
    Provider("dr-nair", "Dr. Priya Nair", "loc-northside",
             (*_MEDICAL, "ACNE", "ISOTRETINOIN", "ROSACEA", "PSORIASIS")),
    Provider("dr-lindqvist", "Dr. Hannah Lindqvist", "loc-northside", (*_AESTHETIC, "SKINCHECK")),
    Provider("dr-herrera", "Dr. Tomás Herrera", "loc-lakeview",
             (*_MEDICAL, "ACNE", "ISOTRETINOIN", "ROSACEA", "PSORIASIS", "PATCHTEST")),
    Provider("pa-blake", "Jordan Blake, PA-C", "loc-lakeview",
             ("SKINCHECK", "BIOPSYFU", "GENDERM", "ACNE", "ROSACEA", "PHOTOTHERAPY")),
    Provider("pa-brooks", "Aaliyah Brooks, PA-C", "loc-lakeview", (*_AESTHETIC, "SKINCHECK")),
)  # fmt: skip


def default_clinic(clinic_id: str = "clinic-demo") -> Clinic:
    """The demo practice: three Central Texas offices, eight clinicians, one price list.

    It takes no seed: the practice itself is the same in every run, only its patients vary.
    """
    return Clinic(
        clinic_id=clinic_id,
        name="Bluebonnet Dermatology",
        time_zone="America/Chicago",
        state="TX",
        locations=LOCATIONS,
        providers=PROVIDERS,
        catalogue=CATALOGUE,
    )


def service_for_line(clinic: Clinic, line: ServiceLine | str | None) -> Service:
    """The service a patient books for ``line``; a general visit when the line is unknown."""
    for service in clinic.catalogue:
        if line is not None and service.service_line == line:
            return service
    return clinic.service("GENDERM")


def providers_for(clinic: Clinic, code: str) -> tuple[Provider, ...]:
    return tuple(p for p in clinic.providers if code in p.service_codes)
