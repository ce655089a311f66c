"""HL7 v2 (2.1 to 2.9): reading, mapping SIU and ADT, acknowledgements (pure)."""
