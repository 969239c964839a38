"""`auth.cache`: the authenticate handler runs once per credentials until the entry expires or
is pushed out; refusals and requests without the cache's headers are never cached."""

from __future__ import annotations

import httpx
from langgraph_sdk import Auth
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agent_runtime.config import AuthCacheConfig
from agent_runtime.server.auth import AuthMiddleware, AuthSettings
from agent_runtime.server.auth.cache import AuthCache
from agent_runtime.user import AuthUser


def _user(name: str) -> AuthUser:
    return AuthUser({"identity": name, "permissions": [], "is_authenticated": True})


def test_entries_expire_after_their_ttl() -> None:
    now = [100.0]
    cache = AuthCache(AuthCacheConfig(ttl_seconds=10), now=lambda: now[0])
    cache.put(("a",), _user("a"))

    now[0] = 109.9
    assert cache.get(("a",)) is not None
    now[0] = 110.0
    assert cache.get(("a",)) is None
    assert len(cache) == 0


def test_the_least_recently_used_entry_goes_first_past_max_size() -> None:
    cache = AuthCache(AuthCacheConfig(max_size=2))
    cache.put(("a",), _user("a"))
    cache.put(("b",), _user("b"))
    assert cache.get(("a",)) is not None  # a is now the most recently used
    cache.put(("c",), _user("c"))

    assert cache.get(("b",)) is None
    assert cache.get(("a",)) is not None and cache.get(("c",)) is not None


def test_the_key_is_the_configured_headers_and_none_without_them() -> None:
    cache = AuthCache(AuthCacheConfig(cache_keys=("authorization", "x-tenant")))

    assert cache.key(Headers({"Authorization": "Bearer t", "X-Tenant": "acme"})) == (
        "Bearer t",
        "acme",
    )
    assert cache.key(Headers({"authorization": "Bearer t"})) == ("Bearer t", None)
    assert cache.key(Headers({"x-other": "1"})) is None


async def test_the_middleware_calls_the_handler_once_per_credentials() -> None:
    calls: list[str | None] = []
    auth = Auth()

    @auth.authenticate
    async def authenticate(authorization: str | None) -> str:
        calls.append(authorization)
        if authorization != "Bearer good":
            raise Auth.exceptions.HTTPException(status_code=401, detail="no")
        return "alice"

    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse({"identity": request.state.auth_user.identity})

    app = Starlette(routes=[Route("/whoami", whoami)])
    settings = AuthSettings(auth=auth, cache=AuthCacheConfig(ttl_seconds=60))
    wrapped = AuthMiddleware(app, settings=settings)
    transport = httpx.ASGITransport(app=wrapped)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        good = [
            await client.get("/whoami", headers={"Authorization": "Bearer good"}) for _ in range(3)
        ]
        bad = [
            await client.get("/whoami", headers={"Authorization": "Bearer bad"}) for _ in range(2)
        ]
        bare = [await client.get("/whoami") for _ in range(2)]

    assert [r.json() for r in good] == [{"identity": "alice"}] * 3
    assert [r.status_code for r in bad + bare] == [401] * 4
    assert calls == ["Bearer good", "Bearer bad", "Bearer bad", None, None]
