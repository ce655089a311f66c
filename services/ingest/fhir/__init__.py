"""FHIR R4 (read with fhir.resources' R4B models): documents, references, per-resource mapping."""
