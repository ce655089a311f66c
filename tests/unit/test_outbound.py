"""The outbound allow-list, and the notifier factory applying it (and the clinic's secret
namespace) again before every delivery, whatever was stored earlier."""

from __future__ import annotations

import httpx
import pytest

from services.escalation.notifiers import NotifierFactory, NotifierKind
from services.escalation.notifiers.config import NotifierConfig, NotifierMisconfigured
from shared.outbound import OutboundPolicy, OutboundRefused


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://localhost:8001/x",
        "http://10.1.2.3/x",
        "http://172.16.0.1/x",
        "http://192.168.1.1/x",
        "http://169.254.169.254/latest",
        "http://100.64.0.1/x",
        "http://[fe80::1]/x",
        "http://[fd00::1]/x",
        "http://[::ffff:10.0.0.1]/x",
        "http://0.0.0.0/x",
        "http://224.0.0.1/x",
        "ftp://8.8.8.8/x",
        "http://u:p@8.8.8.8/x",
    ],
)
async def test_private_loopback_link_local_and_odd_urls_are_refused(url: str) -> None:
    with pytest.raises(OutboundRefused):
        await OutboundPolicy().check_url(url)


async def test_public_addresses_pass_and_networks_open_only_on_purpose() -> None:
    await OutboundPolicy().check_url("https://8.8.8.8/hook")
    relay = OutboundPolicy.parse("10.20.0.0/16")
    await relay.check_host("10.20.3.4", 25)
    with pytest.raises(OutboundRefused):
        await relay.check_host("10.21.0.1", 25)


async def test_a_host_list_limits_destinations() -> None:
    listed = OutboundPolicy.parse(hosts="events.pagerduty.com,.slack.com")
    await listed.check_url("https://events.pagerduty.com/v2/enqueue")
    await listed.check_url("https://hooks.slack.com/services/x")
    with pytest.raises(OutboundRefused, match="not in the outbound allow-list"):
        await listed.check_url("https://8.8.8.8/hook")


def test_a_malformed_network_setting_is_named() -> None:
    with pytest.raises(ValueError, match="not a network"):
        OutboundPolicy.parse("10.0.0.0/33")


async def test_the_factory_refuses_stored_configurations_at_delivery() -> None:
    env = {"REVISIT_NOTIFIER_CLINIC_B__PD": "routing-key", "REVISIT_NOTIFIER_CLINIC_A__PD": "k"}
    async with httpx.AsyncClient() as http:
        factory = NotifierFactory(
            http=http,
            sessions=None,
            env=env,
            timeout=1,
            policy=OutboundPolicy(),  # type: ignore[arg-type]
        )
        # another clinic's variable, stored before the namespace existed
        pd = NotifierConfig("pd", NotifierKind.pagerduty, {}, "REVISIT_NOTIFIER_CLINIC_B__PD")
        with pytest.raises(NotifierMisconfigured, match="REVISIT_NOTIFIER_CLINIC_A__"):
            await factory.build(pd, "clinic-a")
        assert await factory.build(
            NotifierConfig("pd", NotifierKind.pagerduty, {}, "REVISIT_NOTIFIER_CLINIC_A__PD"),
            "clinic-a",
        )
        hook = NotifierConfig(
            "wh", NotifierKind.webhook, {"url": "http://10.0.0.7/x"}, secret_value="s" * 20
        )
        with pytest.raises(NotifierMisconfigured, match="private, loopback or link-local"):
            await factory.build(hook, "clinic-a")
