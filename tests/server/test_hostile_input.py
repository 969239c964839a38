"""Hostile input (issue 11): every request that used to crash the server is a 422 naming the
field, decided before anything is stored. Raw httpx on a real server, so a 500 (which also
resets the keep-alive connection) cannot hide behind a client's retries."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer

INT64_OVER = 2**63
DEEP = 300
"""Levels of nesting that parse, but that orjson refuses to encode again (its limit is 254)."""


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels - 1):
        value = {"a": value}
    return value


async def new_thread(http: httpx.AsyncClient, **body: Any) -> str:
    response = await http.post("/threads", json=body)
    assert response.status_code == 200, response.text
    thread_id: str = response.json()["thread_id"]
    return thread_id


def assert_422(response: httpx.Response, detail: str, code: str = "validation_error") -> None:
    assert response.status_code == 422, response.text
    assert response.json() == {"detail": detail, "code": code}


# Numbers out of range


@pytest.mark.parametrize(
    "path",
    ["/threads/{tid}/runs", "/threads/{tid}/runs/wait", "/threads/{tid}/runs/stream", "/runs"],
)
async def test_after_seconds_over_a_year(http: httpx.AsyncClient, path: str) -> None:
    tid = await new_thread(http)
    response = await http.post(
        path.format(tid=tid), json={"assistant_id": "chat", "after_seconds": 1e17}
    )
    assert_422(response, "after_seconds: must be at most 31536000 (one year), got 1e+17")
    runs = await http.get(f"/threads/{tid}/runs")
    assert runs.json() == []


async def test_thread_ttl_over_ten_years(http: httpx.AsyncClient) -> None:
    response = await http.post("/threads", json={"ttl": {"ttl": 1e17}})
    assert_422(response, "ttl.ttl: must be at most 5256000 (ten years in minutes), got 1e+17")
    assert (await http.post("/threads/count", json={})).json() == 0

    tid = await new_thread(http, ttl={"ttl": 60})
    response = await http.patch(f"/threads/{tid}", json={"ttl": {"ttl": 1e17}})
    assert_422(response, "ttl.ttl: must be at most 5256000 (ten years in minutes), got 1e+17")
    assert (await http.get(f"/threads/{tid}")).json()["ttl"] == {"strategy": "delete", "ttl": 60}


async def test_store_ttl_over_ten_years(http: httpx.AsyncClient) -> None:
    response = await http.put(
        "/store/items", json={"namespace": ["a"], "key": "k", "value": {}, "ttl": 1e17}
    )
    assert_422(response, "ttl: must be at most 5256000 (ten years in minutes), got 1e+17")


async def test_offsets_past_64_bits(http: httpx.AsyncClient) -> None:
    tid = await new_thread(http)
    message = f"offset: must be at most {2**63 - 1} (the largest 64-bit integer), got {INT64_OVER}"
    # A query parameter is a string until validated.
    in_query = message.replace(str(INT64_OVER), f'"{INT64_OVER}"')
    assert_422(await http.get(f"/threads/{tid}/runs", params={"offset": INT64_OVER}), in_query)
    assert_422(
        await http.get(f"/threads/{tid}/tool-calls", params={"offset": INT64_OVER}), in_query
    )
    assert_422(await http.post("/threads/search", json={"offset": INT64_OVER}), message)
    assert_422(await http.post("/assistants/search", json={"offset": INT64_OVER}), message)
    assert_422(await http.post("/store/items/search", json={"offset": INT64_OVER}), message)


async def test_assistant_version_past_64_bits(http: httpx.AsyncClient) -> None:
    response = await http.post("/assistants/chat/latest", json={"version": INT64_OVER})
    assert_422(
        response,
        f"version: must be at most {2**63 - 1} (the largest 64-bit integer), got {INT64_OVER}",
    )


@pytest.mark.parametrize(
    "path", ["/threads/search", "/threads/count", "/assistants/search", "/assistants/count"]
)
async def test_filter_integers_past_64_bits(http: httpx.AsyncClient, path: str) -> None:
    response = await http.post(path, json={"metadata": {"n": INT64_OVER}})
    assert_422(
        response,
        f"metadata: a filter's integers must fit in 64 bits (n is {INT64_OVER}), "
        f'got {{"n":{INT64_OVER}}}',
    )


# Nesting


async def test_body_nested_too_deep(http: httpx.AsyncClient) -> None:
    detail = "The request body nests 300 levels deep; the limit is 100"
    assert_422(await http.post("/threads", json={"metadata": nested(DEEP)}), detail, "too_deep")
    assert_422(
        await http.put(
            "/store/items", json={"namespace": ["a"], "key": "k", "value": nested(DEEP)}
        ),
        detail,
        "too_deep",
    )
    tid = await new_thread(http)
    assert_422(
        await http.post(
            f"/threads/{tid}/runs", json={"assistant_id": "chat", "input": nested(DEEP)}
        ),
        detail,
        "too_deep",
    )
    assert (await http.post("/threads/count", json={})).json() == 1
    assert (await http.get(f"/threads/{tid}/runs")).json() == []


async def test_nesting_at_the_limit_is_accepted(http: httpx.AsyncClient) -> None:
    response = await http.put(
        "/store/items", json={"namespace": ["a"], "key": "k", "value": nested(98)}
    )
    assert response.status_code == 204, response.text
    item = await http.get("/store/items", params={"namespace": "a", "key": "k"})
    assert item.json()["value"] == nested(98)


@pytest.mark.parametrize("path", ["/threads/search", "/threads/count", "/assistants/search"])
async def test_filter_nested_too_deep(http: httpx.AsyncClient, path: str) -> None:
    response = await http.post(path, json={"metadata": nested(100)})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(
        "metadata: a filter may nest at most 6 levels deep, got "
    )


async def test_filter_with_too_many_keys(http: httpx.AsyncClient) -> None:
    many = {f"k{i}": i for i in range(10_000)}
    response = await http.post("/threads/search", json={"metadata": many})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(
        "metadata: a filter may hold at most 100 keys and items in all, got "
    )


async def test_filter_at_the_limits_is_accepted(http: httpx.AsyncClient) -> None:
    # Six levels each: the outer object and five below it.
    listed: Any = [[[[[[1]]]]]]
    await new_thread(http, metadata={"d": nested(6), "l": listed[0]})
    for path in ("/threads/search", "/assistants/search"):
        found = await http.post(path, json={"metadata": {"d": nested(6), "l": listed[0]}})
        assert found.status_code == 200, found.text
    found = await http.post(
        "/threads/search", json={"metadata": {"d": nested(6)}, "values": {"a": listed[0]}}
    )
    assert found.status_code == 200, found.text
    count = await http.post("/threads/count", json={"metadata": {"d": nested(6)}})
    assert count.json() == 1
    many = {f"k{i}": i for i in range(100)}
    assert (await http.post("/threads/count", json={"metadata": many})).json() == 0


# Filter keys and shapes the savers refuse


@pytest.mark.parametrize("key", ["a b", "..", "a..b", ".a", "'"])
async def test_history_filter_keys(http: httpx.AsyncClient, key: str) -> None:
    tid = await new_thread(http)
    response = await http.post(f"/threads/{tid}/history", json={"metadata": {key: 1}})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(
        f'metadata: "{key}" is not a filter key; use letters, digits, "_" and "-", '
        'with "." between nested keys'
    )


@pytest.mark.parametrize("key", ["a b", "..", "a'"])
async def test_store_filter_keys(http: httpx.AsyncClient, key: str) -> None:
    response = await http.post("/store/items/search", json={"filter": {key: 1}})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(f'filter: "{key}" is not a filter key;')


async def test_store_filter_operators(http: httpx.AsyncClient) -> None:
    response = await http.post("/store/items/search", json={"filter": {"n": {"$in": [1]}}})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(
        'filter: "$in" is not an operator; use $eq, $ne, $gt, $gte, $lt or $lte, got '
    )
    ok = await http.post("/store/items/search", json={"filter": {"n": {"$gte": 1}}})
    assert ok.status_code == 200


# NUL bytes


async def test_nul_in_store_namespace(http: httpx.AsyncClient) -> None:
    response = await http.put(
        "/store/items", json={"namespace": ["a\u0000b"], "key": "k", "value": {}}
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("namespace.0: ")
    response = await http.get("/store/items", params={"namespace": "a\u0000b", "key": "k"})
    assert_422(
        response,
        'namespace: labels must be non-empty and free of NUL characters, got "a\\u0000b"',
    )


async def test_empty_label_in_store_namespace_query(http: httpx.AsyncClient) -> None:
    response = await http.get("/store/items", params={"namespace": "..", "key": "k"})
    assert_422(response, 'namespace: labels must be non-empty and free of NUL characters, got ".."')


@pytest.mark.parametrize("metadata", [{"\u0000": 1}, {"a": "b\u0000"}, {"a": [{"b\u0000": 1}]}])
async def test_nul_in_metadata(http: httpx.AsyncClient, metadata: Any) -> None:
    detail = "metadata: keys and strings must not contain NUL characters (\\u0000)"
    response = await http.post("/threads", json={"metadata": metadata})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(detail)
    assert (await http.post("/threads/count", json={})).json() == 0
    tid = await new_thread(http, metadata={"keep": 1})
    response = await http.patch(f"/threads/{tid}", json={"metadata": metadata})
    assert response.json()["detail"].startswith(detail)
    assert (await http.get(f"/threads/{tid}")).json()["metadata"] == {"keep": 1}
    response = await http.post("/assistants", json={"graph_id": "chat", "metadata": metadata})
    assert response.json()["detail"].startswith(detail)
    response = await http.post("/threads/search", json={"metadata": metadata})
    assert response.json()["detail"].startswith("metadata: ")
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/assistants/search", {"graph_id": "a\u0000b"}),
        ("/assistants/search", {"name": "a\u0000"}),
    ],
)
async def test_nul_in_searched_text_is_no_server_error(
    http: httpx.AsyncClient, path: str, body: Any
) -> None:
    response = await http.post(path, json=body)
    if response.status_code == 200:  # SQLite: nothing has that text
        assert response.json() == []
    else:  # Postgres's text cannot hold a NUL character
        assert_422(
            response,
            "The database cannot take this text: PostgreSQL text fields cannot contain NUL "
            "(0x00) bytes",
            code="invalid_text",
        )


async def test_server_still_answers_on_the_same_connection(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        for _ in range(3):
            response = await http.post("/threads", json={"ttl": {"ttl": 1e17}})
            assert response.status_code == 422
        assert (await http.get("/ok")).status_code == 200
