"""What a service reads from its environment, for the deployment tests (Compose and Helm): every
variable of the platform's settings and the service's own, and a check that a deployment's
environment for a service sets exactly what it reads."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import pytest
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings


def env_vars(model: type[BaseSettings]) -> dict[str, FieldInfo]:
    """Environment variable -> field, for a settings class and the blocks nested in it."""
    prefix = model.model_config.get("env_prefix", "")
    found: dict[str, FieldInfo] = {}
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseSettings):
            found.update(env_vars(field.annotation))
        else:
            alias = field.validation_alias or field.alias
            found[str(alias or f"{prefix}{name}").upper()] = field
    return found


def settings_classes(service: str) -> list[type[BaseSettings]]:
    """The platform settings (shared/config.py), then the service's own, if it has any."""
    from shared.config import RevisitSettings

    classes: list[type[BaseSettings]] = [RevisitSettings]
    try:
        module = importlib.import_module(f"services.{service}.settings")
    except ModuleNotFoundError:
        return classes
    own = [
        candidate
        for candidate in vars(module).values()
        if isinstance(candidate, type)
        and issubclass(candidate, BaseSettings)
        and candidate.__module__ == module.__name__
    ]
    return classes + own


def check_service_env(service: str, env: Mapping[str, str | None]) -> None:
    """Every platform setting is spelled out, every required one of the service's own is set,
    nothing unread is set, and no listener is left on loopback. (None: a value from a Secret.)"""
    from shared.config import RevisitSettings

    missing = set(env_vars(RevisitSettings)) - set(env)
    assert not missing, f"{service} lacks {sorted(missing)}"
    read: dict[str, FieldInfo] = {}
    for model in settings_classes(service):
        read.update(env_vars(model))
    required = {var for var, field in read.items() if field.is_required()}
    assert required <= set(env), f"{service} lacks {sorted(required - set(env))}"
    unread = set(env) - set(read)
    assert not unread, f"{service} is given {sorted(unread)}, which nothing in it reads"
    for var, field in read.items():
        if field.default in ("127.0.0.1", "localhost", "::1"):
            # Loopback inside a container is unreachable from everything else.
            assert env.get(var) == "0.0.0.0", f"{service}: {var} must listen on 0.0.0.0"


def build_settings(
    service: str, env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch
) -> list[Any]:
    """Every settings object of `service` built from exactly `env` (validates types, secrets)."""
    built = []
    with monkeypatch.context() as m:
        for model in settings_classes(service):
            for var in env_vars(model):
                m.delenv(var, raising=False)
        for var, value in env.items():
            m.setenv(var, value)
        for model in settings_classes(service):
            built.append(model())
    return built
