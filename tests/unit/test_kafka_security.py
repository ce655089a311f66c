"""Kafka transport security: the settings, the production refusal, and every client built with
them.

The embedded broker (tansu) cannot serve TLS with a key and certificate from its command line
here, and keeps SCRAM users only in its own storage, so these tests check what each client is
configured with, not a live handshake against it.
"""

from __future__ import annotations

import ast
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from shared.config import KafkaSettings, RevisitSettings
from shared.kafka import make_admin, make_broker, make_consumer, make_producer
from tests.tls_certs import Authority

ROOT = Path(__file__).resolve().parents[2]
SECRET = "x" * 40


def secure(**overrides: Any) -> KafkaSettings:
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": "kafka-1.internal:9093",
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": "revisit-ingest",
        "kafka_sasl_password": "pw-from-the-secret",
    }
    return KafkaSettings(**(values | overrides))


def production(kafka: KafkaSettings) -> RevisitSettings:
    return RevisitSettings(
        revisit_profile="production",
        revisit_metrics_token="m" * 32,
        db={"database_url": "postgresql+asyncpg://u:p@db:5432/revisit"},
        kafka=kafka,
        # production: staff tokens from an identity provider, never an HS256 secret
        auth={"revisit_oidc_issuer": "https://id.clinic.example", "revisit_oidc_audience": "ops"},
        telemetry={"revisit_pseudonym_key": "p" * 32},
    )


# -- settings -------------------------------------------------------------------------------------


def test_scram_over_tls_settings_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k:9093")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "revisit")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "pw")
    settings = KafkaSettings()
    assert settings.uses_tls
    assert (settings.kafka_sasl_mechanism, settings.kafka_sasl_username) == (
        "SCRAM-SHA-256",
        "revisit",
    )
    assert "pw" not in repr(settings)  # the password stays out of reprs and tracebacks


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"kafka_sasl_mechanism": ""}, "KAFKA_SASL_MECHANISM"),
        ({"kafka_sasl_password": ""}, "KAFKA_SASL_PASSWORD"),
        ({"kafka_security_protocol": "SSL"}, "KAFKA_SASL_MECHANISM is set"),
        ({"kafka_sasl_mechanism": "PLAIN"}, "kafka_sasl_mechanism"),
        ({"kafka_ssl_certfile": "/run/client.pem"}, "KAFKA_SSL_KEYFILE"),
        (
            {"kafka_security_protocol": "PLAINTEXT", "kafka_sasl_mechanism": ""},
            None,
        ),
    ],
)
def test_incomplete_or_contradictory_security_settings_are_refused_by_name(
    overrides: dict[str, Any], says: str | None
) -> None:
    if says is None:
        assert secure(**overrides).kafka_security_protocol == "PLAINTEXT"
        return
    with pytest.raises(ValidationError) as refused:
        secure(**overrides)
    assert says in str(refused.value)
    assert "pw-from-the-secret" not in str(refused.value)


def test_tls_files_without_tls_are_refused() -> None:
    with pytest.raises(ValidationError, match="KAFKA_SSL_"):
        KafkaSettings(kafka_bootstrap_servers="k:9092", kafka_ssl_cafile="/run/ca.pem")


# -- production -----------------------------------------------------------------------------------


def test_production_refuses_a_plaintext_broker_and_names_the_setting_that_allows_it() -> None:
    with pytest.raises(ValidationError) as refused:
        production(KafkaSettings(kafka_bootstrap_servers="kafka:9092"))
    assert "KAFKA_SECURITY_PROTOCOL is PLAINTEXT" in str(refused.value)
    assert "KAFKA_ALLOW_PLAINTEXT=true" in str(refused.value)
    with pytest.raises(ValidationError, match="SASL_PLAINTEXT"):
        production(secure(kafka_security_protocol="SASL_PLAINTEXT"))


