"""The console's outside world: one small client per service API it calls (each behind a base
class, with the httpx implementation beside it), the OIDC provider, and the staff tokens the
services accept today."""
