"""`agent_runtime.allowed_hosts`: read from langgraph.json (a clear error for anything that is
not a host name) and settled against the address the server listens on."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_runtime.config.hosts import hosts_for_bind, is_loopback
from tests.config.test_load import GRAPH, _config, _error

NOT_A_NAME = (
    "is not a host name; write the name alone, without a scheme, port or path "
    '(api.example.com, *.example.com, or "*" for any)'
)


def test_allowed_hosts_are_read_lower_cased(tmp_path: Path) -> None:
    config = _config(
        tmp_path, agent_runtime={"allowed_hosts": ["API.example.com", "*.corp.example", "[::2]"]}
    )
    assert config.http.allowed_hosts == ("api.example.com", "*.corp.example", "[::2]")
    assert _config(tmp_path).http.allowed_hosts is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (
            ["ok.example", "http://api.example.com"],
            f"agent_runtime.allowed_hosts[1]: 'http://api.example.com' {NOT_A_NAME}",
        ),
        (
            ["api.example.com:8000"],
            f"agent_runtime.allowed_hosts[0]: 'api.example.com:8000' {NOT_A_NAME}",
        ),
        (
            ["api.example.com/x"],
            f"agent_runtime.allowed_hosts[0]: 'api.example.com/x' {NOT_A_NAME}",
        ),
        ("api.example.com", "agent_runtime.allowed_hosts: expected a list of strings, got"),
    ],
)
def test_allowed_hosts_refuses_what_is_not_a_host_name(
    tmp_path: Path, value: object, problem: str
) -> None:
    data = {"graphs": GRAPH, "agent_runtime": {"allowed_hosts": value}}
    detail = _error(tmp_path, data, "agent.py")
    assert problem in detail, detail


@pytest.mark.parametrize(
    ("allowed", "bind", "settled"),
    [
        (None, "127.0.0.1", ()),
        (None, "localhost", ()),
        (None, "::1", ()),
        (None, "0.0.0.0", None),
        (None, "192.168.1.10", None),
        (("api.example.com",), "0.0.0.0", ("api.example.com",)),
        (("api.example.com",), "127.0.0.1", ("api.example.com",)),
        (("*",), "127.0.0.1", None),
        (("api.example.com", "*"), "0.0.0.0", None),
    ],
)
def test_hosts_for_bind_checks_loopback_servers_unless_told(
    allowed: tuple[str, ...] | None, bind: str, settled: tuple[str, ...] | None
) -> None:
    assert hosts_for_bind(allowed, bind) == settled


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("app.localhost", True),
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("[::1]", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("localhost.evil.example", False),
        ("10.0.0.1", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
