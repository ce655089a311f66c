"""Every service has the same floor plan (ARCHITECTURE.md), and the boundaries between them hold.

The floor plan of ``services/<name>/``::

    domain/      pure: state and rules; imports no I/O library and none of its service's shells
    handlers.py  the load -> decide -> save step for events and timers (``handlers/`` once it
                 splits by meaning); no SQL of its own: it calls repository functions
    repository/  all of the service's SQL (SQLAlchemy Core tables and the queries on them)
    api/         FastAPI routes, each declaring what it returns; no SQL
    (anywhere)   what routes and handlers share is the service's typed context
                 (``ServiceSpec[C]``, ``runtime.context``), never ``runtime.extras``
    adapters/    the outside world (SMS, e-mail, pager, EHR) when the service talks to it
    app.py       the composition root;  settings.py  its settings;  migrations/  its schema

plus the few extra entries in ``ALLOWANCES``, each with its reason.

``test_service_follows_the_floor_plan`` checks one service against all of that at once and lists
every violation. Services still being moved into the plan are in ``NOT_YET_CONVERTED``, where the
test is a strict xfail: when a service passes, the xfail itself fails, so the service must then
be taken off the set (and can never slip back unnoticed). To convert a service: take it off the
set, run ``pytest tests/test_architecture.py -k <name>``, and move code until the list is empty.

The boundary tests (pure domains, no service importing another, shared/ importing no service)
hold for every service already and are never xfail.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

REPO = Path(__file__).resolve().parents[1]
SERVICES_DIR = REPO / "services"
SERVICES = sorted(p.name for p in SERVICES_DIR.iterdir() if (p / "app.py").is_file())

NOT_YET_CONVERTED = {
    "console",
    "escalation",
    "ingest",
    "messenger",
    "metrics",
    "segmenter",
    "sequencer",
}

FLOOR_PLAN = {
    "__init__.py",
    "domain",
    "handlers.py",
    "handlers",
    "repository",
    "api",
    "adapters",
    "app.py",
    "settings.py",
    "migrations",
}
PACKAGES = ("domain", "handlers", "repository", "api", "adapters")
REQUIRED = {"domain", "api", "app.py", "settings.py"}
REQUIRED_WITH_A_SCHEMA = {"repository", "migrations"}  # and handlers.py or handlers/

# Entries a service may have beyond the floor plan. Keep it short; every one needs its reason.
ALLOWANCES: dict[str, dict[str, str]] = {
    "messenger": {
        "replies": "the labelled reply corpus, its training and evaluation tools "
        "(make train-replies / eval-replies) and the model file they ship",
    },
    "console": {
        "templates": "the Jinja pages the console renders",
        "static": "the CSS and JavaScript it serves as they are",
    },
}
# Services that own no Postgres schema: no migrations, no events, so no handlers either.
NO_SCHEMA = {"console": "it keeps only sign-in sessions, in signed cookies"}

MAX_LINES = 300
# Modules allowed past MAX_LINES, by path under services/, each with its reason. Keep it small:
# a module that grows past ~300 lines splits by meaning.
LONG_MODULES: dict[str, str] = {}

IO_LIBRARIES = (
    "sqlalchemy",
    "fastapi",
    "starlette",
    "httpx",
    "faststream",
    "asyncpg",
    "aiokafka",
    "socket",
    "asyncio",
)
# shared/ modules that do I/O or hold running machinery: a domain receives their results instead.
IO_SHARED = (
    "shared.admin",
    "shared.consumer",
    "shared.db",
    "shared.dlq",
    "shared.inbox",
    "shared.kafka",
    "shared.loops",
    "shared.outbox",
    "shared.runtime",
    "shared.timer_poller",
    "shared.timers",
)
SHELLS = ("handlers", "repository", "api", "adapters", "app")
# Pure modules that live outside domain/ until their service is converted.
ALSO_PURE: dict[str, list[str]] = {"ingest": ["submissions.py", "mapping", "fhir", "hl7v2"]}
# SQLAlchemy names api/ and handlers may import: session and engine types for annotations.
SQLALCHEMY_TYPES = {"AsyncSession", "AsyncConnection", "AsyncEngine", "async_sessionmaker"}


# --- reading the code ------------------------------------------------------------------------


def modules(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*.py")):
        if "migrations" not in path.relative_to(root).parts:
            yield path


@cache
def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, absolute (relative imports resolved)."""
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def type_checking_only(tree: ast.Module) -> set[ast.AST]:
    """Nodes under ``if TYPE_CHECKING:`` (imports there are for annotations only)."""
    nodes: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                nodes |= set(ast.walk(child))
    return nodes


