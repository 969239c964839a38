"""`agent_runtime.allowed_hosts`: the names (`Host` headers) a server answers to beyond this
machine's own, read from langgraph.json and settled against the address the server listens on
(`agent-runtime dev` checks on loopback by default; `serve` only the names it is given). The
check itself is `server.hosts`'s."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Any

from agent_runtime.config.reader import ConfigReader, read_strings

ANY_HOST = "*"
"""In `agent_runtime.allowed_hosts`: answer to every name (no check)."""
_NAME = re.compile(r"(\*\.)?[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?|\[[0-9a-f:.]+\]")


def read_allowed_hosts(reader: ConfigReader, key: str, value: Any) -> tuple[str, ...]:
    """A list of host names, lower-cased: `api.example.com`, `*.example.com` (its
    subdomains), an address (`[::1]` for IPv6), or `"*"` alone."""
    names = tuple(name.strip().lower() for name in read_strings(reader, key, value))
    for index, name in enumerate(names):
        if name != ANY_HOST and _NAME.fullmatch(name) is None:
            raise reader.error(
                f"{key}[{index}]",
                f"{name!r} is not a host name; write the name alone, without a scheme, port or "
                'path (api.example.com, *.example.com, or "*" for any)',
            )
    return names


def hosts_for_bind(allowed: Sequence[str] | None, bind: str) -> tuple[str, ...] | None:
    """The names a server listening on `bind` answers to beyond its loopback ones: `allowed`
    when given; none when it listens on loopback only (DNS rebinding: a page on any other name
    that points at 127.0.0.1 would be same-origin with it); None, no check at all, when it
    listens beyond loopback with no list given, or the list holds `"*"`."""
    if allowed is not None:
        return None if ANY_HOST in allowed else tuple(allowed)
    return () if is_loopback(bind) else None


def is_loopback(host: str) -> bool:
    """Whether a host name or address (an IPv6 one with or without brackets) is this
    machine's loopback: `localhost` and its subdomains, 127.0.0.0/8, ::1."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
