"""Pure rules of metrics: what each figure means (no I/O imports).

- ``history``: the facts kept per patient, merged from events in any order, idempotently;
- ``attribution``: episodes and their outcomes (the definitions of every figure);
- ``counting``: counts kept per event (pipeline and send figures);
- ``pilots``: pilot weeks and the arm comparison; ``stats``: proportions and intervals.
"""