def sql_in(path: Path) -> list[str]:
    """Why ``path`` (api/ or handlers) holds SQL: ``text(...)`` or a SQLAlchemy import."""
    tree = parsed(path)
    exempt = type_checking_only(tree)
    found = []
    for node in ast.walk(tree):
        if node in exempt:
            continue
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name == "text":
                found.append(f"line {node.lineno}: text(...)")
        elif isinstance(node, ast.Import):
            found += [
                f"line {node.lineno}: import {a.name}"
                for a in node.names
                if a.name.startswith("sqlalchemy")
            ]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            names = {a.name for a in node.names} - SQLALCHEMY_TYPES
            if names:
                found.append(
                    f"line {node.lineno}: from {node.module} import {', '.join(sorted(names))}"
                )
    return found


# --- the service apps --------------------------------------------------------------------------


def build(service: str) -> Any:
    """The service's FastAPI app, built without starting it (nothing may connect here)."""
    app_module = importlib.import_module(f"services.{service}.app")
    if service == "console":
        return app_module.create_app()
    from shared.config import AuthSettings, DatabaseSettings, KafkaSettings, RevisitSettings

    settings = RevisitSettings(
        db=DatabaseSettings(database_url="postgresql+asyncpg://nobody@127.0.0.1:9/none"),
        kafka=KafkaSettings(kafka_bootstrap_servers="127.0.0.1:9"),
        auth=AuthSettings(revisit_jwt_secret="x" * 40),
        revisit_profile="test",
    )
    return app_module.create_app(settings)


def says_what_it_returns(schema: dict[str, Any]) -> bool:
    """A JSON schema that describes the body: a model, a list or map of them, a typed value.
    ``{}`` (no annotation) and a free-form object (``dict[str, Any]``) do not."""
    if "$ref" in schema:
        return True
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return any(says_what_it_returns(s) for s in schema[key] if s.get("type") != "null")
    kind = schema.get("type")
    if kind == "array":
        return says_what_it_returns(schema.get("items", {}))
    if kind == "object":
        extra = schema.get("additionalProperties")
        return bool(schema.get("properties")) or (
            isinstance(extra, dict) and says_what_it_returns(extra)
        )
    return kind is not None


def routes_without_a_response_model(app: Any) -> list[str]:
    """Operations whose OpenAPI page does not say what a success returns.

    A route declares ``response_model=`` or a return annotation FastAPI uses (a pydantic model,
    a list of them); a route answering something other than JSON declares its
    ``response_class`` (HTML, plain text, a redirect), and a 204 has nothing to describe.
    """
    missing = []
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            described = False
            for status, answer in operation["responses"].items():
                if status == "204" or status.startswith("3"):
                    described = True
                if not status.startswith("2"):
                    continue
                for media, content in (answer.get("content") or {}).items():
                    if "json" not in media or says_what_it_returns(content.get("schema", {})):
                        described = True
            if not described:
                missing.append(f"{method.upper()} {path}")
    return missing


# --- the floor plan ----------------------------------------------------------------------------


