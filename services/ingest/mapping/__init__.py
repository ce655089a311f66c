"""Route-independent mapping rules (pure): service lines, contacts, places, timing, appointments."""
