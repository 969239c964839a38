"""The strict serializer: the types a graph declares decode as themselves, anything else as its
plain data, and a blob that cannot be decoded raises one error the saver can name."""

from __future__ import annotations

import operator
from typing import Annotated

import pytest
from langchain_core.messages import AIMessage
from langgraph.graph import START, StateGraph
from pydantic import BaseModel
from typing_extensions import TypedDict

from agent_runtime.storage.serde import StrictSerializer, UndecodableBlobError, graph_types


class Plan(BaseModel):
    steps: list[str]


class PlanState(TypedDict):
    plan: Plan
    notes: Annotated[list[str], operator.add]


def _builder() -> StateGraph[PlanState]:
    builder = StateGraph(PlanState)
    builder.add_node("plan", lambda state: {"notes": ["planned"]})
    builder.add_edge(START, "plan")
    return builder


@pytest.mark.parametrize("compiled", [False, True])
def test_graph_types_finds_state_types_and_messages(compiled: bool) -> None:
    builder = _builder()
    found = graph_types([builder.compile() if compiled else builder])

    assert (Plan.__module__, "Plan") in found
    assert ("langchain_core.messages.ai", "AIMessage") in found


def test_declared_types_decode_as_themselves_and_others_as_data() -> None:
    plan = Plan(steps=["a", "b"])
    stored = StrictSerializer().dumps_typed({"plan": plan, "reply": AIMessage("hi", id="1")})

    allowed = StrictSerializer(allowed=graph_types([_builder()]))
    strict = StrictSerializer()

    assert allowed.loads_typed(stored)["plan"] == plan
    assert strict.loads_typed(stored)["plan"] == {"steps": ["a", "b"]}
    # LangChain's messages are on LangGraph's own safe list.
    assert strict.loads_typed(stored)["reply"] == AIMessage("hi", id="1")


@pytest.mark.parametrize(
    "stored",
    [("msgpack", b"\xc1"), ("pickle", b"cos\nsystem\n(S'true'\ntR."), ("surprise", b"")],
)
def test_undecodable_blobs_raise_one_error(stored: tuple[str, bytes]) -> None:
    with pytest.raises(UndecodableBlobError) as caught:
        StrictSerializer().loads_typed(stored)

    assert str(caught.value).startswith(f"a {stored[0]} value cannot be decoded: ")
