"""Run one service process: ``revisit service NAME`` (what the supervisor and images start)."""

from __future__ import annotations

import importlib
import sys

from shared.config import SERVICE_NAMES, load_settings


def run_service(name: str) -> None:
    if name == "console":  # no database, no broker: the staff console has its own settings
        from services.console.app import serve

        serve()
        return
    if name not in SERVICE_NAMES:
        sys.exit(f"unknown service {name!r}; choose one of: {', '.join(SERVICE_NAMES)}")
    import uvicorn

    from shared.logging import configure_logging

    settings = load_settings()
    configure_logging(name, settings.telemetry.log_level)
    module = importlib.import_module(f"services.{name}.app")
    app = module.create_app(settings)
    uvicorn.run(
        app,
        host=settings.revisit_host,
        port=settings.port_for(name),
        log_config=None,  # our JSON logging, configured above
        access_log=False,  # request lines could carry identifiers in paths
        timeout_graceful_shutdown=5,
        lifespan="on",
    )
