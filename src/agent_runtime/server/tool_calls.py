"""The tool-call log of a thread: every tool call its runs made, recorded as the tools ran."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from typing_extensions import TypedDict

from agent_runtime.schema import ToolCall
from agent_runtime.server.routing import Router, json_response
from agent_runtime.server.services import services
from agent_runtime.server.threads import thread_id_of
from agent_runtime.server.validation import Offset, UuidStr, closed, parse_uuid

router = Router("threads")


@closed
class ToolCallQuery(TypedDict, total=False):
    run_id: UuidStr
    name: str
    limit: Annotated[int, Field(ge=1, le=1000)]
    offset: Offset


@router.get("/threads/{thread_id}/tool-calls", query=ToolCallQuery, response=list[ToolCall])
async def list_tool_calls(request: Request, query: ToolCallQuery) -> Response:
    """Every tool call of the thread, oldest first: arguments, result or error, the run and
    checkpoint it belongs to, when it started and how long it took. The total number of
    matching calls is in the `X-Pagination-Total` header."""
    run_id = query.get("run_id")
    calls, total = await services(request).storage.list_tool_calls(
        thread_id_of(request),
        run_id=None if run_id is None else parse_uuid(run_id, field="run_id"),
        name=query.get("name"),
        limit=query.get("limit", 100),
        offset=query.get("offset", 0),
    )
    return json_response(calls, headers={"X-Pagination-Total": str(total)})
