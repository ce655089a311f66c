"""MLLP over TLS with a real handshake: a throwaway CA signs the listener's certificate and the
clinic's client certificate; a certificate from another CA and a peer outside the allow-list are
refused before anything is read."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from services.ingest.ingestion import ingestion_of
from services.ingest.mllp import MllpListener
from services.ingest.settings import IngestSettings
from tests.ingest.conftest import Ingest
from tests.ingest.test_hl7v2_mapping import siu
from tests.tls_certs import Authority, Issued

pytestmark = pytest.mark.integration
START, END = b"\x0b", b"\x1c\x0d"


class Pki:
    def __init__(self, folder: Path) -> None:
        self.clinic_ca = Authority(folder, "clinic")
        self.server = self.clinic_ca.issue("ingest", server=True)
        self.client = self.clinic_ca.issue("ehr-engine", server=False)
        self.stranger = Authority(folder, "stranger").issue("ehr-engine", server=False)

    def client_context(self, cert: Issued | None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.clinic_ca.cert))
        if cert is not None:
            context.load_cert_chain(str(cert.cert), str(cert.key))
        return context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("mllp-tls"))


@contextlib.asynccontextmanager
async def listener(ingest: Ingest, **overrides: Any) -> AsyncIterator[int]:
    """A second MLLP listener of the running ingest, with other settings; yields its port."""
    ingestion = ingestion_of(ingest.runtime)
    settings = ingestion.settings.model_copy(update={"mllp_port": 0, **overrides})
    extra = MllpListener(ingest.runtime, replace(ingestion, settings=settings))
    await extra.start()
    try:
        assert extra.port is not None
        yield extra.port
    finally:
        await extra.stop()


async def exchange(port: int, message: str, context: ssl.SSLContext | None) -> list[str]:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="localhost" if context else None
    )
    try:
        writer.write(START + message.encode() + END)
        await writer.drain()
        frame = await asyncio.wait_for(reader.readuntil(END), timeout=10)
        return frame[1:-2].decode().strip("\r").split("\r")
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def test_a_message_over_mutual_tls_is_acknowledged_and_published(
    ingest: Ingest, pki: Pki
) -> None:
    clinic_id, key = await ingest.new_clinic("tls")
    async with listener(
        ingest,
        mllp_tls_certfile=str(pki.server.cert),
        mllp_tls_keyfile=str(pki.server.key),
        mllp_tls_client_cafile=str(pki.clinic_ca.cert),
    ) as port:
        ack = await exchange(
            port, siu(security=key, control="TLS1"), pki.client_context(pki.client)
        )
    assert ack[1].startswith("MSA|AA|TLS1")
    events = await ingest.topic_events(clinic_id, 2)
    assert "AppointmentBooked" in [e["type"] for e in events]


async def refused(attempt: Callable[[], Any]) -> BaseException:
    try:
        await attempt()
    except (ssl.SSLError, ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
        return exc
    raise AssertionError("the listener answered")


async def test_a_client_certificate_from_another_ca_or_none_is_refused(
    ingest: Ingest, pki: Pki
) -> None:
    clinic_id, key = await ingest.new_clinic("tls-stranger")
    async with listener(
        ingest,
        mllp_tls_certfile=str(pki.server.cert),
        mllp_tls_keyfile=str(pki.server.key),
        mllp_tls_client_cafile=str(pki.clinic_ca.cert),
    ) as port:
        for cert in (pki.stranger, None):
            context = pki.client_context(cert)
            await refused(lambda c=context: exchange(port, siu(security=key, control="X1"), c))
        # Plaintext to a TLS listener gets no ACK either.
        await refused(lambda: exchange(port, siu(security=key, control="X2"), None))
    assert await ingest.events_staged(clinic_id) == 0


async def test_a_peer_outside_the_allow_list_is_closed_without_an_answer(ingest: Ingest) -> None:
    clinic_id, _key = await ingest.new_clinic("peers")
    async with listener(
        ingest, mllp_clinic_id=clinic_id, mllp_allowed_peers="10.20.0.0/16, 192.0.2.7"
    ) as port:
        await refused(lambda: exchange(port, siu(control="P1"), None))
    async with listener(ingest, mllp_clinic_id=clinic_id, mllp_allowed_peers="127.0.0.0/8") as port:
        ack = await exchange(port, siu(control="P2"), None)
    assert ack[1].startswith("MSA|AA|P2")
    assert await ingest.events_staged(clinic_id) > 0  # only the allowed peer's message


def test_production_refuses_a_clinic_bound_listener_open_to_any_peer() -> None:
    open_listener = IngestSettings(mllp_clinic_id="clinic-a")
    with pytest.raises(ValueError, match="REVISIT_MLLP_ALLOWED_PEERS"):
        open_listener.refuse_untrusted_clinic_listener("production")
    open_listener.refuse_untrusted_clinic_listener("dev")
    IngestSettings(
        mllp_clinic_id="clinic-a", mllp_allowed_peers="10.0.0.0/8"
    ).refuse_untrusted_clinic_listener("production")


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"mllp_allowed_peers": "10.0.0.0/8, clinic-vpn"}, "REVISIT_MLLP_ALLOWED_PEERS"),
        ({"mllp_tls_certfile": "/run/ingest.pem"}, "REVISIT_MLLP_TLS_KEYFILE"),
        ({"mllp_tls_client_cafile": "/run/ca.pem"}, "REVISIT_MLLP_TLS_CLIENT_CAFILE"),
    ],
)
def test_bad_mllp_security_settings_are_refused_by_name(values: dict[str, str], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        IngestSettings(**values)
