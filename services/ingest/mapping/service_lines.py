"""Which dermatology service line a coded appointment type, service or procedure belongs to.

The table matches exact codes only (never free text, never a diagnosis code): a code it does
not know gives ``ServiceLine.unspecified``. Diagnosis code systems (ICD, LOINC, RxNorm, HL7
tables) are never consulted. A deployment adds or overrides codes with REVISIT_SERVICE_LINE_CODES
(``{"local|BOTOX-20": "neurotoxin"}``); see docs/ingest.md for the whole table.

No SNOMED CT codes are shipped: we only ship codes we could verify; add the ones your EHR uses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from shared.events.common import CodeSystem, ServiceLine

SL = ServiceLine


def _cpt_range(first: int, last: int, line: ServiceLine) -> dict[str, ServiceLine]:
    return {str(code): line for code in range(first, last + 1)}


# CPT (AMA) and HCPCS Level II codes a dermatology practice bills, by what the patient came for.
_CPT: dict[str, ServiceLine] = {
    **_cpt_range(11102, 11107, SL.biopsy_follow_up),  # tangential, punch, incisional biopsy
    **_cpt_range(17311, 17315, SL.mohs),  # Mohs micrographic surgery
    **_cpt_range(11600, 11646, SL.skin_cancer_surgery),  # excision, malignant lesion
    **_cpt_range(17260, 17286, SL.skin_cancer_surgery),  # destruction, malignant lesion
    "96900": SL.phototherapy,  # actinotherapy (UV light)
    **_cpt_range(96910, 96913, SL.phototherapy),  # photochemotherapy (PUVA, UVB)
    **_cpt_range(96920, 96922, SL.phototherapy),  # excimer laser for inflammatory skin disease
    "95044": SL.patch_testing,  # patch or application tests
    "95052": SL.patch_testing,  # photo patch tests
    "96904": SL.skin_check,  # whole-body photography for high-risk nevus monitoring
    "64612": SL.neurotoxin,  # chemodenervation, muscles innervated by the facial nerve
    **_cpt_range(11950, 11954, SL.filler),  # subcutaneous injection of filling material
    "15788": SL.chemical_peel,
    "15789": SL.chemical_peel,
    "15792": SL.chemical_peel,
    "15793": SL.chemical_peel,
    "17360": SL.acne,  # chemical exfoliation for acne
    "10040": SL.acne,  # acne surgery
    **_cpt_range(17106, 17108, SL.laser),  # destruction of cutaneous vascular lesions
    "0479T": SL.laser,  # fractional ablative laser, first 100 cm2
    "0480T": SL.laser,  # ... each additional 100 cm2
    **_cpt_range(99202, 99205, SL.general_dermatology),  # office visit, new patient
    **_cpt_range(99211, 99215, SL.general_dermatology),  # office visit, established patient
}
_HCPCS: dict[str, ServiceLine] = {
    "J0585": SL.neurotoxin,  # onabotulinumtoxinA
    "J0586": SL.neurotoxin,  # abobotulinumtoxinA
    "J0587": SL.neurotoxin,  # rimabotulinumtoxinB
    "J0588": SL.neurotoxin,  # incobotulinumtoxinA
    "Q2026": SL.filler,  # calcium hydroxylapatite (Radiesse)
}
# The practice's own appointment types and fee-schedule keys, compared upper-case with spaces,
# dashes and underscores removed ("Skin check" -> SKINCHECK).
_LOCAL: dict[str, ServiceLine] = {
    **dict.fromkeys(["SKINCHECK", "FBSE", "TBSE", "FULLSKINEXAM", "SKINEXAM"], SL.skin_check),
    **dict.fromkeys(["BIOPSYFU", "BXFU", "BIOPSYRESULTS", "PATHREVIEW"], SL.biopsy_follow_up),
    **dict.fromkeys(["MOHS", "MOHSSURGERY"], SL.mohs),
    **dict.fromkeys(["SKINCANCERSURGERY", "EXCISIONMALIGNANT"], SL.skin_cancer_surgery),
    **dict.fromkeys(["ACNE", "ACNEFU"], SL.acne),
    **dict.fromkeys(["ISOTRETINOIN", "ISOTRET", "IPLEDGE"], SL.isotretinoin),
    "ROSACEA": SL.rosacea,
    **dict.fromkeys(["PSORIASIS", "ECZEMA", "PSORIASISECZEMA"], SL.psoriasis_eczema),
    **dict.fromkeys(["HAIRLOSS", "ALOPECIA"], SL.hair_loss),
    **dict.fromkeys(["PHOTOTHERAPY", "NBUVB", "UVB", "PUVA"], SL.phototherapy),
    **dict.fromkeys(["PATCHTEST", "PATCHTESTING"], SL.patch_testing),
    **dict.fromkeys(["GENDERM", "MEDDERM", "GENERALDERM", "DERMVISIT"], SL.general_dermatology),
    **dict.fromkeys(["COSMETICCONSULT", "COSCONSULT", "AESTHETICCONSULT"], SL.cosmetic_consult),
    **dict.fromkeys(["NEUROTOXIN", "BOTOX", "DYSPORT", "XEOMIN", "TOX"], SL.neurotoxin),
    **dict.fromkeys(["FILLER", "DERMALFILLER"], SL.filler),
    **dict.fromkeys(["LASER", "IPL", "FRAXEL", "LASERTX"], SL.laser),
    **dict.fromkeys(["PEEL", "CHEMPEEL", "CHEMICALPEEL"], SL.chemical_peel),
    "MICRONEEDLING": SL.microneedling,
}
_SHIPPED: dict[CodeSystem, dict[str, ServiceLine]] = {
    CodeSystem.cpt: _CPT,
    CodeSystem.hcpcs: _HCPCS,
    CodeSystem.snomed_ct: {},
    CodeSystem.local: _LOCAL,
}

# Codes meaning "a follow-up visit" without naming the service (a return, not a treatment).
FOLLOW_UP_CODES = frozenset({"FOLLOWUP", "FU", "RECALL", "RETURNVISIT", "390906007", "185389009"})

# FHIR code-system URIs and HL7 v2 coding-system names (table 0396) we recognise.
_FHIR_SYSTEMS = {
    "http://www.ama-assn.org/go/cpt": CodeSystem.cpt,
    "urn:oid:2.16.840.1.113883.6.12": CodeSystem.cpt,
    "urn:oid:2.16.840.1.113883.6.285": CodeSystem.hcpcs,
    "urn:oid:2.16.840.1.113883.6.14": CodeSystem.hcpcs,
    "https://www.cms.gov/medicare/coding/hcpcsreleasecodesets": CodeSystem.hcpcs,
    "http://www.cms.gov/medicare/coding/hcpcsreleasecodesets": CodeSystem.hcpcs,
    "http://snomed.info/sct": CodeSystem.snomed_ct,
    "urn:oid:2.16.840.1.113883.6.96": CodeSystem.snomed_ct,
}
# Standard systems that are not service codes (diagnoses, labs, drugs, HL7 tables): never local.
_NOT_SERVICE = re.compile(
    r"(loinc|icd|rxnorm|nlm\.nih|hl7\.org|unitsofmeasure|ietf|urn:oid:2\.16\.840\.1\.113883\.6\."
    r"(1|3|42|88|90|103|104|4)$|ndc)",
    re.IGNORECASE,
)
_HL7_SYSTEMS = {
    "C4": CodeSystem.cpt,
    "CPT": CodeSystem.cpt,
    "CPT4": CodeSystem.cpt,
    "HCPCS": CodeSystem.hcpcs,
    "HPC": CodeSystem.hcpcs,
    "SCT": CodeSystem.snomed_ct,
    "SNM": CodeSystem.snomed_ct,
    "SNM3": CodeSystem.snomed_ct,
    "SNOMED": CodeSystem.snomed_ct,
    "SNOMEDCT": CodeSystem.snomed_ct,
    "L": CodeSystem.local,
    "": CodeSystem.local,
}
_NORMALISE = re.compile(r"[\s\-_/.]+")


def local_key(code: str) -> str:
    return _NORMALISE.sub("", code).upper()


def fhir_code_system(uri: str | None) -> CodeSystem | None:
    """The code system of a FHIR Coding.system; None for systems that name no service."""
    if not uri:
        return CodeSystem.local
    known = _FHIR_SYSTEMS.get(uri.strip().lower().rstrip("/"))
    if known is not None:
        return known
    return None if _NOT_SERVICE.search(uri) else CodeSystem.local


def hl7_code_system(name: str | None) -> CodeSystem | None:
    """The code system of an HL7 v2 CWE (component 3); None for diagnosis/lab/table systems."""
    key = (name or "").strip().upper()
    if key in _HL7_SYSTEMS:
        return _HL7_SYSTEMS[key]
    return CodeSystem.local if key.startswith("99") else None


class ServiceLineTable:
    """The shipped table plus a deployment's additions (``"system|code": "service_line"``)."""

    def __init__(self, extra: Mapping[str, str] | None = None) -> None:
        self._table = {system: dict(codes) for system, codes in _SHIPPED.items()}
        for key, line in (extra or {}).items():
            system, _, code = key.partition("|")
            target = CodeSystem(system.strip().lower())
            self._table[target][self._key(target, code)] = ServiceLine(line)

    @staticmethod
    def _key(system: CodeSystem, code: str) -> str:
        return local_key(code) if system is CodeSystem.local else code.strip().upper()

    def lookup(self, system: CodeSystem | None, code: str | None) -> ServiceLine | None:
        if system is None or not code:
            return None
        return self._table[system].get(self._key(system, code))

    def first(self, codings: Iterable[tuple[CodeSystem | None, str | None]]) -> ServiceLine:
        """The service line of the first coding the table knows, else ``unspecified``."""
        for system, code in codings:
            line = self.lookup(system, code)
            if line is not None:
                return line
        return ServiceLine.unspecified


def is_follow_up_code(code: str | None) -> bool:
    return bool(code) and local_key(code or "") in FOLLOW_UP_CODES
