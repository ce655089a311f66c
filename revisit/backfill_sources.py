"""What `revisit backfill` reads: a folder of an EHR's history, cut into ingest submissions.

Taken, by file name (any depth, sorted; hidden files, such as the checkpoint, left out; files
whose name says "patient" first, so demographics arrive before the records that name them):

- ``*.ndjson``: a FHIR bulk export (``$export``): one resource per line, sent as ``collection``
  Bundles of ``bundle_size`` resources to ``POST /fhir/r4``;
- ``*.json``: one FHIR resource or Bundle (``resourceType``) to ``POST /fhir/r4``, or native
  events (``{"events": [...]}``) to ``POST /events``;
- ``*.hl7``, ``*.er7``: HL7 v2 messages (each starts with ``MSH|``; segments end in CR, LF or
  CRLF), ``hl7_per_post`` messages per ``POST /hl7v2``.

Every submission has a stable identity (file, index): the checkpoint records the ones ingest
accepted, so a resumed run skips them, and one sent twice is recognised by ingest anyway.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

FHIR_JSON = "application/fhir+json"
SUFFIXES = {".ndjson", ".json", ".hl7", ".er7"}


class SourceError(ValueError):
    """A file that cannot be read as what its name says (the message names file and line)."""


@dataclass(frozen=True)
class Submission:
    file: str  # path relative to the folder
    index: int  # position in the file, from 0
    route: str  # /fhir/r4, /hl7v2 or /events
    content_type: str
    body: bytes
    records: int  # resources, messages or events in it

    @property
    def key(self) -> str:
        return f"{self.file}#{self.index}"


def files(folder: Path) -> list[Path]:
    found = [
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith(".")
    ]
    return sorted(
        found, key=lambda p: ("patient" not in p.name.lower(), str(p.relative_to(folder)))
    )


def count_records(path: Path) -> int:
    """How many records a file holds (for the progress bar), without parsing them."""
    suffix = path.suffix.lower()
    if suffix == ".ndjson":
        with path.open("rb") as f:
            return sum(1 for line in f if line.strip())
    if suffix in (".hl7", ".er7"):
        return path.read_bytes().count(b"MSH|")
    return max(1, path.read_bytes().count(b'"resource"'))  # a Bundle's entries


def submissions(
    path: Path, folder: Path, bundle_size: int = 200, hl7_per_post: int = 100
) -> Iterator[Submission]:
    name = str(path.relative_to(folder))
    suffix = path.suffix.lower()
    if suffix == ".ndjson":
        yield from _ndjson(path, name, bundle_size)
    elif suffix in (".hl7", ".er7"):
        yield from _hl7(path, name, hl7_per_post)
    else:
        yield _json(path, name)


def _ndjson(path: Path, name: str, size: int) -> Iterator[Submission]:
    chunk: list[dict[str, Any]] = []
    index = 0
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                resource = json.loads(line)
            except ValueError:
                raise SourceError(f"{name}:{number}: not a JSON resource") from None
            if not isinstance(resource, dict) or "resourceType" not in resource:
                raise SourceError(f"{name}:{number}: no resourceType")
            chunk.append(resource)
            if len(chunk) >= size:
                yield _bundle(name, index, chunk)
                chunk, index = [], index + 1
    if chunk:
        yield _bundle(name, index, chunk)


def _bundle(name: str, index: int, resources: list[dict[str, Any]]) -> Submission:
    entries = []
    for r in resources:
        entry: dict[str, Any] = {"resource": r}
        if r.get("id"):
            entry["fullUrl"] = f"{r['resourceType']}/{r['id']}"
        entries.append(entry)
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    body = json.dumps(bundle, separators=(",", ":")).encode()
    return Submission(name, index, "/fhir/r4", FHIR_JSON, body, len(resources))


def _json(path: Path, name: str) -> Submission:
    try:
        document = json.loads(path.read_bytes())
    except ValueError:
        raise SourceError(f"{name}: not JSON") from None
    body = path.read_bytes()
    if isinstance(document, dict) and "resourceType" in document:
        entries = document.get("entry") if document["resourceType"] == "Bundle" else None
        count = len(entries) if isinstance(entries, list) else 1
        return Submission(name, 0, "/fhir/r4", FHIR_JSON, body, count)
    if isinstance(document, dict) and isinstance(document.get("events"), list):
        return Submission(name, 0, "/events", "application/json", body, len(document["events"]))
    raise SourceError(f"{name}: neither a FHIR resource nor native events")


def _hl7(path: Path, name: str, per_post: int) -> Iterator[Submission]:
    text = path.read_bytes().decode("utf-8", errors="strict").replace("\r\n", "\r")
    segments = [s for s in text.replace("\n", "\r").split("\r") if s.strip()]
    messages: list[list[str]] = []
    for number, segment in enumerate(segments, start=1):
        if segment.startswith("MSH|"):
            messages.append([segment])
        elif not messages:
            raise SourceError(f"{name}: segment {number} comes before any MSH")
        else:
            messages[-1].append(segment)
    for index, start in enumerate(range(0, len(messages), per_post)):
        chunk = messages[start : start + per_post]
        body = "\r".join("\r".join(m) for m in chunk) + "\r"
        yield Submission(name, index, "/hl7v2", "text/plain", body.encode(), len(chunk))


def split(sub: Submission) -> list[Submission]:
    """A refused submission's records, one per submission (its index says where it was)."""
    if sub.route == "/hl7v2":
        text = sub.body.decode()
        parts = [p for p in re.split(r"\r(?=MSH\|)", text) if p.strip()]
        return [
            Submission(sub.file, sub.index, sub.route, sub.content_type, p.encode(), 1)
            for p in parts
        ]
    document = json.loads(sub.body)
    if document.get("resourceType") == "Bundle" and document.get("type") == "collection":
        return [_bundle(sub.file, sub.index, [entry["resource"]]) for entry in document["entry"]]
    if isinstance(document.get("events"), list):
        return [
            Submission(
                sub.file,
                sub.index,
                sub.route,
                sub.content_type,
                json.dumps({"events": [e]}).encode(),
                1,
            )
            for e in document["events"]
        ]
    return [replace(sub, records=1)]  # one document: refused as it is