def floor_plan_violations(service: str) -> list[str]:
    root = SERVICES_DIR / service
    allowed = FLOOR_PLAN | set(ALLOWANCES.get(service, {}))
    entries = {
        p.name for p in root.iterdir() if p.name != "__pycache__" and not p.name.startswith(".")
    }
    problems = [f"{name}: not in the floor plan" for name in sorted(entries - allowed)]
    required = set(REQUIRED)
    if service not in NO_SCHEMA:
        required |= REQUIRED_WITH_A_SCHEMA
        if not entries & {"handlers.py", "handlers"}:
            problems.append("handlers.py (or handlers/): missing")
    problems += [f"{name}: missing" for name in sorted(required - entries)]
    for package in PACKAGES:
        if package in entries and not (root / package / "__init__.py").is_file():
            problems.append(f"{package}/: must be a package (with __init__.py)")
    for shell in ("api", "handlers.py", "handlers"):
        if (root / shell).exists():
            for path in modules(root / shell):
                problems += [f"{path.relative_to(root)}: SQL ({why})" for why in sql_in(path)]
    for path in modules(root):
        problems += [
            f"{path.relative_to(root)}: line {node.lineno}: .extras (keep it in the typed context)"
            for node in ast.walk(parsed(path))
            if isinstance(node, ast.Attribute) and node.attr == "extras"
        ]
    for path in modules(root):
        name = str(path.relative_to(SERVICES_DIR))
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES and name not in LONG_MODULES:
            problems.append(f"{path.relative_to(root)}: {lines} lines (split it by meaning)")
    problems += [
        f"route {route}: no response model"
        for route in routes_without_a_response_model(build(service))
    ]
    return problems


@pytest.mark.parametrize(
    "service",
    [
        pytest.param(
            name,
            marks=pytest.mark.xfail(
                name in NOT_YET_CONVERTED,
                reason="not yet converted to the floor plan",
                strict=True,
            ),
        )
        for name in SERVICES
    ],
)
def test_service_follows_the_floor_plan(service: str) -> None:
    problems = floor_plan_violations(service)
    assert not problems, (
        f"{service} is not in the floor plan yet (move code into domain/, handlers, repository/, "
        "api/ or adapters/; an extra entry needs an allowance with its reason):\n  "
        + "\n  ".join(problems)
    )


def test_the_lists_name_only_real_services_and_modules() -> None:
    assert set(SERVICES) >= NOT_YET_CONVERTED
    assert set(ALLOWANCES) | set(NO_SCHEMA) | set(ALSO_PURE) <= set(SERVICES)
    assert all((SERVICES_DIR / name).is_file() for name in LONG_MODULES)
    assert all(ALLOWANCES.values()) and all(LONG_MODULES.values())


# --- boundaries that hold for every service -------------------------------------------------


def pure_modules(service: str) -> list[Path]:
    root = SERVICES_DIR / service
    places = [root / "domain", root / "domain.py"]
    places += [root / extra for extra in ALSO_PURE.get(service, [])]
    return [path for place in places if place.exists() for path in modules(place)]


@pytest.mark.parametrize("service", SERVICES)
def test_the_domain_imports_nothing_that_does_io(service: str) -> None:
    shells = tuple(f"services.{service}.{shell}" for shell in SHELLS)
    forbidden = IO_LIBRARIES + IO_SHARED + shells
    found = {
        f"{path.relative_to(SERVICES_DIR)} imports {name}"
        for path in pure_modules(service)
        for name in imported(path)
        if within(name, forbidden)
    }
    assert pure_modules(service), f"{service} has no domain"
    assert not found, sorted(found)


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_imports_another(service: str) -> None:
    others = tuple(f"services.{name}" for name in SERVICES if name != service)
    found = {
        f"{path.relative_to(SERVICES_DIR)} imports {name}"
        for path in modules(SERVICES_DIR / service)
        for name in imported(path)
        if within(name, others)
    }
    assert not found, sorted(found)


def test_shared_imports_no_service_and_no_tool() -> None:
    found = {
        f"{path.relative_to(REPO)} imports {name}"
        for path in modules(REPO / "shared")
        for name in imported(path)
        if within(name, ("services", "revisit", "simulator", "bench", "tests"))
    }
    assert not found, sorted(found)


class Case(BaseModel):
    case_id: str


def test_the_response_model_rule_tells_a_described_route_from_a_free_form_one() -> None:
    app = FastAPI()

    @app.get("/typed")
    def typed() -> list[Case]:
        return []

    @app.get("/page", response_class=HTMLResponse)
    def page() -> str:
        return "<p>hello</p>"

    @app.delete("/gone", status_code=204)
    def gone() -> None:
        return None

    @app.get("/free")
    def free() -> dict[str, Any]:
        return {}

    @app.get("/unsaid")
    def unsaid():  # type: ignore[no-untyped-def]
        return {}

    assert routes_without_a_response_model(app) == ["GET /free", "GET /unsaid"]
