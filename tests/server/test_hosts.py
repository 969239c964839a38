"""The `Host` check against DNS rebinding, over real HTTP: `dev` listening on loopback answers
only to this machine's names and those `agent_runtime.allowed_hosts` lists; `dev` listening
beyond, and `serve` anywhere, check only when a list is given; `"*"` turns the check off."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from agent_runtime.cli import dev_defaults, with_hosts_for
from agent_runtime.config import RuntimeConfig
from tests.conftest import example_config
from tests.server.test_origins import _serving

REBOUND = "rebind.evil.example:2024"


def _refusal(host: str, listed: str = "localhost, 127.0.0.1, [::1]") -> dict[str, str]:
    return {
        "detail": f"Host {host!r} is not a name this server answers to ({listed}): a page on "
        "another name pointed at this machine could use the server as its own (DNS "
        "rebinding). To allow the name, add it to agent_runtime.allowed_hosts in langgraph.json",
        "code": "host_not_allowed",
    }


def _listing(
    database: Path, allowed: tuple[str, ...] | None, bind: str, *, dev: bool = True
) -> RuntimeConfig:
    config = example_config(database)
    config = replace(config, http=replace(config.http, allowed_hosts=allowed))
    return with_hosts_for(dev_defaults(config) if dev else config, bind, dev=dev)


@pytest.fixture
async def loopback(database: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for http in _serving(_listing(database, None, "127.0.0.1")):
        yield http


async def test_a_loopback_server_refuses_a_page_on_a_rebound_name(
    loopback: httpx.AsyncClient,
) -> None:
    # What a page on rebind.evil.example sends once its name resolves to 127.0.0.1: to the
    # browser it is same-origin, so the origin check alone would let it through.
    origin = f"http://{REBOUND}"
    searched = await loopback.post(
        "/threads/search", json={}, headers={"Host": REBOUND, "Origin": origin}
    )
    listed = await loopback.get("/assistants/search", headers={"Host": REBOUND})
    created = await loopback.post("/threads", json={}, headers={"Host": "REBIND.evil.example"})

    assert searched.status_code == 403
    assert searched.json() == _refusal(REBOUND)
    assert listed.status_code == 403
    assert created.status_code == 403
    assert created.json() == _refusal("REBIND.evil.example")
    # Nothing was created behind the refusal.
    assert (await loopback.post("/threads/search", json={})).json() == []


@pytest.mark.parametrize(
    "host",
    [
        "localhost:2024",
        "127.0.0.1:2024",
        "127.0.0.2",
        "[::1]:2024",
        "app.localhost:2024",
        "0.0.0.0",
    ],
)
async def test_a_loopback_server_answers_to_this_machines_names(
    loopback: httpx.AsyncClient, host: str
) -> None:
    response = await loopback.post("/threads/search", json={}, headers={"Host": host})
    assert response.status_code == 200, response.text


async def test_allowed_hosts_adds_names_and_subdomains(database: Path) -> None:
    config = _listing(database, ("api.example.com", "*.corp.example"), "127.0.0.1")
    async for http in _serving(config):
        for host in ("api.example.com", "API.Example.com:443", "a.corp.example", "localhost"):
            response = await http.get("/ok", headers={"Host": host})
            assert response.status_code == 200, (host, response.text)
        refused = await http.get("/ok", headers={"Host": "corp.example"})
        assert refused.status_code == 403
        assert refused.json() == _refusal(
            "corp.example", "localhost, 127.0.0.1, [::1], api.example.com, *.corp.example"
        )


@pytest.mark.parametrize(("bind", "dev"), [("0.0.0.0", True), ("0.0.0.0", False), ("::1", False)])
async def test_allowed_hosts_applies_to_any_server_given_it(
    database: Path, bind: str, dev: bool
) -> None:
    async for http in _serving(_listing(database, ("api.example.com",), bind, dev=dev)):
        assert (await http.get("/ok", headers={"Host": "api.example.com"})).status_code == 200
        assert (await http.get("/ok", headers={"Host": "other.example"})).status_code == 403


@pytest.mark.parametrize(
    ("allowed", "bind", "dev"),
    [
        (None, "0.0.0.0", True),
        (None, "::", True),
        (("*",), "127.0.0.1", True),
        # `serve` behind a proxy on the same machine gets the public name.
        (None, "127.0.0.1", False),
    ],
)
async def test_no_check_without_a_list_beyond_dev_on_loopback(
    database: Path, allowed: tuple[str, ...] | None, bind: str, dev: bool
) -> None:
    async for http in _serving(_listing(database, allowed, bind, dev=dev)):
        response = await http.post("/threads/search", json={}, headers={"Host": REBOUND})
        assert response.status_code == 200, response.text


async def test_an_app_built_in_code_checks_no_host(database: Path) -> None:
    # `create_app` as an embedding host calls it: nothing settled, nothing checked.
    async for http in _serving(dev_defaults(example_config(database))):
        assert (await http.get("/ok", headers={"Host": REBOUND})).status_code == 200
