"""Escalation's tables (schema ``escalation``): cases, clinic set-up, page deliveries, audit."""

SCHEMA = "escalation"
