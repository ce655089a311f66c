"""The EHR write side: per-clinic connections, authorisation, identity, booking, the chart.

- ``domain/``: pure (no I/O imports): the connection's settings and code mappings, what a
  CapabilityStatement allows, the FHIR resources Revisit reads and writes, identity decisions,
  the SMART client assertion, the Communication written to the chart.
- ``auth.py``, ``client.py``, ``scheduling.py``, ``routing.py``: the outside world (httpx):
  token sources, the FHIR client, the booking adapter per connection and the per-clinic choice.
- ``store.py``: this package's SQL (connections, identifiers, identity links, booking tasks,
  the chart queue). ``handoff.py``, ``chart.py``: the steps that use them. ``api.py``: routes.
"""
