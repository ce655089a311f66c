"""One answer, two shapes: JSON (default) or CSV (``?format=csv`` or ``Accept: text/csv``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from fastapi import Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

Format = Literal["json", "csv"]


def wants_csv(request: Request, fmt: Format | None) -> bool:
    if fmt is not None:
        return fmt == "csv"
    accept = request.headers.get("accept", "").lower()
    return "text/csv" in accept and "application/json" not in accept


def cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float | Decimal):
        return f"{float(value):.6g}"
    return value


def plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return value


def rows_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    names = list(columns or (rows[0].keys() if rows else []))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow([cell(row.get(n)) for n in names])
    return out.getvalue()


def respond(
    request: Request,
    fmt: Format | None,
    name: str,
    body: Mapping[str, Any],
    csv_rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
) -> Response:
    if wants_csv(request, fmt):
        return Response(
            rows_csv(csv_rows, columns),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    clean = {
        k: [{c: plain(v) for c, v in r.items()} for r in v] if k == "rows" else v
        for k, v in body.items()
    }
    return JSONResponse(jsonable_encoder(clean))
