"""The sequencer's tables (schema ``sequencer``): state, configuration, pilots, read queries."""

from services.sequencer.repository.state import SCHEMA

__all__ = ["SCHEMA"]
