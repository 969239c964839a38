"""Property-based requests against our own `/openapi.json` (schemathesis), so that a 500 or a
response the document does not describe fails CI.

A real uvicorn serves the example graphs on a temporary database (of the pass's backend: SQLite,
or Postgres under `--backend postgres`), on an event loop of its own
in a background thread (schemathesis calls it synchronously). Every operation in the document
is exercised with a fixed seed and a small budget (`MAX_EXAMPLES` per operation, derandomized,
no deadline), in both valid and invalid requests, and each response must pass:

- `not_a_server_error`: no 5xx;
- `status_code_conformance`: the status is documented for the operation;
- `content_type_conformance`: the content type is the documented one;
- `response_schema_conformance`: the body matches the documented schema;
- `negative_data_rejection`: a request the document calls invalid is refused with a 4xx.

Requests go to random ids (mostly 404s) and, for operations on one thread, run, checkpoint,
message or assistant, also to the ids of a thread that has run once (`known_ids`). Not to
those: the DELETE operations (they would delete what the others explore), the routes that
create runs on that thread (a run delayed by `after_seconds` would keep the thread busy, and a
`wait` behind it would outlast any budget), and the thread stream (it follows an existing thread
until the client leaves; `test_thread_stream.py` covers it); those get random ids only.

No operation is excluded: the streaming routes (`text/event-stream`) and the waiting routes
(`/runs/wait`, `join`) are fuzzed too. They end quickly here because the example graphs run on
the offline model and random ids name no run or thread (404); their SSE bodies are documented
as text, which is all the schema can say of them.

The whole file takes about 45 s a backend on two cores. For a longer hunt by hand,
`FUZZ_EXAMPLES=300` raises the budget and `FUZZ_RANDOM=1` drops the fixed seed.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from agent_runtime.server.app import operations
from tests.conftest import Database, RunningServer, example_config
from tests.services import fresh_postgres_database

MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


class _ServerThread:
    """A RunningServer on an event loop in a thread of its own."""

    def __init__(self, database: Path, *, postgres: bool) -> None:
        self.url = ""
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(database, postgres), daemon=True)

    def _run(self, database: Path, postgres: bool) -> None:
        try:
            asyncio.run(self._on_backend(database, postgres))
        except BaseException as exc:  # handed to the test thread
            self._error = exc
            self._ready.set()

    async def _on_backend(self, database: Path, postgres: bool) -> None:
        if not postgres:
            await self._serve(database)
            return
        async with fresh_postgres_database(migrated=True) as uri:
            await self._serve(uri)

    async def _serve(self, database: Database) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await RunningServer(example_config(database)).start()
        self.url = server.url
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await server.stop()

    def start(self) -> str:
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._error is not None:
            raise self._error
        return self.url

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)
        if self._error is not None:
            raise self._error


@pytest.fixture(scope="module")
def fuzz_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    # The pass's backend: on Postgres, hostile bytes reach its text and JSON columns.
    postgres = request.config.getoption("--backend") == "postgres"
    server = _ServerThread(tmp_path_factory.mktemp("fuzz") / "runtime.sqlite", postgres=postgres)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def api_schema(fuzz_url: str) -> Any:
    return schemathesis.openapi.from_url(f"{fuzz_url}/openapi.json")


@pytest.fixture(scope="module")
def known_ids(fuzz_url: str) -> dict[str, str]:
    """Ids of a thread that has run once, its run and checkpoint, and a graph's assistant."""
    with httpx.Client(base_url=fuzz_url, timeout=30) as http:
        thread_id = http.post("/threads", json={}).json()["thread_id"]
        message = {"role": "user", "content": "hello"}
        http.post(
            f"/threads/{thread_id}/runs/wait",
            json={"assistant_id": "chat", "input": {"messages": [message]}},
        ).raise_for_status()
        run_id = http.get(f"/threads/{thread_id}/runs").json()[0]["run_id"]
        state = http.get(f"/threads/{thread_id}/state").json()
    return {
        "thread_id": thread_id,
        "run_id": run_id,
        "checkpoint_id": state["checkpoint"]["checkpoint_id"],
        "assistant_id": "chat",
        "message_id": state["values"]["messages"][0]["id"],
    }


# The operations to fuzz, one test each, named from the routes the app declares; each test then
# takes its operation from the document the running server serves.
OPERATIONS = [(op.method, op.path) for op in operations()]
_UNSEEDED = re.compile(r"/runs(/stream|/wait)?$")


@pytest.mark.fuzz
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_keeps_to_the_document(
    api_schema: Any, known_ids: dict[str, str], method: str, path: str
) -> None:
    operation = api_schema[path][method]
    strategies = [
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    ]
    names = re.findall(r"{(\w+)}", path)
    creates_runs = method == "POST" and _UNSEEDED.search(path)
    follows_forever = path == "/threads/{thread_id}/stream"
    if names and method != "DELETE" and not creates_runs and not follows_forever:
        seeded = {name: known_ids[name] for name in names if name in known_ids}
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=seeded))

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=os.environ.get("FUZZ_RANDOM") is None,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    @given(case=st.one_of(strategies))
    def check(case: Any) -> None:
        case.call_and_validate(checks=CHECKS, timeout=20)

    check()
