"""HL7 v2 over MLLP (0x0B message 0x1C 0x0D) inside the ingest process.

Framing is the ``hl7`` library's (``hl7.mllp``). Every message is answered, in order, with an
ACK (MSA AA) or a NAK (AE: fix and resend; AR: do not resend as is) carrying ERR segments.
A sender may pipeline messages on one connection; each is authenticated and mapped in arrival
order and handed to the ingest ``Batcher``, which commits the messages of every connection (and
of concurrent HTTP requests) together, and only then are they acknowledged. A connection that
closes in the middle of a frame loses only that incomplete frame: nothing of it is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
from collections.abc import Sequence
from typing import Any

from hl7.mllp import InvalidBlockError, start_hl7_server

from services.ingest.batching import Unavailable
from services.ingest.domain import Problem, Refused
from services.ingest.handlers import Outcome
from services.ingest.hl7v2.ack import build_ack
from services.ingest.hl7v2.reading import split_messages
from services.ingest.ingestion import Ingestion
from services.ingest.settings import IngestSettings
from services.ingest.submissions import decode_hl7, hl7_message
from shared.auth import AuthError
from shared.runtime import Runtime

log = logging.getLogger(__name__)
_TEMPORARY = Problem("MSH-10", "temporary failure: resend", "207")
# What a connection owes its sender, in order: the message and its ACK, or the batch outcome.
Answer = tuple[str | None, "str | asyncio.Future[list[Outcome]]"]


class MllpListener:
    def __init__(self, runtime: Runtime, ingestion: Ingestion) -> None:
        self.runtime = runtime
        self.ingestion = ingestion
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.port: int | None = None

    async def start(self) -> None:
        settings = self.ingestion.settings
        self._server = await start_hl7_server(
            self._connected,
            settings.mllp_host,
            settings.mllp_port,
            limit=settings.mllp_max_message_bytes,
            ssl=server_tls(settings),
        )
        sockets = getattr(self._server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else settings.mllp_port
        log.info("mllp listening", extra={"port": self.port})

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=3)

    def _connected(self, reader: Any, writer: Any) -> None:
        peer = writer.get_extra_info("peername")
        if not peer_allowed(peer[0] if peer else None, self.ingestion.settings.peer_networks):
            # Nothing is read from a peer outside the allow-list: not even an ACK goes back.
            log.warning("mllp peer refused", extra={"peer": peer[0] if peer else None})
            writer.close()
            return
        task = asyncio.create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: Any, writer: Any) -> None:
        settings = self.ingestion.settings
        answers: asyncio.Queue[Answer | None] = asyncio.Queue(maxsize=settings.mllp_max_in_flight)
        acks = asyncio.create_task(self._write(answers, writer))
        try:
            while True:
                try:
                    async with asyncio.timeout(settings.mllp_idle_timeout_seconds):
                        frame = await reader.readblock()
                except InvalidBlockError:
                    await answers.put((None, _nak(None, "MLLP", "a block starts with 0x0B")))
                    continue
                except ValueError:  # larger than the limit: the stream can no longer be trusted
                    limit = settings.mllp_max_message_bytes
                    await answers.put((None, _nak(None, "MLLP", f"larger than {limit} bytes")))
                    break
                except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                    break  # closed (perhaps mid-frame: that partial frame is dropped) or idle
                await answers.put(await self._answer(bytes(frame)))
        finally:
            with contextlib.suppress(Exception):
                await answers.put(None)
                await asyncio.wait_for(acks, timeout=10)
            acks.cancel()
            with contextlib.suppress(Exception):
                writer.close()

    async def _write(self, answers: asyncio.Queue[Answer | None], writer: Any) -> None:
        """Write each answer in order; answers already settled go out in one send."""
        broken = False
        held: list[Answer | None] = []
        while True:
            answer = held.pop() if held else await answers.get()
            if answer is None:
                return
            chunk = [await _ack_text(answer)]
            while not answers.empty():
                following = answers.get_nowait()
                if following is None or not _settled(following):
                    held.append(following)
                    break
                chunk.append(await _ack_text(following))
            if broken:
                continue
            try:
                for text in chunk:
                    writer.writeblock(text.encode("utf-8"))
                await writer.drain()
            except (ConnectionError, RuntimeError):
                broken = True  # the sender resends what it has no ACK for; MSH-10 dedupes

    async def _answer(self, frame: bytes) -> Answer:
        """The ACK at once (framing, identity, auth problems) or the batch outcome to await."""
        text = decode_hl7(frame)
        try:
            messages = split_messages(text)
        except Refused as exc:
            return text, build_ack(text, "AR", exc.problems)
        if len(messages) != 1:
            return None, _nak(messages[0], "MSH", "one message per MLLP frame")
        message = messages[0]
        try:
            clinic_id = await self._clinic(message)
        except AuthError as exc:
            return None, _nak(message, "MSH-8", str(exc.detail))
        received_at = self.runtime.clock.now()
        submission = hl7_message(
            message, clinic_id, self.ingestion.context(received_at, clinic_id), "mllp"
        )
        return message, self.ingestion.batcher.enqueue([submission])

    async def _clinic(self, message: str) -> str:
        security = _msh_field(message, 8)
        if security:
            return await self.ingestion.keys.clinic_of(security)
        if self.ingestion.settings.mllp_clinic_id:
            return self.ingestion.settings.mllp_clinic_id
        raise AuthError(401, "no API key: put the clinic's key in MSH-8 (Security)")


def server_tls(settings: IngestSettings) -> ssl.SSLContext | None:
    """TLS 1.2+ with the listener's certificate; with a client CA, a client certificate
    signed by it is required (mutual TLS)."""
    if not settings.mllp_tls_certfile:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.mllp_tls_certfile, settings.mllp_tls_keyfile)
    if settings.mllp_tls_client_cafile:
        context.load_verify_locations(settings.mllp_tls_client_cafile)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def peer_allowed(
    address: str | None, networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    if not networks:
        return True
    if address is None:
        return False
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def _settled(answer: Answer) -> bool:
    return isinstance(answer[1], str) or answer[1].done()


async def _ack_text(answer: Answer) -> str:
    message, pending = answer
    if isinstance(pending, str):
        return pending
    try:
        [outcome] = await pending
    except Unavailable:
        outcome = Outcome("refused", problems=(_TEMPORARY,))
    return build_ack(message, outcome.hl7_code, outcome.problems)


def _nak(message: str | None, loc: str, msg: str) -> str:
    return build_ack(message, "AR", [Problem(loc, msg, "207" if loc != "MSH" else "100")])


def _msh_field(message: str, position: int) -> str:
    head = message.split("\r", 1)[0]
    if len(head) < 4:
        return ""
    fields = head.split(head[3])
    index = position - 1  # MSH-1 is the separator itself
    return fields[index].strip() if index < len(fields) else ""
