"""The metrics reports API (``/reports/...``); ``/metrics`` itself is the shared runtime's."""

from fastapi import APIRouter

from services.metrics.api import pilots, reports

ROUTERS: tuple[APIRouter, ...] = (reports.router, pilots.router)