def test_production_accepts_tls_or_a_plaintext_broker_explicitly_allowed() -> None:
    assert production(secure()).kafka.uses_tls
    assert production(
        KafkaSettings(kafka_bootstrap_servers="k:9093", kafka_security_protocol="SSL")
    )
    allowed = KafkaSettings(kafka_bootstrap_servers="kafka:9092", kafka_allow_plaintext=True)
    assert production(allowed).kafka.kafka_allow_plaintext
    # Outside production a plaintext broker (the embedded one) needs nothing.
    assert RevisitSettings(
        db={"database_url": "postgresql+asyncpg://u:p@db/r"},
        kafka=KafkaSettings(kafka_bootstrap_servers="127.0.0.1:9092"),
    )


# -- every client ---------------------------------------------------------------------------------


def client_config(client: Any) -> dict[str, Any]:
    """What an aiokafka client (producer, consumer, admin) will connect with."""
    inner = getattr(client, "client", None) or client._client  # the producer names it publicly
    return {
        "security_protocol": inner._security_protocol,
        "ssl_context": inner._ssl_context,
        "sasl_mechanism": inner._sasl_mechanism,
        "sasl_plain_username": inner._sasl_plain_username,
        "sasl_plain_password": inner._sasl_plain_password,
    }


def broker_config(broker: Any) -> dict[str, Any]:
    """What FastStream's broker hands aiokafka for its consumers."""
    options = {"security_protocol": "PLAINTEXT", "ssl_context": None}  # aiokafka's defaults
    options |= broker._connection_kwargs
    return {key: options.get(key) for key in client_config_keys()}


def client_config_keys() -> tuple[str, ...]:
    return (
        "security_protocol",
        "ssl_context",
        "sasl_mechanism",
        "sasl_plain_username",
        "sasl_plain_password",
    )


FACTORIES: dict[str, Callable[[KafkaSettings], Any]] = {
    "make_producer": lambda s: client_config(make_producer(s, "t")),
    "make_consumer": lambda s: client_config(make_consumer(s, "t", group_id=None)),
    "make_admin": lambda s: client_config(make_admin(s, "t")),
    "make_broker": lambda s: broker_config(make_broker(s, "t")),
}


@pytest.mark.parametrize("factory", sorted(FACTORIES))
async def test_every_client_factory_carries_scram_and_tls(factory: str, tmp_path: Path) -> None:
    ca = Authority(tmp_path, "kafka")
    client = ca.issue("revisit", server=False)
    settings = secure(
        kafka_ssl_cafile=str(ca.cert),
        kafka_ssl_certfile=str(client.cert),
        kafka_ssl_keyfile=str(client.key),
    )
    config = FACTORIES[factory](settings)
    assert config["security_protocol"] == "SASL_SSL"
    assert config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert config["sasl_plain_username"] == "revisit-ingest"
    assert config["sasl_plain_password"] == "pw-from-the-secret"
    context = config["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    # The test CA is what the context trusts, not only the system's.
    assert any("kafka test CA" in str(c.get("subject")) for c in context.get_ca_certs())


@pytest.mark.parametrize("factory", sorted(FACTORIES))
async def test_every_client_factory_stays_plaintext_for_the_embedded_broker(factory: str) -> None:
    config = FACTORIES[factory](KafkaSettings(kafka_bootstrap_servers="127.0.0.1:9092"))
    assert config["security_protocol"] == "PLAINTEXT"
    assert config["ssl_context"] is None


def test_factories_cover_every_kind_of_client_shared_kafka_builds() -> None:
    import shared.kafka

    built = {name for name in vars(shared.kafka) if name.startswith("make_")}
    assert built == set(FACTORIES), "a new client factory needs its row in FACTORIES"


KAFKA_CLIENTS = {"AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient", "KafkaBroker"}


def test_no_code_outside_shared_kafka_builds_a_kafka_client_itself() -> None:
    """Services, tools and the dev stack get their clients from shared.kafka, so none can
    miss the security settings (tests and benches talk to the embedded broker directly)."""
    offenders = []
    for package in ("shared", "services", "revisit", "simulator"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "shared" / "kafka.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Call):
                    name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                    if name in KAFKA_CLIENTS:
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}(...)")
    assert not offenders, offenders
